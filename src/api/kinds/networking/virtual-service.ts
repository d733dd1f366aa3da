// VirtualService: how requests to a set of hosts are routed (HTTP, TLS by SNI,
// plain TCP). Schema of the full spec and Istio's ValidateVirtualService rules.

import type { Diagnostics, FieldPath } from '../../diagnostics.ts';
import type { KindDefinition, ValidationContext } from '../../kind-registry.ts';
import { duration, int32, percent, strict, stringMap, uint32, z } from '../../schema.ts';
import { checkCidr, checkLabels, checkPercentage, checkPort, hostProblem, isDns1123Label, isIpAddress } from '../../validators.ts';
import {
  checkExportTo,
  checkGatewayNames,
  checkHeaderName,
  checkMatchHeaderName,
  checkMsDuration,
  checkOneOf,
  checkPercentInt,
  checkSecondsDuration,
  DNS1123_LABEL_RULE,
  hostSubsetOf,
} from './checks.ts';
import { checkDestination, checkHeaders, checkWeightedDestinations, destination, headers, routeDestination } from './destination.ts';
import { checkRegexString, checkStringMatch, stringMatch } from './string-match.ts';
import { NETWORKING_GROUP, NETWORKING_VERSIONS } from './versions.ts';

const httpMatchRequest = strict({
  name: z.string().optional(),
  uri: stringMatch.optional(),
  scheme: stringMatch.optional(),
  method: stringMatch.optional(),
  authority: stringMatch.optional(),
  headers: z.record(z.string(), stringMatch).optional(),
  port: uint32.optional(),
  sourceLabels: stringMap.optional(),
  gateways: z.array(z.string()).optional(),
  queryParams: z.record(z.string(), stringMatch).optional(),
  ignoreUriCase: z.boolean().optional(),
  withoutHeaders: z.record(z.string(), stringMatch).optional(),
  sourceNamespace: z.string().optional(),
  statPrefix: z.string().optional(),
});

const httpRouteDestination = strict({
  destination: destination.optional(),
  weight: int32.optional(),
  headers: headers.optional(),
});

const httpRedirect = strict({
  uri: z.string().optional(),
  authority: z.string().optional(),
  port: uint32.optional(),
  derivePort: z.enum(['FROM_PROTOCOL_DEFAULT', 'FROM_REQUEST_PORT']).optional(),
  scheme: z.string().optional(),
  redirectCode: uint32.optional(),
});

const httpDirectResponse = strict({
  status: uint32,
  body: strict({ string: z.string().optional(), bytes: z.string().optional() }).optional(),
});

const httpRewrite = strict({
  uri: z.string().optional(),
  authority: z.string().optional(),
  uriRegexRewrite: strict({ match: z.string().optional(), rewrite: z.string().optional() }).optional(),
});

const httpRetry = strict({
  attempts: int32.optional(),
  perTryTimeout: duration.optional(),
  retryOn: z.string().optional(),
  retryRemoteLocalities: z.boolean().optional(),
  retryIgnorePreviousHosts: z.boolean().optional(),
  backoff: duration.optional(),
});

const corsPolicy = strict({
  allowOrigin: z.array(z.string()).optional(),
  allowOrigins: z.array(stringMatch).optional(),
  allowMethods: z.array(z.string()).optional(),
  allowHeaders: z.array(z.string()).optional(),
  exposeHeaders: z.array(z.string()).optional(),
  maxAge: duration.optional(),
  allowCredentials: z.boolean().optional(),
  unmatchedPreflights: z.enum(['UNSPECIFIED', 'FORWARD', 'IGNORE']).optional(),
});

const httpFaultInjection = strict({
  delay: strict({
    fixedDelay: duration.optional(),
    exponentialDelay: duration.optional(),
    percentage: percent.optional(),
    percent: int32.optional(),
  }).optional(),
  abort: strict({
    httpStatus: int32.optional(),
    grpcStatus: z.string().optional(),
    http2Error: z.string().optional(),
    percentage: percent.optional(),
  }).optional(),
});

