// The whole Bookinfo app as real processes, wired by *_SERVICE_HOST/PORT as
// run-all.ts does: the page Istio's tasks look at (title, details, reviews,
// stars per reviews version, "Reviews served by:"), login/logout and the
// end-user header, trace headers end to end, the JSON API.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { startBookinfo, startService } from '../../samples/bookinfo/run-all.ts';
import type { Bookinfo, ServiceProcess } from '../../samples/bookinfo/run-all.ts';

const FILLED = /glyphicon glyphicon-star"/g;
const EMPTY = /glyphicon glyphicon-star-empty"/g;
const countOf = (html: string, re: RegExp): number => html.match(re)?.length ?? 0;

describe('bookinfo productpage', () => {
  let app: Bookinfo;
  const pages: Record<'v2' | 'v3', ServiceProcess> = {} as Record<'v2' | 'v3', ServiceProcess>;
  const url = (v: 'v1' | 'v2' | 'v3'): string => (v === 'v1' ? app.url : `http://127.0.0.1:${pages[v].port}`);

  before(async () => {
    app = await startBookinfo({ reviews: 'v1' });
    // Two more productpages, each pointed at another reviews version.
    for (const v of ['v2', 'v3'] as const) {
      pages[v] = await startService('productpage', {
        POD_NAME: `productpage-${v}-t`,
        DETAILS_SERVICE_HOST: '127.0.0.1',
        DETAILS_SERVICE_PORT: String(app.details.port),
        REVIEWS_SERVICE_HOST: '127.0.0.1',
        REVIEWS_SERVICE_PORT: String(app.reviews[v].port),
        RATINGS_SERVICE_HOST: '127.0.0.1',
        RATINGS_SERVICE_PORT: String(app.ratings.port),
      });
    }
  });
  after(async () => {
    await Promise.all([app?.stop(), pages.v2?.stop(), pages.v3?.stop()]);
  });

  test('the page shows the title, the details and the reviews (v1: no stars)', async () => {
    const res = await fetch(`${url('v1')}/productpage`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/html/);
    const html = await res.text();
    assert.match(html, /<title>Simple Bookstore App<\/title>/);
    assert.match(html, /The Comedy of Errors/);
    assert.match(html, /<dt>Publisher:<\/dt>PublisherA/);
    assert.match(html, /<dt>ISBN-13:<\/dt>123-1234567890/);
    assert.match(html, /An extremely entertaining play by Shakespeare/);
    assert.match(html, /Reviewer2/);
    assert.match(html, /Reviews served by:<\/dt>\s*<u>reviews-v1-local<\/u>/);
    assert.equal(countOf(html, FILLED), 0);
    assert.equal(countOf(html, EMPTY), 0);
    assert.doesNotMatch(html, /Error fetching/);
  });

  for (const [v, color] of [['v2', 'black'], ['v3', 'red']] as const) {
    test(`reviews ${v}: ${color} stars, 5 + 4 filled`, async () => {
      const html = await (await fetch(`${url(v)}/productpage`)).text();
      assert.equal(countOf(html, FILLED), 9);
      assert.equal(countOf(html, EMPTY), 1);
      assert.equal(countOf(html, new RegExp(`style="color: ${color};"`, 'g')), 2);
      assert.doesNotMatch(html, new RegExp(`color: ${color === 'red' ? 'black' : 'red'}`));
      assert.match(html, new RegExp(`Reviews served by:</dt>\\s*<u>reviews-${v}-local</u>`));
    });
  }

  test('login as jason: reviews and ratings receive end-user: jason; logout ends it', async () => {
    const login = await fetch(`${url('v2')}/login`, { method: 'POST', body: new URLSearchParams({ username: 'jason', passwd: '' }), redirect: 'manual' });
    assert.equal(login.status, 302);
    assert.equal(login.headers.get('location'), '/productpage');
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0];
    assert.match(cookie, /^session=.+/);

    const rid = `req-jason-${Date.now()}`;
    const html = await (await fetch(`${url('v2')}/productpage`, { headers: { cookie, 'x-request-id': rid } })).text();
    assert.match(html, /Welcome <u>jason<\/u>/);
    assert.match(html, /sign out/);
    const reviewsLine = await app.reviews.v2.waitForLog((e) => e.headers?.['x-request-id'] === rid);
    assert.equal(reviewsLine.headers?.['end-user'], 'jason');
    const ratingsLine = await app.ratings.waitForLog((e) => e.headers?.['x-request-id'] === rid);
    assert.equal(ratingsLine.headers?.['end-user'], 'jason');
    const detailsLine = await app.details.waitForLog((e) => e.headers?.['x-request-id'] === rid);
    assert.equal(detailsLine.headers?.['end-user'], 'jason');

    const logout = await fetch(`${url('v2')}/logout`, { headers: { cookie }, redirect: 'manual' });
    assert.equal(logout.status, 302);
    assert.match(logout.headers.get('set-cookie') ?? '', /^session=;.*Max-Age=0/);

    // Without the cookie, or with a forged one, nobody is logged in.
    const forged = `session=${Buffer.from('admin').toString('base64url')}.AAAA`;
    const rid2 = `req-anon-${Date.now()}`;
    const anon = await (await fetch(`${url('v2')}/productpage`, { headers: { cookie: forged, 'x-request-id': rid2 } })).text();
    assert.doesNotMatch(anon, /Welcome/);
    assert.match(anon, /Sign in/);
    const anonLine = await app.ratings.waitForLog((e) => e.headers?.['x-request-id'] === rid2);
    assert.equal(anonLine.headers?.['end-user'], undefined);
  });

  test('a login with an unusable user name or an oversized body sets no session', async () => {
    const bad = await fetch(`${url('v1')}/login`, { method: 'POST', body: new URLSearchParams({ username: 'a\u00e9\nb' }), redirect: 'manual' });
    assert.equal(bad.status, 302);
    assert.equal(bad.headers.get('set-cookie'), null);
    const big = await fetch(`${url('v1')}/login`, { method: 'POST', body: new URLSearchParams({ username: 'x'.repeat(200 * 1024) }), redirect: 'manual' });
    assert.equal(big.status, 413);
    assert.equal((await fetch(`${url('v1')}/login`)).status, 405);
  });

  test('trace headers travel productpage -> reviews -> ratings', async () => {
    const sent = {
      'x-request-id': `req-trace-${Date.now()}`,
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      tracestate: 'rojo=00f067aa0ba902b7',
      'x-b3-traceid': '463ac35c9f6413ad48485a3953bb6124',
      'x-b3-spanid': 'a2fb4a1d1a96d312',
      'x-b3-parentspanid': '0020000000000001',
      'x-b3-sampled': '1',
      'x-b3-flags': '1',
      b3: '463ac35c9f6413ad48485a3953bb6124-a2fb4a1d1a96d312-1',
      'x-ot-span-context': 'ot-ctx',
    };
    assert.equal((await fetch(`${url('v3')}/productpage`, { headers: sent })).status, 200);
    const line = await app.ratings.waitForLog((e) => e.headers?.['x-request-id'] === sent['x-request-id']);
    assert.deepEqual(line.headers, sent);
    const details = await app.details.waitForLog((e) => e.headers?.['x-request-id'] === sent['x-request-id']);
    assert.equal(details.headers?.traceparent, sent.traceparent);
    const own = await pages.v3.waitForLog((e) => e.headers?.['x-request-id'] === sent['x-request-id']);
    assert.equal(own.path, '/productpage');
    assert.equal(own.status, 200);
  });

  test('the JSON API answers like Istio\'s', async () => {
    const products = (await (await fetch(`${url('v2')}/api/v1/products`)).json()) as Array<{ id: number; title: string; descriptionHtml: string }>;
    assert.equal(products.length, 1);
    assert.equal(products[0].id, 0);
    assert.equal(products[0].title, 'The Comedy of Errors');
    const details = (await (await fetch(`${url('v2')}/api/v1/products/0`)).json()) as { author: string; year: number };
    assert.equal(details.author, 'William Shakespeare');
    assert.equal(details.year, 1595);
    const reviews = (await (await fetch(`${url('v2')}/api/v1/products/0/reviews`)).json()) as { podname: string; reviews: Array<{ rating: { stars: number } }> };
    assert.equal(reviews.podname, 'reviews-v2-local');
    assert.equal(reviews.reviews[0].rating.stars, 5);
    assert.deepEqual(await (await fetch(`${url('v2')}/api/v1/products/0/ratings`)).json(), { id: 0, ratings: { Reviewer1: 5, Reviewer2: 4 } });
    assert.equal((await fetch(`${url('v2')}/api/v1/products/x`)).status, 404);
  });

  test('index, health, metrics, static assets and unknown paths', async () => {
    const index = await (await fetch(`${url('v1')}/`)).text();
    assert.match(index, /simple bookstore application/);
    assert.match(index, /href="\/productpage\?u=normal"/);
    assert.equal(await (await fetch(`${url('v1')}/health`)).text(), 'Product page is healthy');
    const css = await fetch(`${url('v1')}/static/bookinfo.css`);
    assert.equal(css.status, 200);
    assert.match(css.headers.get('content-type') ?? '', /text\/css/);
    assert.match(await css.text(), /glyphicon-star/);
    assert.equal((await fetch(`${url('v1')}/static/..%2Fproductpage.ts`)).status, 404);
    assert.equal((await fetch(`${url('v1')}/nope`)).status, 404);
    assert.match(await (await fetch(`${url('v1')}/metrics`)).text(), /bookinfo_productpage_upstream_total\{service="reviews",result="ok"\} \d+/);
  });
});

test('run-all.ts as a command: prints the productpage URL, serves the app, stops everything on SIGTERM', async () => {
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', new URL('../../samples/bookinfo/run-all.ts', import.meta.url).pathname, '--reviews', 'v3', '--port', '0', '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(child, 'exit');
  try {
    const lines: string[] = [];
    const pageUrl = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no productpage line: ${lines.join('\n')}`)), 10_000);
      createInterface({ input: child.stdout }).on('line', (line) => {
        lines.push(line);
        const m = /^productpage: (http:\/\/\S+)/.exec(line);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
    });
    assert.match(pageUrl, /^http:\/\/127\.0\.0\.1:\d+\/productpage$/);
    const html = await (await fetch(pageUrl)).text();
    assert.match(html, /Reviews served by:<\/dt>\s*<u>reviews-v3-local<\/u>/);
    assert.equal(html.match(/style="color: red;"/g)?.length, 2);
    const ports = lines.filter((l) => l.startsWith('# ')).map((l) => Number(/:(\d+)$/.exec(l)?.[1]));
    assert.equal(ports.length, 6);
    child.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0);
    for (const port of ports) await assert.rejects(fetch(`http://127.0.0.1:${port}/health`), `port ${port} still answers`);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});
