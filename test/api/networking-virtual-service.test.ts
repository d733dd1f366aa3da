// VirtualService semantic rules (Istio's ValidateVirtualService): every rule
// with its exact path and message, errors and warnings apart.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { istioKinds, validateObject } from '../../src/api/index.ts';
import { runCases } from './networking-helpers.ts';
import type { RuleCase } from './networking-helpers.ts';

const dest = { destination: { host: 'reviews' } };
/** A VirtualService for `reviews` with one HTTP route made of `route`. */
const http = (route: Record<string, unknown>) => ({ hosts: ['reviews'], http: [{ route: [dest], ...route }] });
/** The same without the default route, for redirect/directResponse/delegate. */
const httpBare = (route: Record<string, unknown>) => ({ hosts: ['reviews'], http: [route] });

describe('VirtualService: hosts, gateways, route kinds', () => {
  const cases: RuleCase[] = [
    { name: 'no routes at all', spec: { hosts: ['reviews'] }, errors: [['spec', 'http, tcp or tls must be provided in virtual service']] },
    {
      name: 'invalid host names',
      spec: { hosts: ['Reviews', 'a..b', '*.example.com', '10.1.2.3', '::1'], http: [{ route: [dest] }] },
      errors: [
        ['spec.hosts[0]', 'domain name "Reviews" invalid (label "Reviews" invalid)'],
        ['spec.hosts[1]', 'domain name "a..b" invalid (label "" invalid)'],
      ],
    },
    {
      name: 'wildcard host bound to the mesh',
      spec: { hosts: ['*'], http: [{ route: [dest] }] },
      errors: [['spec.hosts[0]', 'wildcard host * is not allowed for virtual services bound to the mesh gateway; name the hosts, or bind the virtual service to gateways only']],
    },
    {
      name: 'wildcard host on a gateway only is fine',
      spec: { hosts: ['*'], gateways: ['bookinfo-gateway'], http: [{ route: [dest] }] },
      errors: [],
    },
    {
      name: 'wildcard host with mesh among the gateways',
      spec: { hosts: ['*'], gateways: ['bookinfo-gateway', 'mesh'], http: [{ route: [dest] }] },
      errors: [['spec.hosts[0]', 'wildcard host * is not allowed for virtual services bound to the mesh gateway; name the hosts, or bind the virtual service to gateways only']],
    },
    {
      name: 'gateway references',
      spec: { hosts: ['reviews'], gateways: ['ns/', 'Bad_NS/gw', 'ns/Bad.Name', 'gw_1'], http: [{ route: [dest] }] },
      errors: [
        ['spec.gateways[0]', 'invalid gateway reference "ns/": config namespace and gateway name cannot be empty; use "<namespace>/<name>"'],
        ['spec.gateways[1]', 'invalid value for namespace: "Bad_NS" in gateway reference "Bad_NS/gw": must be a DNS-1123 label (lower case alphanumerics and "-", at most 63 characters)'],
        ['spec.gateways[2]', 'invalid value for gateway name: "Bad.Name" in gateway reference "ns/Bad.Name": must be a DNS-1123 label (lower case alphanumerics and "-", at most 63 characters)'],
        ['spec.gateways[3]', 'invalid gateway name "gw_1": domain name "gw_1" invalid (label "gw_1" invalid); use "mesh", "<name>" or "<namespace>/<name>"'],
      ],
    },
    {
      name: 'legacy FQDN gateway name is a warning',
      spec: { hosts: ['reviews'], gateways: ['my-gateway.istio-system.svc.cluster.local'], http: [{ route: [dest] }] },
      errors: [],
      warnings: [['spec.gateways[0]', 'using legacy gatewayName format "my-gateway.istio-system.svc.cluster.local"; prefer the <namespace>/<name> format: "istio-system/my-gateway"']],
    },
    {
      name: 'delegate virtual service (no hosts) cannot bind gateways or carry tls/tcp',
      spec: {
        gateways: ['gw'],
        http: [{ route: [dest] }],
        tls: [{ match: [{ sniHosts: ['a.com'] }], route: [dest] }],
        tcp: [{ route: [dest] }],
      },
      errors: [
        ['spec.gateways', 'delegate virtual service (one without hosts) must have no gateways specified'],
        ['spec.tls', 'delegate virtual service (one without hosts) must have no tls route specified'],
        ['spec.tcp', 'delegate virtual service (one without hosts) must have no tcp route specified'],
        ['spec.tls[0].match[0].sniHosts[0]', 'SNI host "a.com" is not a compatible subset of any of the virtual service hosts: []'],
      ],
    },
    {
      name: 'exportTo values',
      spec: { hosts: ['reviews'], http: [{ route: [dest] }], exportTo: ['.', '.', 'Bad', '~'] },
      errors: [
        ['spec.exportTo[1]', 'duplicate entries in exportTo: . and current namespace default'],
        ['spec.exportTo[2]', 'invalid exportTo entry "Bad": only ".", "*" or a valid DNS-1123 label (a namespace name) is allowed'],
        ['spec.exportTo[3]', 'exportTo ~ (none) is not allowed for Istio configuration objects other than ServiceEntry; use ".", "*" or a namespace name'],
      ],
    },
    {
      name: 'exportTo "." and the own namespace are duplicates',
      spec: { hosts: ['reviews'], http: [{ route: [dest] }], exportTo: ['bookinfo', '.'] },
      namespace: 'bookinfo',
      errors: [['spec.exportTo[1]', 'duplicate entries in exportTo: . and current namespace bookinfo']],
    },
    {
      name: 'exportTo a namespace twice',
      spec: { hosts: ['reviews'], http: [{ route: [dest] }], exportTo: ['.', 'foo', 'foo'] },
      errors: [['spec.exportTo[2]', 'duplicate entries in exportTo for entry foo']],
    },
    {
      name: 'exportTo "*" with others',
      spec: { hosts: ['reviews'], http: [{ route: [dest] }], exportTo: ['*', 'foo'] },
      errors: [['spec.exportTo', 'cannot have both public (*) and non-public exportTo values for a resource']],
    },
    {
      name: 'overlapping hosts',
      spec: { hosts: ['*.example.com', 'a.example.com', 'b.org', 'b.org'], http: [{ route: [dest] }] },
      errors: [
        ['spec.hosts[1]', 'duplicate hosts in virtual service: *.example.com & a.example.com'],
        ['spec.hosts[3]', 'duplicate hosts in virtual service: b.org & b.org'],
      ],
    },
    {
      name: 'all-numeric top-level domain (an IP is fine)',
      spec: { hosts: ['svc.123', '192.168.0.1'], http: [{ route: [dest] }] },
      errors: [['spec.hosts[0]', 'domain name "svc.123" invalid (top level domain "123" cannot be all-numeric)']],
    },
    {
      name: 'JWT claim routing needs a gateway-only virtual service',
      spec: { hosts: ['reviews'], gateways: ['mesh', 'gw'], http: [{ match: [{ headers: { '@request.auth.claims.sub': { exact: 'a' } } }], route: [dest] }] },
      errors: [['spec.http[0].match[0].headers["@request.auth.claims.sub"]', 'JWT claim based routing (key: @request.auth.claims.sub) is only supported for gateway, found no gateways: [mesh gw]; bind the virtual service to gateways only (not mesh)']],
    },
    {
      name: 'JWT claim routing on a gateway',
      spec: { hosts: ['reviews.example.com'], gateways: ['gw'], http: [{ match: [{ withoutHeaders: { '@request.auth.claims[groups]': { exact: 'a' } } }], route: [dest] }] },
      errors: [],
    },
    {
      name: 'AUTO_PASSTHROUGH SNI names on a gateway',
      spec: {
        hosts: ['outbound_.8443_._.login.example.com', 'outbound_.x_._.a.com'],
        gateways: ['gw'],
        tls: [{ match: [{ sniHosts: ['outbound_.8443_._.login.example.com'] }], route: [dest] }],
      },
      errors: [['spec.hosts[1]', 'domain name "outbound_.x_._.a.com" invalid: should follow outbound_.<PORT>_._.<HOSTNAME> format']],
    },
  ];
  runCases('VirtualService', cases);
});

