// The config API's limits and error answers, over real sockets.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { istioKinds } from '../../src/api/index.ts';
import { silentLogger } from '../../src/common/index.ts';
import { createHttpApiServer, MemoryStore } from '../../src/galley/index.ts';

const VS = { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'reviews' }, spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }] }] } };

describe('config API limits', () => {
  const store = new MemoryStore();
  const server = createHttpApiServer({ store, registry: istioKinds, log: silentLogger(), limits: { maxBodyBytes: 4096, maxHeaderBytes: 2048 } });
  let base: string;
  before(async () => {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  test('a body over the limit is refused with 413 and nothing is stored', async () => {
    const big = { objects: [{ ...VS, metadata: { name: 'big', annotations: { pad: 'x'.repeat(5000) } } }] };
    const res = await fetch(`${base}/apply`, { method: 'POST', body: JSON.stringify(big), headers: { 'content-type': 'application/json' } });
    assert.equal(res.status, 413);
    assert.deepEqual(await res.json(), { code: 'MESH_ERR_HTTP_TOO_LARGE', message: `request body of ${JSON.stringify(big).length} bytes exceeds the limit of 4096 bytes` });
    assert.equal(store.revision(), 0);
  });

  test('headers over the limit are refused with 431', async () => {
    const res = await fetch(`${base}/apis/networking.istio.io/v1/virtualservices`, { headers: { 'x-pad': 'y'.repeat(4096) } });
    assert.equal(res.status, 431);
  });

  test('a body that is not JSON is a 400 naming the problem', async () => {
    const res = await fetch(`${base}/apply`, { method: 'POST', body: '{nope' });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { code: string; message: string };
    assert.equal(body.code, 'MESH_ERR_HTTP_BAD_REQUEST');
    assert.match(body.message, /^the body is not valid JSON: /);
  });

  test('an invalid object is a 422 with every diagnostic, and nothing is stored', async () => {
    const bad = { ...VS, spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' }, weight: 150 }] }], bogus: 1 } };
    const res = await fetch(`${base}/apply`, { method: 'POST', body: JSON.stringify({ objects: [VS, bad] }) });
    assert.equal(res.status, 422);
    const body = (await res.json()) as { code: string; results: { diagnostics: { path: string }[] }[] };
    assert.equal(body.code, 'MESH_ERR_API_INVALID');
    assert.deepEqual(body.results[0]!.diagnostics.map((d) => d.path), ['spec.bogus']);
    assert.equal(store.revision(), 0);
  });

  test('a stale resourceVersion is a 409 conflict', async () => {
    const ok = await fetch(`${base}/apply`, { method: 'POST', body: JSON.stringify({ objects: [VS] }) });
    assert.equal(ok.status, 200);
    const stale = { ...VS, metadata: { name: 'reviews', resourceVersion: '999' } };
    const res = await fetch(`${base}/apply`, { method: 'POST', body: JSON.stringify({ objects: [stale] }) });
    assert.equal(res.status, 409);
    assert.equal(((await res.json()) as { code: string }).code, 'MESH_ERR_GALLEY_CONFLICT');
  });

  test('unknown paths and kinds are 404', async () => {
    assert.equal((await fetch(`${base}/apis/networking.istio.io/v1/frobs`)).status, 404);
    assert.equal((await fetch(`${base}/nope`)).status, 404);
    assert.equal((await fetch(`${base}/apis/networking.istio.io/v1/namespaces/default/virtualservices/missing`)).status, 404);
  });
});

describe('config API connection limit', () => {
  test('connections beyond maxConnections are closed by the server', async () => {
    const server = createHttpApiServer({ store: new MemoryStore(), registry: istioKinds, log: silentLogger(), limits: { maxConnections: 2 } });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    const open = await Promise.all([0, 1].map(async () => {
      const s = connect(port, '127.0.0.1');
      await once(s, 'connect');
      return s;
    }));
    const third = connect(port, '127.0.0.1');
    await once(third, 'close');
    for (const s of open) s.destroy();
    server.close();
  });
});
