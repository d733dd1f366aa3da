// VirtualService semantic rules (Istio's ValidateVirtualService): every rule
// with its exact path and message, errors and warnings apart.

import { describe } from 'node:test';
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
        ['spec.gateways[0]', 'invalid gateway reference "ns/": namespace and gateway name cannot be empty; use "<namespace>/<name>"'],
        ['spec.gateways[1]', 'invalid namespace "Bad_NS" in gateway reference "Bad_NS/gw": must be a DNS-1123 label (lower case alphanumerics and "-", at most 63 characters)'],
        ['spec.gateways[2]', 'invalid gateway name "Bad.Name" in gateway reference "ns/Bad.Name": must be a DNS-1123 label (lower case alphanumerics and "-", at most 63 characters)'],
        ['spec.gateways[3]', 'invalid gateway name "gw_1": domain name "gw_1" invalid (label "gw_1" invalid); use "mesh", "<name>" or "<namespace>/<name>"'],
      ],
    },
    {
      name: 'legacy FQDN gateway name is a warning',
      spec: { hosts: ['reviews'], gateways: ['my-gateway.istio-system.svc.cluster.local'], http: [{ route: [dest] }] },
      errors: [],
      warnings: [['spec.gateways[0]', 'using legacy gateway name format "my-gateway.istio-system.svc.cluster.local"; prefer the <namespace>/<name> format: "istio-system/my-gateway"']],
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
        ['spec.exportTo[1]', 'duplicate entry "." in exportTo'],
        ['spec.exportTo[2]', 'invalid exportTo value "Bad": only ".", "*" or a namespace name (a DNS-1123 label) are allowed'],
        ['spec.exportTo[3]', 'exportTo "~" (no one) is only allowed for ServiceEntry; use ".", "*" or a namespace name'],
      ],
    },
    {
      name: 'exportTo "*" with others',
      spec: { hosts: ['reviews'], http: [{ route: [dest] }], exportTo: ['*', 'foo'] },
      errors: [['spec.exportTo', 'exportTo cannot have both public ("*") and other values; "*" already exports to every namespace']],
    },
  ];
  runCases('VirtualService', cases);
});

describe('VirtualService: HTTP route exclusivity', () => {
  const cases: RuleCase[] = [
    { name: 'nothing to do', spec: httpBare({ name: 'empty' }), errors: [['spec.http[0]', 'HTTP route, redirect, directResponse or delegate is required']] },
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
      name: 'directResponse with route, redirect, rewrite and mirror',
      spec: http({ directResponse: { status: 200 }, redirect: { uri: '/x' }, rewrite: { uri: '/y' }, mirror: { host: 'm' } }),
      errors: [
        ['spec.http[0]', 'HTTP route cannot contain both route and redirect'],
        ['spec.http[0]', 'HTTP route rule cannot contain both rewrite and redirect'],
        ['spec.http[0]', 'HTTP route cannot contain both route and directResponse'],
        ['spec.http[0]', 'HTTP route cannot contain both redirect and directResponse'],
        ['spec.http[0]', 'HTTP route cannot contain both rewrite and directResponse'],
        ['spec.http[0]', 'HTTP route cannot contain both mirror and directResponse'],
      ],
    },
    {
      name: 'delegate with route, fault, redirect and directResponse',
      spec: http({ delegate: { name: 'd' }, fault: { delay: { fixedDelay: '1s' } }, redirect: { uri: '/x' }, directResponse: { status: 204 } }),
      errors: [
        ['spec.http[0]', 'HTTP route cannot contain both route and delegate'],
        ['spec.http[0]', 'HTTP route cannot contain both fault and delegate'],
        ['spec.http[0]', 'HTTP route cannot contain both redirect and delegate'],
        ['spec.http[0]', 'HTTP route cannot contain both directResponse and delegate'],
        ['spec.http[0]', 'HTTP route cannot contain both route and redirect'],
        ['spec.http[0]', 'HTTP route cannot contain both fault and redirect'],
        ['spec.http[0]', 'HTTP route cannot contain both route and directResponse'],
        ['spec.http[0]', 'HTTP route cannot contain both redirect and directResponse'],
      ],
    },
    {
      name: 'delegate inside a delegate, and bad delegate names',
      spec: { http: [{ delegate: { name: '', namespace: 'Bad' } }] },
      errors: [
        ['spec.http[0].delegate', 'delegate is not supported in a delegate virtual service: delegation is one level deep'],
        ['spec.http[0].delegate.name', 'delegate name is required'],
        ['spec.http[0].delegate.namespace', 'invalid delegate namespace "Bad": must be a DNS-1123 label (lower case alphanumerics and "-", at most 63 characters)'],
      ],
    },
    {
      name: 'mirror and mirrors together',
      spec: http({ mirror: { host: 'a' }, mirrors: [{ destination: { host: 'b' } }, {}] }),
      errors: [
        ['spec.http[0]', 'HTTP route cannot contain both mirror and mirrors; move the mirror into mirrors'],
        ['spec.http[0].mirrors[1].destination', 'mirror destination is required'],
      ],
    },
  ];
  runCases('VirtualService', cases);
});

