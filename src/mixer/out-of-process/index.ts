// Out-of-process Mixer adapters: Istio 1.4's gRPC adapter API (the protos in
// src/mixer/protos/), the handler that calls it, and the shared connections.
export { ADAPTER_PROTO_DIR, ADAPTER_PROTO_FILES, TEMPLATE_CALLS, adapterProtoRoot, adapterType } from './adapter-protos.ts';
export type { TemplateCall } from './adapter-protos.ts';
export { AdapterConnections, sharedAdapterConnections } from './adapter-connections.ts';
export type { AdapterConnection, AdapterMessageLimits } from './adapter-connections.ts';
export { descriptorConfigCodec, structConfigCodec } from './adapter-config.ts';
export type { AdapterConfigCodec, PackedConfig } from './adapter-config.ts';
export { DEFAULT_CALL_LIMITS, grpcAdapterHandler } from './grpc-adapter-handler.ts';
export type { AdapterCallLimits } from './grpc-adapter-handler.ts';
export { DEFAULT_OUT_OF_PROCESS_LIMITS, outOfProcessAdapter } from './out-of-process-adapter.ts';
export type { AdapterSpec, AdapterConnectionSpec, OutOfProcessLimits, OutOfProcessOptions } from './out-of-process-adapter.ts';
export { instanceMessage, wireValue, ipBytes } from './wire-instance.ts';
