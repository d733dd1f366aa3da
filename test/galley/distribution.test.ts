// Galley distribution over ADS: a real subscriber process follows a server
// through changes and a server restart; raw grpc-js streams check the
// state-of-the-world and delta protocols (nonces, ACK, NACK, unknown types).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { MemoryStore } from '../../src/galley/memory-store.ts';
import type { ConfigSnapshot } from '../../src/galley/snapshot.ts';
import { SnapshotDistributor } from '../../src/galley/snapshot.ts';
import { GalleyDistributionServer } from '../../src/galley/distribution-server.ts';
import { GalleyClient } from '../../src/galley/distribution-client.ts';
import type { DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse } from '../../src/xds/index.ts';
import { ADS_PROTO_FILES, ADS_SERVICE, loadXdsProtos, packJsonAny, unpackJsonAny } from '../../src/xds/index.ts';
import { GADGET, WIDGET, gadget, testRegistry, widget } from './fixtures/distribution-kinds.ts';
import { Queue } from '../helpers/queue.ts';

const FIXTURE = new URL('./fixtures/distribution-subscriber.ts', import.meta.url).pathname;
const UNKNOWN = 'unknown.mesh.io/v1/Nothing';


interface Galley {
  port: number;
  distributor: SnapshotDistributor;
  galley: GalleyDistributionServer;
  metrics: Registry;
  stop(): Promise<void>;
}

async function startGalley(store: MemoryStore, port = 0): Promise<Galley> {
  const registry = testRegistry();
  const distributor = new SnapshotDistributor({ store, registry, debounceMs: 5, maxDelayMs: 50 });
  await distributor.start();
  const metrics = new Registry();
  const galley = new GalleyDistributionServer({ distributor, registry, metrics });
  const server = new grpc.Server();
  galley.register(server);
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    port: bound,
    distributor,
    galley,
    metrics,
    async stop() {
      galley.close();
      distributor.stop();
      server.forceShutdown();
    },
  };
}

