// Bookinfo productpage: the web front end. It calls details and reviews and
// renders one HTML page for the book; it also offers a JSON API.
//
//   GET  /                                index
//   GET  /productpage                     the book's page (details + reviews)
//   POST /login      (form: username)     sets the session cookie, redirects to /productpage
//   GET  /logout                          clears it, redirects to /productpage
//   GET  /api/v1/products                 the product list
//   GET  /api/v1/products/<id>            details (from the details service)
//   GET  /api/v1/products/<id>/reviews    reviews (from the reviews service)
//   GET  /api/v1/products/<id>/ratings    ratings (from the ratings service)
//   GET  /static/<file>                   stylesheet
//   GET  /health, /metrics
//
// Calls: details once with a 3 s timeout, reviews with a 3 s timeout and one
// retry, ratings (API only) with a 3 s timeout. Sends the trace headers of the
// incoming request on, plus `end-user: <name>` when someone is logged in.
//
// Env: PORT (9080), HOST (0.0.0.0), POD_NAME / HOSTNAME, SERVICE_VERSION,
// DETAILS_SERVICE_HOST/PORT, REVIEWS_SERVICE_HOST/PORT, RATINGS_SERVICE_HOST/PORT
// (default details:9080, reviews:9080, ratings:9080), SESSION_SECRET.

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { call, forwardHeaders, identity, log, parseJson, readBody, run, sendJson, sendText, serve, serviceUrl } from './common.ts';

const id = identity('productpage');
const detailsUrl = serviceUrl('details');
const reviewsUrl = serviceUrl('reviews');
const ratingsUrl = serviceUrl('ratings');
const sessionSecret = process.env.SESSION_SECRET || randomBytes(32).toString('hex');
const UPSTREAM_TIMEOUT_MS = 3_000;

const PRODUCTS = [
  {
    id: 0,
    title: 'The Comedy of Errors',
    descriptionHtml:
      '<a href="https://en.wikipedia.org/wiki/The_Comedy_of_Errors">Wikipedia Summary</a>: The Comedy of Errors is one of <b>William Shakespeare\'s</b> early plays. It is his shortest and one of his most farcical comedies, with a major part of the humour coming from slapstick and mistaken identity, in addition to puns and word play.',
  },
];

const STATIC_DIR = new URL('./static/', import.meta.url);
const STATIC_TYPES: Record<string, string> = { css: 'text/css; charset=utf-8', js: 'text/javascript; charset=utf-8', png: 'image/png', ico: 'image/x-icon' };
const staticFiles = new Map<string, { type: string; body: Buffer }>();
for (const name of readdirSync(STATIC_DIR)) {
  const ext = name.split('.').pop() ?? '';
  if (STATIC_TYPES[ext]) staticFiles.set(name, { type: STATIC_TYPES[ext], body: readFileSync(new URL(name, STATIC_DIR)) });
}

const counters = new Map<string, number>();
function count(key: string): void {
  counters.set(key, (counters.get(key) ?? 0) + 1);
}

// --- sessions ---------------------------------------------------------------

function sign(value: string): string {
  return createHmac('sha256', sessionSecret).update(value).digest('base64url');
}

function sessionCookie(user: string): string {
  const value = Buffer.from(user, 'utf8').toString('base64url');
  return `session=${value}.${sign(value)}; Path=/; HttpOnly; SameSite=Lax`;
}

function sessionUser(headers: IncomingHttpHeaders): string | undefined {
  for (const part of (headers.cookie ?? '').split(';')) {
    const [name, ...rest] = part.trim().split('=');
    if (name !== 'session') continue;
    const [value, mac] = rest.join('=').split('.');
    if (!value || !mac) return undefined;
    const expected = Buffer.from(sign(value));
    const given = Buffer.from(mac);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return undefined;
    const user = Buffer.from(value, 'base64url').toString('utf8');
    return validUser(user) ? user : undefined;
  }
  return undefined;
}

/** A user name that can travel in an HTTP header: printable ASCII, 1-64 characters. */
function validUser(user: string): boolean {
  return /^[\x20-\x7e]{1,64}$/.test(user) && user.trim() === user;
}

/** Headers for the calls this request makes: its trace headers, plus end-user. */
function outgoingHeaders(req: IncomingMessage): Record<string, string> {
  const headers = forwardHeaders(req.headers);
  const user = sessionUser(req.headers);
  if (user) headers['end-user'] = user;
  return headers;
}

// --- calls to the other services -------------------------------------------