describe('VirtualService: HTTP route exclusivity', () => {
  const cases: RuleCase[] = [
    { name: 'nothing to do', spec: httpBare({ name: 'empty' }), errors: [['spec.http[0]', 'HTTP route, redirect or directResponse is required']] },
    {
      name: 'route and redirect and fault and rewrite',
      spec: http({ redirect: { uri: '/x' }, fault: { abort: { httpStatus: 500 } }, rewrite: { uri: '/y' } }),
      errors: [
        ['spec.http[0]', 'HTTP route cannot contain both route and redirect'],
        ['spec.http[0]', 'HTTP route cannot contain both fault and redirect'],
        ['spec.http[0]', 'HTTP route rule cannot contain both rewrite and redirect'],
      ],
    },
    {
      name: 'redirect with directResponse',
      spec: httpBare({ directResponse: { status: 200 }, redirect: { uri: '/x' } }),
      errors: [['spec.http[0]', 'HTTP route rule cannot contain both directResponse and redirect']],
    },
    {
      name: 'directResponse with route, fault and rewrite',
      spec: http({ directResponse: { status: 200 }, fault: { abort: { httpStatus: 500 } }, rewrite: { uri: '/y' } }),
      errors: [
        ['spec.http[0]', 'HTTP route cannot contain both route and directResponse'],
        ['spec.http[0]', 'HTTP route cannot contain both fault and directResponse'],
        ['spec.http[0]', 'HTTP route rule cannot contain both rewrite and directResponse'],
      ],
    },
    {
      name: 'a delegating (root) route takes no route or redirect',
      spec: http({ name: 'api', delegate: { name: 'd' }, redirect: { uri: '/x' } }),
      errors: [
        ['spec.http[0].redirect', 'root HTTP route "api" must not specify redirect: a delegating route takes its behaviour from the delegate'],
        ['spec.http[0].route', 'root HTTP route "api" must not specify route: a delegating route takes its behaviour from the delegate'],
      ],
    },
    {
      name: 'a delegating route with only a delegate',
      spec: httpBare({ delegate: { name: 'reviews-v2.routes', namespace: 'team-a' } }),
      errors: [],
    },
    {
      name: 'delegate references',
      spec: { hosts: ['r'], http: [{ match: [{ uri: { prefix: '/a' } }], delegate: { name: '' } }, { delegate: { name: 'Bad_Name', namespace: 'Bad' } }] },
      errors: [
        ['spec.http[0].delegate.name', 'delegate name is required: the name of the VirtualService to delegate to'],
        ['spec.http[1].delegate.name', 'invalid delegate name "Bad_Name": must be a VirtualService name (lower case alphanumerics, "-" and ".")'],
        ['spec.http[1].delegate.namespace', 'invalid delegate namespace "Bad": must be a DNS-1123 label (lower case alphanumerics and "-", at most 63 characters)'],
      ],
    },
    {
      name: 'a delegate virtual service cannot delegate again',
      spec: { http: [{ delegate: { name: 'x' } }] },
      errors: [
        ['spec.http[0].delegate', 'delegate HTTP route cannot contain delegate: delegation is one level deep'],
        ['spec.http[0]', 'HTTP route, redirect or directResponse is required'],
      ],
    },
    {
      name: 'mirror and mirrors together',
      spec: http({ mirror: { host: 'a' }, mirrors: [{ destination: { host: 'b' } }, {}] }),
      errors: [
        ['spec.http[0]', 'HTTP route cannot contain both mirror and mirrors'],
        ['spec.http[0].mirrors[1].destination', 'destination is required for mirrors'],
      ],
    },
  ];
  runCases('VirtualService', cases);
});