function adsClient(port: number): grpc.Client & Record<string, (...args: unknown[]) => unknown> {
  const Service = loadXdsProtos(ADS_PROTO_FILES).service(ADS_SERVICE);
  return new Service(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as never;
}

function sotwStream(port: number) {
  const client = adsClient(port);
  const call = client.StreamAggregatedResources() as grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;
  const responses = new Queue<DiscoveryResponse>();
  call.on('data', (r: DiscoveryResponse) => responses.push(r));
  call.on('error', () => {});
  return {
    call,
    responses,
    send: (req: DiscoveryRequest) => call.write(req),
    close() {
      call.cancel();
      client.close();
    },
  };
}

function names(res: { resources: Array<{ value: Uint8Array }> }): string[] {
  return res.resources.map((r) => {
    const o = unpackJsonAny<{ metadata: { namespace: string; name: string } }>(r as never);
    return `${o.metadata.namespace}/${o.metadata.name}`;
  });
}

const widgetKey = (namespace: string, name: string) => ({ group: 'test.mesh.io', kind: 'Widget', namespace, name });

test('a subscriber process follows applies and deletes, and gets the current state after a server restart', async (t) => {
  const store = new MemoryStore();
  await store.apply(widget('default', 'a', { size: 1 }));
  let galley = await startGalley(store);
  const port = galley.port;
  const child = spawn(process.execPath, [FIXTURE, String(port)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  t.after(async () => {
    child.stdin.end();
    if (child.exitCode === null) await once(child, 'exit');
    await galley.stop();
  });
  type Line = { version: number; revision: number; connects: number; objects: Record<string, Array<{ name: string; resourceVersion: string; spec: unknown }>> };
  const lines = new Queue<Line>();
  createInterface({ input: child.stdout }).on('line', (line) => lines.push(JSON.parse(line)));
  const widgetsOf = (l: Line) => l.objects[WIDGET].map((o) => o.name);

  const first = await lines.take(10000).catch((err) => assert.fail(`${err.message}; child stderr: ${stderr}`));
  assert.deepEqual(widgetsOf(first), ['default/a']);
  assert.deepEqual(first.objects[GADGET], []);
  assert.equal(first.revision, 1);

  await store.apply(widget('default', 'b'));
  await store.apply(gadget('ns', 'g', { on: true }));
  const both = await lines.takeUntil((l) => l.objects[WIDGET].length === 2 && l.objects[GADGET].length === 1);
  assert.deepEqual(widgetsOf(both), ['default/a', 'default/b']);
  assert.deepEqual(both.objects[GADGET][0].spec, { on: true });

  await store.apply(widget('default', 'a', { size: 2 }));
  const modified = await lines.takeUntil((l) => (l.objects[WIDGET][0].spec as { size?: number }).size === 2);
  assert.equal(modified.revision, store.revision());

  await store.delete(widgetKey('default', 'a'));
  const deleted = await lines.takeUntil((l) => l.objects[WIDGET].length === 1);
  assert.deepEqual(widgetsOf(deleted), ['default/b']);
  assert.equal(deleted.objects[GADGET].length, 1);

  // Restart on the same port, with a change made while no server was up.
  await galley.stop();
  await store.apply(widget('default', 'c'));
  galley = await startGalley(store, port);
  const after = await lines.takeUntil((l) => l.connects >= 2);
  assert.deepEqual(widgetsOf(after), ['default/b', 'default/c']);
  assert.equal(after.objects[GADGET].length, 1);
  assert.ok(after.version > deleted.version, 'client versions keep growing across a server restart');
});

test('state of the world: versions and nonces; an ACK does not resend; only changed types are pushed', async (t) => {
  const store = new MemoryStore();
  await store.apply(widget('default', 'a'));
  const galley = await startGalley(store);
  const s = sotwStream(galley.port);
  t.after(async () => {
    s.close();
    await galley.stop();
  });

  s.send({ node: { id: 'raw' }, type_url: WIDGET });
  const w1 = await s.responses.take();
  assert.equal(w1.type_url, WIDGET);
  assert.equal(w1.version_info, '1');
  assert.ok(w1.nonce);
  assert.deepEqual(names(w1), ['default/a']);
  assert.equal(w1.resources[0].type_url, WIDGET, 'each Any carries the Istio type URL');
  assert.equal(unpackJsonAny<{ kind: string }>(w1.resources[0]).kind, 'Widget');

  s.send({ type_url: WIDGET, version_info: w1.version_info, response_nonce: w1.nonce });
  s.send({ type_url: GADGET });
  const g1 = await s.responses.take();
  assert.equal(g1.type_url, GADGET, 'the ACK produced no response before the gadget one');
  assert.deepEqual(g1.resources, []);
  s.send({ type_url: GADGET, version_info: g1.version_info, response_nonce: g1.nonce });

  await store.apply(widget('default', 'b'));
  const w2 = await s.responses.take();
  assert.equal(w2.type_url, WIDGET);
  assert.equal(w2.version_info, '2');
  assert.notEqual(w2.nonce, w1.nonce);
  assert.deepEqual(names(w2), ['default/a', 'default/b']);
  s.send({ type_url: WIDGET, version_info: w2.version_info, response_nonce: w2.nonce });

  // An unknown type gets an empty answer and the stream lives on; its answer
  // arriving next also shows that the unchanged gadget type was not resent.
  s.send({ type_url: UNKNOWN });
  const u = await s.responses.take();
  assert.equal(u.type_url, UNKNOWN);
  assert.deepEqual(u.resources, []);
  assert.equal(galley.galley.stats().unknownTypeRequests, 1);
  assert.equal(galley.galley.stats().acks, 3);

  // resource_names narrows what is sent.
  s.send({ type_url: WIDGET, version_info: w2.version_info, response_nonce: w2.nonce, resource_names: ['default/b'] });
  const narrowed = await s.responses.take();
  assert.deepEqual(names(narrowed), ['default/b']);
});

test('state of the world: a NACK is counted and not answered; stale nonces are ignored', async (t) => {
  const store = new MemoryStore();
  await store.apply(widget('default', 'a'));
  const galley = await startGalley(store);
  const s = sotwStream(galley.port);
  t.after(async () => {
    s.close();
    await galley.stop();
  });
  s.send({ type_url: WIDGET });
  const w1 = await s.responses.take();
  s.send({ type_url: WIDGET, version_info: '', response_nonce: w1.nonce, error_detail: { code: 3, message: 'bad widget' } });
  s.send({ type_url: WIDGET, version_info: '', response_nonce: 'not-a-nonce-we-sent', resource_names: ['x/y'] });
  // Requests on a stream are handled in order: once this answer is here, the two above were handled.
  s.send({ type_url: UNKNOWN });
  const u = await s.responses.take();
  assert.equal(u.type_url, UNKNOWN, 'neither the NACK nor the stale request produced a response');
  assert.equal(galley.galley.stats().nacks, 1);
  assert.equal(galley.galley.stats().acks, 0);
  const exposed = await galley.metrics.metrics();
  assert.match(exposed, /^galley_xds_nacks_total 1$/m);
  assert.match(exposed, /^galley_xds_streams 1$/m);

  // The next change is still pushed after a NACK.
  await store.apply(widget('default', 'b'));
  const w2 = await s.responses.take();
  assert.equal(w2.type_url, WIDGET);
  assert.deepEqual(names(w2), ['default/a', 'default/b']);
});

test('a GalleyClient NACKs a response it cannot decode and keeps its previous objects', async (t) => {
  // A hand-made server: good widgets first, then a resource that is not JSON.
  const requests = new Queue<DiscoveryRequest>();
  const calls = new Queue<grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>>();
  const server = new grpc.Server();
  server.addService(loadXdsProtos(ADS_PROTO_FILES).serviceDefinition(ADS_SERVICE), {
    StreamAggregatedResources: (c: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>) => {
      c.on('data', (r: DiscoveryRequest) => requests.push(r));
      c.on('error', () => {});
      calls.push(c);
    },
    DeltaAggregatedResources: (c: grpc.ServerDuplexStream<unknown, unknown>) => c.end(),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const client = new GalleyClient({ address: `127.0.0.1:${port}`, typeUrls: [WIDGET] });
  t.after(() => {
    client.close();
    server.forceShutdown();
  });
  const snapshots = new Queue<ConfigSnapshot>();
  client.subscribe((snap) => snapshots.push(snap));
  const call = await calls.take();
  const first = await requests.take();
  assert.equal(first.type_url, WIDGET);
  assert.equal(first.response_nonce, '');
  const good = { ...widget('default', 'a'), metadata: { name: 'a', namespace: 'default', resourceVersion: '7' } };
  call.write({ version_info: 'v1', type_url: WIDGET, nonce: 'n1', resources: [packJsonAny(WIDGET, good)] });
  const ack = await requests.take();
  assert.equal(ack.response_nonce, 'n1');
  assert.equal(ack.version_info, 'v1');
  assert.equal(ack.error_detail, null);
  const s1 = await snapshots.take();
  assert.equal(s1.revision, 7);
  assert.deepEqual(s1.objects(WIDGET).map((o) => o.metadata.name), ['a']);

  call.write({ version_info: 'v2', type_url: WIDGET, nonce: 'n2', resources: [{ type_url: WIDGET, value: Buffer.from('{not json') }] });
  const nack = await requests.take();
  assert.equal(nack.response_nonce, 'n2');
  assert.equal(nack.version_info, 'v1', 'a NACK names the last version the client accepted');
  assert.equal(nack.error_detail?.code, grpc.status.INVALID_ARGUMENT);
  assert.match(nack.error_detail?.message ?? '', /JSON/);
  assert.equal(snapshots.size, 0, 'no snapshot came of the rejected response');
});

test('delta: wildcard and named subscriptions, changed resources only, removals, unknown types', async (t) => {
  const store = new MemoryStore();
  await store.apply(widget('default', 'a'));
  await store.apply(widget('default', 'b'));
  await store.apply(gadget('ns', 'g1'));
  await store.apply(gadget('ns', 'g2'));
  const galley = await startGalley(store);
  const client = adsClient(galley.port);
  const call = client.DeltaAggregatedResources() as grpc.ClientDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;
  const responses = new Queue<DeltaDiscoveryResponse>();
  call.on('data', (r: DeltaDiscoveryResponse) => responses.push(r));
  call.on('error', () => {});
  t.after(async () => {
    call.cancel();
    client.close();
    await galley.stop();
  });
  const deltaNames = (r: DeltaDiscoveryResponse) => r.resources.map((x) => x.name).sort();

  call.write({ node: { id: 'delta' }, type_url: WIDGET });
  const d1 = await responses.take();
  assert.equal(d1.type_url, WIDGET);
  assert.deepEqual(deltaNames(d1), ['default/a', 'default/b']);
  assert.equal(d1.system_version_info, '1');
  assert.equal(d1.resources[0].resource?.type_url, WIDGET);
  const versionOfA = d1.resources.find((r) => r.name === 'default/a')!.version;
  assert.equal(versionOfA, '1', 'the resource version is the store resourceVersion');
  call.write({ type_url: WIDGET, response_nonce: d1.nonce });

  call.write({ type_url: GADGET, resource_names_subscribe: ['ns/g1'] });
  const d2 = await responses.take();
  assert.equal(d2.type_url, GADGET, 'the ACK produced no response');
  assert.deepEqual(deltaNames(d2), ['ns/g1']);
  call.write({ type_url: GADGET, response_nonce: d2.nonce });

  await store.apply(widget('default', 'a', { size: 3 }));
  const d3 = await responses.take();
  assert.equal(d3.type_url, WIDGET);
  assert.deepEqual(deltaNames(d3), ['default/a'], 'only the changed resource is sent');
  assert.deepEqual(d3.removed_resources, []);
  assert.deepEqual(unpackJsonAny<{ spec: unknown }>(d3.resources[0].resource!).spec, { size: 3 });
  call.write({ type_url: WIDGET, response_nonce: d3.nonce });

  await store.delete(widgetKey('default', 'b'));
  const d4 = await responses.take();
  assert.equal(d4.type_url, WIDGET);
  assert.deepEqual(d4.resources, []);
  assert.deepEqual(d4.removed_resources, ['default/b']);
  call.write({ type_url: WIDGET, response_nonce: d4.nonce, error_detail: { code: 3, message: 'rejected' } });

  // A change to a gadget nobody subscribed to sends nothing; the next answer is to the unknown type.
  await store.apply(gadget('ns', 'g2', { x: 1 }));
  galley.distributor.flush();
  call.write({ type_url: UNKNOWN });
  const u = await responses.take();
  assert.equal(u.type_url, UNKNOWN);
  assert.deepEqual(u.resources, []);
  assert.equal(galley.galley.stats().nacks, 1);

  call.write({ type_url: GADGET, resource_names_subscribe: ['ns/g2'], resource_names_unsubscribe: ['ns/g1'] });
  const d5 = await responses.take();
  assert.deepEqual(deltaNames(d5), ['ns/g2']);
  assert.deepEqual(d5.removed_resources, []);
});
