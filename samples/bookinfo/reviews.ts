// Bookinfo reviews: two reviews of the book, with star ratings from the
// ratings service in v2 (black stars) and v3 (red stars); v1 shows none.
//
//   GET /reviews/<id>  {id, podname, clustername, reviews: [{reviewer, text, rating?}]}
//   GET /health        {status: "Reviews is healthy"}
//
// Env: PORT (9080), HOST (0.0.0.0), POD_NAME / HOSTNAME (the instance shown
// as "Reviews served by:"), CLUSTER_NAME, SERVICE_VERSION (v1 | v2 | v3),
// ENABLE_RATINGS (true/false) and STAR_COLOR (black/red) to override what the
// version implies, RATINGS_SERVICE_HOST / RATINGS_SERVICE_PORT (default
// ratings:9080). Ratings are fetched with a 10 s timeout for black stars and
// 2.5 s for any other color.

import type { IncomingHttpHeaders } from 'node:http';
import { call, forwardHeaders, identity, log, parseJson, run, sendJson, serve, serviceUrl } from './common.ts';

const id = identity('reviews');
const env = process.env;

const byVersion: Record<string, { ratings: boolean; color: string }> = {
  v1: { ratings: false, color: 'black' },
  v2: { ratings: true, color: 'black' },
  v3: { ratings: true, color: 'red' },
};
const defaults = byVersion[id.version] ?? byVersion.v1;
const ratingsEnabled = env.ENABLE_RATINGS === undefined || env.ENABLE_RATINGS === '' ? defaults.ratings : /^(true|1|yes)$/i.test(env.ENABLE_RATINGS);
const starColor = env.STAR_COLOR || defaults.color;
const ratingsTimeoutMs = starColor === 'black' ? 10_000 : 2_500;
const ratingsUrl = serviceUrl('ratings');
const clusterName = env.CLUSTER_NAME || 'null';

const REVIEWS = [
  { reviewer: 'Reviewer1', text: 'An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!' },
  { reviewer: 'Reviewer2', text: 'Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.' },
];

async function fetchRatings(productId: number, headers: IncomingHttpHeaders): Promise<Record<string, unknown> | undefined> {
  try {
    const res = await call(`${ratingsUrl}/ratings/${productId}`, { headers: forwardHeaders(headers), timeoutMs: ratingsTimeoutMs });
    if (res.status !== 200) {
      log({ service: id.service, level: 'warn', msg: 'ratings call failed', status: res.status });
      return undefined;
    }
    const body = parseJson(res.body) as { ratings?: Record<string, unknown> } | undefined;
    return body && typeof body.ratings === 'object' && body.ratings !== null ? body.ratings : undefined;
  } catch (err) {
    log({ service: id.service, level: 'warn', msg: 'ratings call failed', error: err instanceof Error ? err.message : String(err) });
    return undefined;
  }
}

run(() =>
  serve(id, async (req, res, url) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { error: 'method not allowed' });
    if (url.pathname === '/health') return sendJson(res, 200, { status: 'Reviews is healthy' });
    const m = /^\/reviews\/([^/]*)$/.exec(url.pathname);
    if (!m) return sendJson(res, 404, { error: 'not found' });
    if (!/^-?\d+$/.test(m[1])) return sendJson(res, 400, { error: 'please provide numeric product id' });
    const productId = Number(m[1]);
    const ratings = ratingsEnabled ? await fetchRatings(productId, req.headers) : undefined;
    const reviews = REVIEWS.map((r) => {
      if (!ratingsEnabled) return { ...r };
      const stars = ratings?.[r.reviewer];
      if (typeof stars === 'number' && Number.isInteger(stars)) return { ...r, rating: { stars: Math.max(0, Math.min(5, stars)), color: starColor } };
      return { ...r, rating: { error: 'Ratings service is currently unavailable' } };
    });
    sendJson(res, 200, { id: String(productId), podname: id.instance, clustername: clusterName, reviews });
  }),
);