describe('VirtualService: destinations and weights', () => {
  const cases: RuleCase[] = [
    {
      name: 'weights are relative: 30/30 is valid, with a warning that they do not sum to 100',
      spec: { hosts: ['reviews'], http: [{ route: [{ ...dest, weight: 30 }, { destination: { host: 'r2' }, weight: 30 }] }] },
      errors: [],
      warnings: [['spec.http[0].route', 'destination weights sum to 60, not 100; each destination gets weight/60 of the traffic']],
    },
    {
      name: 'one destination needs no weight',
      spec: { hosts: ['reviews'], http: [{ route: [{ ...dest, weight: 0 }] }] },
      errors: [],
    },
    {
      name: 'all weights zero',
      spec: { hosts: ['reviews'], http: [{ route: [dest, { destination: { host: 'r2' }, weight: 0 }] }] },
      errors: [['spec.http[0].route', 'total destination weight = 0: with several destinations at least one needs a weight above 0']],
    },
    {
      name: 'negative weight',
      spec: { hosts: ['reviews'], http: [{ route: [{ ...dest, weight: -10 }, { destination: { host: 'r2' }, weight: 110 }] }] },
      errors: [['spec.http[0].route[0].weight', 'weight -10 must not be negative']],
    },
    {
      name: 'destination host, subset and port',
      spec: {
        hosts: ['reviews'],
        http: [{ route: [
          { destination: { host: '*' }, weight: 50 },
          { destination: { host: 'r', subset: 'V_1', port: { number: 70000 } }, weight: 50 },
          { weight: 0 },
        ] }],
      },
      errors: [
        ['spec.http[0].route[0].destination.host', 'invalid destination host *: a destination must name a service, not the full wildcard'],
        ['spec.http[0].route[1].destination.subset', 'subset name is invalid: "V_1": must be a DNS-1123 label (lower case alphanumerics and "-", at most 63 characters)'],
        ['spec.http[0].route[1].destination.port.number', 'port number 70000 must be in the range 1..65535'],
        ['spec.http[0].route[2].destination', 'destination is required'],
      ],
    },
    {
      name: 'an empty subset means no subset',
      spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'r', subset: '' } }] }] },
      errors: [],
    },
    {
      name: 'header manipulation names',
      spec: http({
        headers: { request: { set: { ':authority': 'ok', ':path': '/x' }, remove: ['', 'host'] }, response: { add: { ':status': '1' }, set: { Host: 'h' } } },
        route: [{ destination: { host: 'r' }, headers: { request: { add: { ':method': 'GET' } } } }],
      }),
      errors: [
        ['spec.http[0].headers.request.set[":path"]', 'invalid header ":path": header cannot have ":" prefix'],
        ['spec.http[0].headers.request.remove[0]', 'header name cannot be empty'],
        ['spec.http[0].headers.request.remove[1]', 'invalid header "host": cannot set Host header (rewrite the authority instead)'],
        ['spec.http[0].headers.response.set.Host', 'invalid header "Host": cannot set Host header (rewrite the authority instead)'],
        ['spec.http[0].headers.response.add[":status"]', 'invalid header ":status": header cannot have ":" prefix'],
        ['spec.http[0].route[0].headers.request.add[":method"]', 'invalid header ":method": header cannot have ":" prefix'],
      ],
    },
    {
      name: 'authority rewritten twice',
      spec: http({ rewrite: { authority: 'a' }, headers: { request: { add: { Host: 'b' } } } }),
      errors: [['spec.http[0].headers.request.add.Host', 'authority header cannot be set multiple times: have "a", attempting to set "b"']],
    },
  ];
  runCases('VirtualService', cases);
});