interface Fetched {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

async function fetchJson(url: string, headers: Record<string, string>, errorText: string, attempts: number): Promise<Fetched> {
  let status = 500;
  for (let i = 0; i < attempts; i++) {
    try {
      const res = await call(url, { headers, timeoutMs: UPSTREAM_TIMEOUT_MS });
      const body = parseJson(res.body);
      if (res.status === 200 && typeof body === 'object' && body !== null) return { status: 200, body: body as Record<string, unknown> };
      status = res.status === 200 ? 500 : res.status;
      log({ service: id.service, level: 'warn', msg: 'upstream call failed', url, status: res.status, attempt: i + 1 });
    } catch (err) {
      status = 500;
      log({ service: id.service, level: 'warn', msg: 'upstream call failed', url, error: err instanceof Error ? err.message : String(err), attempt: i + 1 });
    }
  }
  return { status, body: { error: errorText } };
}

const getDetails = (productId: number, headers: Record<string, string>): Promise<Fetched> =>
  fetchJson(`${detailsUrl}/details/${productId}`, headers, 'Sorry, product details are currently unavailable for this book.', 1);
const getReviews = (productId: number, headers: Record<string, string>): Promise<Fetched> =>
  fetchJson(`${reviewsUrl}/reviews/${productId}`, headers, 'Sorry, product reviews are currently unavailable for this book.', 2);
const getRatings = (productId: number, headers: Record<string, string>): Promise<Fetched> =>
  fetchJson(`${ratingsUrl}/ratings/${productId}`, headers, 'Sorry, product ratings are currently unavailable for this book.', 1);

// --- HTML ------------------------------------------------------------------

function esc(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title: string, user: string | undefined, body: string): string {
  const account = user
    ? `<span>Welcome <u>${esc(user)}</u></span> <a href="/logout" id="signout">sign out</a>`
    : `<form method="post" action="/login" name="login_form"><input type="text" name="username" placeholder="User Name" aria-label="User Name"> <input type="password" name="passwd" placeholder="Password" aria-label="Password"> <button type="submit">Sign in</button></form>`;
  return `<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>${esc(title)}</title>
<link rel="stylesheet" href="/static/bookinfo.css">
</head>
<body>
<nav><a href="/" class="navbar-brand">BookInfo Sample</a><div>${account}</div></nav>
<main>
${body}
</main>
</body>
</html>
`;
}

function detailsHtml(details: Fetched): string {
  if (details.status !== 200) {
    return `<h4 class="text-center text-primary">Error fetching product details!</h4>
<p>${esc(details.body.error)}</p>`;
  }
  const d = details.body;
  return `<h4 class="text-center text-primary">Book Details</h4>
<dl>
<dt>Type:</dt>${esc(d.type)}
<dt>Pages:</dt>${esc(d.pages)}
<dt>Publisher:</dt>${esc(d.publisher)}
<dt>Language:</dt>${esc(d.language)}
<dt>ISBN-10:</dt>${esc(d['ISBN-10'])}
<dt>ISBN-13:</dt>${esc(d['ISBN-13'])}
</dl>`;
}

function reviewsHtml(reviews: Fetched): string {
  if (reviews.status !== 200) {
    return `<h4 class="text-center text-primary">Error fetching product reviews!</h4>
<p>${esc(reviews.body.error)}</p>`;
  }
  const list = Array.isArray(reviews.body.reviews) ? (reviews.body.reviews as Array<Record<string, unknown>>) : [];
  const items = list.map((review) => {
    let rating = '';
    const r = review.rating as { stars?: unknown; color?: unknown; error?: unknown } | undefined;
    if (r && typeof r.stars === 'number') {
      const stars = Math.max(0, Math.min(5, Math.trunc(r.stars)));
      const color = esc(r.color ?? 'black');
      rating = `<font color="${color}" style="color: ${color};">
<!-- full stars: -->
${'<span class="glyphicon glyphicon-star"></span>\n'.repeat(stars)}<!-- empty stars: -->
${'<span class="glyphicon glyphicon-star-empty"></span>\n'.repeat(5 - stars)}</font>`;
    } else if (r && r.error) {
      rating = `<p><i>${esc(r.error)}</i></p>`;
    }
    return `<blockquote>
<p>${esc(review.text)}</p>
<small>${esc(review.reviewer)}</small>
${rating}
</blockquote>`;
  });
  const cluster = reviews.body.clustername && reviews.body.clustername !== 'null' ? ` on cluster <u>${esc(reviews.body.clustername)}</u>` : '';
  return `<h4 class="text-center text-primary">Book Reviews</h4>
${items.join('\n')}
<dl>
<dt>Reviews served by:</dt>
<u>${esc(reviews.body.podname)}</u>${cluster}
</dl>`;
}

function indexHtml(): string {
  return page(
    'Simple Bookstore App',
    undefined,
    `<h3>Hello! This is a simple bookstore application consisting of three services as shown below</h3>
<p>productpage calls details and reviews; reviews calls ratings.</p>
<p>Click on one of the links below to auto generate a request to the backend as a real user or a tester</p>
<p><a href="/productpage?u=normal">Normal user</a></p>
<p><a href="/productpage?u=test">Test user</a></p>`,
  );
}

async function productPage(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const headers = outgoingHeaders(req);
  const user = sessionUser(req.headers);
  const product = PRODUCTS[0];
  const [details, reviews] = await Promise.all([getDetails(product.id, headers), getReviews(product.id, headers)]);
  count(`details_${details.status === 200 ? 'ok' : 'error'}`);
  count(`reviews_${reviews.status === 200 ? 'ok' : 'error'}`);
  const body = `<div class="text-center">
<h1 class="text-center text-primary">${esc(product.title)}</h1>
<p>Summary: ${product.descriptionHtml}</p>
</div>
<div class="row">
<div class="col">
${detailsHtml(details)}
</div>
<div class="col">
${reviewsHtml(reviews)}
</div>
</div>`;
  sendText(res, 200, page('Simple Bookstore App', user, body), 'text/html; charset=utf-8');
}

function redirect(res: ServerResponse, location: string, cookie?: string): void {
  const headers: Record<string, string> = { location, 'content-type': 'text/html; charset=utf-8' };
  if (cookie) headers['set-cookie'] = cookie;
  const body = `<a href="${esc(location)}">${esc(location)}</a>\n`;
  headers['content-length'] = String(Buffer.byteLength(body));
  res.writeHead(302, headers);
  res.end(body);
}

async function login(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const text = await readBody(req);
  const type = String(req.headers['content-type'] ?? '');
  let user: string | null = null;
  if (type.includes('application/json')) {
    const body = parseJson(text) as { username?: unknown } | undefined;
    if (body && typeof body.username === 'string') user = body.username;
  } else {
    user = new URLSearchParams(text).get('username');
  }
  user ??= url.searchParams.get('username');
  if (user === null || !validUser(user)) {
    log({ service: id.service, level: 'warn', msg: 'login rejected: invalid user name' });
    return redirect(res, '/productpage');
  }
  redirect(res, '/productpage', sessionCookie(user));
}

function metrics(): string {
  const lines = ['# HELP bookinfo_productpage_upstream_total Calls from productpage to details and reviews by result.', '# TYPE bookinfo_productpage_upstream_total counter'];
  for (const [key, value] of counters) {
    const [service, result] = key.split('_');
    lines.push(`bookinfo_productpage_upstream_total{service="${service}",result="${result}"} ${value}`);
  }
  return `${lines.join('\n')}\n`;
}

run(() =>
  serve(id, async (req, res, url) => {
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (path === '/login') {
      if (method !== 'POST') return sendJson(res, 405, { error: 'method not allowed' });
      return login(req, res, url);
    }
    if (method !== 'GET' && method !== 'HEAD') return sendJson(res, 405, { error: 'method not allowed' });
    if (path === '/' || path === '/index.html') return sendText(res, 200, indexHtml(), 'text/html; charset=utf-8');
    if (path === '/health') return sendText(res, 200, 'Product page is healthy');
    if (path === '/metrics') return sendText(res, 200, metrics(), 'text/plain; version=0.0.4; charset=utf-8');
    if (path === '/productpage') return productPage(req, res);
    if (path === '/logout') return redirect(res, '/productpage', 'session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0');
    if (path.startsWith('/static/')) {
      const file = staticFiles.get(path.slice('/static/'.length));
      if (!file) return sendJson(res, 404, { error: 'not found' });
      res.writeHead(200, { 'content-type': file.type, 'content-length': file.body.length, 'cache-control': 'max-age=3600' });
      res.end(file.body);
      return;
    }
    if (path === '/api/v1/products') return sendJson(res, 200, PRODUCTS);
    const m = /^\/api\/v1\/products\/([^/]+)(?:\/(reviews|ratings))?$/.exec(path);
    if (m) {
      if (!/^\d+$/.test(m[1])) return sendJson(res, 404, { error: 'not found' });
      const productId = Number(m[1]);
      const headers = outgoingHeaders(req);
      const result = m[2] === 'reviews' ? await getReviews(productId, headers) : m[2] === 'ratings' ? await getRatings(productId, headers) : await getDetails(productId, headers);
      return sendJson(res, result.status, result.body);
    }
    sendJson(res, 404, { error: 'not found' });
  }),
);