describe('VirtualService: destinations and weights', () => {
  const cases: RuleCase[] = [
    {
      name: 'weights are relative: 30/30 is fine',
      spec: { hosts: ['reviews'], http: [{ route: [{ ...dest, weight: 30 }, { destination: { host: 'r2' }, weight: 30 }] }] },
      errors: [],
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
        ['spec.http[0].route[0].destination.host', 'invalid destination host "*": a destination must name a service, not the full wildcard'],
        ['spec.http[0].route[1].destination.subset', 'invalid subset name "V_1": must be a DNS-1123 label (lower case alphanumerics and "-", at most 63 characters)'],
        ['spec.http[0].route[1].destination.port.number', 'port number 70000 must be in the range 1..65535'],
        ['spec.http[0].route[2].destination', 'destination is required'],
      ],
    },
    {
      name: 'empty subset name',
      spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'r', subset: '' } }] }] },
      errors: [['spec.http[0].route[0].destination.subset', 'subset name cannot be empty']],
    },
    {
      name: 'header manipulation names',
      spec: http({ headers: { request: { set: { 'bad header': 'x', ':authority': 'ok' }, remove: [''] }, response: { add: { ':status': '1' } } } }),
      errors: [
        ['spec.http[0].headers.request.set["bad header"]', 'header name "bad header" is not a valid header name: use letters, digits, "-" and "_"'],
        ['spec.http[0].headers.request.remove[0]', 'header name cannot be empty'],
        ['spec.http[0].headers.response.add[":status"]', 'header name ":status" is not a valid header name: use letters, digits, "-" and "_"'],
      ],
    },
    {
      name: 'authority rewritten twice',
      spec: http({ rewrite: { authority: 'a' }, headers: { request: { add: { Host: 'b' } } } }),
      errors: [['spec.http[0].rewrite.authority', 'authority header cannot be set both in rewrite and header manipulation']],
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
        ['spec.http[0].match[0].queryParams.q.regex', 'invalid regex "[a-" (RE2 syntax): error parsing regexp: missing closing ]: `[a-`'],
        ['spec.http[0].match[0].uri.regex', 'invalid regex "(?=lookahead)" (RE2 syntax): error parsing regexp: invalid or unsupported Perl syntax: `(?=`'],
        ['spec.http[0].match[0].authority.regex', 'regex string match should not be empty'],
      ],
    },
    {
      name: 'regex too long',
      spec: http({ match: [{ uri: { regex: 'a'.repeat(1025) } }] }),
      errors: [['spec.http[0].match[0].uri.regex', 'regex is too large (1025 characters); max length allowed is 1024']],
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
          withoutHeaders: { ':path': { prefix: '/' } },
          port: 70000,
          sourceLabels: { 'bad key!': 'v' },
          gateways: ['a/'],
          sourceNamespace: 'Not_A_Label',
        }],
      }),
      errors: [
        ['spec.http[0].match[0].headers["x y"]', 'header name "x y" is not a valid header name: use letters, digits, "-" and "_"'],
        ['spec.http[0].match[0].headers["@request.auth.claims."]', 'header name "@request.auth.claims." must name a claim after "@request.auth.claims."'],
        ['spec.http[0].match[0].withoutHeaders[":path"]', 'header name ":path" is not a valid header name: use letters, digits, "-" and "_"'],
        ['spec.http[0].match[0].port', 'port number 70000 must be in the range 1..65535'],
        ['spec.http[0].match[0].sourceLabels["bad key!"]', 'invalid label key "bad key!": name must be 1-63 characters of [A-Za-z0-9_.-], starting and ending alphanumeric'],
        ['spec.http[0].match[0].gateways[0]', 'invalid gateway reference "a/": namespace and gateway name cannot be empty; use "<namespace>/<name>"'],
        ['spec.http[0].match[0].sourceNamespace', 'invalid sourceNamespace "Not_A_Label": must be a DNS-1123 label (lower case alphanumerics and "-", at most 63 characters)'],
      ],
    },
  ];
  runCases('VirtualService', cases);
});

