// VirtualService: how requests to a set of hosts are routed (HTTP, TLS by SNI,
// plain TCP). Schema of the full spec and Istio's ValidateVirtualService rules.

import type { Diagnostics, FieldPath } from '../../diagnostics.ts';
import type { KindDefinition, ValidationContext } from '../../kind-registry.ts';
import { duration, int32, percent, strict, stringMap, uint32, z } from '../../schema.ts';
import { checkLabels, checkPort, isDns1123Label, isDns1123Subdomain, isIpAddress } from '../../validators.ts';
import {
  checkCorsHeaderName,
  checkExportTo,
  checkGatewayNames,
  checkIpSubnet,
  checkMatchHeaderName,
  checkMsDuration,
  checkOneOf,
  checkPercentage,
  checkPercentInt,
  DNS1123_LABEL_RULE,
  hostsOverlap,
  hostSubsetOf,
  isAuthorityHeader,
  isJwtClaimRoute,
  wildcardDomainProblem,
} from './checks.ts';
import { checkDestination, checkHeaders, checkWeightedDestinations, destination, headers, routeDestination } from './destination.ts';
import { analyzeHttpReachability, analyzeL4Reachability } from './route-reachability.ts';
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

const CORS_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', '*'];

const RETRY_ON = new Set([
  '5xx', 'gateway-error', 'reset', 'reset-before-request', 'connect-failure', 'retriable-4xx', 'refused-stream',
  'retriable-status-codes', 'retriable-headers', 'envoy-ratelimited', 'http3-post-connect-failure',
  'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable',
]);

// Status codes with a registered meaning (Go's http.StatusText): retryOn takes these too.
const KNOWN_STATUS = new Set([
  100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308,
  400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 418, 421, 422, 423, 424,
  425, 426, 428, 429, 431, 451, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
]);

const GRPC_CODES = new Set([
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE',
  'DATA_LOSS', 'UNAUTHENTICATED',
]);

const KB = 1024;
const MB = 1024 * KB;

/**
 * ValidateVirtualService. A VirtualService without hosts is a delegate, only
 * usable from another one's `delegate`; one whose gateways do not include
 * `mesh` applies to gateways only.
 */
export function validateVirtualService(spec: VirtualServiceSpec, ctx: ValidationContext): void {
  const { diag, path } = ctx;
  const hosts = spec.hosts ?? [];
  const gateways = spec.gateways ?? [];
  const isDelegate = hosts.length === 0;
  if (isDelegate) {
    if (gateways.length > 0) diag.error(path.key('gateways'), 'delegate virtual service (one without hosts) must have no gateways specified');
    if ((spec.tls?.length ?? 0) > 0) diag.error(path.key('tls'), 'delegate virtual service (one without hosts) must have no tls route specified');
    if ((spec.tcp?.length ?? 0) > 0) diag.error(path.key('tcp'), 'delegate virtual service (one without hosts) must have no tcp route specified');
  }
  checkGatewayNames(diag, path.key('gateways'), gateways);
  const appliesToGateway = gateways.length > 0 && !gateways.includes('mesh');
  const appliesToMesh = !appliesToGateway;
  if (!appliesToGateway) checkJwtClaimRoutes(diag, path.key('http'), spec.http ?? [], gateways);

  const hasSni = (spec.tls ?? []).some((t) => (t.match ?? []).some((m) => (m.sniHosts?.length ?? 0) > 0));
  let allHostsValid = true;
  hosts.forEach((host, i) => {
    const problem = appliesToGateway ? gatewayHostProblem(host, hasSni) : wildcardDomainProblem(host);
    if (problem) {
      if (!isIpAddress(host)) {
        diag.error(path.key('hosts').index(i), problem);
        allHostsValid = false;
      }
    } else if (appliesToMesh && host === '*') {
      diag.error(path.key('hosts').index(i), 'wildcard host * is not allowed for virtual services bound to the mesh gateway; name the hosts, or bind the virtual service to gateways only');
      allHostsValid = false;
    }
  });
  // Overlapping hosts (`*.foo.com` and `a.foo.com`) make the routing of the shared names ambiguous.
  if (allHostsValid) {
    for (let i = 0; i < hosts.length; i++) {
      for (let j = i + 1; j < hosts.length; j++) {
        if (hostsOverlap(hosts[i]!, hosts[j]!)) diag.error(path.key('hosts').index(j), `duplicate hosts in virtual service: ${hosts[i]} & ${hosts[j]}`);
      }
    }
  }

  if ((spec.http?.length ?? 0) === 0 && (spec.tcp?.length ?? 0) === 0 && (spec.tls?.length ?? 0) === 0) {
    diag.error(path, 'http, tcp or tls must be provided in virtual service');
  }
  (spec.http ?? []).forEach((route, i) => checkHttpRoute(diag, path.key('http').index(i), route, isDelegate));
  (spec.tls ?? []).forEach((route, i) => checkTlsRoute(diag, path.key('tls').index(i), route, hosts, appliesToGateway));
  (spec.tcp ?? []).forEach((route, i) => checkTcpRoute(diag, path.key('tcp').index(i), route));
  checkExportTo(diag, path.key('exportTo'), spec.exportTo, { namespace: ctx.object.metadata.namespace ?? '' });

  analyzeHttpReachability(diag, path.key('http'), spec.http ?? []);
  analyzeL4Reachability(diag, path.key('tcp'), spec.tcp ?? []);
  analyzeL4Reachability(diag, path.key('tls'), spec.tls ?? []);
}