describe('VirtualService: match conditions', () => {
  const cases: RuleCase[] = [
    {
      name: 'regex syntax is RE2 and not empty',
      spec: http({ match: [{ uri: { regex: '(?=lookahead)' }, authority: { regex: '' }, queryParams: { q: { regex: '[a-' } } }] }),
      errors: [
        ['spec.http[0].match[0].uri.regex', 'invalid regex "(?=lookahead)" (RE2 syntax): error parsing regexp: invalid or unsupported Perl syntax: `(?=`'],
        ['spec.http[0].match[0].authority.regex', 'regex string match should not be empty'],
        ['spec.http[0].match[0].queryParams.q.regex', 'invalid regex "[a-" (RE2 syntax): error parsing regexp: missing closing ]: `[a-`'],
      ],
    },
    {
      name: 'regex too long',
      spec: http({ match: [{ uri: { regex: 'a'.repeat(1025) } }] }),
      errors: [['spec.http[0].match[0].uri.regex', 'regex is too large (1025 characters), max length allowed is 1024']],
    },
    {
      name: 'empty prefix: fine for uri, not for other matches',
      spec: http({ match: [{ uri: { prefix: '' }, method: { prefix: '' }, headers: { 'x-a': { prefix: '' } }, queryParams: { q: { prefix: '' } } }] }),
      errors: [
        ['spec.http[0].match[0].headers.x-a.prefix', 'prefix string match should not be empty (omit the match to match everything)'],
        ['spec.http[0].match[0].method.prefix', 'prefix string match should not be empty (omit the match to match everything)'],
        ['spec.http[0].match[0].queryParams.q.prefix', 'prefix string match should not be empty (omit the match to match everything)'],
      ],
    },
    {
      name: 'pseudo-headers and presence matches',
      spec: http({ match: [{ headers: { ':path': { prefix: '/a' }, 'x-any': {} }, withoutHeaders: { 'x-debug': { regex: '*' } } }] }),
      errors: [],
    },
    {
      name: 'more than one match type',
      spec: http({ match: [{ uri: { exact: '/a', prefix: '/' } }] }),
      errors: [['spec.http[0].match[0].uri', 'only one of exact, prefix, regex may be set (found: exact, prefix)']],
    },
    {
      name: 'header names, ports, labels, gateways, source namespace',
      spec: http({
        match: [{
          headers: { 'x y': { exact: 'a' }, '@request.auth.claims.': { exact: 'b' } },
          withoutHeaders: { ':foo': { prefix: '/' } },
          port: 70000,
          sourceLabels: { 'bad key!': 'v' },
          gateways: ['a/'],
          sourceNamespace: 'Not_A_Label',
        }],
      }),
      errors: [
        ['spec.http[0].match[0].headers["x y"]', 'header name x y is not a valid header name: use RFC 7230 token characters (letters, digits and !#$%&\'*+-.^_`|~)'],
        ['spec.http[0].match[0].headers["@request.auth.claims."]', 'header name @request.auth.claims. is not a valid header name: use RFC 7230 token characters (letters, digits and !#$%&\'*+-.^_`|~)'],
        ['spec.http[0].match[0].withoutHeaders[":foo"]', 'header name :foo is not a valid header name: use RFC 7230 token characters (letters, digits and !#$%&\'*+-.^_`|~)'],
        ['spec.http[0].match[0].port', 'port number 70000 must be in the range 1..65535'],
        ['spec.http[0].match[0].sourceLabels["bad key!"]', 'invalid label key "bad key!": name must be 1-63 characters of [A-Za-z0-9_.-], starting and ending alphanumeric'],
        ['spec.http[0].match[0].gateways[0]', 'invalid gateway reference "a/": config namespace and gateway name cannot be empty; use "<namespace>/<name>"'],
        ['spec.http[0].match[0].sourceNamespace', 'sourceNamespace match Not_A_Label is invalid: must be a DNS-1123 label (lower case alphanumerics and "-", at most 63 characters)'],
      ],
    },
  ];
  runCases('VirtualService', cases);
});

