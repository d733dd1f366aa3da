// Public surface of Mixer: the control-plane module (policy and telemetry over
// ext_authz v3, RLS v3 and ALS v3), attribute bags, adapters and the client.
export { Mixer, checkResponse, AUTHORIZATION_SERVICE, RATE_LIMIT_SERVICE, ACCESS_LOG_SERVICE, CHECK_CACHE_METADATA } from './mixer.ts';
export type { MixerOptions, SnapshotSource } from './mixer.ts';
export { AttributeBag, bagFromText, parseAttributeText } from './attribute-bag.ts';
export { MixerError, MixerErrorCode } from './errors.ts';
export type { ConfigProblem, DispatchTable } from './dispatch-table.ts';
export { POLICY_TYPE_URLS, buildDispatchTable } from './dispatch-table.ts';
export type { CheckOutcome, QuotaOutcome, HeaderEdit } from './dispatcher.ts';
export type { AdapterInfo, AdapterEnv, Handler, Instance, InstanceValue, CheckResult, QuotaArgs, QuotaResult, ParamError } from './adapters/adapter.ts';
export { StatusCode } from './adapters/adapter.ts';
export { BUILTIN_ADAPTERS, adapterRegistry, denierAdapter, listcheckerAdapter, memquotaAdapter, prometheusAdapter, redisquotaAdapter, stdioAdapter } from './adapters/index.ts';
export { MixerClient } from './client.ts';
export type { MixerClientOptions, CheckReply, Attributes } from './client.ts';
export { MIXER_METADATA_NAMESPACE, QUOTA_DESCRIPTOR_KEY } from './envoy-attributes.ts';