describe('VirtualService: redirect, directResponse, rewrite', () => {
  const cases: RuleCase[] = [
    { name: 'empty redirect', spec: httpBare({ redirect: {} }), errors: [['spec.http[0].redirect', 'redirect must specify uri, authority, scheme, port or derivePort']] },
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
        ['spec.http[0].directResponse.status', 'directResponse status 104 must be between 200 and 599'],
        ['spec.http[0].directResponse.body', 'only one of string, bytes may be set (found: string, bytes)'],
      ],
    },
    {
      name: 'directResponse body too large',
      spec: httpBare({ directResponse: { status: 200, body: { string: 'x'.repeat(1024 * 1024 + 1) } } }),
      errors: [['spec.http[0].directResponse.body', 'directResponse body of 1048577 bytes is too large: large bodies slow the control plane down, the limit is 1048576 bytes']],
    },
    { name: 'empty rewrite', spec: http({ rewrite: {} }), errors: [['spec.http[0].rewrite', 'rewrite must specify at least one of uri, uriRegexRewrite or authority']] },
    {
      name: 'uri and uriRegexRewrite together, regex rewrite incomplete',
      spec: http({ rewrite: { uri: '/a', uriRegexRewrite: { match: '(' } } }),
      errors: [
        ['spec.http[0].rewrite', 'rewrite may only contain one of uri or uriRegexRewrite'],
        ['spec.http[0].rewrite.uriRegexRewrite.match', 'invalid regex "(" (RE2 syntax): error parsing regexp: missing closing ): `(`'],
        ['spec.http[0].rewrite.uriRegexRewrite.rewrite', 'uriRegexRewrite requires rewrite to be set'],
      ],
    },
    {
      name: 'uriRegexRewrite without match',
      spec: http({ rewrite: { uriRegexRewrite: { rewrite: '/x' } } }),
      errors: [['spec.http[0].rewrite.uriRegexRewrite.match', 'uriRegexRewrite requires match to be set']],
    },
  ];
  runCases('VirtualService', cases);
});