const httpRoute = strict({
  name: z.string().optional(),
  match: z.array(httpMatchRequest).optional(),
  route: z.array(httpRouteDestination).optional(),
  redirect: httpRedirect.optional(),
  directResponse: httpDirectResponse.optional(),
  delegate: strict({ name: z.string().optional(), namespace: z.string().optional() }).optional(),
  rewrite: httpRewrite.optional(),
  timeout: duration.optional(),
  retries: httpRetry.optional(),
  fault: httpFaultInjection.optional(),
  mirror: destination.optional(),
  mirrors: z.array(strict({ destination: destination.optional(), percentage: percent.optional() })).optional(),
  mirrorPercent: uint32.optional(),
  mirrorPercentage: percent.optional(),
  corsPolicy: corsPolicy.optional(),
  headers: headers.optional(),
});
type HttpRoute = z.infer<typeof httpRoute>;

const tlsRoute = strict({
  match: z.array(strict({
    sniHosts: z.array(z.string()).optional(),
    destinationSubnets: z.array(z.string()).optional(),
    port: uint32.optional(),
    sourceLabels: stringMap.optional(),
    gateways: z.array(z.string()).optional(),
    sourceNamespace: z.string().optional(),
  })).optional(),
  route: z.array(routeDestination).optional(),
});
type TlsRoute = z.infer<typeof tlsRoute>;

const tcpRoute = strict({
  match: z.array(strict({
    destinationSubnets: z.array(z.string()).optional(),
    port: uint32.optional(),
    sourceSubnet: z.string().optional(),
    sourceLabels: stringMap.optional(),
    gateways: z.array(z.string()).optional(),
    sourceNamespace: z.string().optional(),
  })).optional(),
  route: z.array(routeDestination).optional(),
});
type TcpRoute = z.infer<typeof tcpRoute>;

export const virtualServiceSpec = strict({
  hosts: z.array(z.string()).optional(),
  gateways: z.array(z.string()).optional(),
  http: z.array(httpRoute).optional(),
  tls: z.array(tlsRoute).optional(),
  tcp: z.array(tcpRoute).optional(),
  exportTo: z.array(z.string()).optional(),
});
export type VirtualServiceSpec = z.infer<typeof virtualServiceSpec>;

const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'];

const RETRY_ON = new Set([
  '5xx', 'gateway-error', 'reset', 'reset-before-request', 'connect-failure', 'envoy-ratelimited', 'retriable-4xx',
  'refused-stream', 'retriable-status-codes', 'retriable-headers', 'http3-post-connect-failure',
  'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable',
]);

const GRPC_CODES = new Set([
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE',
  'DATA_LOSS', 'UNAUTHENTICATED',
]);

const MAX_DIRECT_RESPONSE_BYTES = 1024 * 1024;

/** ValidateVirtualService. A VirtualService without hosts is a delegate, only usable from another one's `delegate`. */
export function validateVirtualService(spec: VirtualServiceSpec, ctx: ValidationContext): void {
  const { diag, path } = ctx;
  const hosts = spec.hosts ?? [];
  const isDelegate = hosts.length === 0;
  if (isDelegate) {
    if ((spec.gateways?.length ?? 0) > 0) diag.error(path.key('gateways'), 'delegate virtual service (one without hosts) must have no gateways specified');
    if ((spec.tls?.length ?? 0) > 0) diag.error(path.key('tls'), 'delegate virtual service (one without hosts) must have no tls route specified');
    if ((spec.tcp?.length ?? 0) > 0) diag.error(path.key('tcp'), 'delegate virtual service (one without hosts) must have no tcp route specified');
  }
  checkGatewayNames(diag, path.key('gateways'), spec.gateways);
  const appliesToMesh = (spec.gateways?.length ?? 0) === 0 || spec.gateways!.includes('mesh');
  hosts.forEach((host, i) => {
    const problem = hostProblem(host);
    if (problem && !isIpAddress(host)) diag.error(path.key('hosts').index(i), problem);
    if (appliesToMesh && host === '*') {
      diag.error(path.key('hosts').index(i), 'wildcard host * is not allowed for virtual services bound to the mesh gateway; name the hosts, or bind the virtual service to gateways only');
    }
  });
  if ((spec.http?.length ?? 0) === 0 && (spec.tcp?.length ?? 0) === 0 && (spec.tls?.length ?? 0) === 0) {
    diag.error(path, 'http, tcp or tls must be provided in virtual service');
  }
  (spec.http ?? []).forEach((route, i) => checkHttpRoute(diag, path.key('http').index(i), route, isDelegate));
  (spec.tls ?? []).forEach((route, i) => checkTlsRoute(diag, path.key('tls').index(i), route, hosts));
  (spec.tcp ?? []).forEach((route, i) => checkTcpRoute(diag, path.key('tcp').index(i), route));
  checkExportTo(diag, path.key('exportTo'), spec.exportTo);
}

