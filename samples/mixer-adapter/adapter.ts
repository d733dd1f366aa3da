// A sample out-of-process Mixer adapter, its own process, speaking Istio
// 1.4's gRPC adapter API (src/mixer/protos/) with nothing but @grpc/grpc-js
// and @grpc/proto-loader:
// - metric and logentry: appends each instance it receives, as a JSON line,
//   to the handler's `file_path`;
// - listentry: allows the values on the handler's `allow` list and denies
//   the rest with PERMISSION_DENIED (and records the check in the file too).
//
//   node adapter.ts [--address 127.0.0.1:0] [--delay-ms N]
//   node adapter.ts --print-adapter-yaml [--name sampleadapter] [--namespace istio-system]
//
// On start it prints one JSON line `{"msg":"listening","address":"127.0.0.1:PORT"}`.
// See README.md for the handler / instance / rule YAML.

import { appendFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { decodeParams } from './params.ts';

const PROTO_DIR = fileURLToPath(new URL('../../src/mixer/protos/', import.meta.url));
const CONFIG_PROTO = fileURLToPath(new URL('./config.proto', import.meta.url));
const TEMPLATES = ['metric', 'logentry', 'listentry'];
const LOAD_OPTIONS = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [PROTO_DIR] };

const { values: args } = parseArgs({
  options: {
    address: { type: 'string', default: '127.0.0.1:0' },
    'delay-ms': { type: 'string', default: '0' },
    'print-adapter-yaml': { type: 'boolean', default: false },
    name: { type: 'string', default: 'sampleadapter' },
    namespace: { type: 'string', default: 'istio-system' },
  },
});

// --- the adapter object Mixer needs (what Istio's mixgen generates) ----------

/** base64 FileDescriptorSet of config.proto: `repeated FileDescriptorProto file = 1`, written field by field. */
function configDescriptor(): string {
  const definition = protoLoader.loadSync(CONFIG_PROTO, LOAD_OPTIONS);
  const files = (definition['sampleadapter.Params'] as protoLoader.MessageTypeDefinition<object, object>).fileDescriptorProtos;
  const parts: Buffer[] = [];
  for (const file of files) {
    const len: number[] = [];
    for (let n = file.length; ; n >>>= 7) {
      if (n < 0x80) {
        len.push(n);
        break;
      }
      len.push((n & 0x7f) | 0x80);
    }
    parts.push(Buffer.from([0x0a, ...len]), Buffer.from(file));
  }
  return Buffer.concat(parts).toString('base64');
}

if (args['print-adapter-yaml']) {
  process.stdout.write(`apiVersion: config.istio.io/v1alpha2
kind: adapter
metadata:
  name: ${args.name}
  namespace: ${args.namespace}
spec:
  description: Appends metric and logentry instances to a file; allows listentry values on a list
  session_based: false
  templates: [${TEMPLATES.join(', ')}]
  config: ${configDescriptor()}
`);
  process.exit(0);
}

// --- request-time services ---------------------------------------------------

type Value = Record<string, unknown> & { value?: string };

/** istio.policy.v1beta1.Value as plain JSON. */
function plain(v: Value | undefined): unknown {
  if (!v?.value) return null;
  const member = v[v.value] as Record<string, unknown> | string | number | boolean;
  switch (v.value) {
    case 'int64_value': return Number(member);
    case 'ip_address_value': {
      const b = (member as { value: Buffer }).value;
      return b.length === 4 ? [...b].join('.') : Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2).toString(16)).join(':');
    }
    case 'timestamp_value': return time((member as { value: Record<string, unknown> }).value);
    case 'duration_value': {
      const d = (member as { value: { seconds: string; nanos: number } }).value;
      return `${Number(d.seconds) + d.nanos / 1e9}s`;
    }
    case 'email_address_value': case 'dns_name_value': case 'uri_value': case 'string_map_value':
      return (member as { value: unknown }).value;
    default: return member;
  }
}

