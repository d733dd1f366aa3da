// Cost of one report on the wire, per request (bag): the ALS v3 path
// (HTTPAccessLogEntry built and encoded in the sidecar, decoded and turned
// into a bag in Mixer) against Istio 1.4's Report API (bag built, batched,
// dictionary-encoded in the sidecar; decoded to a bag in Mixer). Same
// requests on both paths: varying path, status, request id and timing, the
// same source/destination metadata, as a sidecar's inbound reports are.
//
//   node --disable-warning=ExperimentalWarning bench/mixer-report-encoding.ts [--batch 1000] [--rounds 20]

import { parseArgs } from 'node:util';
import { AttributeVocabulary } from '../src/api/index.ts';
import { attributesFromAccessLog } from '../src/mixer/envoy-attributes.ts';
import { bagsFromReport } from '../src/mixer/report-decoder.ts';
import type { AccessLogEntry } from '../src/proxy/access-log.ts';
import { encodeMessage, httpEntry } from '../src/proxy/access-loggers/grpc-als/grpc-als.ts';
import { reportBag } from '../src/proxy/access-loggers/mixer-report/mixer-report.ts';
import { setFilterMetadata } from '../src/proxy/rbac/stream-metadata.ts';
import { encodeReport, loadXdsProtos } from '../src/xds/index.ts';

const { values } = parseArgs({ options: { batch: { type: 'string', default: '1000' }, rounds: { type: 'string', default: '20' } } });
const BATCH = Number(values.batch);
const ROUNDS = Number(values.rounds);
const vocabulary = AttributeVocabulary.builtin();
const nodeId = 'sidecar~10.0.0.1~ratings-v1-6f7c9.default~default.svc.cluster.local';
const typeOf = (name: string): string | undefined => (name === 'source.ip' || name === 'destination.ip' ? 'IP_ADDRESS' : name === 'response.duration' ? 'DURATION' : undefined);
const alsType = loadXdsProtos().root.lookupType('envoy.service.accesslog.v3.StreamAccessLogsMessage');

function entry(i: number): AccessLogEntry {
  const requestHeaders = { 'x-request-id': `5f0c7a1e-${i.toString(16).padStart(8, '0')}-4b3c-9d1e-2a6f8e0b1c3d`, 'content-type': 'application/json', 'user-agent': 'Go-http-client/1.1' };
  setFilterMetadata(requestHeaders, 'istio.mixer', {
    'source.labels': { app: 'reviews', version: 'v3', 'pod-template-hash': '7dbcdcbc56' }, 'source.name': 'reviews-v3-7dbcdcbc56-x2x9k', 'source.uid': 'kubernetes://reviews-v3-7dbcdcbc56-x2x9k.default',
    'source.namespace': 'default', 'source.workload.name': 'reviews-v3', 'source.workload.namespace': 'default', 'source.principal': 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews',
    'destination.service.host': 'ratings.default.svc.cluster.local', 'destination.service.name': 'ratings', 'destination.service.namespace': 'default',
    'destination.labels': { app: 'ratings', version: 'v1' }, 'destination.name': 'ratings-v1-6f7c9', 'destination.uid': 'kubernetes://ratings-v1-6f7c9.default',
    'destination.namespace': 'default', 'destination.workload.name': 'ratings-v1', 'destination.workload.namespace': 'default',
  });
  const socket = { remoteAddress: '::ffff:10.0.0.9', remotePort: 40000 + (i % 2000), localAddress: '10.0.0.1', localPort: 9080 };
  return {
    startTime: 1_767_225_600_000 + i * 3, method: 'GET', path: `/ratings/${i % 50}`, protocol: 'HTTP/1.1', status: i % 20 === 0 ? 503 : 200, flags: i % 20 === 0 ? 'UF' : '',
    bytesReceived: 0, bytesSent: 180 + (i % 7), durationMs: 2 + (i % 13) * 0.25, upstreamServiceTime: undefined, forwardedFor: undefined, userAgent: 'Go-http-client/1.1',
    requestId: requestHeaders['x-request-id'], authority: 'ratings:9080', upstreamHost: undefined, upstreamCluster: 'inbound|9080||ratings.default.svc.cluster.local', requestHeaders, socket,
  } as unknown as AccessLogEntry;
}

const entries = Array.from({ length: BATCH }, (_, i) => entry(i));

function measure(name: string, run: () => number): void {
  run(); // warm up
  const bytes: number[] = [];
  const t0 = process.cpuUsage();
  const w0 = performance.now();
  for (let r = 0; r < ROUNDS; r++) bytes.push(run());
  const cpu = process.cpuUsage(t0);
  const cpuUs = (cpu.user + cpu.system) / (ROUNDS * BATCH);
  const wallUs = ((performance.now() - w0) * 1000) / (ROUNDS * BATCH);
  console.log(`${name.padEnd(58)} ${cpuUs.toFixed(2).padStart(7)} µs CPU/bag  ${wallUs.toFixed(2).padStart(7)} µs wall/bag${bytes[0]! > 0 ? `  ${(bytes[0]! / BATCH).toFixed(1).padStart(6)} B/bag` : ''}`);
}

console.log(`batch ${BATCH} bags, ${ROUNDS} rounds, ${process.version}`);
let alsBytes: Uint8Array = new Uint8Array();
measure('ALS v3: sidecar builds + encodes entries', () => {
  alsBytes = encodeMessage({ identifier: { node: { id: nodeId }, log_name: 'mixer' }, http_logs: { log_entry: entries.map((e) => httpEntry(e, [], [])) } });
  return alsBytes.byteLength;
});
measure('ALS v3: Mixer decodes + builds bags', () => {
  const m = alsType.decode(alsBytes) as any;
  for (const e of m.http_logs.log_entry) attributesFromAccessLog(e, m.identifier, vocabulary);
  return 0;
});
for (const semantics of ['independent', 'auto'] as const) {
  let bytes: Uint8Array = new Uint8Array();
  measure(`Report (${semantics === 'auto' ? 'delta when safe' : 'independent'}): sidecar builds + encodes bags`, () => {
    bytes = encodeReport(entries.map((e) => reportBag(e, nodeId)), { typeOf, semantics });
    return bytes.byteLength;
  });
  measure(`Report (${semantics === 'auto' ? 'delta when safe' : 'independent'}): Mixer decodes + builds bags`, () => {
    bagsFromReport(bytes, vocabulary);
    return 0;
  });
}
