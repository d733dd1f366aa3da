// Bookinfo's backends as real processes: details, ratings and reviews v1/v2/v3,
// their JSON, their limits, discovery by env, header propagation, shutdown.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { startService } from '../../samples/bookinfo/run-all.ts';
import type { ServiceProcess } from '../../samples/bookinfo/run-all.ts';

const base = (p: ServiceProcess): string => `http://127.0.0.1:${p.port}`;
const ratingsEnv = (p: ServiceProcess): Record<string, string> => ({ RATINGS_SERVICE_HOST: '127.0.0.1', RATINGS_SERVICE_PORT: String(p.port) });

describe('bookinfo backends', () => {
  let details: ServiceProcess;
  let ratings: ServiceProcess;
  const started: ServiceProcess[] = [];
  const start = async (...args: Parameters<typeof startService>): Promise<ServiceProcess> => {
    const p = await startService(...args);
    started.push(p);
    return p;
  };

  before(async () => {
    [details, ratings] = await Promise.all([start('details', { POD_NAME: 'details-v1-t' }), start('ratings', { POD_NAME: 'ratings-v1-t' })]);
  });
  after(async () => {
    await Promise.all(started.map((p) => p.stop()));
  });

  test('details returns the book and a health answer', async () => {
    const res = await fetch(`${base(details)}/details/0`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    assert.deepEqual(await res.json(), {
      id: 0,
      author: 'William Shakespeare',
      year: 1595,
      type: 'paperback',
      pages: 200,
      publisher: 'PublisherA',
      language: 'English',
      'ISBN-10': '1234567890',
      'ISBN-13': '123-1234567890',
    });
    assert.equal((await fetch(`${base(details)}/details/abc`)).status, 400);
    assert.equal((await fetch(`${base(details)}/nope`)).status, 404);
    assert.deepEqual(await (await fetch(`${base(details)}/health`)).json(), { status: 'Details is healthy' });
    const line = await details.waitForLog((e) => e.path === '/details/0');
    assert.equal(line.status, 200);
    assert.equal(line.method, 'GET');
  });

  test('ratings returns, updates and validates ratings', async () => {
    assert.deepEqual(await (await fetch(`${base(ratings)}/ratings/0`)).json(), { id: 0, ratings: { Reviewer1: 5, Reviewer2: 4 } });
    assert.deepEqual(await (await fetch(`${base(ratings)}/health`)).json(), { status: 'Ratings is healthy' });
    const post = await fetch(`${base(ratings)}/ratings/7`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ Reviewer1: 1, Reviewer2: 2 }) });
    assert.equal(post.status, 200);
    assert.deepEqual(await (await fetch(`${base(ratings)}/ratings/7`)).json(), { id: 7, ratings: { Reviewer1: 1, Reviewer2: 2 } });
    assert.deepEqual(await (await fetch(`${base(ratings)}/ratings/0`)).json(), { id: 0, ratings: { Reviewer1: 5, Reviewer2: 4 } });
    const bad = await fetch(`${base(ratings)}/ratings/7`, { method: 'POST', body: '{"Reviewer1": 9}' });
    assert.equal(bad.status, 400);
    assert.equal((await fetch(`${base(ratings)}/ratings/x`)).status, 400);
  });

  test('a POST body over the cap is refused with 413', async () => {
    const big = JSON.stringify({ Reviewer1: 1, pad: 'x'.repeat(100 * 1024) });
    const res = await fetch(`${base(ratings)}/ratings/3`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: big });
    assert.equal(res.status, 413);
    assert.equal((await fetch(`${base(ratings)}/ratings/3`)).status, 200, 'the service still answers');
  });

  test('ratings v-unavailable fails every rating request', async () => {
    const faulty = await start('ratings', { SERVICE_VERSION: 'v-unavailable' });
    assert.equal((await fetch(`${base(faulty)}/ratings/0`)).status, 503);
  });

  for (const [version, stars] of [['v1', undefined], ['v2', 'black'], ['v3', 'red']] as const) {
    test(`reviews ${version} ${stars ? `rates with ${stars} stars` : 'shows no ratings'}`, async () => {
      const reviews = await start('reviews', { SERVICE_VERSION: version, POD_NAME: `reviews-${version}-abc12-x1`, ...ratingsEnv(ratings) });
      assert.equal(reviews.instance, `reviews-${version}-abc12-x1`);
      const body = (await (await fetch(`${base(reviews)}/reviews/0`)).json()) as { id: string; podname: string; clustername: string; reviews: Array<{ reviewer: string; text: string; rating?: unknown }> };
      assert.equal(body.id, '0');
      assert.equal(body.podname, `reviews-${version}-abc12-x1`);
      assert.equal(body.clustername, 'null');
      assert.deepEqual(body.reviews.map((r) => r.reviewer), ['Reviewer1', 'Reviewer2']);
      assert.match(body.reviews[0].text, /An extremely entertaining play by Shakespeare/);
      if (stars) {
        assert.deepEqual(body.reviews.map((r) => r.rating), [{ stars: 5, color: stars }, { stars: 4, color: stars }]);
      } else {
        assert.ok(body.reviews.every((r) => !('rating' in r)));
      }
      assert.deepEqual(await (await fetch(`${base(reviews)}/health`)).json(), { status: 'Reviews is healthy' });
    });
  }

  test('reviews honours ENABLE_RATINGS / STAR_COLOR, HOSTNAME, CLUSTER_NAME and RATINGS_HOSTNAME', async () => {
    const reviews = await start('reviews', {
      ENABLE_RATINGS: 'true',
      STAR_COLOR: 'red',
      HOSTNAME: 'reviews-custom-1',
      CLUSTER_NAME: 'east',
      RATINGS_HOSTNAME: '127.0.0.1',
      RATINGS_SERVICE_PORT: String(ratings.port),
    });
    const body = (await (await fetch(`${base(reviews)}/reviews/0`)).json()) as { podname: string; clustername: string; reviews: Array<{ rating?: unknown }> };
    assert.equal(body.podname, 'reviews-custom-1');
    assert.equal(body.clustername, 'east');
    assert.deepEqual(body.reviews[1].rating, { stars: 4, color: 'red' });
  });

  test('reviews reports each rating unavailable when ratings is down', async () => {
    const reviews = await start('reviews', { SERVICE_VERSION: 'v2', RATINGS_SERVICE_HOST: '127.0.0.1', RATINGS_SERVICE_PORT: '1' });
    const body = (await (await fetch(`${base(reviews)}/reviews/0`)).json()) as { reviews: Array<{ rating?: unknown }> };
    assert.deepEqual(body.reviews.map((r) => r.rating), [{ error: 'Ratings service is currently unavailable' }, { error: 'Ratings service is currently unavailable' }]);
  });

  test('reviews sends trace headers and end-user on to ratings', async () => {
    const reviews = await start('reviews', { SERVICE_VERSION: 'v3', ...ratingsEnv(ratings) });
    const sent = {
      'x-request-id': `req-${Date.now()}-svc`,
      'x-b3-traceid': '80f198ee56343ba864fe8b2a57d3eff7',
      'x-b3-spanid': 'e457b5a2e4d86bd1',
      'x-b3-parentspanid': '05e3ac9a4f6e3b90',
      'x-b3-sampled': '1',
      'x-b3-flags': '0',
      b3: '80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1',
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      tracestate: 'congo=t61rcWkgMzE',
      'x-ot-span-context': 'abc;def;ghi',
      'end-user': 'jason',
    };
    assert.equal((await fetch(`${base(reviews)}/reviews/0`, { headers: sent })).status, 200);
    const line = await ratings.waitForLog((e) => e.headers?.['x-request-id'] === sent['x-request-id']);
    assert.deepEqual(line.headers, sent);
    assert.equal(line.path, '/ratings/0');
  });

  test('SIGTERM stops a service gracefully', async () => {
    const p = await start('details');
    assert.equal((await fetch(`${base(p)}/health`)).status, 200);
    const exited = once(p.child, 'exit');
    p.child.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0);
    assert.ok(p.logs.some((e) => e.msg === 'shutting down' && e.signal === 'SIGTERM'));
    await assert.rejects(fetch(`${base(p)}/health`));
  });

  test('a bad PORT is refused at start', async () => {
    await assert.rejects(startService('details', { PORT: 'nope' }), /PORT: invalid port/);
  });
});

test('the apps use only the standard library and each other (nothing from the mesh)', () => {
  const dir = new URL('../../samples/bookinfo/', import.meta.url);
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
  assert.ok(files.length >= 5);
  for (const file of files) {
    const source = readFileSync(new URL(file, dir), 'utf8');
    for (const m of source.matchAll(/^\s*import\s[^;]*?from\s+'([^']+)'/gm)) {
      assert.match(m[1], /^(node:[a-z/_]+|\.\/[a-z-]+\.ts)$/, `${file} imports ${m[1]}`);
    }
  }
});
