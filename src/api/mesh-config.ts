// MeshConfig: the mesh-wide settings (istio.mesh.v1alpha1.MeshConfig) that
// every component reads, with Istio's defaults filled in. User YAML is laid
// over the defaults, checked structurally and semantically, and frozen.

import { parse as parseYaml } from 'yaml';
import { FieldPath } from './diagnostics.ts';
import { Diagnostics } from './diagnostics.ts';
import type { Diagnostic } from './diagnostics.ts';
import { ApiError, ApiErrorCode } from './errors.ts';
import { reportSchemaIssue } from './schema-issues.ts';
import { deepFreeze } from '../common/deep-freeze.ts';
import { duration, strict, stringMap, z } from './schema.ts';
import { checkDuration, checkHost, checkLabels, checkRegex, hostProblem, isDns1123Label, labelKeyProblem } from './validators.ts';

const port = z.number().int();
const strings = z.array(z.string());
/** Free-form blocks (TLS settings, readiness probes, ...) whose inner shape other components own. */
const freeForm = z.record(z.string(), z.unknown());

const tcpKeepalive = strict({ probes: z.number().int().min(0).optional(), time: duration.optional(), interval: duration.optional() });
const remoteService = strict({ address: z.string(), tlsSettings: freeForm.optional(), tcpKeepalive: tcpKeepalive.optional() });

const proxyConfigSchema = strict({
  configPath: z.string(),
  binaryPath: z.string(),
  serviceCluster: z.string().optional(),
  tracingServiceName: z.enum(['APP_LABEL_AND_NAMESPACE', 'CANONICAL_NAME_ONLY', 'CANONICAL_NAME_AND_NAMESPACE']).optional(),
  drainDuration: duration,
  parentShutdownDuration: duration.optional(),
  terminationDrainDuration: duration,
  discoveryAddress: z.string(),
  discoveryRefreshDelay: duration.optional(),
  zipkinAddress: z.string().optional(),
  statsdUdpAddress: z.string().optional(),
  envoyMetricsServiceAddress: z.string().optional(),
  proxyAdminPort: port,
  availabilityZone: z.string().optional(),
  controlPlaneAuthPolicy: z.enum(['NONE', 'MUTUAL_TLS', 'INHERIT']),
  customConfigFile: z.string().optional(),
  statNameLength: z.number().int(),
  concurrency: z.number().int().optional(),
  proxyBootstrapTemplatePath: z.string().optional(),
  interceptionMode: z.enum(['REDIRECT', 'TPROXY', 'NONE']).optional(),
  tracing: freeForm.optional(),
  sds: strict({ enabled: z.boolean().optional(), k8sSaJwtPath: z.string().optional() }).optional(),
  envoyAccessLogService: remoteService.optional(),
  envoyMetricsService: remoteService.optional(),
  proxyMetadata: stringMap.optional(),
  runtimeValues: stringMap.optional(),
  statusPort: port,
  extraStatTags: strings.optional(),
  gatewayTopology: strict({
    numTrustedProxies: z.number().int().min(0).optional(),
    forwardClientCertDetails: z.enum(['UNDEFINED', 'SANITIZE', 'FORWARD_ONLY', 'APPEND_FORWARD', 'SANITIZE_SET', 'ALWAYS_FORWARD_ONLY']).optional(),
    proxyProtocol: freeForm.optional(),
  }).optional(),
  meshId: z.string().optional(),
  readinessProbe: freeForm.optional(),
  proxyStatsMatcher: strict({ inclusionPrefixes: strings.optional(), inclusionSuffixes: strings.optional(), inclusionRegexps: strings.optional() }).optional(),
  holdApplicationUntilProxyStarts: z.boolean().optional(),
  caCertificatesPem: strings.optional(),
  image: strict({ imageType: z.string().optional() }).optional(),
  privateKeyProvider: freeForm.optional(),
  proxyHeaders: freeForm.optional(),
  fileFlushInterval: duration.optional(),
  fileFlushMinSizeKb: z.number().int().min(0).optional(),
});

