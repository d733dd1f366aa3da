// AuthorizationPolicy: Istio's documented examples validate cleanly in both
// versions, and every semantic rule reports its exact path and message.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { istioKinds, validateObject, validateText } from '../../src/api/index.ts';

const VERSIONS = ['security.istio.io/v1', 'security.istio.io/v1beta1'];

function diagnosticsOf(spec: unknown, extra: { annotations?: Record<string, string>; apiVersion?: string } = {}) {
  const object = {
    apiVersion: extra.apiVersion ?? 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: 'policy', namespace: 'foo', ...(extra.annotations ? { annotations: extra.annotations } : {}) },
    spec,
  };
  const result = validateObject(object, istioKinds);
  const pick = (sev: string) => result.diagnostics.filter((d) => d.severity === sev).map((d) => [d.path, d.message]);
  return { errors: pick('error'), warnings: pick('warning') };
}

describe('AuthorizationPolicy: valid objects', () => {
  const docs = [
    {
      name: 'ALLOW with requestPrincipals * (require JWT)',
      text: `
metadata: { name: require-jwt, namespace: foo }
spec:
  selector: { matchLabels: { app: httpbin } }
  action: ALLOW
  rules:
  - from:
    - source:
        requestPrincipals: ["*"]`,
    },
    {
      name: 'DENY on paths with a port',
      text: `
metadata: { name: deny-admin, namespace: foo }
spec:
  selector: { matchLabels: { app: httpbin } }
  action: DENY
  rules:
  - to:
    - operation:
        paths: ["/admin", "/admin/*", "*/private"]
        ports: ["8000"]`,
    },
    {
      name: 'CUSTOM with provider ext-authz-grpc',
      text: `
metadata: { name: ext-authz, namespace: foo }
spec:
  selector: { matchLabels: { app: httpbin } }
  action: CUSTOM
  provider: { name: ext-authz-grpc }
  rules:
  - to:
    - operation: { paths: ["/headers"] }`,
    },
    {
      name: 'allow-nothing (empty spec)',
      text: `
metadata: { name: allow-nothing, namespace: foo }
spec: {}`,
    },
    {
      name: 'every field of source, operation and condition',
      text: `
metadata: { name: full, namespace: foo, annotations: { istio.io/dry-run: "true" } }
spec:
  targetRefs:
  - { kind: Gateway, group: gateway.networking.k8s.io, name: waypoint }
  - { kind: Service, group: "", name: reviews }
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/sleep", "*/ns/foo/sa/bar"]
        notPrincipals: ["cluster.local/ns/default/sa/evil"]
        requestPrincipals: ["https://accounts.google.com/*"]
        notRequestPrincipals: ["*@bad.example.com"]
        namespaces: ["default", "test-*"]
        notNamespaces: ["prod"]
        ipBlocks: ["10.0.0.0/16", "2001:db8::/32"]
        notIpBlocks: ["10.0.1.1"]
        remoteIpBlocks: ["203.0.113.0/24"]
        notRemoteIpBlocks: ["203.0.113.7"]
    to:
    - operation:
        hosts: ["*.example.com", "api.example.com"]
        notHosts: ["internal.example.com"]
        ports: ["8080", "443"]
        notPorts: ["9090"]
        methods: ["GET", "POST"]
        notMethods: ["DELETE"]
        paths: ["/api/{*}/info", "/static/{**}", "/v1/*"]
        notPaths: ["/debug*"]
    when:
    - { key: "request.headers[version]", values: ["v1", "v2"] }
    - { key: source.ip, values: ["10.0.0.0/8"], notValues: ["10.1.2.3"] }
    - { key: remote.ip, values: ["1.2.3.4"] }
    - { key: source.namespace, values: ["foo"] }
    - { key: source.principal, values: ["cluster.local/ns/foo/sa/bar"] }
    - { key: request.auth.principal, values: ["issuer/subject"] }
    - { key: request.auth.audiences, values: ["aud"] }
    - { key: request.auth.presenter, values: ["client"] }
    - { key: "request.auth.claims[groups]", values: ["group1"] }
    - { key: destination.ip, values: ["10.0.0.1"] }
    - { key: destination.port, values: ["8080"] }
    - { key: connection.sni, notValues: ["bad.example.com"] }
    - { key: "experimental.envoy.filters.network.mysql_proxy[db.table]", values: ["[update]"] }`,
    },
  ];
  for (const version of VERSIONS) {
    for (const doc of docs) {
      it(`${doc.name} (${version})`, () => {
        const [result] = validateText(`apiVersion: ${version}\nkind: AuthorizationPolicy\n${doc.text}`, istioKinds);
        assert.deepEqual(result!.diagnostics, []);
        assert.equal(result!.kind?.kind, 'AuthorizationPolicy');
      });
    }
  }
});

