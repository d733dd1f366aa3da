// Loads Mixer's out-of-process adapter API (src/mixer/protos/, Istio's
// template handler services) once per process, and says which gRPC method
// serves which template. Messages are encoded with the loaded protobuf types
// directly, so one gRPC channel per adapter address serves every template.

import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Options } from '@grpc/proto-loader';

const require = createRequire(import.meta.url);
// The main module first: it registers Google's well-known types (Any,
// Duration, Struct ...) that the util module's loader resolves imports with.
require('@grpc/proto-loader');
const protoUtil = require('@grpc/proto-loader/build/src/util.js') as typeof import('@grpc/proto-loader/build/src/util.js');

/** The include root of the adapter API: `mixer/template/<t>/template_handler_service.proto` lives under it. */
export const ADAPTER_PROTO_DIR = fileURLToPath(new URL('../protos/', import.meta.url));

export type ProtoRoot = ReturnType<typeof protoUtil.loadProtosWithOptionsSync>;
export type ProtoType = ReturnType<ProtoRoot['lookupType']>;

/** How one template reaches an adapter: its service, method and request/instance messages. */
export interface TemplateCall {
  readonly template: string;
  readonly variety: 'check' | 'quota' | 'report';
  /** `/metric.HandleMetricService/HandleMetric`, the gRPC path. */
  readonly path: string;
  readonly requestType: string;
  readonly responseType: string;
}

const RESULT = 'istio.mixer.adapter.model.v1beta1';

function call(template: string, variety: TemplateCall['variety'], service: string, method: string, response: string): TemplateCall {
  return { template, variety, path: `/${template}.${service}/${method}`, requestType: `${template}.${method}Request`, responseType: `${RESULT}.${response}` };
}

/** The templates an out-of-process adapter can handle, as Istio 1.4 defined their services. */
export const TEMPLATE_CALLS: Readonly<Record<string, TemplateCall>> = Object.freeze({
  metric: call('metric', 'report', 'HandleMetricService', 'HandleMetric', 'ReportResult'),
  logentry: call('logentry', 'report', 'HandleLogEntryService', 'HandleLogEntry', 'ReportResult'),
  reportnothing: call('reportnothing', 'report', 'HandleReportNothingService', 'HandleReportNothing', 'ReportResult'),
  listentry: call('listentry', 'check', 'HandleListEntryService', 'HandleListEntry', 'CheckResult'),
  checknothing: call('checknothing', 'check', 'HandleCheckNothingService', 'HandleCheckNothing', 'CheckResult'),
  authorization: call('authorization', 'check', 'HandleAuthorizationService', 'HandleAuthorization', 'CheckResult'),
  quota: call('quota', 'quota', 'HandleQuotaService', 'HandleQuota', 'QuotaResult'),
});

/** Where each template's service is defined, relative to ADAPTER_PROTO_DIR. */
export const ADAPTER_PROTO_FILES: readonly string[] = [
  ...Object.keys(TEMPLATE_CALLS).map((t) => `mixer/template/${t}/template_handler_service.proto`),
  'mixer/adapter/model/v1beta1/infrastructure_backend.proto',
  // adapter_config without a descriptor is a google.protobuf.Struct.
  'mesh/adapter_config.proto',
];

/** snake_case names as on the wire; 64-bit integers as strings; absent scalars filled in. */
export const ADAPTER_PROTO_OPTIONS = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true } as const;

let loaded: ProtoRoot | undefined;

/** The parsed adapter API (shared, never mutated). */
export function adapterProtoRoot(): ProtoRoot {
  if (!loaded) {
    const options: Options = { ...ADAPTER_PROTO_OPTIONS, includeDirs: [ADAPTER_PROTO_DIR] };
    loaded = protoUtil.loadProtosWithOptionsSync([...ADAPTER_PROTO_FILES], options);
  }
  return loaded;
}

/** A message type of the adapter API (or a well-known type such as `google.protobuf.Struct`). */
export function adapterType(fullName: string): ProtoType {
  return adapterProtoRoot().lookupType(fullName);
}