// Extension providers: exactly one of these bodies per provider.
const service = { service: z.string(), port: port.optional() };
const maxTagLength = z.number().int().min(0).optional();
const bodyCheck = strict({ maxRequestBytes: z.number().int().min(0).optional(), allowPartialMessage: z.boolean().optional(), packAsBytes: z.boolean().optional() });
const logFormat = strict({ text: z.string().optional(), labels: freeForm.optional() });
const PROVIDER_BODIES = {
  envoyExtAuthzHttp: strict({
    ...service,
    timeout: duration.optional(),
    pathPrefix: z.string().optional(),
    failOpen: z.boolean().optional(),
    clearRouteCache: z.boolean().optional(),
    statusOnError: z.string().optional(),
    includeHeadersInCheck: strings.optional(),
    includeRequestHeadersInCheck: strings.optional(),
    includeAdditionalHeadersInCheck: stringMap.optional(),
    includeRequestBodyInCheck: bodyCheck.optional(),
    headersToUpstreamOnAllow: strings.optional(),
    headersToDownstreamOnDeny: strings.optional(),
    headersToDownstreamOnAllow: strings.optional(),
  }),
  envoyExtAuthzGrpc: strict({
    ...service,
    timeout: duration.optional(),
    failOpen: z.boolean().optional(),
    clearRouteCache: z.boolean().optional(),
    statusOnError: z.string().optional(),
    includeRequestBodyInCheck: bodyCheck.optional(),
  }),
  zipkin: strict({
    ...service,
    maxTagLength,
    enable64bitTraceId: z.boolean().optional(),
    path: z.string().optional(),
    traceContextOption: z.enum(['USE_B3', 'USE_B3_WITH_W3C_PROPAGATION']).optional(),
    timeout: duration.optional(),
    headers: z.array(freeForm).optional(),
  }),
  lightstep: strict({ ...service, accessToken: z.string().optional(), maxTagLength }),
  datadog: strict({ ...service, maxTagLength }),
  stackdriver: strict({
    debug: z.boolean().optional(),
    maxNumberOfAttributes: z.number().int().optional(),
    maxNumberOfAnnotations: z.number().int().optional(),
    maxNumberOfMessageEvents: z.number().int().optional(),
    maxTagLength,
    logging: strict({ labels: stringMap.optional() }).optional(),
  }),
  opencensus: strict({ ...service, maxTagLength, context: z.array(z.enum(['W3C_TRACE_CONTEXT', 'GRPC_BIN', 'CLOUD_TRACE_CONTEXT', 'B3'])).optional() }),
  skywalking: strict({ ...service, accessToken: z.string().optional() }),
  opentelemetry: strict({
    ...service,
    maxTagLength,
    http: strict({ path: z.string().optional(), timeout: duration.optional(), headers: z.array(freeForm).optional() }).optional(),
    grpc: strict({ timeout: duration.optional(), initialMetadata: z.array(freeForm).optional() }).optional(),
    resourceDetectors: freeForm.optional(),
    dynatraceSampler: freeForm.optional(),
  }),
  prometheus: strict({}),
  envoyFileAccessLog: strict({ path: z.string().optional(), logFormat: logFormat.optional() }),
  envoyHttpAls: strict({
    ...service,
    logName: z.string().optional(),
    filterStateObjectsToLog: strings.optional(),
    additionalRequestHeadersToLog: strings.optional(),
    additionalResponseHeadersToLog: strings.optional(),
    additionalResponseTrailersToLog: strings.optional(),
  }),
  envoyTcpAls: strict({ ...service, logName: z.string().optional(), filterStateObjectsToLog: strings.optional() }),
  envoyOtelAls: strict({ ...service, logName: z.string().optional(), logFormat: logFormat.optional() }),
  sds: strict({ name: z.string(), ...service }),
} as const;
export type ExtensionProviderType = keyof typeof PROVIDER_BODIES;
export const EXTENSION_PROVIDER_TYPES = Object.keys(PROVIDER_BODIES) as ExtensionProviderType[];

const extensionProvider = strict({
  name: z.string(),
  ...(Object.fromEntries(EXTENSION_PROVIDER_TYPES.map((k) => [k, PROVIDER_BODIES[k].optional()])) as {
    [K in ExtensionProviderType]: z.ZodOptional<(typeof PROVIDER_BODIES)[K]>;
  }),
});

const localityLbSetting = strict({
  enabled: z.boolean().optional(),
  distribute: z.array(strict({ from: z.string(), to: z.record(z.string(), z.number().int().min(0)) })).optional(),
  failover: z.array(strict({ from: z.string(), to: z.string() })).optional(),
  failoverPriority: strings.optional(),
});