const OUTBOUND_SNI = /^outbound_\.(\d+)_\._\.([a-zA-Z].*)$/;

/**
 * Hosts of a gateway-only VirtualService. With TLS (SNI) routes a gateway in
 * AUTO_PASSTHROUGH mode sees SNIs of the form `outbound_.<port>_._.<host>`.
 */
function gatewayHostProblem(host: string, sni: boolean): string | undefined {
  if (sni && host.startsWith('outbound_')) {
    return OUTBOUND_SNI.test(host) ? undefined : `domain name "${host}" invalid: should follow outbound_.<PORT>_._.<HOSTNAME> format`;
  }
  return wildcardDomainProblem(host);
}

/** Routing on JWT claims needs the gateway's JWT filter, so sidecars (the mesh) cannot do it. */
function checkJwtClaimRoutes(diag: Diagnostics, path: FieldPath, routes: readonly HttpRoute[], gateways: readonly string[]): void {
  routes.forEach((route, i) => {
    (route.match ?? []).forEach((m, j) => {
      for (const field of ['headers', 'withoutHeaders'] as const) {
        for (const key of Object.keys(m[field] ?? {})) {
          if (isJwtClaimRoute(key)) {
            diag.error(path.index(i).key('match').index(j).key(field).key(key),
              `JWT claim based routing (key: ${key}) is only supported for gateway, found no gateways: [${gateways.join(' ')}]; bind the virtual service to gateways only (not mesh)`);
          }
        }
      }
    });
  });
}

/** validateHTTPRoute. */
function checkHttpRoute(diag: Diagnostics, path: FieldPath, http: HttpRoute, inDelegate: boolean): void {
  checkHttpConflicts(diag, path, http, inDelegate);
  (http.match ?? []).forEach((m, i) => checkHttpMatch(diag, path.key('match').index(i), m));
  checkHeaders(diag, path.key('headers'), http.headers);
  checkCors(diag, path.key('corsPolicy'), http.corsPolicy);
  checkFault(diag, path.key('fault'), http.fault);
  if (http.mirrorPercent !== undefined) {
    if (http.mirrorPercent > 100) diag.error(path.key('mirrorPercent'), `mirrorPercent must have a max value of 100 (it has ${http.mirrorPercent})`);
    diag.warn(path.key('mirrorPercent'), 'using deprecated setting "mirrorPercent", use "mirrorPercentage" instead');
  }
  if (http.mirrorPercentage) {
    const v = http.mirrorPercentage.value;
    if (v > 100) diag.error(path.key('mirrorPercentage').key('value'), `mirrorPercentage must have a max value of 100 (it has ${v})`);
    if (v < 0) diag.error(path.key('mirrorPercentage').key('value'), `mirrorPercentage must have a min value of 0 (it has ${v})`);
  }
  if (http.mirror) checkDestination(diag, path.key('mirror'), http.mirror);
  (http.mirrors ?? []).forEach((m, i) => {
    const p = path.key('mirrors').index(i);
    if (!m.destination) {
      diag.error(p.key('destination'), 'destination is required for mirrors');
      return;
    }
    checkDestination(diag, p.key('destination'), m.destination);
    const v = m.percentage?.value;
    if (v !== undefined && v > 100) diag.error(p.key('percentage').key('value'), `mirror percentage must have a max value of 100 (it has ${v})`);
    if (v !== undefined && v < 0) diag.error(p.key('percentage').key('value'), `mirror percentage must have a min value of 0 (it has ${v})`);
  });
  checkRedirect(diag, path.key('redirect'), http.redirect);
  checkDirectResponse(diag, path.key('directResponse'), http.directResponse);
  checkRetries(diag, path.key('retries'), http.retries);
  checkRewrite(diag, path.key('rewrite'), http.rewrite);
  checkAuthorityRewrite(diag, path, http);
  checkWeightedDestinations(diag, path.key('route'), http.route ?? []);
  if (http.timeout !== undefined) checkMsDuration(diag, path.key('timeout'), http.timeout);
}

