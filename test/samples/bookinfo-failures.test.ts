// What productpage and reviews show when their upstreams fail: services
// down, failing or hanging (real processes; stubs are real HTTP servers in
// the test process that count their requests). Timeouts: details 3 s once,
// reviews 3 s with one retry, ratings 2.5 s from reviews v3.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startService } from '../../samples/bookinfo/run-all.ts';
import type { ServiceProcess } from '../../samples/bookinfo/run-all.ts';

interface Stub {
  readonly port: number;
  readonly requests: IncomingMessage[];
  close(): Promise<void>;
}

async function stub(handler: (req: IncomingMessage, res: ServerResponse, n: number) => void): Promise<Stub> {
  const requests: IncomingMessage[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(req);
    handler(req, res, requests.length);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    async close() {
      server.closeAllConnections();
      server.close();
    },
  };
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

const json = (res: ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};
const hang = (): void => {};
const at = (name: string, port: number): Record<string, string> => ({ [`${name}_SERVICE_HOST`]: '127.0.0.1', [`${name}_SERVICE_PORT`]: String(port) });

describe('bookinfo failures', { concurrency: true }, () => {
  let details: ServiceProcess;
  let reviews: ServiceProcess;
  const started: ServiceProcess[] = [];
  const stubs: Stub[] = [];
  const page = async (env: Record<string, string>): Promise<ServiceProcess> => {
    const p = await startService('productpage', { ...at('DETAILS', details.port), ...at('REVIEWS', reviews.port), ...env });
    started.push(p);
    return p;
  };
  const makeStub = async (handler: Parameters<typeof stub>[0]): Promise<Stub> => {
    const s = await stub(handler);
    stubs.push(s);
    return s;
  };
  const html = async (p: ServiceProcess): Promise<string> => {
    const res = await fetch(`http://127.0.0.1:${p.port}/productpage`);
    assert.equal(res.status, 200);
    return res.text();
  };

  before(async () => {
    [details, reviews] = await Promise.all([startService('details'), startService('reviews', { SERVICE_VERSION: 'v1', POD_NAME: 'reviews-v1-f' })]);
    started.push(details, reviews);
  });
  after(async () => {
    await Promise.all([...started.map((p) => p.stop()), ...stubs.map((s) => s.close())]);
  });

  test('details down: the details error, reviews still shown', async () => {
    const p = await page(at('DETAILS', await closedPort()));
    const text = await html(p);
    assert.match(text, /Error fetching product details/);
    assert.match(text, /Sorry, product details are currently unavailable for this book\./);
    assert.match(text, /Reviews served by:<\/dt>\s*<u>reviews-v1-f<\/u>/);
    const api = await fetch(`http://127.0.0.1:${p.port}/api/v1/products/0`);
    assert.equal(api.status, 500);
    assert.deepEqual(await api.json(), { error: 'Sorry, product details are currently unavailable for this book.' });
  });

  test('reviews down: the reviews error, details still shown', async () => {
    const p = await page(at('REVIEWS', await closedPort()));
    const text = await html(p);
    assert.match(text, /Error fetching product reviews/);
    assert.match(text, /Sorry, product reviews are currently unavailable for this book\./);
    assert.doesNotMatch(text, /Reviews served by:/);
    assert.match(text, /<dt>Publisher:<\/dt>PublisherA/);
  });

  test('ratings down: each review says the ratings service is unavailable', async () => {
    const r = await startService('reviews', { SERVICE_VERSION: 'v2', ...at('RATINGS', await closedPort()) });
    started.push(r);
    const text = await html(await page(at('REVIEWS', r.port)));
    assert.equal(text.match(/Ratings service is currently unavailable/g)?.length, 2);
    assert.equal(text.match(/glyphicon glyphicon-star"/g), null);
    assert.doesNotMatch(text, /Error fetching/);
  });

  test('ratings failing with 503 (abort fault): the same message', async () => {
    const ratings = await makeStub((_req, res) => json(res, 503, { error: 'Service unavailable' }));
    const r = await startService('reviews', { SERVICE_VERSION: 'v3', ...at('RATINGS', ratings.port) });
    started.push(r);
    const text = await html(await page(at('REVIEWS', r.port)));
    assert.equal(text.match(/Ratings service is currently unavailable/g)?.length, 2);
    assert.equal(ratings.requests.length, 1);
  });

  test('reviews failing once is retried once', async () => {
    const flaky = await makeStub((_req, res, n) => (n === 1 ? json(res, 503, { error: 'x' }) : json(res, 200, { id: '0', podname: 'reviews-stub-1', clustername: 'null', reviews: [{ reviewer: 'Reviewer1', text: 'ok', rating: { stars: 3, color: 'red' } }] })));
    const text = await html(await page(at('REVIEWS', flaky.port)));
    assert.equal(flaky.requests.length, 2);
    assert.match(text, /Reviews served by:<\/dt>\s*<u>reviews-stub-1<\/u>/);
    assert.equal(text.match(/glyphicon glyphicon-star"/g)?.length, 3);
  });

  test('reviews always failing: two attempts, then the reviews error', async () => {
    const broken = await makeStub((_req, res) => json(res, 500, { error: 'boom' }));
    const text = await html(await page(at('REVIEWS', broken.port)));
    assert.equal(broken.requests.length, 2);
    assert.match(text, /Error fetching product reviews/);
  });

  test('details hanging: one call, given up after 3 s', async () => {
    const slow = await makeStub(hang);
    const p = await page(at('DETAILS', slow.port));
    const t0 = Date.now();
    const text = await html(p);
    const elapsed = Date.now() - t0;
    assert.match(text, /Error fetching product details/);
    assert.ok(elapsed >= 2_900 && elapsed < 5_000, `took ${elapsed} ms`);
    assert.equal(slow.requests.length, 1);
  });

  test('reviews hanging: 3 s timeout, one retry, then the reviews error', async () => {
    const slow = await makeStub(hang);
    const p = await page(at('REVIEWS', slow.port));
    const t0 = Date.now();
    const text = await html(p);
    const elapsed = Date.now() - t0;
    assert.match(text, /Error fetching product reviews/);
    assert.ok(elapsed >= 5_900 && elapsed < 8_000, `took ${elapsed} ms`);
    assert.equal(slow.requests.length, 2);
  });

  test('reviews v3 gives up on ratings after 2.5 s', async () => {
    const slow = await makeStub(hang);
    const r = await startService('reviews', { SERVICE_VERSION: 'v3', ...at('RATINGS', slow.port) });
    started.push(r);
    const t0 = Date.now();
    const body = (await (await fetch(`http://127.0.0.1:${r.port}/reviews/0`)).json()) as { reviews: Array<{ rating: unknown }> };
    const elapsed = Date.now() - t0;
    assert.deepEqual(body.reviews[0].rating, { error: 'Ratings service is currently unavailable' });
    assert.ok(elapsed >= 2_400 && elapsed < 4_000, `took ${elapsed} ms`);
  });
});
