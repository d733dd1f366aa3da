// Istio's workload metadata and its HTTP metadata exchange. A sidecar knows
// itself from the bootstrap node (NAME, NAMESPACE, LABELS, WORKLOAD_NAME,
// CLUSTER_ID, SERVICE_ACCOUNT, ...); it learns its peer from two headers the
// peer's sidecar adds: `x-envoy-peer-metadata-id` (the node id) and
// `x-envoy-peer-metadata` (base64 of the node metadata serialized as a
// google.protobuf.Struct, Istio's wire form). The outbound side adds them to
// requests and reads them from responses; the inbound side does the reverse.
// Decoded peers are cached by header value: a mesh has few distinct peers.

import { loadXdsProtos, XDS_CONVERSION_OPTIONS } from '../../xds/index.ts';
import type { ProtoType } from '../../xds/index.ts';
import { plainStruct } from '../config/typed-struct.ts';

export const PEER_METADATA_HEADER = 'x-envoy-peer-metadata';
export const PEER_METADATA_ID_HEADER = 'x-envoy-peer-metadata-id';

/** The node metadata keys Istio exchanges with peers. */
const EXCHANGED_KEYS = ['NAME', 'NAMESPACE', 'LABELS', 'WORKLOAD_NAME', 'OWNER', 'CLUSTER_ID', 'MESH_ID', 'APP_CONTAINERS', 'INSTANCE_IPS', 'PLATFORM_METADATA', 'SERVICE_ACCOUNT'];

/** A workload as Istio's labels see it; 'unknown' where nothing is known. */
export interface WorkloadInfo {
  readonly workload: string;
  readonly namespace: string;
  readonly app: string;
  readonly version: string;
  readonly canonicalService: string;
  readonly canonicalRevision: string;
  readonly cluster: string;
  readonly serviceAccount: string;
}

export const UNKNOWN_WORKLOAD: WorkloadInfo = Object.freeze({ workload: 'unknown', namespace: 'unknown', app: 'unknown', version: 'unknown', canonicalService: 'unknown', canonicalRevision: 'unknown', cluster: 'unknown', serviceAccount: '' });

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** Workload facts from a plain metadata object (node metadata or a peer's). */
export function workloadInfo(meta: Readonly<Record<string, unknown>>): WorkloadInfo {
  const labels = (meta.LABELS && typeof meta.LABELS === 'object' ? meta.LABELS : {}) as Record<string, unknown>;
  const name = str(meta.NAME);
  const workload = str(meta.WORKLOAD_NAME) ?? name ?? 'unknown';
  const app = str(labels.app) ?? str(labels['app.kubernetes.io/name']) ?? 'unknown';
  const version = str(labels.version) ?? str(labels['app.kubernetes.io/version']) ?? 'unknown';
  return {
    workload,
    namespace: str(meta.NAMESPACE) ?? 'unknown',
    app,
    version,
    canonicalService: str(labels['service.istio.io/canonical-name']) ?? (app !== 'unknown' ? app : workload),
    canonicalRevision: str(labels['service.istio.io/canonical-revision']) ?? (version !== 'unknown' ? version : 'latest'),
    cluster: str(meta.CLUSTER_ID) ?? 'unknown',
    serviceAccount: str(meta.SERVICE_ACCOUNT) ?? '',
  };
}

let structType: ProtoType | undefined;
const struct = (): ProtoType => (structType ??= loadXdsProtos().lookupType('google.protobuf.Struct'));

function toValue(v: unknown): Record<string, unknown> {
  if (v === null || v === undefined) return { nullValue: 0 };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(toValue) } };
  return { structValue: toStruct(v as Record<string, unknown>) };
}
function toStruct(o: Record<string, unknown>): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) fields[k] = toValue(v);
  return { fields };
}

/** base64(Struct) of the exchanged keys of `meta`: the x-envoy-peer-metadata value. */
export function encodePeerMetadata(meta: Readonly<Record<string, unknown>>): string {
  const picked: Record<string, unknown> = {};
  for (const k of EXCHANGED_KEYS) if (meta[k] !== undefined) picked[k] = meta[k];
  const t = struct();
  return Buffer.from(t.encode(t.fromObject(toStruct(picked))).finish()).toString('base64');
}

/** The plain metadata in an x-envoy-peer-metadata value; undefined when it is not a valid Struct. */
export function decodePeerMetadata(header: string): Record<string, unknown> | undefined {
  try {
    const t = struct();
    return plainStruct(t.toObject(t.decode(Buffer.from(header, 'base64')), XDS_CONVERSION_OPTIONS) as Record<string, unknown>);
  } catch {
    return undefined;
  }
}

const MAX_CACHED_PEERS = 1024;
const peers = new Map<string, WorkloadInfo>();

/** The peer described by an x-envoy-peer-metadata value, cached; UNKNOWN_WORKLOAD when absent or invalid. */
export function peerFromHeader(header: string | string[] | number | undefined): WorkloadInfo {
  if (typeof header !== 'string' || header === '') return UNKNOWN_WORKLOAD;
  let info = peers.get(header);
  if (info) return info;
  const meta = decodePeerMetadata(header);
  info = meta ? workloadInfo(meta) : UNKNOWN_WORKLOAD;
  if (peers.size >= MAX_CACHED_PEERS) peers.clear();
  peers.set(header, info);
  return info;
}