describe('AuthorizationPolicy: semantic rules', () => {
  const CUSTOM_NO_RULES =
    'CUSTOM action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request';
  const DENY_NO_RULES =
    'DENY action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request';
  const cases: { name: string; spec: unknown; errors: string[][]; warnings?: string[][]; annotations?: Record<string, string> }[] = [
    { name: 'CUSTOM without rules', spec: { action: 'CUSTOM', provider: { name: 'x' } }, errors: [['spec.rules', CUSTOM_NO_RULES]] },
    { name: 'CUSTOM without provider', spec: { action: 'CUSTOM', rules: [{}] }, errors: [['spec.provider.name', '`provider.name` must not be empty with CUSTOM action']] },
    { name: 'CUSTOM with empty provider name', spec: { action: 'CUSTOM', provider: { name: '' }, rules: [{}] }, errors: [['spec.provider.name', '`provider.name` must not be empty with CUSTOM action']] },
    { name: 'provider with ALLOW', spec: { action: 'ALLOW', provider: { name: 'x' }, rules: [{}] }, errors: [['spec.provider', '`provider` must not be with non CUSTOM action, found ALLOW']] },
    { name: 'provider without action (ALLOW)', spec: { provider: { name: 'x' } }, errors: [['spec.provider', '`provider` must not be with non CUSTOM action, found ALLOW']] },
    { name: 'provider with AUDIT', spec: { action: 'AUDIT', provider: { name: 'x' }, rules: [{}] }, errors: [['spec.provider', '`provider` must not be with non CUSTOM action, found AUDIT']] },
    { name: 'DENY without rules', spec: { action: 'DENY' }, errors: [['spec.rules', DENY_NO_RULES]] },
    {
      name: 'CUSTOM with unsupported source fields and when keys',
      spec: {
        action: 'CUSTOM',
        provider: { name: 'ext' },
        rules: [{
          from: [{ source: { principals: ['a'], namespaces: ['ns'], requestPrincipals: ['r/s'], ipBlocks: ['1.2.3.4'] } }],
          when: [{ key: 'source.namespace', values: ['x'] }, { key: 'request.auth.claims[iss]', values: ['y'] }],
        }],
      },
      errors: [
        ['spec.rules[0].from[0].source.namespaces', 'From.Namespaces is currently not supported with CUSTOM action'],
        ['spec.rules[0].from[0].source.principals', 'From.Principals is currently not supported with CUSTOM action'],
        ['spec.rules[0].from[0].source.requestPrincipals', 'From.RequestPrincipals is currently not supported with CUSTOM action'],
        ['spec.rules[0].when[0].key', 'source.namespace is currently not supported with CUSTOM action'],
        ['spec.rules[0].when[1].key', 'request.auth.claims[iss] is currently not supported with CUSTOM action'],
      ],
    },
    { name: 'empty from', spec: { rules: [{ from: [] }] }, errors: [['spec.rules[0].from', '`from` must not be empty']] },
    { name: 'from without source', spec: { rules: [{ from: [{}] }] }, errors: [['spec.rules[0].from[0].source', '`from.source` must not be nil']] },
    { name: 'empty source', spec: { rules: [{ from: [{ source: {} }] }] }, errors: [['spec.rules[0].from[0].source', '`from.source` must not be empty']] },
    { name: 'empty source lists', spec: { rules: [{ from: [{ source: { principals: [] } }] }] }, errors: [['spec.rules[0].from[0].source', '`from.source` must not be empty']] },
    { name: 'empty to', spec: { rules: [{ to: [] }] }, errors: [['spec.rules[0].to', '`to` must not be empty']] },
    { name: 'to without operation', spec: { rules: [{ to: [{}] }] }, errors: [['spec.rules[0].to[0].operation', '`to.operation` must not be nil']] },
    { name: 'empty operation', spec: { rules: [{ to: [{ operation: {} }] }] }, errors: [['spec.rules[0].to[0].operation', '`to.operation` must not be empty']] },
    {
      name: 'empty strings in lists',
      spec: { rules: [{ from: [{ source: { principals: ['a', ''], notNamespaces: [''] } }], to: [{ operation: { methods: [''], paths: ['/a', ''] } }] }] },
      errors: [
        ['spec.rules[0].from[0].source.principals[1]', 'empty value not allowed'],
        ['spec.rules[0].from[0].source.notNamespaces[0]', 'empty value not allowed'],
        ['spec.rules[0].to[0].operation.methods[0]', 'empty value not allowed'],
        ['spec.rules[0].to[0].operation.paths[1]', 'empty value not allowed'],
      ],
    },
    {
      name: 'bad IPs and CIDRs',
      spec: { rules: [{ from: [{ source: { ipBlocks: ['10.0.0.0/33'], notIpBlocks: ['not-an-ip'], remoteIpBlocks: ['1.2.3.4/x'], notRemoteIpBlocks: ['::1/129'] } }] }] },
      errors: [
        ['spec.rules[0].from[0].source.ipBlocks[0]', '"10.0.0.0/33" has an invalid prefix length (0..32)'],
        ['spec.rules[0].from[0].source.notIpBlocks[0]', '"not-an-ip" is not a valid IP address or CIDR block'],
        ['spec.rules[0].from[0].source.remoteIpBlocks[0]', '"1.2.3.4/x" has an invalid prefix length (0..32)'],
        ['spec.rules[0].from[0].source.notRemoteIpBlocks[0]', '"::1/129" has an invalid prefix length (0..128)'],
      ],
    },
    {
      name: 'bad ports',
      spec: { rules: [{ to: [{ operation: { ports: ['0', '65536', 'http'], notPorts: ['-1'] } }] }] },
      errors: [
        ['spec.rules[0].to[0].operation.ports[0]', 'bad port "0": must be a number in 1..65535'],
        ['spec.rules[0].to[0].operation.ports[1]', 'bad port "65536": must be a number in 1..65535'],
        ['spec.rules[0].to[0].operation.ports[2]', 'bad port "http": must be a number in 1..65535'],
        ['spec.rules[0].to[0].operation.notPorts[0]', 'bad port "-1": must be a number in 1..65535'],
      ],
    },
    {
      name: 'wildcards in the middle or at both ends',
      spec: { rules: [{ from: [{ source: { principals: ['cluster.local/*/sa/x'], namespaces: ['*foo*'] } }], to: [{ operation: { hosts: ['a.*.com'], paths: ['/a/*/b'] } }] }] },
      errors: [
        ['spec.rules[0].from[0].source.principals[0]', 'invalid wildcard in "cluster.local/*/sa/x": "*" is only supported as the whole value, a prefix ("*foo") or a suffix ("foo*")'],
        ['spec.rules[0].from[0].source.namespaces[0]', 'invalid wildcard in "*foo*": "*" is only supported as the whole value, a prefix ("*foo") or a suffix ("foo*")'],
        ['spec.rules[0].to[0].operation.hosts[0]', 'invalid wildcard in "a.*.com": "*" is only supported as the whole value, a prefix ("*foo") or a suffix ("foo*")'],
        ['spec.rules[0].to[0].operation.paths[0]', 'invalid wildcard in "/a/*/b": "*" is only supported as the whole value, a prefix ("*foo") or a suffix ("foo*")'],
      ],
    },
    {
      name: 'unsupported path templates',
      spec: { rules: [{ to: [{ operation: { paths: ['/{*}/foo/{bar}'], notPaths: ['/{**}/*'] } }] }] },
      errors: [
        ['spec.rules[0].to[0].operation.paths[0]', 'invalid or unsupported path template "/{*}/foo/{bar}": only "{*}" and "{**}" segments are supported'],
        ['spec.rules[0].to[0].operation.notPaths[0]', 'invalid or unsupported path template "/{**}/*": only "{*}" and "{**}" segments are supported'],
      ],
    },
    { name: 'condition without values', spec: { rules: [{ when: [{ key: 'source.ip' }] }] }, errors: [['spec.rules[0].when[0]', 'at least one of `values` or `notValues` must be set for key source.ip']] },
    { name: 'condition with empty lists', spec: { rules: [{ when: [{ key: 'source.ip', values: [], notValues: [] }] }] }, errors: [['spec.rules[0].when[0]', 'at least one of `values` or `notValues` must be set for key source.ip']] },
    { name: 'condition with empty key', spec: { rules: [{ when: [{ key: '', values: ['a'] }] }] }, errors: [['spec.rules[0].when[0].key', '`key` must not be empty']] },
    {
      name: 'unknown condition key',
      spec: { rules: [{ when: [{ key: 'request.method', values: ['GET'] }] }] },
      errors: [['spec.rules[0].when[0].key', 'unknown attribute "request.method"; supported: request.headers[<name>], source.ip, remote.ip, source.namespace, source.principal, request.auth.principal, request.auth.audiences, request.auth.presenter, request.auth.claims[<name>], destination.ip, destination.port, connection.sni, experimental.envoy.filters.*[<key>]']],
    },
    {
      name: 'malformed map keys',
      spec: { rules: [{ when: [{ key: 'request.headers', values: ['a'] }, { key: 'request.auth.claims[]', values: ['a'] }, { key: 'experimental.envoy.filters.x', values: ['a'] }] }] },
      errors: [
        ['spec.rules[0].when[0].key', 'bad key "request.headers": should have format a[b]'],
        ['spec.rules[0].when[1].key', 'bad key "request.auth.claims[]": should have format a[b]'],
        ['spec.rules[0].when[2].key', 'bad key "experimental.envoy.filters.x": should have format a[b]'],
      ],
    },
    {
      name: 'replaced and deprecated keys',
      spec: { rules: [{ when: [{ key: 'destination.namespace', values: ['a'] }, { key: 'destination.labels[app]', values: ['a'] }, { key: 'destination.user', values: ['a'] }] }] },
      errors: [
        ['spec.rules[0].when[0].key', 'attribute destination.namespace is replaced by the metadata.namespace'],
        ['spec.rules[0].when[1].key', 'attribute destination.labels[app] is replaced by the workload selector'],
        ['spec.rules[0].when[2].key', 'deprecated attribute destination.user: only supported in v1alpha1'],
      ],
    },
    {
      name: 'condition values checked by key',
      spec: { rules: [{ when: [{ key: 'source.ip', values: ['300.1.1.1'] }, { key: 'destination.port', notValues: ['99999'] }, { key: 'request.headers[x]', values: ['ok', ''] }] }] },
      errors: [
        ['spec.rules[0].when[0].values[0]', '"300.1.1.1" is not a valid IP address or CIDR block'],
        ['spec.rules[0].when[1].notValues[0]', 'bad port "99999": must be a number in 1..65535'],
        ['spec.rules[0].when[2].values[1]', 'empty value not allowed'],
      ],
    },
    {
      name: 'selector and targetRef together',
      spec: { selector: { matchLabels: { app: 'a' } }, targetRef: { kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'gw' } },
      errors: [['spec', 'only one of targetRefs or workloadSelector can be set']],
    },
    {
      name: 'selector and targetRefs together',
      spec: { selector: { matchLabels: { app: 'a' } }, targetRefs: [{ kind: 'Service', name: 'svc' }] },
      errors: [['spec', 'only one of targetRefs or workloadSelector can be set']],
    },
    {
      name: 'bad targetRefs',
      spec: { targetRefs: [{ kind: 'Deployment', group: 'apps', name: 'x' }, { kind: 'Service', name: '', namespace: 'other' }] },
      errors: [
        ['spec.targetRefs[0]', 'targetRef must be to one of core/Service, networking.istio.io/ServiceEntry, gateway.networking.k8s.io/Gateway but was apps/Deployment'],
        ['spec.targetRefs[1].name', 'targetRef name must be set'],
        ['spec.targetRefs[1].namespace', 'targetRef namespace must not be set; cross namespace referencing is not supported'],
      ],
    },
    {
      name: 'wildcard in selector',
      spec: { selector: { matchLabels: { app: 'web*' } } },
      errors: [['spec.selector.matchLabels.app', 'wildcard is not supported in selector: "app=web*"']],
    },
    { name: 'empty selector warns', spec: { selector: {} }, errors: [], warnings: [['spec.selector', 'workload selector specified without labels']] },
    {
      name: 'DENY with only HTTP attributes warns about TCP',
      spec: { action: 'DENY', rules: [{ to: [{ operation: { methods: ['POST'] } }] }] },
      errors: [],
      warnings: [['spec.rules[0]', 'configured AuthorizationPolicy will deny all traffic to TCP ports under its scope due to the use of only HTTP attributes in a DENY rule; it is recommended to explicitly specify the port']],
    },
    {
      name: 'dry-run on CUSTOM',
      spec: { action: 'CUSTOM', provider: { name: 'x' }, rules: [{}] },
      annotations: { 'istio.io/dry-run': 'true' },
      errors: [['metadata.annotations["istio.io/dry-run"]', 'the annotation istio.io/dry-run currently only supports action ALLOW/DENY, found action CUSTOM']],
    },
    {
      name: 'dry-run not a boolean',
      spec: {},
      annotations: { 'istio.io/dry-run': 'maybe' },
      errors: [['metadata.annotations["istio.io/dry-run"]', 'invalid value "maybe" for annotation istio.io/dry-run: must be true or false']],
    },
    { name: 'unknown action (schema)', spec: { action: 'LOG' }, errors: [['spec.action', 'invalid value string "LOG"; allowed: "ALLOW", "DENY", "AUDIT", "CUSTOM"']] },
    { name: 'unknown source field (schema)', spec: { rules: [{ from: [{ source: { users: ['a'] } }] }] }, errors: [['spec.rules[0].from[0].source.users', 'unknown field "users"']] },
    { name: 'port as a number (schema)', spec: { rules: [{ to: [{ operation: { ports: [8080] } }] }] }, errors: [['spec.rules[0].to[0].operation.ports[0]', 'expected string, got number 8080']] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const got = diagnosticsOf(c.spec, { annotations: c.annotations });
      assert.deepEqual(got.errors, c.errors);
      assert.deepEqual(got.warnings, c.warnings ?? []);
    });
  }

  it('reports the YAML line of a bad field', () => {
    const text = 'apiVersion: security.istio.io/v1beta1\nkind: AuthorizationPolicy\nmetadata: { name: p }\nspec:\n  rules:\n  - to:\n    - operation:\n        ports: ["0"]\n';
    const [result] = validateText(text, istioKinds);
    assert.deepEqual(result!.diagnostics.map((d) => [d.path, d.line]), [['spec.rules[0].to[0].operation.ports[0]', 8]]);
  });
});
