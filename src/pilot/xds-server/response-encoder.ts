// Discovery responses to wire bytes, written by hand instead of through
// protobufjs. A push sends the same resources to thousands of proxies: their
// bytes were encoded once (ResourceCache packs each distinct resource once),
// so a response is only framing around bytes that already exist. This writer
// copies them into one reused scratch buffer, with the per-stream fields
// (version, nonce) beside them. protobufjs (fromObject, a Writer with an op
// per field, a fresh buffer per response) allocated a ~66 KB buffer per proxy
// for a route change at 1000 services, and those allocations and the GC they
// caused were ~40% of a push's CPU (see docs/pilot-interop.md, "Pilot at scale").
//
// Field numbers are envoy.service.discovery.v3's (discovery.proto). Only the
// fields the ADS server sets are written; a response carrying any other field
// goes through the generic serializer, so nothing is ever dropped.

import type { ServiceDefinition } from '@grpc/grpc-js';
import type { AnyMessage, DeltaDiscoveryResponse, DiscoveryResponse } from '../../xds/index.ts';
import { ADS_PROTO_FILES, ADS_SERVICE, ProtoWriter, fieldSize, loadXdsProtos } from '../../xds/index.ts';
import { decodeDeltaDiscoveryRequest, decodeDiscoveryRequest } from './request-decoder.ts';

const SOTW_FIELDS: ReadonlySet<string> = new Set(['version_info', 'resources', 'type_url', 'nonce', 'control_plane']);
const DELTA_FIELDS: ReadonlySet<string> = new Set(['system_version_info', 'resources', 'type_url', 'removed_resources', 'nonce', 'control_plane']);
const DELTA_RESOURCE_FIELDS: ReadonlySet<string> = new Set(['name', 'version', 'resource']);

/** Responses above this are encoded into a buffer of their own, so the scratch buffer stays small. */
const MAX_SCRATCH_BYTES = 8 * 1024 * 1024;
let scratch = Buffer.allocUnsafe(64 * 1024);

function stringField(value: string | undefined): number {
  return value ? fieldSize(Buffer.byteLength(value)) : 0;
}

function anySize(any: AnyMessage): number {
  return stringField(any.type_url) + (any.value.length > 0 ? fieldSize(any.value.length) : 0);
}

function writeAny(w: ProtoWriter, field: number, any: AnyMessage, size: number): void {
  w.header(field, size);
  w.string(1, any.type_url);
  if (any.value.length > 0) w.bytes(2, any.value);
}

function controlPlaneSize(cp: DiscoveryResponse['control_plane']): number {
  return cp?.identifier ? fieldSize(stringField(cp.identifier)) : 0;
}

function writeControlPlane(w: ProtoWriter, field: number, cp: DiscoveryResponse['control_plane']): void {
  if (!cp?.identifier) return;
  w.header(field, stringField(cp.identifier));
  w.string(1, cp.identifier);
}

/** A writer over the scratch buffer (grown as needed) or, for a very large response, a buffer of its own. */
function writerFor(size: number): ProtoWriter {
  if (size > MAX_SCRATCH_BYTES) return new ProtoWriter(Buffer.allocUnsafe(size));
  if (size > scratch.length) scratch = Buffer.allocUnsafe(Math.min(MAX_SCRATCH_BYTES, 2 ** Math.ceil(Math.log2(size))));
  return new ProtoWriter(scratch);
}

function onlyFields(obj: object, allowed: ReadonlySet<string>): boolean {
  for (const key in obj) if (!allowed.has(key) && (obj as Record<string, unknown>)[key] !== undefined) return false;
  return true;
}

/**
 * A DiscoveryResponse's bytes, or undefined when it carries a field this
 * writer does not know (then the caller uses the generic serializer). The
 * result is a view of a shared buffer, valid until the next call: grpc-js
 * copies it into its message frame right away (server-interceptors
 * serializeMessage), so nothing holds on to it.
 */