describe('VirtualService: timeout, retries, fault, mirror, CORS', () => {
  const cases: RuleCase[] = [
    { name: 'timeout malformed', spec: http({ timeout: '10' }), errors: [['spec.http[0].timeout', 'invalid duration "10" (use a number with a unit: ns, us, ms, s, m, h, such as "1.5s")']] },
    { name: 'timeout below 1ms', spec: http({ timeout: '500us' }), errors: [['spec.http[0].timeout', 'duration must be >= 1ms']] },
    { name: 'timeout finer than 1ms', spec: http({ timeout: '1.5ms' }), errors: [['spec.http[0].timeout', 'duration "1.5ms" is finer than 1ms: only durations to millisecond precision are supported']] },
    {
      name: 'retries: negative attempts, bad perTryTimeout and retryOn',
      spec: http({ retries: { attempts: -1, perTryTimeout: '0.5ms', retryOn: '5xx,gateway-error,999,bogus' } }),
      errors: [
        ['spec.http[0].retries.attempts', 'attempts cannot be negative (got -1)'],
        ['spec.http[0].retries.perTryTimeout', 'duration must be >= 1ms'],
        ['spec.http[0].retries.retryOn', '"999" is not a valid HTTP status code'],
        ['spec.http[0].retries.retryOn', '"bogus" is not a valid retryOn policy; use HTTP status codes or 5xx, gateway-error, reset, reset-before-request, connect-failure, envoy-ratelimited, retriable-4xx, refused-stream, retriable-status-codes, retriable-headers, http3-post-connect-failure, cancelled, deadline-exceeded, internal, resource-exhausted, unavailable'],
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
        ['spec.http[0].fault.abort.percentage.value', 'percentage 101 must be in the range 0..100'],
        ['spec.http[0].fault.abort.httpStatus', 'HTTP status 700 is not in range 200-599'],
      ],
    },
    {
      name: 'fault abort without a type, or with two',
      spec: { hosts: ['r'], http: [{ route: [dest], fault: { abort: {} } }, { route: [dest], fault: { abort: { httpStatus: 500, grpcStatus: 'NOPE' } } }] },
      errors: [
        ['spec.http[0].fault.abort', 'one of httpStatus, grpcStatus, http2Error must be set'],
        ['spec.http[1].fault.abort', 'only one of httpStatus, grpcStatus, http2Error may be set (found: httpStatus, grpcStatus)'],
      ],
    },
    {
      name: 'fault abort gRPC status name',
      spec: http({ fault: { abort: { grpcStatus: 'NOPE' } } }),
      errors: [['spec.http[0].fault.abort.grpcStatus', '"NOPE" is not a valid gRPC status code name, such as "UNAVAILABLE"']],
    },
    {
      name: 'fault delay: fixedDelay below 1ms, percentage out of range',
      spec: http({ fault: { delay: { fixedDelay: '0s', percentage: { value: -1 } } } }),
      errors: [
        ['spec.http[0].fault.delay.percentage.value', 'percentage -1 must be in the range 0..100'],
        ['spec.http[0].fault.delay.fixedDelay', 'duration must be >= 1ms'],
      ],
    },
    {
      name: 'fault delay: exponentialDelay unsupported, deprecated percent',
      spec: http({ fault: { delay: { exponentialDelay: '1s', percent: 150 } } }),
      errors: [
        ['spec.http[0].fault.delay.percent', 'percentage 150 is not in range 0..100'],
        ['spec.http[0].fault.delay.exponentialDelay', 'exponentialDelay is not supported yet; use fixedDelay'],
      ],
      warnings: [['spec.http[0].fault.delay.percent', 'percent is deprecated; use percentage']],
    },
    { name: 'fault delay without a delay', spec: http({ fault: { delay: { percentage: { value: 5 } } } }), errors: [['spec.http[0].fault.delay', 'one of fixedDelay, exponentialDelay must be set']] },
    {
      name: 'mirror percentages',
      spec: http({ mirror: { host: 'm' }, mirrorPercent: 101, mirrorPercentage: { value: 100.5 } }),
      errors: [
        ['spec.http[0].mirrorPercent', 'percentage 101 is not in range 0..100'],
        ['spec.http[0].mirrorPercentage.value', 'percentage 100.5 must be in the range 0..100'],
      ],
      warnings: [['spec.http[0].mirrorPercent', 'mirrorPercent is deprecated; use mirrorPercentage']],
    },
    {
      name: 'mirrors entries',
      spec: http({ mirrors: [{ destination: { host: '*' }, percentage: { value: 200 } }] }),
      errors: [
        ['spec.http[0].mirrors[0].destination.host', 'invalid destination host "*": a destination must name a service, not the full wildcard'],
        ['spec.http[0].mirrors[0].percentage.value', 'percentage 200 must be in the range 0..100'],
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
        ['spec.http[0].corsPolicy.allowOrigins[0]', 'allowOrigins entry must set a non-empty exact, prefix or regex'],
        ['spec.http[0].corsPolicy.allowOrigins[1].regex', 'invalid regex "(" (RE2 syntax): error parsing regexp: missing closing ): `(`'],
        ['spec.http[0].corsPolicy.allowOrigins[2]', 'allowOrigins entry must set a non-empty exact, prefix or regex'],
        ['spec.http[0].corsPolicy.allowMethods[1]', '"FETCH" is not a supported HTTP method; use one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH'],
        ['spec.http[0].corsPolicy.allowHeaders[0]', 'header name "x y" is not a valid header name: use letters, digits, "-" and "_"'],
        ['spec.http[0].corsPolicy.exposeHeaders[0]', 'header name cannot be empty'],
        ['spec.http[0].corsPolicy.maxAge', 'duration "1500ms" is accurate only to seconds precision: use whole seconds'],
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
      name: 'L4 match attributes',
      spec: {
        hosts: ['a.com'],
        tls: [{ match: [{ sniHosts: ['a.com'], destinationSubnets: ['10.0.0.0/33'], port: 65536, sourceNamespace: 'X' }], route: [dest] }],
        tcp: [{ match: [{ sourceSubnet: 'nope', destinationSubnets: ['1.2.3.4'], gateways: ['/gw'] }], route: [dest] }],
      },
      errors: [
        ['spec.tls[0].match[0].destinationSubnets[0]', '"10.0.0.0/33" has an invalid prefix length (0..32)'],
        ['spec.tls[0].match[0].port', 'port number 65536 must be in the range 1..65535'],
        ['spec.tls[0].match[0].sourceNamespace', 'invalid sourceNamespace "X": must be a DNS-1123 label (lower case alphanumerics and "-", at most 63 characters)'],
        ['spec.tcp[0].match[0].sourceSubnet', '"nope" is not a valid IP address or CIDR block'],
        ['spec.tcp[0].match[0].gateways[0]', 'invalid gateway reference "/gw": namespace and gateway name cannot be empty; use "<namespace>/<name>"'],
      ],
    },
    {
      name: 'TCP route needs destinations with weights',
      spec: { hosts: ['a.com'], tcp: [{}, { route: [{ destination: { host: 'a' } }, { destination: { host: 'b' } }] }] },
      errors: [
        ['spec.tcp[0].route', 'TCP route is required: add at least one route destination'],
        ['spec.tcp[1].route', 'total destination weight = 0: with several destinations at least one needs a weight above 0'],
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