/**
 * validateHTTPRouteConflict. A route that delegates takes nothing else that
 * decides the response; otherwise redirect, directResponse and route are
 * alternatives and one of them is required.
 */
function checkHttpConflicts(diag: Diagnostics, path: FieldPath, http: HttpRoute, inDelegate: boolean): void {
  const name = http.name ? ` "${http.name}"` : '';
  if (!inDelegate && http.delegate) {
    if (http.redirect) diag.error(path.key('redirect'), `root HTTP route${name} must not specify redirect: a delegating route takes its behaviour from the delegate`);
    if (http.route !== undefined) diag.error(path.key('route'), `root HTTP route${name} must not specify route: a delegating route takes its behaviour from the delegate`);
    checkDelegateRef(diag, path.key('delegate'), http.delegate);
    return;
  }
  if (inDelegate && http.delegate) diag.error(path.key('delegate'), 'delegate HTTP route cannot contain delegate: delegation is one level deep');
  const hasRoute = (http.route?.length ?? 0) > 0;
  if (http.redirect) {
    if (hasRoute) diag.error(path, 'HTTP route cannot contain both route and redirect');
    if (http.fault) diag.error(path, 'HTTP route cannot contain both fault and redirect');
    if (http.rewrite) diag.error(path, 'HTTP route rule cannot contain both rewrite and redirect');
    if (http.directResponse) diag.error(path, 'HTTP route rule cannot contain both directResponse and redirect');
  } else if (http.directResponse) {
    if (hasRoute) diag.error(path, 'HTTP route cannot contain both route and directResponse');
    if (http.fault) diag.error(path, 'HTTP route cannot contain both fault and directResponse');
    if (http.rewrite) diag.error(path, 'HTTP route rule cannot contain both rewrite and directResponse');
  } else if (!hasRoute) {
    diag.error(path, 'HTTP route, redirect or directResponse is required');
  }
  if (http.mirror && (http.mirrors?.length ?? 0) > 0) diag.error(path, 'HTTP route cannot contain both mirror and mirrors');
}

// The delegate is looked up by name, so it must be a possible object name.
function checkDelegateRef(diag: Diagnostics, path: FieldPath, d: NonNullable<HttpRoute['delegate']>): void {
  if (!d.name) diag.error(path.key('name'), 'delegate name is required: the name of the VirtualService to delegate to');
  else if (!isDns1123Subdomain(d.name)) diag.error(path.key('name'), `invalid delegate name "${d.name}": must be a VirtualService name (lower case alphanumerics, "-" and ".")`);
  if (d.namespace && !isDns1123Label(d.namespace)) diag.error(path.key('namespace'), `invalid delegate namespace "${d.namespace}": ${DNS1123_LABEL_RULE}`);
}

