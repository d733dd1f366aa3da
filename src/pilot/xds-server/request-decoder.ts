// Discovery requests from wire bytes, read by hand instead of through
// protobufjs. Most requests on an ADS stream are ACKs, and a SotW ACK repeats
// the whole subscription: at 1000 services every EDS ACK carries ~1000
// resource names (~60 KB), which protobufjs decoded into 1000 fresh strings
// and an object per request, 2000 times per endpoint push (about a third of
// the push's CPU, see docs/pilot-interop.md, "Pilot at scale"). Here the
// scalar fields are read at once, while resource_names stays bytes until
// someone asks for the list: the server compares those bytes with the
// encoding of the subscription it already holds (SharedState.sameEncoding),
// and an unchanged list is never decoded. The Node (sent on every request by
// Envoy unless set_node_on_first_message_only) and error_detail are decoded
// by protobufjs when first read, which is once per stream and per NACK.
//
// Field numbers are envoy.service.discovery.v3's (discovery.proto); fields
// the ADS server does not read (resource_locators,
// dynamic_parameter_constraints, unknown ones) are skipped as protobuf says.

import type { DeltaDiscoveryRequest, DiscoveryRequest, NodeMessage, ProtoType, StatusMessage } from '../../xds/index.ts';
import { ADS_PROTO_FILES, ProtoReader, WIRE_BYTES, XDS_CONVERSION_OPTIONS, loadXdsProtos } from '../../xds/index.ts';

let types: { node: ProtoType; status: ProtoType } | undefined;
function protoTypes(): { node: ProtoType; status: ProtoType } {
  if (!types) {
    const protos = loadXdsProtos(ADS_PROTO_FILES);
    types = { node: protos.lookupType('envoy.config.core.v3.Node'), status: protos.lookupType('google.rpc.Status') };
  }
  return types;
}

function decodeNode(bytes: Buffer | undefined): NodeMessage | null {
  if (!bytes) return null;
  const t = protoTypes().node;
  return t.toObject(t.decode(bytes), XDS_CONVERSION_OPTIONS) as NodeMessage;
}

function decodeStatus(bytes: Buffer | undefined): StatusMessage | null {
  if (!bytes) return null;
  const t = protoTypes().status;
  return t.toObject(t.decode(bytes), XDS_CONVERSION_OPTIONS) as StatusMessage;
}

/**
 * The bytes of the entries of one repeated field (tag, length and payload of
 * each), as they came: one view when they are contiguous (every encoder
 * writes them so), copies joined when other fields sit between them.
 */
class FieldBytes {
  private readonly buf: Buffer;
  private start = -1;
  private end = -1;
  private parts: Buffer[] | undefined;

  constructor(buf: Buffer) {
    this.buf = buf;
  }

  add(from: number, to: number): void {
    if (this.start < 0) {
      this.start = from;
      this.end = to;
    } else if (from === this.end && !this.parts) {
      this.end = to;
    } else {
      this.parts ??= [this.buf.subarray(this.start, this.end)];
      this.parts.push(this.buf.subarray(from, to));
    }
  }

  /** Whether the field occurred at all (an empty message field still counts). */
  get present(): boolean {
    return this.start >= 0;
  }

  bytes(): Buffer {
    if (this.parts) return Buffer.concat(this.parts);
    return this.start < 0 ? EMPTY_BYTES : this.buf.subarray(this.start, this.end);
  }
}

const EMPTY_BYTES = Buffer.alloc(0);

/** The strings of a repeated string field from its FieldBytes encoding. */
function stringsOf(bytes: Buffer): string[] {
  const out: string[] = [];
  const r = new ProtoReader(bytes);
  while (r.pos < r.end) {
    r.uint32(); // the tag: all entries are of the one field
    out.push(r.string());
  }
  return out;
}

/**
 * Reads the fields of the message under `r`: each length-delimited field
 * numbered 1 to `last` goes to `onBytes` (which must read it; `at` is where
 * its tag starts), every other field is skipped as protobuf says.
 */
function forEachBytesField(r: ProtoReader, last: number, onBytes: (field: number, at: number) => void): void {
  while (r.pos < r.end) {
    const at = r.pos;
    const tag = r.uint32();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (wire === WIRE_BYTES && field >= 1 && field <= last) onBytes(field, at);
    else r.skip(wire, field);
  }
}

/** The Node and error_detail both requests carry: kept as bytes, decoded by protobufjs when first read. */
abstract class NodeAndErrorDetail {
  #nodeBytes: Buffer | undefined;
  #node: NodeMessage | null | undefined;
  #errorBytes: Buffer | undefined;
  #error: StatusMessage | null | undefined;

