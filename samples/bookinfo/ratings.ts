// Bookinfo ratings: star ratings per reviewer.
//
//   GET  /ratings/<id>  {id, ratings: {Reviewer1: 5, Reviewer2: 4}}
//   POST /ratings/<id>  body {"Reviewer1": n, "Reviewer2": n} (1..5) replaces them
//   GET  /health        {status: "Ratings is healthy"}
//
// Env: PORT (9080), HOST (0.0.0.0), POD_NAME / HOSTNAME, SERVICE_VERSION:
//   v1 (default)   normal
//   v-faulty       half of the rating requests fail with 503
//   v-delayed      half of the rating requests take 7 s
//   v-unavailable  every rating request fails with 503
//   v-unhealthy    like v-unavailable, and /health answers 500

import { readBody, identity, parseJson, run, sendJson, serve } from './common.ts';
import type { ServerResponse } from 'node:http';

const id = identity('ratings');
const userRatings = new Map<number, Record<string, number>>();

function ratingsOf(productId: number): Record<string, unknown> {
  return { id: productId, ratings: userRatings.get(productId) ?? { Reviewer1: 5, Reviewer2: 4 } };
}

function unavailable(res: ServerResponse): void {
  sendJson(res, 503, { error: 'Service unavailable' });
}

function answer(res: ServerResponse, productId: number): void {
  switch (id.version) {
    case 'v-faulty':
      if (Math.random() < 0.5) return unavailable(res);
      break;
    case 'v-delayed':
      if (Math.random() < 0.5) {
        const timer = setTimeout(() => sendJson(res, 200, ratingsOf(productId)), 7_000);
        res.on('close', () => clearTimeout(timer));
        return;
      }
      break;
    case 'v-unavailable':
    case 'v-unhealthy':
      return unavailable(res);
  }
  sendJson(res, 200, ratingsOf(productId));
}

run(() =>
  serve(id, async (req, res, url) => {
    if (url.pathname === '/health') {
      if (id.version === 'v-unhealthy') return sendJson(res, 500, { status: 'Ratings is not healthy' });
      return sendJson(res, 200, { status: 'Ratings is healthy' });
    }
    const m = /^\/ratings\/([^/]*)$/.exec(url.pathname);
    if (!m) return sendJson(res, 404, { error: 'not found' });
    if (!/^-?\d+$/.test(m[1])) return sendJson(res, 400, { error: 'please provide numeric product ID' });
    const productId = Number(m[1]);
    if (req.method === 'GET' || req.method === 'HEAD') return answer(res, productId);
    if (req.method === 'POST') {
      const body = parseJson(await readBody(req));
      const valid =
        typeof body === 'object' && body !== null && !Array.isArray(body) &&
        Object.entries(body).length > 0 &&
        Object.entries(body).every(([k, v]) => k.length <= 64 && Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 5);
      if (!valid) return sendJson(res, 400, { error: 'please provide valid ratings JSON' });
      userRatings.set(productId, { ...(body as Record<string, number>) });
      return sendJson(res, 200, ratingsOf(productId));
    }
    sendJson(res, 405, { error: 'method not allowed' });
  }),
);