describe('VirtualService: redirect, directResponse, rewrite', () => {
  const cases: RuleCase[] = [
    { name: 'empty redirect', spec: httpBare({ redirect: {} }), errors: [['spec.http[0].redirect', 'redirect must specify uri, authority, scheme, or port (port or derivePort)']] },
    {
      name: 'redirect code, scheme, port',
      spec: httpBare({ redirect: { uri: '/a', redirectCode: 200, scheme: 'ftp', port: 70000, derivePort: 'FROM_REQUEST_PORT' } }),
      errors: [
        ['spec.http[0].redirect', 'only one of port or derivePort may be set'],
        ['spec.http[0].redirect.redirectCode', '200 is not a valid redirect code, must be 3xx'],
        ['spec.http[0].redirect.scheme', 'invalid redirect scheme "ftp", must be "http" or "https"'],
        ['spec.http[0].redirect.port', 'port number 70000 must be in the range 1..65535'],
      ],
    },
    {
      name: 'directResponse status and body',
      spec: httpBare({ directResponse: { status: 104, body: { string: 'a', bytes: 'YQ==' } } }),
      errors: [
        ['spec.http[0].directResponse.body', 'only one of string, bytes may be set (found: string, bytes)'],
        ['spec.http[0].directResponse.status', 'HTTP status 104 is not in range 200-599'],
      ],
    },
    {
      name: 'directResponse body too large',
      spec: httpBare({ directResponse: { status: 200, body: { string: 'x'.repeat(1024 * 1024 + 1) } } }),
      errors: [['spec.http[0].directResponse.body', 'large directResponse bodies may impact control plane performance, must be less than 1MB (it has 1048577 bytes)']],
    },
    {
      name: 'directResponse body above 100KB (warning)',
      spec: httpBare({ directResponse: { status: 200, body: { bytes: Buffer.alloc(200 * 1024).toString('base64') } } }),
      errors: [],
      warnings: [['spec.http[0].directResponse.body', 'large directResponse bodies may impact control plane performance (it has 204800 bytes)']],
    },
    { name: 'empty rewrite', spec: http({ rewrite: {} }), errors: [['spec.http[0].rewrite', 'rewrite must specify at least one of uri, uriRegexRewrite, or authority']] },
    {
      name: 'uri and uriRegexRewrite together',
      spec: http({ rewrite: { uri: '/a', uriRegexRewrite: { match: '(', rewrite: '/b' } } }),
      errors: [['spec.http[0].rewrite', 'rewrite may only contain one of uri or uriRegexRewrite']],
    },
    {
      name: 'uriRegexRewrite needs match and rewrite',
      spec: http({ rewrite: { uriRegexRewrite: { rewrite: '/x' } } }),
      errors: [['spec.http[0].rewrite.uriRegexRewrite', 'uriRegexRewrite requires both rewrite and match fields to be specified']],
    },
    {
      name: 'uriRegexRewrite match is RE2',
      spec: http({ rewrite: { uriRegexRewrite: { match: '(', rewrite: '/x' } } }),
      errors: [['spec.http[0].rewrite.uriRegexRewrite.match', 'invalid regex "(" (RE2 syntax): error parsing regexp: missing closing ): `(`']],
    },
  ];
  runCases('VirtualService', cases);
});