/** validateHTTPRouteMatchRequest. */
function checkHttpMatch(diag: Diagnostics, path: FieldPath, m: z.infer<typeof httpMatchRequest>): void {
  for (const [name, sm] of Object.entries(m.headers ?? {})) {
    const p = path.key('headers').key(name);
    checkMatchHeaderName(diag, p, name);
    checkStringMatch(diag, p, sm);
  }
  for (const [name, sm] of Object.entries(m.withoutHeaders ?? {})) {
    const p = path.key('withoutHeaders').key(name);
    checkMatchHeaderName(diag, p, name);
    checkStringMatch(diag, p, sm, { allowStarRegex: true });
  }
  // Envoy matches an empty URI prefix as "everything"; its other string matchers reject an empty one.
  if (m.uri) checkStringMatch(diag, path.key('uri'), m.uri, { allowEmptyPrefix: true });
  for (const field of ['scheme', 'method', 'authority'] as const) {
    const sm = m[field];
    if (sm) checkStringMatch(diag, path.key(field), sm);
  }
  for (const [name, sm] of Object.entries(m.queryParams ?? {})) checkStringMatch(diag, path.key('queryParams').key(name), sm);
  if (m.port !== undefined && m.port !== 0) checkPort(diag, path.key('port'), m.port);
  checkLabels(diag, path.key('sourceLabels'), m.sourceLabels);
  checkGatewayNames(diag, path.key('gateways'), m.gateways);
  checkSourceNamespace(diag, path.key('sourceNamespace'), m.sourceNamespace);
}

function checkSourceNamespace(diag: Diagnostics, path: FieldPath, ns: string | undefined): void {
  if (ns !== undefined && ns !== '' && !isDns1123Label(ns)) diag.error(path, `sourceNamespace match ${ns} is invalid: ${DNS1123_LABEL_RULE}`);
}

/** validateCORSPolicy. */
function checkCors(diag: Diagnostics, path: FieldPath, cors: z.infer<typeof corsPolicy> | undefined): void {
  if (!cors) return;
  if (cors.allowOrigin !== undefined) diag.warn(path.key('allowOrigin'), 'allowOrigin is deprecated; use allowOrigins (exact, prefix or regex matches)');
  (cors.allowOrigins ?? []).forEach((origin, i) => {
    const p = path.key('allowOrigins').index(i);
    const type = checkOneOf(diag, p, origin, ['exact', 'prefix', 'regex']) as 'exact' | 'prefix' | 'regex' | undefined;
    const value = type === undefined ? '' : origin[type] ?? '';
    if (value === '') diag.error(p, `'${value}' is not a valid match type for CORS allow origins: set a non-empty exact, prefix or regex`);
    else if (type === 'regex') checkRegexString(diag, p.key('regex'), value);
  });
  (cors.allowMethods ?? []).forEach((method, i) => {
    if (!CORS_METHODS.includes(method)) diag.error(path.key('allowMethods').index(i), `"${method}" is not a supported HTTP method; use one of ${CORS_METHODS.join(', ')}`);
  });
  (cors.allowHeaders ?? []).forEach((name, i) => checkCorsHeaderName(diag, path.key('allowHeaders').index(i), name));
  (cors.exposeHeaders ?? []).forEach((name, i) => checkCorsHeaderName(diag, path.key('exposeHeaders').index(i), name));
  if (cors.maxAge !== undefined) {
    const ms = checkMsDuration(diag, path.key('maxAge'), cors.maxAge);
    // The Access-Control-Max-Age header counts whole seconds.
    if (ms !== undefined && ms % 1000 !== 0) diag.error(path.key('maxAge'), `maxAge duration "${cors.maxAge}" is accurate only to seconds precision: use whole seconds`);
  }
}