  /** Called once by the constructor, with the fields' bytes as read. */
  protected keepNodeAndErrorDetail(node: FieldBytes, error: FieldBytes): void {
    this.#nodeBytes = node.present ? node.bytes() : undefined;
    this.#errorBytes = error.present ? error.bytes() : undefined;
  }

  get node(): NodeMessage | null {
    if (this.#node === undefined) this.#node = decodeNode(this.#nodeBytes);
    return this.#node;
  }

  get error_detail(): StatusMessage | null {
    if (this.#error === undefined) this.#error = decodeStatus(this.#errorBytes);
    return this.#error;
  }
}

/**
 * A DiscoveryRequest whose resource_names and node are decoded when first
 * read. `namesBytes` is the wire encoding of resource_names: equal bytes,
 * equal list (same names, same order). It may be a view of the message
 * buffer: copy it to keep it beyond the request.
 */
export class SotwRequest extends NodeAndErrorDetail implements DiscoveryRequest {
  version_info = '';
  type_url = '';
  response_nonce = '';
  readonly namesBytes: Buffer;
  #names: string[] | undefined;

  constructor(bytes: Buffer) {
    super();
    const r = new ProtoReader(bytes);
    const names = new FieldBytes(bytes);
    const node = new FieldBytes(bytes);
    const error = new FieldBytes(bytes);
    forEachBytesField(r, 6, (field, at) => {
      switch (field) {
        case 1:
          this.version_info = r.string();
          break;
        case 3:
          r.span();
          names.add(at, r.pos);
          break;
        case 4:
          this.type_url = r.string();
          break;
        case 5:
          this.response_nonce = r.string();
          break;
        case 2:
        case 6: {
          // A message field seen twice is merged, which for the wire format is the concatenation of both payloads.
          const start = r.span();
          (field === 2 ? node : error).add(start, r.pos);
          break;
        }
      }
    });
    this.namesBytes = names.bytes();
    this.keepNodeAndErrorDetail(node, error);
  }

  get resource_names(): string[] {
    this.#names ??= stringsOf(this.namesBytes);
    return this.#names;
  }
}

/** A DeltaDiscoveryRequest: everything decoded at once (its lists are changes, not repeats) except the Node and error_detail, decoded when first read. */
export class DeltaRequest extends NodeAndErrorDetail implements DeltaDiscoveryRequest {
  type_url = '';
  response_nonce = '';
  readonly resource_names_subscribe: string[] = [];
  readonly resource_names_unsubscribe: string[] = [];
  /** Without a prototype: names are client input (`__proto__` is a valid resource name). */
  readonly initial_resource_versions: Record<string, string> = Object.create(null) as Record<string, string>;

  constructor(bytes: Buffer) {
    super();
    const r = new ProtoReader(bytes);
    const node = new FieldBytes(bytes);
    const error = new FieldBytes(bytes);
    forEachBytesField(r, 7, (field) => {
      switch (field) {
        case 2:
          this.type_url = r.string();
          break;
        case 3:
          this.resource_names_subscribe.push(r.string());
          break;
        case 4:
          this.resource_names_unsubscribe.push(r.string());
          break;
        case 5:
          this.#mapEntry(r);
          break;
        case 6:
          this.response_nonce = r.string();
          break;
        case 1:
        case 7: {
          const start = r.span();
          (field === 1 ? node : error).add(start, r.pos);
          break;
        }
      }
    });
    this.keepNodeAndErrorDetail(node, error);
  }

  /** One entry of map<string, string> initial_resource_versions: key 1, value 2, either may be absent. */
  #mapEntry(r: ProtoReader): void {
    const start = r.span();
    const end = r.pos;
    const entry = new ProtoReader(r.buf.subarray(start, end));
    let key = '';
    let value = '';
    while (entry.pos < entry.end) {
      const tag = entry.uint32();
      if (tag === ((1 << 3) | WIRE_BYTES)) key = entry.string();
      else if (tag === ((2 << 3) | WIRE_BYTES)) value = entry.string();
      else entry.skip(tag & 7, tag >>> 3);
    }
    this.initial_resource_versions[key] = value;
  }
}

export function decodeDiscoveryRequest(bytes: Buffer): SotwRequest {
  return new SotwRequest(bytes);
}

export function decodeDeltaDiscoveryRequest(bytes: Buffer): DeltaRequest {
  return new DeltaRequest(bytes);
}