function checkHttpRoute(diag: Diagnostics, path: FieldPath, http: HttpRoute, inDelegate: boolean): void {
  checkHttpConflicts(diag, path, http, inDelegate);
  (http.match ?? []).forEach((m, i) => checkHttpMatch(diag, path.key('match').index(i), m));
  checkHeaders(diag, path.key('headers'), http.headers);
  checkCors(diag, path.key('corsPolicy'), http.corsPolicy);
  checkFault(diag, path.key('fault'), http.fault);
  if (http.mirrorPercent !== undefined) {
    diag.warn(path.key('mirrorPercent'), 'mirrorPercent is deprecated; use mirrorPercentage');
    checkPercentInt(diag, path.key('mirrorPercent'), http.mirrorPercent);
  }
  if (http.mirrorPercentage) checkPercentage(diag, path.key('mirrorPercentage').key('value'), http.mirrorPercentage.value);
  if (http.mirror) checkDestination(diag, path.key('mirror'), http.mirror);
  if (http.mirror && (http.mirrors?.length ?? 0) > 0) diag.error(path, 'HTTP route cannot contain both mirror and mirrors; move the mirror into mirrors');
  (http.mirrors ?? []).forEach((m, i) => {
    const p = path.key('mirrors').index(i);
    if (!m.destination) diag.error(p.key('destination'), 'mirror destination is required');
    else checkDestination(diag, p.key('destination'), m.destination);
    if (m.percentage) checkPercentage(diag, p.key('percentage').key('value'), m.percentage.value);
  });
  checkRedirect(diag, path.key('redirect'), http.redirect);
  checkDirectResponse(diag, path.key('directResponse'), http.directResponse);
  checkRetries(diag, path.key('retries'), http.retries);
  checkRewrite(diag, path.key('rewrite'), http.rewrite);
  if (http.rewrite?.authority) {
    const req = http.headers?.request;
    const names = [...Object.keys(req?.set ?? {}), ...Object.keys(req?.add ?? {})].map((n) => n.toLowerCase());
    if (names.includes('host') || names.includes(':authority')) {
      diag.error(path.key('rewrite').key('authority'), 'authority header cannot be set both in rewrite and header manipulation');
    }
  }
  checkWeightedDestinations(diag, path.key('route'), http.route ?? []);
  if (http.timeout !== undefined) checkMsDuration(diag, path.key('timeout'), http.timeout);
}

/** route, redirect, directResponse and delegate are alternatives: exactly one decides what happens. */
function checkHttpConflicts(diag: Diagnostics, path: FieldPath, http: HttpRoute, inDelegate: boolean): void {
  const hasRoute = (http.route?.length ?? 0) > 0;
  if (http.delegate) {
    if (inDelegate) diag.error(path.key('delegate'), 'delegate is not supported in a delegate virtual service: delegation is one level deep');
    if (hasRoute) diag.error(path, 'HTTP route cannot contain both route and delegate');
    if (http.fault) diag.error(path, 'HTTP route cannot contain both fault and delegate');
    if (http.redirect) diag.error(path, 'HTTP route cannot contain both redirect and delegate');
    if (http.directResponse) diag.error(path, 'HTTP route cannot contain both directResponse and delegate');
    const { name, namespace } = http.delegate;
    if (!name) diag.error(path.key('delegate').key('name'), 'delegate name is required');
    else if (!isDns1123Label(name)) diag.error(path.key('delegate').key('name'), `invalid delegate name "${name}": ${DNS1123_LABEL_RULE}`);
    if (namespace && !isDns1123Label(namespace)) diag.error(path.key('delegate').key('namespace'), `invalid delegate namespace "${namespace}": ${DNS1123_LABEL_RULE}`);
  }
  if (http.redirect) {
    if (hasRoute) diag.error(path, 'HTTP route cannot contain both route and redirect');
    if (http.fault) diag.error(path, 'HTTP route cannot contain both fault and redirect');
    if (http.rewrite) diag.error(path, 'HTTP route rule cannot contain both rewrite and redirect');
  }
  if (http.directResponse) {
    if (hasRoute) diag.error(path, 'HTTP route cannot contain both route and directResponse');
    if (http.redirect) diag.error(path, 'HTTP route cannot contain both redirect and directResponse');
    if (http.rewrite) diag.error(path, 'HTTP route cannot contain both rewrite and directResponse');
    if (http.mirror || (http.mirrors?.length ?? 0) > 0) diag.error(path, 'HTTP route cannot contain both mirror and directResponse');
  }
  if (!hasRoute && !http.redirect && !http.delegate && !http.directResponse) {
    diag.error(path, 'HTTP route, redirect, directResponse or delegate is required');
  }
}