/** validateHTTPFaultInjection. */
function checkFault(diag: Diagnostics, path: FieldPath, fault: z.infer<typeof httpFaultInjection> | undefined): void {
  if (!fault) return;
  if (!fault.abort && !fault.delay) diag.error(path, 'HTTP fault injection must have an abort and/or a delay');
  const abort = fault.abort;
  if (abort) {
    const p = path.key('abort');
    if (abort.percentage) checkPercentage(diag, p.key('percentage').key('value'), abort.percentage.value);
    const type = checkOneOf(diag, p, abort, ['httpStatus', 'grpcStatus', 'http2Error']);
    if (type === undefined) diag.warn(p, 'abort configured, but error type not set (httpStatus, grpcStatus or http2Error)');
    if (type === 'httpStatus') checkHttpStatus(diag, p.key('httpStatus'), abort.httpStatus!);
    if (type === 'grpcStatus' && !GRPC_CODES.has(abort.grpcStatus!)) {
      diag.error(p.key('grpcStatus'), `gRPC status "${abort.grpcStatus}" is not supported. See https://github.com/grpc/grpc/blob/master/doc/statuscodes.md for a list of supported codes, for example 'NOT_FOUND'`);
    }
    if (type === 'http2Error') diag.error(p.key('http2Error'), 'HTTP/2 abort fault injection not supported yet; use httpStatus or grpcStatus');
  }
  const delay = fault.delay;
  if (delay) {
    const p = path.key('delay');
    if (delay.percentage) checkPercentage(diag, p.key('percentage').key('value'), delay.percentage.value);
    if (delay.percent !== undefined) {
      diag.warn(p.key('percent'), 'using deprecated setting "percent", use "percentage" instead');
      checkPercentInt(diag, p.key('percent'), delay.percent);
    }
    const type = checkOneOf(diag, p, delay, ['fixedDelay', 'exponentialDelay']);
    if (type === 'fixedDelay') checkMsDuration(diag, p.key('fixedDelay'), delay.fixedDelay!);
    if (type === 'exponentialDelay') {
      checkMsDuration(diag, p.key('exponentialDelay'), delay.exponentialDelay!);
      diag.error(p.key('exponentialDelay'), 'exponentialDelay not supported yet; use fixedDelay');
    }
  }
}

function checkHttpStatus(diag: Diagnostics, path: FieldPath, status: number): void {
  if (status < 200 || status > 599) diag.error(path, `HTTP status ${status} is not in range 200-599`);
}

/** validateHTTPRedirect. */
function checkRedirect(diag: Diagnostics, path: FieldPath, r: z.infer<typeof httpRedirect> | undefined): void {
  if (!r) return;
  if (!r.uri && !r.authority && !r.scheme && r.port === undefined && r.derivePort === undefined) {
    diag.error(path, 'redirect must specify uri, authority, scheme, or port (port or derivePort)');
  }
  if (r.port !== undefined && r.derivePort !== undefined) diag.error(path, 'only one of port or derivePort may be set');
  if (r.redirectCode !== undefined && r.redirectCode !== 0 && (r.redirectCode < 300 || r.redirectCode > 399)) {
    diag.error(path.key('redirectCode'), `${r.redirectCode} is not a valid redirect code, must be 3xx`);
  }
  if (r.scheme && r.scheme !== 'http' && r.scheme !== 'https') diag.error(path.key('scheme'), `invalid redirect scheme "${r.scheme}", must be "http" or "https"`);
  if (r.port) checkPort(diag, path.key('port'), r.port);
}

/** validateHTTPDirectResponse: a status Envoy can send, and a body small enough to ship in every route table. */
function checkDirectResponse(diag: Diagnostics, path: FieldPath, dr: z.infer<typeof httpDirectResponse> | undefined): void {
  if (!dr) return;
  const body = dr.body;
  if (body) {
    const type = checkOneOf(diag, path.key('body'), body, ['string', 'bytes']);
    const size = type === 'string' ? Buffer.byteLength(body.string ?? '') : type === 'bytes' ? Buffer.from(body.bytes ?? '', 'base64').length : 0;
    if (size > MB) diag.error(path.key('body'), `large directResponse bodies may impact control plane performance, must be less than 1MB (it has ${size} bytes)`);
    else if (size > 100 * KB) diag.warn(path.key('body'), `large directResponse bodies may impact control plane performance (it has ${size} bytes)`);
  }
  checkHttpStatus(diag, path.key('status'), dr.status);
}