export function encodeDiscoveryResponse(r: DiscoveryResponse): Buffer | undefined {
  if (!onlyFields(r, SOTW_FIELDS)) return undefined;
  const resources = r.resources ?? [];
  const sizes = resources.map(anySize);
  let size = stringField(r.version_info) + stringField(r.type_url) + stringField(r.nonce);
  for (const s of sizes) size += fieldSize(s);
  const cp = controlPlaneSize(r.control_plane);
  if (cp > 0) size += fieldSize(cp);
  const w = writerFor(size);
  w.string(1, r.version_info);
  resources.forEach((any, i) => writeAny(w, 2, any, sizes[i]!));
  w.string(4, r.type_url);
  w.string(5, r.nonce);
  writeControlPlane(w, 6, r.control_plane);
  return w.buf.subarray(0, w.pos);
}

/** A DeltaDiscoveryResponse's bytes, under the same contract as encodeDiscoveryResponse. */
export function encodeDeltaDiscoveryResponse(r: DeltaDiscoveryResponse): Buffer | undefined {
  if (!onlyFields(r, DELTA_FIELDS)) return undefined;
  const resources = r.resources ?? [];
  if (!resources.every((res) => onlyFields(res, DELTA_RESOURCE_FIELDS))) return undefined;
  const anySizes: number[] = [];
  const resourceSizes: number[] = [];
  let size = stringField(r.system_version_info) + stringField(r.type_url) + stringField(r.nonce);
  for (const res of resources) {
    const a = res.resource ? anySize(res.resource) : 0;
    const s = stringField(res.version) + (res.resource ? fieldSize(a) : 0) + stringField(res.name);
    anySizes.push(a);
    resourceSizes.push(s);
    size += fieldSize(s);
  }
  for (const name of r.removed_resources ?? []) size += fieldSize(Buffer.byteLength(name));
  const cp = controlPlaneSize(r.control_plane);
  if (cp > 0) size += fieldSize(cp);
  const w = writerFor(size);
  w.string(1, r.system_version_info);
  resources.forEach((res, i) => {
    w.header(2, resourceSizes[i]!);
    w.string(1, res.version);
    if (res.resource) writeAny(w, 2, res.resource, anySizes[i]!);
    w.string(3, res.name);
  });
  w.string(4, r.type_url);
  w.string(5, r.nonce);
  for (const name of r.removed_resources ?? []) {
    // A repeated string keeps empty elements (unlike a singular field).
    w.header(6, Buffer.byteLength(name));
    w.pos += w.buf.write(name, w.pos, 'utf8');
  }
  writeControlPlane(w, 7, r.control_plane);
  return w.buf.subarray(0, w.pos);
}

/**
 * The ADS service definition with both responses written by this module (the
 * generic serializer for anything else) and both requests read by
 * request-decoder.ts (SotwRequest, DeltaRequest).
 */
export function adsServiceDefinition(): ServiceDefinition {
  const definition = loadXdsProtos(ADS_PROTO_FILES).serviceDefinition(ADS_SERVICE);
  const out: Record<string, ServiceDefinition[string]> = {};
  for (const [method, def] of Object.entries(definition)) {
    const generic = def.responseSerialize as (value: unknown) => Buffer;
    if (method === 'DeltaAggregatedResources') {
      out[method] = { ...def, requestDeserialize: decodeDeltaDiscoveryRequest, responseSerialize: (value: unknown) => encodeDeltaDiscoveryResponse(value as DeltaDiscoveryResponse) ?? generic(value) };
    } else if (method === 'StreamAggregatedResources') {
      out[method] = { ...def, requestDeserialize: decodeDiscoveryRequest, responseSerialize: (value: unknown) => encodeDiscoveryResponse(value as DiscoveryResponse) ?? generic(value) };
    } else {
      out[method] = def;
    }
  }
  return out as ServiceDefinition;
}