describe('VirtualService: timeout, retries, fault, mirror, CORS', () => {
  const cases: RuleCase[] = [
    { name: 'timeout malformed', spec: http({ timeout: '10' }), errors: [['spec.http[0].timeout', 'invalid duration "10" (use a number with a unit: ns, us, ms, s, m, h, such as "1.5s")']] },
    { name: 'timeout below 1ms', spec: http({ timeout: '500us' }), errors: [['spec.http[0].timeout', 'duration "500us" must be greater than 1ms']] },
    { name: 'timeout finer than 1ms', spec: http({ timeout: '1.5ms' }), errors: [['spec.http[0].timeout', 'duration "1.5ms": only durations to ms precision are supported']] },
    {
      name: 'retries: negative attempts, bad perTryTimeout and retryOn',
      spec: http({ retries: { attempts: -1, perTryTimeout: '0.5ms', retryOn: '5xx,gateway-error,503,999,bogus', backoff: '1' } }),
      errors: [
        ['spec.http[0].retries.attempts', 'attempts cannot be negative (got -1)'],
        ['spec.http[0].retries.perTryTimeout', 'duration "0.5ms" must be greater than 1ms'],
        ['spec.http[0].retries.retryOn', '"999" is not a valid retryOn policy; use HTTP status codes or 5xx, gateway-error, reset, reset-before-request, connect-failure, retriable-4xx, refused-stream, retriable-status-codes, retriable-headers, envoy-ratelimited, http3-post-connect-failure, cancelled, deadline-exceeded, internal, resource-exhausted, unavailable'],
        ['spec.http[0].retries.retryOn', '"bogus" is not a valid retryOn policy; use HTTP status codes or 5xx, gateway-error, reset, reset-before-request, connect-failure, retriable-4xx, refused-stream, retriable-status-codes, retriable-headers, envoy-ratelimited, http3-post-connect-failure, cancelled, deadline-exceeded, internal, resource-exhausted, unavailable'],
        ['spec.http[0].retries.backoff', 'invalid duration "1" (use a number with a unit: ns, us, ms, s, m, h, such as "1.5s")'],
      ],
    },
    {
      name: 'retries: policy with attempts 0',
      spec: http({ retries: { attempts: 0, retryOn: '5xx' } }),
      errors: [['spec.http[0].retries', 'http retry policy configured when attempts are set to 0 (disabled); set attempts above 0 or remove the policy']],
    },
    { name: 'retries disabled cleanly', spec: http({ retries: { attempts: 0 } }), errors: [] },
    { name: 'fault with nothing', spec: http({ fault: {} }), errors: [['spec.http[0].fault', 'HTTP fault injection must have an abort and/or a delay']] },
    {
      name: 'fault abort status and percentage',
      spec: http({ fault: { abort: { httpStatus: 700, percentage: { value: 101 } } } }),
      errors: [
        ['spec.http[0].fault.abort.percentage.value', 'percentage 101 is neither 0.0, nor in range [0.0001, 100.0]'],
        ['spec.http[0].fault.abort.httpStatus', 'HTTP status 700 is not in range 200-599'],
      ],
    },
    {
      name: 'fault abort without a type (warning), with two, with http2Error',
      spec: {
        hosts: ['r'],
        http: [
          { match: [{ port: 1 }], route: [dest], fault: { abort: {} } },
          { match: [{ port: 2 }], route: [dest], fault: { abort: { httpStatus: 500, grpcStatus: 'NOPE' } } },
          { route: [dest], fault: { abort: { http2Error: 'REFUSED_STREAM', percentage: { value: 0.00001 } } } },
        ],
      },
      errors: [
        ['spec.http[1].fault.abort', 'only one of httpStatus, grpcStatus, http2Error may be set (found: httpStatus, grpcStatus)'],
        ['spec.http[2].fault.abort.percentage.value', 'percentage 0.00001 is neither 0.0, nor in range [0.0001, 100.0]'],
        ['spec.http[2].fault.abort.http2Error', 'HTTP/2 abort fault injection not supported yet; use httpStatus or grpcStatus'],
      ],
      warnings: [['spec.http[0].fault.abort', 'abort configured, but error type not set (httpStatus, grpcStatus or http2Error)']],
    },
    {
      name: 'fault abort gRPC status name',
      spec: http({ fault: { abort: { grpcStatus: 'NOPE' } } }),
      errors: [['spec.http[0].fault.abort.grpcStatus', "gRPC status \"NOPE\" is not supported. See https://github.com/grpc/grpc/blob/master/doc/statuscodes.md for a list of supported codes, for example 'NOT_FOUND'"]],
    },
    {
      name: 'fault delay: fixedDelay below 1ms, percentage out of range',
      spec: http({ fault: { delay: { fixedDelay: '0s', percentage: { value: -1 } } } }),
      errors: [
        ['spec.http[0].fault.delay.percentage.value', 'percentage -1 is neither 0.0, nor in range [0.0001, 100.0]'],
        ['spec.http[0].fault.delay.fixedDelay', 'duration "0s" must be greater than 1ms'],
      ],
    },
    {
      name: 'fault delay: exponentialDelay unsupported, deprecated percent',
      spec: http({ fault: { delay: { exponentialDelay: '1s', percent: 150 } } }),
      errors: [
        ['spec.http[0].fault.delay.percent', 'percentage 150 is not in range 0..100'],
        ['spec.http[0].fault.delay.exponentialDelay', 'exponentialDelay not supported yet; use fixedDelay'],
      ],
      warnings: [['spec.http[0].fault.delay.percent', 'using deprecated setting "percent", use "percentage" instead']],
    },
    { name: 'fault delay without a delay type does nothing, as in Istio', spec: http({ fault: { delay: { percentage: { value: 5 } } } }), errors: [] },
    {
      name: 'mirror percentages',
      spec: http({ mirror: { host: 'm' }, mirrorPercent: 101, mirrorPercentage: { value: 100.5 } }),
      errors: [
        ['spec.http[0].mirrorPercent', 'mirrorPercent must have a max value of 100 (it has 101)'],
        ['spec.http[0].mirrorPercentage.value', 'mirrorPercentage must have a max value of 100 (it has 100.5)'],
      ],
      warnings: [['spec.http[0].mirrorPercent', 'using deprecated setting "mirrorPercent", use "mirrorPercentage" instead']],
    },
    {
      name: 'mirrors entries',
      spec: http({ mirrors: [{ destination: { host: '*' }, percentage: { value: 200 } }] }),
      errors: [
        ['spec.http[0].mirrors[0].destination.host', 'invalid destination host *: a destination must name a service, not the full wildcard'],
        ['spec.http[0].mirrors[0].percentage.value', 'mirror percentage must have a max value of 100 (it has 200)'],
      ],
    },
    {
      name: 'CORS policy',
      spec: http({
        corsPolicy: {
          allowOrigin: ['https://a.com'],
          allowOrigins: [{}, { regex: '(' }, { exact: '' }],
          allowMethods: ['GET', 'FETCH'],
          allowHeaders: ['x y'],
          exposeHeaders: [''],
          maxAge: '1500ms',
        },
      }),
      errors: [
        ['spec.http[0].corsPolicy.allowOrigins[0]', "'' is not a valid match type for CORS allow origins: set a non-empty exact, prefix or regex"],
        ['spec.http[0].corsPolicy.allowOrigins[1].regex', 'invalid regex "(" (RE2 syntax): error parsing regexp: missing closing ): `(`'],
        ['spec.http[0].corsPolicy.allowOrigins[2]', "'' is not a valid match type for CORS allow origins: set a non-empty exact, prefix or regex"],
        ['spec.http[0].corsPolicy.allowMethods[1]', '"FETCH" is not a supported HTTP method; use one of GET, HEAD, POST, PUT, PATCH, DELETE, CONNECT, OPTIONS, TRACE, *'],
        ['spec.http[0].corsPolicy.allowHeaders[0]', 'header name x y is not a valid header name: use RFC 7230 token characters or "*"'],
        ['spec.http[0].corsPolicy.exposeHeaders[0]', 'header name cannot be empty'],
        ['spec.http[0].corsPolicy.maxAge', 'maxAge duration "1500ms" is accurate only to seconds precision: use whole seconds'],
      ],
      warnings: [['spec.http[0].corsPolicy.allowOrigin', 'allowOrigin is deprecated; use allowOrigins (exact, prefix or regex matches)']],
    },
  ];
  runCases('VirtualService', cases);
});

