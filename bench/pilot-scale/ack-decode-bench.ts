// Decoding SotW ACKs, the most common request Pilot receives (a command, not a test):
//   node bench/pilot-scale/ack-decode-bench.ts [names]
// CPU for 2000 ACKs (one endpoint push at 2000 proxies) that repeat a
// subscription of N EDS names (default 1000, as at 1000 services): protobufjs
// (proto-loader's deserializer, what the ADS server used before) against
// request-decoder.ts plus the comparison of the names' bytes that the server
// makes instead of decoding them.

import { ADS_PROTO_FILES, ADS_SERVICE, TypeUrl, loadXdsProtos } from '../../src/xds/index.ts';
import { decodeDiscoveryRequest } from '../../src/pilot/xds-server/request-decoder.ts';

const count = Number(process.argv[2] ?? 1000);
const def = loadXdsProtos(ADS_PROTO_FILES).serviceDefinition(ADS_SERVICE).StreamAggregatedResources!;
const names = Array.from({ length: count }, (_, i) => `outbound|${9000 + (i % 100)}||svc-${i}.ns-${i % 10}.svc.cluster.local`);
const bytes = def.requestSerialize({ version_info: '12', resource_names: names, type_url: TypeUrl.ClusterLoadAssignment, response_nonce: 'abc' }) as Buffer;
const subscribed = Buffer.from(decodeDiscoveryRequest(bytes).namesBytes);
const ACKS = 2000;
const cases: [string, () => unknown][] = [
  ['protobufjs', () => (def.requestDeserialize(bytes) as { resource_names: string[] }).resource_names.length],
  ['request-decoder + bytes compare', () => decodeDiscoveryRequest(bytes).namesBytes.equals(subscribed)],
];
for (const [label, decode] of cases) {
  for (let i = 0; i < 200; i++) decode(); // warm up
  const start = process.cpuUsage();
  for (let i = 0; i < ACKS; i++) decode();
  const used = process.cpuUsage(start);
  console.log(`${label.padEnd(32)} ${((used.user + used.system) / 1000).toFixed(0).padStart(5)} ms CPU for ${ACKS} ACKs of ${count} names (${bytes.length} bytes each)`);
}