function checkHttpMatch(diag: Diagnostics, path: FieldPath, m: z.infer<typeof httpMatchRequest>): void {
  for (const field of ['headers', 'withoutHeaders'] as const) {
    for (const [name, sm] of Object.entries(m[field] ?? {})) {
      const p = path.key(field).key(name);
      checkMatchHeaderName(diag, p, name);
      checkStringMatch(diag, p, sm);
    }
  }
  for (const [name, sm] of Object.entries(m.queryParams ?? {})) checkStringMatch(diag, path.key('queryParams').key(name), sm);
  for (const field of ['uri', 'scheme', 'method', 'authority'] as const) {
    const sm = m[field];
    if (sm) checkStringMatch(diag, path.key(field), sm);
  }
  if (m.port !== undefined && m.port !== 0) checkPort(diag, path.key('port'), m.port);
  checkLabels(diag, path.key('sourceLabels'), m.sourceLabels);
  checkGatewayNames(diag, path.key('gateways'), m.gateways);
  checkSourceNamespace(diag, path.key('sourceNamespace'), m.sourceNamespace);
}

function checkSourceNamespace(diag: Diagnostics, path: FieldPath, ns: string | undefined): void {
  if (ns !== undefined && ns !== '' && !isDns1123Label(ns)) diag.error(path, `invalid sourceNamespace "${ns}": ${DNS1123_LABEL_RULE}`);
}

function checkCors(diag: Diagnostics, path: FieldPath, cors: z.infer<typeof corsPolicy> | undefined): void {
  if (!cors) return;
  if (cors.allowOrigin !== undefined) diag.warn(path.key('allowOrigin'), 'allowOrigin is deprecated; use allowOrigins (exact, prefix or regex matches)');
  (cors.allowOrigins ?? []).forEach((origin, i) => {
    const p = path.key('allowOrigins').index(i);
    const type = checkOneOf(diag, p, origin, ['exact', 'prefix', 'regex']);
    const value = type === undefined ? '' : origin[type as 'exact' | 'prefix' | 'regex'];
    if (value === '' || value === undefined) diag.error(p, 'allowOrigins entry must set a non-empty exact, prefix or regex');
    else if (type === 'regex') checkRegexString(diag, p.key('regex'), value);
  });
  (cors.allowMethods ?? []).forEach((method, i) => {
    if (!HTTP_METHODS.includes(method)) diag.error(path.key('allowMethods').index(i), `"${method}" is not a supported HTTP method; use one of ${HTTP_METHODS.join(', ')}`);
  });
  (cors.allowHeaders ?? []).forEach((name, i) => checkHeaderName(diag, path.key('allowHeaders').index(i), name, { allowStar: true }));
  (cors.exposeHeaders ?? []).forEach((name, i) => checkHeaderName(diag, path.key('exposeHeaders').index(i), name, { allowStar: true }));
  if (cors.maxAge !== undefined) checkSecondsDuration(diag, path.key('maxAge'), cors.maxAge);
}