describe('VirtualService: TLS and TCP routes', () => {
  const cases: RuleCase[] = [
    {
      name: 'TLS route without match or route',
      spec: { hosts: ['a.example.com'], tls: [{}] },
      errors: [
        ['spec.tls[0].match', 'TLS route must have at least one match condition'],
        ['spec.tls[0].route', 'TLS route is required: add at least one route destination'],
      ],
    },
    {
      name: 'SNI hosts must exist and fall inside the hosts',
      spec: {
        hosts: ['*.example.com', 'b.org'],
        tls: [{ match: [{ sniHosts: [] }, { sniHosts: ['a.example.com', '*.x.example.com', 'c.org', 'B!.org'] }], route: [dest] }],
      },
      errors: [
        ['spec.tls[0].match[0].sniHosts', 'TLS match must have at least one SNI host'],
        ['spec.tls[0].match[1].sniHosts[2]', 'SNI host "c.org" is not a compatible subset of any of the virtual service hosts: [*.example.com, b.org]'],
        ['spec.tls[0].match[1].sniHosts[3]', 'domain name "B!.org" invalid (label "B!" invalid)'],
      ],
    },
    {
      name: 'an IP as SNI host (warning)',
      spec: { hosts: ['a.com'], tls: [{ match: [{ sniHosts: ['10.0.0.1'] }], route: [dest] }] },
      errors: [],
      warnings: [['spec.tls[0].match[0].sniHosts[0]', 'using an IP address ("10.0.0.1") goes against SNI spec and most clients do not support this']],
    },
    {
      name: 'L4 match attributes',
      spec: {
        hosts: ['a.com'],
        tls: [{ match: [{ sniHosts: ['a.com'], destinationSubnets: ['10.0.0.0/33'], port: 65536, sourceNamespace: 'X' }], route: [dest] }],
        tcp: [{ match: [{ sourceSubnet: 'nope', destinationSubnets: ['1.2.3.4'], gateways: ['/gw'] }], route: [dest] }],
      },
      errors: [
        ['spec.tls[0].match[0].destinationSubnets[0]', '10.0.0.0/33 is not a valid CIDR block'],
        ['spec.tls[0].match[0].port', 'port number 65536 must be in the range 1..65535'],
        ['spec.tls[0].match[0].sourceNamespace', 'sourceNamespace match X is invalid: must be a DNS-1123 label (lower case alphanumerics and "-", at most 63 characters)'],
        ['spec.tcp[0].match[0].sourceSubnet', 'nope is not a valid IP'],
        ['spec.tcp[0].match[0].gateways[0]', 'invalid gateway reference "/gw": config namespace and gateway name cannot be empty; use "<namespace>/<name>"'],
      ],
    },
    {
      name: 'TCP route needs destinations with weights',
      spec: { hosts: ['a.com'], tcp: [{}, { route: [{ destination: { host: 'a' } }, { destination: { host: 'b' } }] }] },
      errors: [
        ['spec.tcp[0].route', 'TCP route is required: add at least one route destination'],
        ['spec.tcp[1].route', 'total destination weight = 0: with several destinations at least one needs a weight above 0'],
      ],
      warnings: [['spec.tcp[1]', 'virtualService rule #1 not used (only the last rule can have no matches)']],
    },
  ];
  runCases('VirtualService', cases);
});