/** validateHTTPRetry. */
function checkRetries(diag: Diagnostics, path: FieldPath, r: z.infer<typeof httpRetry> | undefined): void {
  if (!r) return;
  const attempts = r.attempts ?? 0;
  if (attempts < 0) diag.error(path.key('attempts'), `attempts cannot be negative (got ${attempts})`);
  if (attempts === 0 && (r.perTryTimeout !== undefined || (r.retryOn ?? '') !== '' || r.retryRemoteLocalities !== undefined)) {
    diag.error(path, 'http retry policy configured when attempts are set to 0 (disabled); set attempts above 0 or remove the policy');
  }
  if (r.perTryTimeout !== undefined) checkMsDuration(diag, path.key('perTryTimeout'), r.perTryTimeout);
  if (r.retryOn) {
    for (const policy of r.retryOn.split(',')) {
      const known = /^\d+$/.test(policy) && KNOWN_STATUS.has(Number(policy));
      if (!known && !RETRY_ON.has(policy)) {
        diag.error(path.key('retryOn'), `"${policy}" is not a valid retryOn policy; use HTTP status codes or ${[...RETRY_ON].join(', ')}`);
      }
    }
  }
  if (r.backoff !== undefined) checkMsDuration(diag, path.key('backoff'), r.backoff);
}

/** validateHTTPRewrite. */
function checkRewrite(diag: Diagnostics, path: FieldPath, r: z.infer<typeof httpRewrite> | undefined): void {
  if (!r) return;
  if (r.uri && r.uriRegexRewrite) {
    diag.error(path, 'rewrite may only contain one of uri or uriRegexRewrite');
    return;
  }
  if (!r.uri && !r.uriRegexRewrite && !r.authority) {
    diag.error(path, 'rewrite must specify at least one of uri, uriRegexRewrite, or authority');
    return;
  }
  const rr = r.uriRegexRewrite;
  if (rr) {
    const p = path.key('uriRegexRewrite');
    if (!rr.match || !rr.rewrite) diag.error(p, 'uriRegexRewrite requires both rewrite and match fields to be specified');
    else checkRegexString(diag, p.key('match'), rr.match);
  }
}

/** validateAuthorityRewrite: the authority is rewritten in one place only. */
function checkAuthorityRewrite(diag: Diagnostics, path: FieldPath, http: HttpRoute): void {
  let current = http.rewrite?.authority ?? '';
  const request = http.headers?.request;
  for (const op of ['set', 'add'] as const) {
    for (const [name, value] of Object.entries(request?.[op] ?? {})) {
      if (!isAuthorityHeader(name)) continue;
      if (current !== '') {
        diag.error(path.key('headers').key('request').key(op).key(name), `authority header cannot be set multiple times: have "${current}", attempting to set "${value}"`);
        return;
      }
      current = value;
    }
  }
}

/** validateTLSRoute: TLS routes match by SNI; every SNI host must fall inside one of the VirtualService's hosts. */
function checkTlsRoute(diag: Diagnostics, path: FieldPath, tls: TlsRoute, hosts: readonly string[], appliesToGateway: boolean): void {
  const matches = tls.match ?? [];
  if (matches.length === 0) diag.error(path.key('match'), 'TLS route must have at least one match condition');
  matches.forEach((m, i) => {
    const p = path.key('match').index(i);
    const snis = m.sniHosts ?? [];
    if (snis.length === 0) diag.error(p.key('sniHosts'), 'TLS match must have at least one SNI host');
    snis.forEach((sni, j) => {
      const sp = p.key('sniHosts').index(j);
      const problem = appliesToGateway ? gatewayHostProblem(sni, true) : wildcardDomainProblem(sni);
      if (problem) {
        if (isIpAddress(sni)) diag.warn(sp, `using an IP address ("${sni}") goes against SNI spec and most clients do not support this`);
        else diag.error(sp, problem);
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

/** validateTCPRoute. */
function checkTcpRoute(diag: Diagnostics, path: FieldPath, tcp: TcpRoute): void {
  (tcp.match ?? []).forEach((m, i) => {
    const p = path.key('match').index(i);
    if (m.sourceSubnet) checkIpSubnet(diag, p.key('sourceSubnet'), m.sourceSubnet);
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
  (m.destinationSubnets ?? []).forEach((s, i) => checkIpSubnet(diag, path.key('destinationSubnets').index(i), s));
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