function checkFault(diag: Diagnostics, path: FieldPath, fault: z.infer<typeof httpFaultInjection> | undefined): void {
  if (!fault) return;
  if (!fault.abort && !fault.delay) {
    diag.error(path, 'HTTP fault injection must have an abort and/or a delay');
    return;
  }
  const abort = fault.abort;
  if (abort) {
    const p = path.key('abort');
    if (abort.percentage) checkPercentage(diag, p.key('percentage').key('value'), abort.percentage.value);
    const type = checkOneOf(diag, p, abort, ['httpStatus', 'grpcStatus', 'http2Error'], { required: true });
    if (type === 'httpStatus' && abort.httpStatus !== undefined && (abort.httpStatus < 200 || abort.httpStatus > 599)) {
      diag.error(p.key('httpStatus'), `HTTP status ${abort.httpStatus} is not in range 200-599`);
    }
    if (type === 'grpcStatus' && abort.grpcStatus !== undefined && !GRPC_CODES.has(abort.grpcStatus)) {
      diag.error(p.key('grpcStatus'), `"${abort.grpcStatus}" is not a valid gRPC status code name, such as "UNAVAILABLE"`);
    }
  }
  const delay = fault.delay;
  if (delay) {
    const p = path.key('delay');
    if (delay.percentage) checkPercentage(diag, p.key('percentage').key('value'), delay.percentage.value);
    if (delay.percent !== undefined) {
      diag.warn(p.key('percent'), 'percent is deprecated; use percentage');
      checkPercentInt(diag, p.key('percent'), delay.percent);
    }
    const type = checkOneOf(diag, p, delay, ['fixedDelay', 'exponentialDelay'], { required: true });
    if (type === 'fixedDelay' && delay.fixedDelay !== undefined) checkMsDuration(diag, p.key('fixedDelay'), delay.fixedDelay);
    if (type === 'exponentialDelay' && delay.exponentialDelay !== undefined) {
      checkMsDuration(diag, p.key('exponentialDelay'), delay.exponentialDelay);
      diag.error(p.key('exponentialDelay'), 'exponentialDelay is not supported yet; use fixedDelay');
    }
  }
}

function checkRedirect(diag: Diagnostics, path: FieldPath, r: z.infer<typeof httpRedirect> | undefined): void {
  if (!r) return;
  if (!r.uri && !r.authority && !r.scheme && !r.port && !r.derivePort) {
    diag.error(path, 'redirect must specify uri, authority, scheme, port or derivePort');
  }
  if (r.port !== undefined && r.derivePort !== undefined) diag.error(path, 'only one of port or derivePort may be set');
  if (r.redirectCode !== undefined && r.redirectCode !== 0 && (r.redirectCode < 300 || r.redirectCode > 399)) {
    diag.error(path.key('redirectCode'), `${r.redirectCode} is not a valid redirect code, must be 3xx`);
  }
  if (r.scheme && r.scheme !== 'http' && r.scheme !== 'https') diag.error(path.key('scheme'), `invalid redirect scheme "${r.scheme}", must be "http" or "https"`);
  if (r.port) checkPort(diag, path.key('port'), r.port);
}

function checkDirectResponse(diag: Diagnostics, path: FieldPath, dr: z.infer<typeof httpDirectResponse> | undefined): void {
  if (!dr) return;
  if (dr.status < 200 || dr.status > 599) diag.error(path.key('status'), `directResponse status ${dr.status} must be between 200 and 599`);
  const body = dr.body;
  if (!body) return;
  const type = checkOneOf(diag, path.key('body'), body, ['string', 'bytes']);
  const size = type === 'string' ? Buffer.byteLength(body.string ?? '') : type === 'bytes' ? Buffer.from(body.bytes ?? '', 'base64').length : 0;
  if (size > MAX_DIRECT_RESPONSE_BYTES) {
    diag.error(path.key('body'), `directResponse body of ${size} bytes is too large: large bodies slow the control plane down, the limit is ${MAX_DIRECT_RESPONSE_BYTES} bytes`);
  }
}

function checkRetries(diag: Diagnostics, path: FieldPath, r: z.infer<typeof httpRetry> | undefined): void {
  if (!r) return;
  const attempts = r.attempts ?? 0;
  if (attempts < 0) diag.error(path.key('attempts'), `attempts cannot be negative (got ${attempts})`);
  if (attempts === 0 && (r.perTryTimeout !== undefined || (r.retryOn ?? '') !== '' || r.retryRemoteLocalities !== undefined)) {
    diag.error(path, 'http retry policy configured when attempts are set to 0 (disabled); set attempts above 0 or remove the policy');
  }
  if (r.perTryTimeout !== undefined) checkMsDuration(diag, path.key('perTryTimeout'), r.perTryTimeout);
  if (r.backoff !== undefined) checkMsDuration(diag, path.key('backoff'), r.backoff);
  if (r.retryOn) {
    for (const policy of r.retryOn.split(',')) {
      if (/^\d+$/.test(policy)) {
        const code = Number(policy);
        if (code < 100 || code > 599) diag.error(path.key('retryOn'), `"${policy}" is not a valid HTTP status code`);
      } else if (!RETRY_ON.has(policy)) {
        diag.error(path.key('retryOn'), `"${policy}" is not a valid retryOn policy; use HTTP status codes or ${[...RETRY_ON].join(', ')}`);
      }
    }
  }
}