describe('VirtualService: unreachable rules (warnings)', () => {
  const cases: RuleCase[] = [
    {
      name: 'rules after a catch-all',
      spec: { hosts: ['r'], http: [{ route: [dest] }, { name: 'late', match: [{ uri: { exact: '/a' } }], route: [dest] }, { route: [dest] }] },
      errors: [],
      warnings: [
        ['spec.http[1]', 'virtualService rule "late" not used (route without matches defined before)'],
        ['spec.http[2]', 'virtualService rule #2 not used (only the last rule can have no matches)'],
      ],
    },
    {
      name: 'duplicate matches (names ignored)',
      spec: {
        hosts: ['r'],
        http: [
          { name: 'first', match: [{ name: 'm', uri: { exact: '/a' }, ignoreUriCase: false }], route: [dest] },
          { match: [{ name: 'other', uri: { exact: '/a' } }, { uri: { exact: '/b' } }], route: [dest] },
          { match: [{ uri: { exact: '/b' } }], route: [dest] },
        ],
      },
      errors: [],
      warnings: [
        ['spec.http[1].match[0]', 'virtualService rule #1 match "other" is not used (duplicate/overlapping match in rule "first")'],
        ['spec.http[2].match[0]', 'virtualService rule #2 match #0 is not used (duplicate/overlapping match in rule #1)'],
        ['spec.http[2]', 'virtualService rule #2 not used (all matches used by prior rules)'],
      ],
    },
    {
      name: 'a longer prefix after a shorter one',
      spec: {
        hosts: ['r'],
        http: [
          { name: 'api', match: [{ uri: { prefix: '/api' } }], route: [dest] },
          { name: 'v1', match: [{ name: 'v1', uri: { prefix: '/api/v1' } }], route: [dest] },
          { name: 'post', match: [{ uri: { prefix: '/api/v2' }, method: { exact: 'POST' } }], route: [dest] },
        ],
      },
      errors: [],
      warnings: [['spec.http[1].match[0]', 'virtualService rule "v1" match "v1" of prefix /api/v1 is not used (duplicate/overlapping match in rule #0 of prefix /api on "api")']],
    },
    {
      name: 'TCP rules with the same match',
      spec: { hosts: ['r'], tcp: [{ match: [{ port: 27017 }], route: [dest] }, { match: [{ port: 27017 }], route: [dest] }] },
      errors: [],
      warnings: [
        ['spec.tcp[1].match[0]', 'virtualService rule #1 match #0 is not used (duplicate/overlapping match in rule #0)'],
        ['spec.tcp[1]', 'virtualService rule #1 not used (all matches used by prior rules)'],
      ],
    },
  ];
  runCases('VirtualService', cases);
});

describe('VirtualService: structure', () => {
  runCases('VirtualService', [
    {
      name: 'unknown fields and wrong types are named',
      spec: { hosts: 'reviews', http: [{ route: [{ destination: { host: 'r', version: 'v1' } }], timeout: 5 }] },
      errors: [
        ['spec.hosts', 'expected array, got string "reviews"'],
        ['spec.http[0].route[0].destination.version', 'unknown field "version"'],
        ['spec.http[0].timeout', 'expected string, got number 5'],
      ],
    },
    {
      name: 'enum values are listed',
      spec: { hosts: ['r'], http: [{ redirect: { uri: '/', derivePort: 'SOMETIMES' } }] },
      errors: [['spec.http[0].redirect.derivePort', 'invalid value string "SOMETIMES"; allowed: "FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT"']],
    },
  ]);
});

test('VirtualService: weights that do not sum to 100 are a warning, not an error', () => {
  const result = validateObject(
    { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'reviews' }, spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' }, weight: 80 }, { destination: { host: 'reviews', subset: 'v2' }, weight: 30 }] }] } },
    istioKinds,
  );
  assert.deepEqual(result.diagnostics, [{ severity: 'warning', path: 'spec.http[0].route', message: 'destination weights sum to 110, not 100; each destination gets weight/110 of the traffic' }]);
});