function time(ts: Record<string, unknown> | undefined): string | null {
  return ts ? new Date(Number(ts['seconds']) * 1000 + Number(ts['nanos']) / 1e6).toISOString() : null;
}

const plainMap = (m: Record<string, Value> | undefined): Record<string, unknown> => Object.fromEntries(Object.entries(m ?? {}).map(([k, v]) => [k, plain(v)]));

const delayMs = Number(args['delay-ms']);
const later = (f: () => void): void => void (delayMs > 0 ? setTimeout(f, delayMs) : f());

type Request = { adapter_config?: { type_url: string; value: Buffer }; dedup_id: string };
type Callback = grpc.sendUnaryData<unknown>;

/** Runs `handle` with the decoded params; a bad config is INVALID_ARGUMENT. */
function serve<R extends Request>(handle: (req: R, params: ReturnType<typeof decodeParams>) => unknown) {
  return (call: grpc.ServerUnaryCall<R, unknown>, callback: Callback): void => {
    later(() => {
      let params;
      try {
        params = decodeParams(call.request.adapter_config);
      } catch (err) {
        callback({ code: grpc.status.INVALID_ARGUMENT, details: (err as Error).message });
        return;
      }
      try {
        callback(null, handle(call.request, params));
      } catch (err) {
        callback({ code: grpc.status.INTERNAL, details: (err as Error).message });
      }
    });
  };
}

function record(filePath: string, lines: object[]): void {
  if (filePath !== '' && lines.length > 0) appendFileSync(filePath, lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
}

type MetricMsg = { name: string; value?: Value; dimensions?: Record<string, Value>; monitored_resource_type: string };
type LogMsg = { name: string; variables?: Record<string, Value>; timestamp?: { value?: Record<string, unknown> }; severity: string };
type ListMsg = { name: string; value: string };

const definition = protoLoader.loadSync(TEMPLATES.map((t) => `mixer/template/${t}/template_handler_service.proto`), LOAD_OPTIONS);
const api = grpc.loadPackageDefinition(definition) as unknown as Record<string, Record<string, grpc.ServiceClientConstructor>>;

const server = new grpc.Server();
server.addService(api['metric']!['HandleMetricService']!.service, {
  HandleMetric: serve<Request & { instances: MetricMsg[] }>((req, params) => {
    record(params.filePath, req.instances.map((i) => ({ template: 'metric', instance: i.name, dedup_id: req.dedup_id, value: plain(i.value), dimensions: plainMap(i.dimensions) })));
    return {};
  }),
});
server.addService(api['logentry']!['HandleLogEntryService']!.service, {
  HandleLogEntry: serve<Request & { instances: LogMsg[] }>((req, params) => {
    record(params.filePath, req.instances.map((i) => ({ template: 'logentry', instance: i.name, dedup_id: req.dedup_id, severity: i.severity, timestamp: time(i.timestamp?.value), variables: plainMap(i.variables) })));
    return {};
  }),
});
server.addService(api['listentry']!['HandleListEntryService']!.service, {
  HandleListEntry: serve<Request & { instance: ListMsg }>((req, params) => {
    const allowed = params.allow.includes(req.instance.value);
    record(params.filePath, [{ template: 'listentry', instance: req.instance.name, dedup_id: req.dedup_id, value: req.instance.value, allowed }]);
    return {
      status: allowed ? { code: grpc.status.OK, message: '' } : { code: grpc.status.PERMISSION_DENIED, message: `${req.instance.value} is not on the allow list` },
      valid_duration: { seconds: params.validSeconds, nanos: 0 },
      valid_use_count: 1000,
    };
  }),
});

server.bindAsync(args.address!, grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    process.stderr.write(`cannot listen on ${args.address}: ${err.message}\n`);
    process.exit(1);
  }
  const host = args.address!.slice(0, args.address!.lastIndexOf(':'));
  process.stdout.write(`${JSON.stringify({ msg: 'listening', address: `${host}:${port}` })}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => server.tryShutdown(() => process.exit(0)));
}