function checkRewrite(diag: Diagnostics, path: FieldPath, r: z.infer<typeof httpRewrite> | undefined): void {
  if (!r) return;
  if (r.uri && r.uriRegexRewrite) diag.error(path, 'rewrite may only contain one of uri or uriRegexRewrite');
  if (!r.uri && !r.uriRegexRewrite && !r.authority) diag.error(path, 'rewrite must specify at least one of uri, uriRegexRewrite or authority');
  const rr = r.uriRegexRewrite;
  if (rr) {
    const p = path.key('uriRegexRewrite');
    if (!rr.match) diag.error(p.key('match'), 'uriRegexRewrite requires match to be set');
    else checkRegexString(diag, p.key('match'), rr.match);
    if (!rr.rewrite) diag.error(p.key('rewrite'), 'uriRegexRewrite requires rewrite to be set');
  }
}

/** TLS routes match by SNI; every SNI host must fall inside one of the VirtualService's hosts. */
function checkTlsRoute(diag: Diagnostics, path: FieldPath, tls: TlsRoute, hosts: readonly string[]): void {
  const matches = tls.match ?? [];
  if (matches.length === 0) diag.error(path.key('match'), 'TLS route must have at least one match condition');
  matches.forEach((m, i) => {
    const p = path.key('match').index(i);
    const snis = m.sniHosts ?? [];
    if (snis.length === 0) diag.error(p.key('sniHosts'), 'TLS match must have at least one SNI host');
    snis.forEach((sni, j) => {
      const sp = p.key('sniHosts').index(j);
      const problem = hostProblem(sni);
      if (problem && !isIpAddress(sni)) {
        diag.error(sp, problem);
        return;
      }
      if (!hosts.some((h) => hostSubsetOf(sni, h))) {
        diag.error(sp, `SNI host "${sni}" is not a compatible subset of any of the virtual service hosts: [${hosts.join(', ')}]`);
      }
    });
    checkL4Match(diag, p, m);
  });
  if ((tls.route?.length ?? 0) === 0) diag.error(path.key('route'), 'TLS route is required: add at least one route destination');
  checkWeightedDestinations(diag, path.key('route'), tls.route ?? []);
}

function checkTcpRoute(diag: Diagnostics, path: FieldPath, tcp: TcpRoute): void {
  (tcp.match ?? []).forEach((m, i) => {
    const p = path.key('match').index(i);
    if (m.sourceSubnet) checkCidr(diag, p.key('sourceSubnet'), m.sourceSubnet);
    checkL4Match(diag, p, m);
  });
  if ((tcp.route?.length ?? 0) === 0) diag.error(path.key('route'), 'TCP route is required: add at least one route destination');
  checkWeightedDestinations(diag, path.key('route'), tcp.route ?? []);
}

function checkL4Match(
  diag: Diagnostics,
  path: FieldPath,
  m: { destinationSubnets?: string[]; port?: number; sourceLabels?: Record<string, string>; gateways?: string[]; sourceNamespace?: string },
): void {
  (m.destinationSubnets ?? []).forEach((s, i) => checkCidr(diag, path.key('destinationSubnets').index(i), s));
  if (m.port !== undefined && m.port !== 0) checkPort(diag, path.key('port'), m.port);
  checkLabels(diag, path.key('sourceLabels'), m.sourceLabels);
  checkGatewayNames(diag, path.key('gateways'), m.gateways);
  checkSourceNamespace(diag, path.key('sourceNamespace'), m.sourceNamespace);
}

export const virtualServiceKind: KindDefinition<VirtualServiceSpec> = {
  group: NETWORKING_GROUP,
  kind: 'VirtualService',
  versions: NETWORKING_VERSIONS,
  plural: 'virtualservices',
  shortNames: ['vs'],
  spec: virtualServiceSpec,
  validate: validateVirtualService,
};