const labelSelector = strict({
  matchLabels: stringMap.optional(),
  matchExpressions: z.array(strict({ key: z.string(), operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']), values: strings.optional() })).optional(),
});

const providerNames = z.array(z.string()).optional();

export const meshConfigSchema = strict({
  proxyListenPort: port,
  proxyInboundListenPort: port,
  proxyHttpPort: port.optional(),
  connectTimeout: duration,
  protocolDetectionTimeout: duration,
  tcpKeepalive: tcpKeepalive.optional(),
  ingressClass: z.string(),
  ingressService: z.string(),
  ingressControllerMode: z.enum(['UNSPECIFIED', 'OFF', 'DEFAULT', 'STRICT']),
  ingressSelector: z.string().optional(),
  enableTracing: z.boolean(),
  accessLogFile: z.string(),
  accessLogFormat: z.string(),
  accessLogEncoding: z.enum(['TEXT', 'JSON']),
  enableEnvoyAccessLogService: z.boolean(),
  disableEnvoyListenerLog: z.boolean().optional(),
  defaultConfig: proxyConfigSchema,
  outboundTrafficPolicy: strict({ mode: z.enum(['REGISTRY_ONLY', 'ALLOW_ANY']) }),
  inboundTrafficPolicy: strict({ mode: z.enum(['PASSTHROUGH', 'LOCALHOST']) }),
  configSources: z.array(strict({ address: z.string(), tlsSettings: freeForm.optional(), subscribedResources: z.array(z.enum(['SERVICE_REGISTRY'])).optional() })).optional(),
  enableAutoMtls: z.boolean(),
  trustDomain: z.string(),
  trustDomainAliases: strings,
  caCertificates: z.array(strict({ pem: z.string().optional(), spiffeBundleUrl: z.string().optional(), certSigners: strings.optional(), trustDomains: strings.optional() })).optional(),
  defaultServiceExportTo: strings,
  defaultVirtualServiceExportTo: strings,
  defaultDestinationRuleExportTo: strings,
  rootNamespace: z.string(),
  localityLbSetting: localityLbSetting,
  dnsRefreshRate: duration,
  h2UpgradePolicy: z.enum(['DO_NOT_UPGRADE', 'UPGRADE']).optional(),
  inboundClusterStatName: z.string().optional(),
  outboundClusterStatName: z.string().optional(),
  serviceSettings: z.array(strict({ settings: strict({ clusterLocal: z.boolean().optional() }).optional(), hosts: strings })),
  enablePrometheusMerge: z.boolean(),
  verifyCertificateAtClient: z.boolean().optional(),
  ca: strict({ address: z.string(), tlsSettings: freeForm.optional(), requestTimeout: duration.optional(), istiodSide: z.boolean().optional() }).optional(),
  extensionProviders: z.array(extensionProvider),
  defaultProviders: strict({ tracing: providerNames, metrics: providerNames, accessLogging: providerNames }),
  discoverySelectors: z.array(labelSelector).optional(),
  pathNormalization: strict({ normalization: z.enum(['DEFAULT', 'NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES']).optional() }).optional(),
  defaultHttpRetryPolicy: strict({ attempts: z.number().int().optional(), perTryTimeout: duration.optional(), retryOn: z.string().optional(), retryRemoteLocalities: z.boolean().optional() }).optional(),
  meshMTLS: strict({ minProtocolVersion: z.enum(['TLS_AUTO', 'TLSV1_2', 'TLSV1_3']).optional(), ecdhCurves: strings.optional(), cipherSuites: strings.optional() }).optional(),
  tlsDefaults: strict({ minProtocolVersion: z.enum(['TLS_AUTO', 'TLSV1_2', 'TLSV1_3']).optional(), ecdhCurves: strings.optional(), cipherSuites: strings.optional() }).optional(),
  thriftConfig: strict({ rateLimitUrl: z.string().optional(), rateLimitTimeout: duration.optional() }).optional(),
  // Mixer-era settings: where proxies send Check/Report, and how policy fails.
  mixerCheckServer: z.string().optional(),
  mixerReportServer: z.string().optional(),
  disablePolicyChecks: z.boolean().optional(),
  policyCheckFailOpen: z.boolean().optional(),
  disableMixerHttpReports: z.boolean().optional(),
  sidecarToTelemetrySessionAffinity: z.boolean().optional(),
  reportBatchMaxEntries: z.number().int().min(0).optional(),
  reportBatchMaxTime: duration.optional(),
  sdsUdsPath: z.string().optional(),
  enableSdsTokenMount: z.boolean().optional(),
  sdsUseK8sSaJwt: z.boolean().optional(),
});

export type MeshConfig = z.infer<typeof meshConfigSchema>;
export type ProxyConfig = MeshConfig['defaultConfig'];
export type ExtensionProvider = MeshConfig['extensionProviders'][number];

/** Istio's DefaultProxyConfig, as `istioctl profile dump` shows it. */
function defaultProxyConfig(): ProxyConfig {
  return {
    configPath: './etc/istio/proxy',
    binaryPath: '/usr/local/bin/envoy',
    serviceCluster: 'istio-proxy',
    drainDuration: '45s',
    terminationDrainDuration: '5s',
    discoveryAddress: 'istiod.istio-system.svc:15012',
    proxyAdminPort: 15000,
    controlPlaneAuthPolicy: 'MUTUAL_TLS',
    statNameLength: 189,
    statusPort: 15020,
    concurrency: 2,
    tracing: { zipkin: { address: 'zipkin.istio-system:9411' } },
  };
}

function buildDefaults(): MeshConfig {
  return {
    proxyListenPort: 15001,
    proxyInboundListenPort: 15006,
    connectTimeout: '10s',
    // 0s turns server-first protocol sniffing timeouts off, Istio's default since 1.8.
    protocolDetectionTimeout: '0s',
    ingressClass: 'istio',
    ingressService: 'istio-ingressgateway',
    ingressControllerMode: 'STRICT',
    enableTracing: true,
    accessLogFile: '',
    accessLogFormat: '',
    accessLogEncoding: 'TEXT',
    enableEnvoyAccessLogService: false,
    defaultConfig: defaultProxyConfig(),
    outboundTrafficPolicy: { mode: 'ALLOW_ANY' },
    inboundTrafficPolicy: { mode: 'PASSTHROUGH' },
    enableAutoMtls: true,
    trustDomain: 'cluster.local',
    trustDomainAliases: [],
    defaultServiceExportTo: ['*'],
    defaultVirtualServiceExportTo: ['*'],
    defaultDestinationRuleExportTo: ['*'],
    rootNamespace: 'istio-system',
    localityLbSetting: { enabled: true },
    dnsRefreshRate: '60s',
    serviceSettings: [],
    enablePrometheusMerge: true,
    extensionProviders: [
      { name: 'prometheus', prometheus: {} },
      { name: 'stackdriver', stackdriver: {} },
      { name: 'envoy', envoyFileAccessLog: { path: '/dev/stdout' } },
    ],
    defaultProviders: {},
  };
}

/** A fresh, frozen MeshConfig holding Istio's defaults. */
export function defaultMeshConfig(): MeshConfig {
  return deepFreeze(buildDefaults());
}

export interface MeshConfigResult {
  /** Set when there are no errors: defaults with the input laid over them, frozen. */
  readonly config?: MeshConfig;
  readonly diagnostics: Diagnostic[];
}

/**
 * Lays `value` (a parsed MeshConfig document; undefined or null mean "all
 * defaults") over the defaults and validates the result. Objects merge field by
 * field, lists replace, and extensionProviders keep the default providers
 * unless one of the same name is given. Never throws on bad input.
 */
export function validateMeshConfig(value: unknown): MeshConfigResult {
  const diag = new Diagnostics();
  const root = new FieldPath('');
  if (value === undefined || value === null) return { config: defaultMeshConfig(), diagnostics: [] };
  if (typeof value !== 'object' || Array.isArray(value)) {
    diag.error(root, 'a MeshConfig must be a YAML/JSON mapping');
    return { diagnostics: diag.items };
  }
  const merged = overlay(buildDefaults(), value as Record<string, unknown>);
  const parsed = meshConfigSchema.safeParse(merged, { reportInput: true });
  if (!parsed.success) {
    for (const issue of parsed.error.issues) reportSchemaIssue(diag, root, issue);
    return { diagnostics: diag.items };
  }
  checkMeshConfig(diag, parsed.data);
  return diag.hasErrors ? { diagnostics: diag.items } : { config: deepFreeze(parsed.data), diagnostics: diag.items };
}

/** Parses MeshConfig YAML/JSON text (or takes an object) and returns it frozen; throws ApiError on any error. */
export function parseMeshConfig(input: string | object): MeshConfig {
  let value: unknown = input;
  if (typeof input === 'string') {
    try {
      value = parseYaml(input, { uniqueKeys: true, prettyErrors: false });
    } catch (err) {
      throw new ApiError(ApiErrorCode.PARSE, `MeshConfig is not valid YAML: ${(err as Error).message.split('\n')[0]}`, { cause: err });
    }
  }
  const result = validateMeshConfig(value);
  if (!result.config) {
    const lines = result.diagnostics.filter((d) => d.severity === 'error').map((d) => (d.path ? `${d.path}: ${d.message}` : d.message));
    throw new ApiError(ApiErrorCode.INVALID, `invalid MeshConfig: ${lines.join('; ')}`);
  }
  return result.config;
}

function isJsonObject(text: string): boolean {
  try {
    return isObject(JSON.parse(text));
  } catch {
    return false;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function overlay(defaults: MeshConfig, input: Record<string, unknown>): Record<string, unknown> {
  const merged = mergeDeep(defaults as unknown as Record<string, unknown>, input);
  // Istio appends user providers to its defaults; a user provider replaces the default of the same name.
  if (Array.isArray(input.extensionProviders)) {
    const given = input.extensionProviders as unknown[];
    const names = new Set(given.map((p) => (isObject(p) ? p.name : undefined)));
    const kept = defaults.extensionProviders.filter((p) => !names.has(p.name));
    merged.extensionProviders = [...kept, ...structuredClone(given)];
  }
  return merged;
}

function mergeDeep(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    // null in YAML means "unset": the default stays.
    if (v === null || v === undefined) continue;
    out[k] = isObject(v) && isObject(base[k]) ? mergeDeep(base[k] as Record<string, unknown>, v) : structuredClone(v);
  }
  return out;
}

// ---- semantic rules (Istio's ValidateMeshConfig and friends) ----

function checkPortNumber(diag: Diagnostics, path: FieldPath, value: number | undefined, what: string): void {
  if (value === undefined) return;
  if (!(value >= 1 && value <= 65535)) diag.error(path, `invalid ${what} ${value}: port number must be in the range 1..65535`);
}

/** Istio's ValidateProxyAddress: `host:port` with a valid port. */
function checkProxyAddress(diag: Diagnostics, path: FieldPath, address: string | undefined): void {
  if (address === undefined || address === '') return;
  const colon = address.lastIndexOf(':');
  if (colon <= 0) {
    diag.error(path, `invalid address "${address}": must be host:port`);
    return;
  }
  const host = address.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  const portText = address.slice(colon + 1);
  const n = Number(portText);
  if (!/^\d+$/.test(portText) || n < 1 || n > 65535) diag.error(path, `invalid address "${address}": port must be in the range 1..65535`);
  if (!isIpLike(host) && hostProblem(host, { wildcard: false })) diag.error(path, `invalid address "${address}": ${hostProblem(host, { wildcard: false })}`);
}

function isIpLike(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}

function checkProxyConfig(diag: Diagnostics, path: FieldPath, pc: ProxyConfig): void {
  if (pc.configPath === '') diag.error(path.key('configPath'), 'config path must be set');
  if (pc.binaryPath === '') diag.error(path.key('binaryPath'), 'binary path must be set');
  checkDuration(diag, path.key('drainDuration'), pc.drainDuration);
  checkDuration(diag, path.key('terminationDrainDuration'), pc.terminationDrainDuration, { allowZero: true });
  if (pc.parentShutdownDuration !== undefined) checkDuration(diag, path.key('parentShutdownDuration'), pc.parentShutdownDuration);
  if (pc.discoveryRefreshDelay !== undefined) checkDuration(diag, path.key('discoveryRefreshDelay'), pc.discoveryRefreshDelay);
  if (pc.fileFlushInterval !== undefined) checkDuration(diag, path.key('fileFlushInterval'), pc.fileFlushInterval);
  if (pc.discoveryAddress === '') diag.error(path.key('discoveryAddress'), 'discovery address must be set (host:port)');
  checkProxyAddress(diag, path.key('discoveryAddress'), pc.discoveryAddress);
  checkProxyAddress(diag, path.key('zipkinAddress'), pc.zipkinAddress);
  checkProxyAddress(diag, path.key('statsdUdpAddress'), pc.statsdUdpAddress);
  checkProxyAddress(diag, path.key('envoyMetricsServiceAddress'), pc.envoyMetricsServiceAddress);
  checkProxyAddress(diag, path.key('envoyAccessLogService').key('address'), pc.envoyAccessLogService?.address);
  checkProxyAddress(diag, path.key('envoyMetricsService').key('address'), pc.envoyMetricsService?.address);
  const zipkin = (pc.tracing as { zipkin?: { address?: unknown } } | undefined)?.zipkin?.address;
  if (typeof zipkin === 'string') checkProxyAddress(diag, path.key('tracing').key('zipkin').key('address'), zipkin);
  checkPortNumber(diag, path.key('proxyAdminPort'), pc.proxyAdminPort, 'proxy admin port');
  checkPortNumber(diag, path.key('statusPort'), pc.statusPort, 'status port');
  if (pc.statusPort === pc.proxyAdminPort) diag.error(path.key('statusPort'), `status port ${pc.statusPort} must differ from the proxy admin port`);
  if (pc.statNameLength < 0) diag.error(path.key('statNameLength'), 'statNameLength must be set to a positive number');
  if (pc.concurrency !== undefined && pc.concurrency < 0) diag.error(path.key('concurrency'), 'concurrency must be greater than or equal to 0');
  // Envoy matches stat names with RE2.
  pc.proxyStatsMatcher?.inclusionRegexps?.forEach((re, i) => checkRegex(diag, path.key('proxyStatsMatcher').key('inclusionRegexps').index(i), re));
}

/** "*", "." or a namespace name; "*" stands alone. */
function checkExportTo(diag: Diagnostics, path: FieldPath, list: readonly string[]): void {
  list.forEach((ns, i) => {
    if (ns !== '*' && ns !== '.' && ns !== '~' && !isDns1123Label(ns)) {
      diag.error(path.index(i), `invalid exportTo value "${ns}": use "*" (all namespaces), "." (same namespace) or a namespace name`);
    }
  });
  if (list.includes('*') && list.length > 1) diag.error(path, 'exportTo "*" must be the only entry');
  if (list.includes('~') && list.length > 1) diag.error(path, 'exportTo "~" must be the only entry');
}

/** Istio's validateTrustDomain: a DNS name (no wildcards). */
function checkTrustDomain(diag: Diagnostics, path: FieldPath, domain: string): void {
  if (domain === '') diag.error(path, 'empty trust domain not allowed');
  else checkHost(diag, path, domain, { wildcard: false });
}

const LOCALITY = /^[^/*]+(\/[^/*]+){0,2}(\/\*)?$|^\*$|^[^/*]+(\/[^/*]+){0,1}\/\*$/;

function checkLocality(diag: Diagnostics, path: FieldPath, locality: string): void {
  if (locality === '' || !LOCALITY.test(locality)) {
    diag.error(path, `invalid locality "${locality}": use region, region/zone or region/zone/subzone; "*" only as the last segment`);
  }
}

/** Istio's ValidateLocalityLbSetting. */
function checkLocalityLb(diag: Diagnostics, path: FieldPath, lb: MeshConfig['localityLbSetting']): void {
  if ((lb.distribute?.length ?? 0) > 0 && (lb.failover?.length ?? 0) > 0) {
    diag.error(path, "can not simultaneously specify 'distribute' and 'failover'");
  }
  const seenFrom = new Set<string>();
  lb.distribute?.forEach((d, i) => {
    const at = path.key('distribute').index(i);
    checkLocality(diag, at.key('from'), d.from);
    if (seenFrom.has(d.from)) diag.error(at.key('from'), `locality ${d.from} is distributed twice`);
    seenFrom.add(d.from);
    let total = 0;
    for (const [loc, weight] of Object.entries(d.to)) {
      checkLocality(diag, at.key('to').key(loc), loc);
      total += weight;
    }
    if (total !== 100) diag.error(at.key('to'), `total load balancing weights should be 100, got ${total}`);
  });
  lb.failover?.forEach((f, i) => {
    const at = path.key('failover').index(i);
    if (f.from === f.to) diag.error(at, 'locality lb failover settings must specify different regions');
    for (const k of ['from', 'to'] as const) {
      if (f[k].includes('/') || f[k].includes('*')) diag.error(at.key(k), `locality lb failover only specifies regions, got "${f[k]}"`);
    }
  });
  lb.failoverPriority?.forEach((p, i) => {
    if (p === '') diag.error(path.key('failoverPriority').index(i), 'failoverPriority label may not be empty');
  });
}

/** A provider service: `host` or `namespace/host` (Istio allows the namespaced form). */
function checkProviderService(diag: Diagnostics, path: FieldPath, value: string): void {
  if (value === '') {
    diag.error(path, 'service must not be empty');
    return;
  }
  const slash = value.indexOf('/');
  const host = slash < 0 ? value : value.slice(slash + 1);
  if (slash >= 0 && !isDns1123Label(value.slice(0, slash))) diag.error(path, `invalid service "${value}": namespace "${value.slice(0, slash)}" is not a DNS-1123 label`);
  const problem = hostProblem(host, { wildcard: false });
  if (problem) diag.error(path, `invalid service "${value}": ${problem}`);
}

function checkExtensionProviders(diag: Diagnostics, path: FieldPath, providers: readonly ExtensionProvider[]): void {
  const names = new Set<string>();
  providers.forEach((p, i) => {
    const at = path.index(i);
    if (p.name === '') diag.error(at.key('name'), 'empty extension provider name');
    else if (names.has(p.name)) diag.error(at.key('name'), `duplicate extension provider name "${p.name}"`);
    names.add(p.name);
    const types = EXTENSION_PROVIDER_TYPES.filter((t) => p[t] !== undefined);
    if (types.length !== 1) {
      diag.error(at, `extension provider "${p.name}" must set exactly one provider type (${EXTENSION_PROVIDER_TYPES.join(', ')}), found ${types.length === 0 ? 'none' : types.join(', ')}`);
      return;
    }
    const type = types[0]!;
    const body = p[type] as { service?: string; port?: number; timeout?: string };
    const bodyAt = at.key(type);
    if (body.service !== undefined) checkProviderService(diag, bodyAt.key('service'), body.service);
    if ('service' in PROVIDER_BODIES[type].shape && type !== 'sds') {
      if (body.port === undefined) diag.error(bodyAt.key('port'), 'port must be set');
      else checkPortNumber(diag, bodyAt.key('port'), body.port, 'port');
    }
    if (body.timeout !== undefined) checkDuration(diag, bodyAt.key('timeout'), body.timeout);
    if (type === 'envoyExtAuthzHttp' || type === 'envoyExtAuthzGrpc') {
      const status = (body as { statusOnError?: string }).statusOnError;
      if (status !== undefined && !(/^\d{3}$/.test(status) && Number(status) >= 100 && Number(status) <= 599)) {
        diag.error(bodyAt.key('statusOnError'), `invalid statusOnError "${status}": must be an HTTP status code 100..599`);
      }
    }
    if (type === 'envoyExtAuthzHttp') {
      const prefix = p.envoyExtAuthzHttp!.pathPrefix;
      if (prefix !== undefined && prefix !== '' && !prefix.startsWith('/')) diag.error(bodyAt.key('pathPrefix'), `pathPrefix "${prefix}" must start with "/"`);
    }
    if (type === 'envoyFileAccessLog') {
      const fmt = p.envoyFileAccessLog!.logFormat;
      if (fmt && fmt.text !== undefined && fmt.labels !== undefined) diag.error(bodyAt.key('logFormat'), 'only one of text or labels may be set');
    }
  });
}

function checkMeshConfig(diag: Diagnostics, mc: MeshConfig): void {
  const root = new FieldPath('');
  checkPortNumber(diag, root.key('proxyListenPort'), mc.proxyListenPort, 'proxy listen port');
  checkPortNumber(diag, root.key('proxyInboundListenPort'), mc.proxyInboundListenPort, 'proxy inbound listen port');
  checkPortNumber(diag, root.key('proxyHttpPort'), mc.proxyHttpPort, 'proxy http port');
  checkDuration(diag, root.key('connectTimeout'), mc.connectTimeout);
  checkDuration(diag, root.key('protocolDetectionTimeout'), mc.protocolDetectionTimeout, { allowZero: true });
  checkDuration(diag, root.key('dnsRefreshRate'), mc.dnsRefreshRate);
  if (mc.tcpKeepalive?.time !== undefined) checkDuration(diag, root.key('tcpKeepalive').key('time'), mc.tcpKeepalive.time);
  if (mc.tcpKeepalive?.interval !== undefined) checkDuration(diag, root.key('tcpKeepalive').key('interval'), mc.tcpKeepalive.interval);
  if (mc.reportBatchMaxTime !== undefined) checkDuration(diag, root.key('reportBatchMaxTime'), mc.reportBatchMaxTime);
  checkProxyAddress(diag, root.key('mixerCheckServer'), mc.mixerCheckServer);
  checkProxyAddress(diag, root.key('mixerReportServer'), mc.mixerReportServer);
  checkProxyConfig(diag, root.key('defaultConfig'), mc.defaultConfig);

  checkTrustDomain(diag, root.key('trustDomain'), mc.trustDomain);
  mc.trustDomainAliases.forEach((d, i) => checkTrustDomain(diag, root.key('trustDomainAliases').index(i), d));
  if (!isDns1123Label(mc.rootNamespace)) diag.error(root.key('rootNamespace'), `invalid root namespace "${mc.rootNamespace}": must be a DNS-1123 label`);

  checkExportTo(diag, root.key('defaultServiceExportTo'), mc.defaultServiceExportTo);
  checkExportTo(diag, root.key('defaultVirtualServiceExportTo'), mc.defaultVirtualServiceExportTo);
  checkExportTo(diag, root.key('defaultDestinationRuleExportTo'), mc.defaultDestinationRuleExportTo);

  if (mc.accessLogEncoding === 'JSON' && mc.accessLogFormat !== '') {
    if (!isJsonObject(mc.accessLogFormat)) diag.error(root.key('accessLogFormat'), 'with accessLogEncoding JSON, accessLogFormat must be a JSON object of field name to format string');
  }

  checkLocalityLb(diag, root.key('localityLbSetting'), mc.localityLbSetting);
  mc.serviceSettings.forEach((s, i) => s.hosts.forEach((h, j) => checkHost(diag, root.key('serviceSettings').index(i).key('hosts').index(j), h)));
  mc.configSources?.forEach((c, i) => {
    if (c.address === '') diag.error(root.key('configSources').index(i).key('address'), 'config source address must not be empty');
  });
  mc.discoverySelectors?.forEach((s, i) => {
    const at = root.key('discoverySelectors').index(i);
    checkLabels(diag, at.key('matchLabels'), s.matchLabels);
    s.matchExpressions?.forEach((e, j) => {
      const eAt = at.key('matchExpressions').index(j);
      const problem = labelKeyProblem(e.key);
      if (problem) diag.error(eAt.key('key'), problem);
      const n = e.values?.length ?? 0;
      if ((e.operator === 'In' || e.operator === 'NotIn') && n === 0) diag.error(eAt.key('values'), `operator ${e.operator} needs at least one value`);
      if ((e.operator === 'Exists' || e.operator === 'DoesNotExist') && n > 0) diag.error(eAt.key('values'), `operator ${e.operator} takes no values`);
    });
  });
  const retry = mc.defaultHttpRetryPolicy;
  if (retry?.attempts !== undefined && retry.attempts < 0) diag.error(root.key('defaultHttpRetryPolicy').key('attempts'), 'attempts cannot be negative');
  if (retry?.perTryTimeout !== undefined) checkDuration(diag, root.key('defaultHttpRetryPolicy').key('perTryTimeout'), retry.perTryTimeout);

  checkExtensionProviders(diag, root.key('extensionProviders'), mc.extensionProviders);
  const known = new Set(mc.extensionProviders.map((p) => p.name));
  for (const kind of ['tracing', 'metrics', 'accessLogging'] as const) {
    mc.defaultProviders[kind]?.forEach((name, i) => {
      if (!known.has(name)) diag.warn(root.key('defaultProviders').key(kind).index(i), `default provider "${name}" is not defined in extensionProviders`);
    });
  }
}
