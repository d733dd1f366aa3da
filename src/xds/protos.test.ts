// The on-disk cache of parsed protos: the first process writes it, later
// ones read it and behave exactly as if they had parsed the .proto files; a
// damaged cache is parsed over; MESH_CACHE_DIR=off writes nothing. Each case
// is a fresh process (the in-process cache would hide the disk).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const PROTOS = fileURLToPath(new URL('./protos.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'mesh-proto-cache-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// Encodes a Cluster and decodes it back, and describes the ADS service: what the proxy and Pilot rely on.
const PROBE = `
const { loadXdsProtos } = await import(${JSON.stringify(PROTOS)});
const p = loadXdsProtos();
const Cluster = p.lookupType('type.googleapis.com/envoy.config.cluster.v3.Cluster');
const bytes = Cluster.encode(Cluster.fromObject({ name: 'outbound|9080|v1|reviews.default.svc.cluster.local', type: 'EDS', connect_timeout: { seconds: 10 }, lb_policy: 'LEAST_REQUEST' })).finish();
const decoded = Cluster.toObject(Cluster.decode(bytes), { keepCase: true, enums: String, longs: String, defaults: false });
const ads = p.serviceDefinition('envoy.service.discovery.v3.AggregatedDiscoveryService');
const methods = Object.fromEntries(Object.entries(ads).map(([k, m]) => [k, [m.path, m.requestStream, m.responseStream, m.originalName]]));
const req = ads.StreamAggregatedResources;
const roundTrip = req.requestDeserialize(req.requestSerialize({ type_url: 'type.googleapis.com/envoy.config.cluster.v3.Cluster', resource_names: ['a'] }));
console.log(JSON.stringify({ bytes: Buffer.from(bytes).toString('base64'), decoded, methods, roundTrip }));
`;

function probe(cacheDir: string): Record<string, unknown> {
  const out = execFileSync(process.execPath, ['--disable-warning=ExperimentalWarning', '--input-type=module', '-e', PROBE], { env: { ...process.env, MESH_CACHE_DIR: cacheDir }, encoding: 'utf8' });
  return JSON.parse(out) as Record<string, unknown>;
}

test('parsed without a cache, the same from the cache the first process wrote, and parsed over a damaged one', () => {
  const parsed = probe('off');
  assert.deepEqual(readdirSync(dir), [], 'MESH_CACHE_DIR=off writes nothing');

  const cacheDir = join(dir, 'cache');
  assert.deepEqual(probe(cacheDir), parsed, 'the process that writes the cache');
  const files = readdirSync(cacheDir);
  assert.equal(files.length, 1, `one cache file: ${files.join(', ')}`);
  const file = join(cacheDir, files[0]!);
  assert.match(files[0]!, /^xds-protos-[0-9a-f]{16}\.json$/);
  const written = statSync(file).mtimeMs;

  assert.deepEqual(probe(cacheDir), parsed, 'a process that reads the cache');
  assert.equal(statSync(file).mtimeMs, written, 'read, not rewritten');

  writeFileSync(file, '{"nested": {"envoy": ');
  assert.deepEqual(probe(cacheDir), parsed, 'a damaged cache is parsed over');
  assert.doesNotThrow(() => JSON.parse(readFileSync(file, 'utf8')), 'and rewritten whole');
  assert.deepEqual(readdirSync(cacheDir), files, 'no temporary file left');
});
