// Tests of Galley's analysis (`mesh analyze`): one table of cases per analyzer,
// built from YAML, with exact codes, messages and paths; then the output forms
// and the Bookinfo sample.

import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseDocuments } from '../../src/api/index.ts';
import type { ConfigObject } from '../../src/api/index.ts';
import { allMessageTypes, analysisToJson, analyze, formatAnalysis, listAnalyzers } from '../../src/galley/analysis/index.ts';
import type { AnalysisMessage } from '../../src/galley/analysis/index.ts';

/** Objects from YAML text; a namespaced object without namespace lands in `default`, as kubectl would put it. */
function objectsOf(yaml: string): ConfigObject[] {
  const out: ConfigObject[] = [];
  for (const doc of parseDocuments(yaml)) {
    assert.equal(doc.syntaxError, undefined, `YAML error: ${doc.syntaxError}`);
    const obj = doc.value as ConfigObject | null;
    if (!obj) continue;
    if (obj.kind !== 'Namespace') obj.metadata.namespace ??= 'default';
    out.push(obj);
  }
  return out;
}

type Brief = { code: string; level: string; object: string; path?: string; message: string };

function brief(messages: AnalysisMessage[]): Brief[] {
  return messages.map((m) => ({ code: m.code, level: m.level, object: m.object, ...(m.path !== undefined ? { path: m.path } : {}), message: m.message }));
}

interface Case {
  readonly name: string;
  readonly yaml: string;
  readonly rootNamespace?: string;
  readonly want: Brief[];
}

function runCases(cases: Case[]): void {
  for (const c of cases) {
    it(c.name, () => {
      assert.deepEqual(brief(analyze(objectsOf(c.yaml), { rootNamespace: c.rootNamespace })), c.want);
    });
  }
}

const reviewsService = `
apiVersion: v1
kind: Service
metadata: { name: reviews }
spec:
  selector: { app: reviews }
  ports: [{ name: http, port: 9080 }]
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: reviews-v1 }
spec:
  template:
    metadata: { labels: { app: reviews, version: v1 } }
    spec: { containers: [{ name: reviews, image: reviews, ports: [{ containerPort: 9080 }] }] }
`;

function vs(name: string, body: string, ns = 'default'): string {
  return `
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ${name}, namespace: ${ns} }
spec:
${body}`;
}

describe('virtualservice.DestinationHostAnalyzer', () => {
  runCases([
    {
      name: 'a route to an unknown host is IST0101 at the host field',
      yaml: reviewsService + vs('reviews', '  hosts: [reviews]\n  http:\n  - route:\n    - destination: { host: reviewz }'),
      want: [{ code: 'IST0101', level: 'Error', object: 'VirtualService default/reviews', path: 'spec.http[0].route[0].destination.host', message: 'Referenced host not found: "reviewz"' }],
    },
    {
      name: 'short name, name.ns, name.ns.svc and the FQDN all resolve to the Service',
      yaml:
        reviewsService +
        vs('a', '  hosts: [a]\n  http:\n  - route:\n    - destination: { host: reviews }\n    - destination: { host: reviews.default }\n    - destination: { host: reviews.default.svc }\n    - destination: { host: reviews.default.svc.cluster.local }'),
      want: [],
    },
    {
      name: 'a short name resolves in the VirtualService namespace only',
      yaml: reviewsService + vs('r', '  hosts: [r]\n  tcp:\n  - route:\n    - destination: { host: reviews }', 'other'),
      want: [{ code: 'IST0101', level: 'Error', object: 'VirtualService other/r', path: 'spec.tcp[0].route[0].destination.host', message: 'Referenced host not found: "reviews"' }],
    },
    {
      name: 'a wildcard ServiceEntry host covers the destination; a namespace-local one is not seen elsewhere',
      yaml: `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ext, namespace: ops }
spec:
  hosts: ["*.example.com"]
  ports: [{ number: 443, name: tls, protocol: TLS }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: private, namespace: ops }
spec:
  hosts: [db.internal]
  exportTo: ["."]
  ports: [{ number: 5432, name: tcp, protocol: TCP }]
` + vs('ext', '  hosts: [api.example.com]\n  tls:\n  - match: [{ sniHosts: [api.example.com] }]\n    route:\n    - destination: { host: api.example.com }\n  tcp:\n  - route:\n    - destination: { host: db.internal }'),
      want: [{ code: 'IST0101', level: 'Error', object: 'VirtualService default/ext', path: 'spec.tcp[0].route[0].destination.host', message: 'Referenced host not found: "db.internal"' }],
    },
    {
      name: 'a mirror to an unknown host and a port the service lacks',
      yaml: reviewsService + vs('reviews', '  hosts: [reviews]\n  http:\n  - route:\n    - destination: { host: reviews, port: { number: 8080 } }\n    mirror: { host: shadow }'),
      want: [
        { code: 'IST0101', level: 'Error', object: 'VirtualService default/reviews', path: 'spec.http[0].mirror.host', message: 'Referenced mirror host not found: "shadow"' },
        { code: 'IST0101', level: 'Error', object: 'VirtualService default/reviews', path: 'spec.http[0].route[0].destination.port.number', message: 'Referenced host:port not found: "reviews:8080"' },
      ],
    },
    {
      name: 'a ServiceEntry with several ports needs a destination port (IST0112)',
      yaml: `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ext }
spec:
  hosts: [api.example.com]
  ports: [{ number: 80, name: http, protocol: HTTP }, { number: 443, name: https, protocol: HTTPS }]
` + vs('ext', '  hosts: [api.example.com]\n  http:\n  - route:\n    - destination: { host: api.example.com }'),
      want: [
        {
          code: 'IST0112',
          level: 'Error',
          object: 'VirtualService default/ext',
          path: 'spec.http[0].route[0].destination.host',
          message: 'This VirtualService routes to a service "api.example.com" that exposes multiple ports [80 443]. Specifying a port in the destination is required to disambiguate.',
        },
      ],
    },
  ]);
});

describe('virtualservice.DestinationRuleAnalyzer', () => {
  const dr = `
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews }
spec:
  host: reviews.default.svc.cluster.local
  subsets: [{ name: v1, labels: { version: v1 } }]
`;
  runCases([
    {
      name: 'a subset no DestinationRule defines is IST0101 host+subset',
      yaml: reviewsService + dr + vs('reviews', '  hosts: [reviews]\n  http:\n  - route:\n    - destination: { host: reviews, subset: v1 }\n      weight: 50\n    - destination: { host: reviews, subset: v2 }\n      weight: 50'),
      want: [{ code: 'IST0101', level: 'Error', object: 'VirtualService default/reviews', path: 'spec.http[0].route[1].destination.subset', message: 'Referenced host+subset in destinationrule not found: "reviews+v2"' }],
    },
    {
      name: 'a mirror subset is named mirror+subset',
      yaml: reviewsService + dr + vs('reviews', '  hosts: [reviews]\n  http:\n  - route:\n    - destination: { host: reviews, subset: v1 }\n    mirror: { host: reviews, subset: v3 }'),
      want: [{ code: 'IST0101', level: 'Error', object: 'VirtualService default/reviews', path: 'spec.http[0].mirror.subset', message: 'Referenced mirror+subset in destinationrule not found: "reviews+v3"' }],
    },
    {
      name: 'a DestinationRule of another namespace does not define subsets for this namespace\'s short name',
      yaml: reviewsService.replaceAll('name: reviews }', 'name: reviews, namespace: other }') + dr + vs('reviews', '  hosts: [reviews]\n  http:\n  - route:\n    - destination: { host: reviews, subset: v1 }', 'other'),
      want: [
        // The rule names default's reviews, which this case does not have.
        { code: 'IST0174', level: 'Warning', object: 'DestinationRule default/reviews', path: 'spec.host', message: 'The host reviews.default.svc.cluster.local defined in the DestinationRule does not match any services in the mesh.' },
        { code: 'IST0101', level: 'Error', object: 'VirtualService other/reviews', path: 'spec.http[0].route[0].destination.subset', message: 'Referenced host+subset in destinationrule not found: "reviews+v1"' },
      ],
    },
  ]);
});

describe('virtualservice.DelegateAnalyzer', () => {
  runCases([
    {
      name: 'a delegate to a missing VirtualService',
      yaml: reviewsService + vs('root', '  hosts: [reviews]\n  http:\n  - match: [{ uri: { prefix: /a } }]\n    delegate: { name: reviews-a }\n  - delegate: { name: reviews-b, namespace: team }') + vs('reviews-b', '  http:\n  - route:\n    - destination: { host: reviews.default.svc.cluster.local }', 'team'),
      want: [{ code: 'IST0101', level: 'Error', object: 'VirtualService default/root', path: 'spec.http[0].delegate', message: 'Referenced delegate virtualservice not found: "default/reviews-a"' }],
    },
  ]);
});

describe('virtualservice.GatewayAnalyzer', () => {
  const gateway = `
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: public, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
  - port: { number: 80, name: http, protocol: HTTP }
    hosts: ["*.example.com"]
---
apiVersion: v1
kind: Pod
metadata: { name: ingress-1, namespace: istio-system, labels: { istio: ingressgateway } }
spec: { containers: [{ name: istio-proxy, image: proxy }] }
`;
  runCases([
    {
      name: 'a missing gateway is IST0101 at spec.gateways[i]; mesh is always there',
      yaml: reviewsService + vs('web', '  hosts: [reviews]\n  gateways: [mesh, bookinfo-gatewy]\n  http:\n  - route:\n    - destination: { host: reviews }'),
      want: [{ code: 'IST0101', level: 'Error', object: 'VirtualService default/web', path: 'spec.gateways[1]', message: 'Referenced gateway not found: "bookinfo-gatewy"' }],
    },
    {
      name: 'a gateway in another namespace by ns/name, serving the host',
      yaml: reviewsService + gateway + vs('web', '  hosts: [shop.example.com]\n  gateways: [istio-system/public]\n  http:\n  - route:\n    - destination: { host: reviews }'),
      want: [],
    },
    {
      name: 'a gateway that serves none of the hosts is IST0132',
      yaml: reviewsService + gateway + vs('web', '  hosts: [shop.example.org]\n  gateways: [istio-system/public]\n  http:\n  - route:\n    - destination: { host: reviews }'),
      want: [
        {
          code: 'IST0132',
          level: 'Warning',
          object: 'VirtualService default/web',
          path: 'spec.gateways[0]',
          message: 'one or more host [shop.example.org] defined in VirtualService default/web not found in Gateway istio-system/public.',
        },
      ],
    },
  ]);
});

describe('virtualservice.ConflictingMeshGatewayHostsAnalyzer', () => {
  const conflict = 'The VirtualServices default/a,default/b associated with mesh gateway define the same host reviews.default.svc.cluster.local which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.';
  runCases([
    {
      name: 'two VirtualServices for one host on mesh: IST0109 on both',
      yaml: reviewsService + vs('a', '  hosts: [reviews]\n  http:\n  - route:\n    - destination: { host: reviews }') + vs('b', '  hosts: [reviews.default.svc.cluster.local]\n  gateways: [mesh]\n  http:\n  - route:\n    - destination: { host: reviews }'),
      want: [
        { code: 'IST0109', level: 'Error', object: 'VirtualService default/a', path: 'spec.hosts', message: conflict },
        { code: 'IST0109', level: 'Error', object: 'VirtualService default/b', path: 'spec.hosts', message: conflict },
      ],
    },
    {
      name: 'disjoint exportTo scopes and gateway-only VirtualServices do not conflict',
      yaml:
        reviewsService +
        `
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw }
spec:
  selector: { app: reviews }
  servers: [{ port: { number: 80, name: http, protocol: HTTP }, hosts: ["*"] }]
` +
        vs('a', '  hosts: [reviews]\n  exportTo: ["."]\n  http:\n  - route:\n    - destination: { host: reviews }') +
        vs('b', '  hosts: [reviews.default.svc.cluster.local]\n  exportTo: [team]\n  http:\n  - route:\n    - destination: { host: reviews }') +
        vs('c', '  hosts: [reviews]\n  gateways: [gw]\n  http:\n  - route:\n    - destination: { host: reviews }') +
        vs('d', '  hosts: [reviews]\n  gateways: [gw]\n  http:\n  - route:\n    - destination: { host: reviews }'),
      want: [],
    },
  ]);
});

describe('destinationrule.SubsetSelectPodAnalyzer', () => {
  runCases([
    {
      name: 'a subset that selects no workload of the service is IST0173; a Pod counts like a pod template',
      yaml:
        reviewsService +
        `
---
apiVersion: v1
kind: Pod
metadata: { name: reviews-v2-abc, labels: { app: reviews, version: v2 } }
spec: { containers: [{ name: reviews, image: reviews }] }
---
apiVersion: v1
kind: Pod
metadata: { name: stray-v3, namespace: other, labels: { app: reviews, version: v3 } }
spec: { containers: [{ name: reviews, image: reviews }] }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews }
spec:
  host: reviews
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
  - { name: v3, labels: { version: v3 } }
`,
      want: [
        {
          code: 'IST0173',
          level: 'Error',
          object: 'DestinationRule default/reviews',
          path: 'spec.subsets[2]',
          message: 'The Subset v3 defined in the DestinationRule does not select any pods. Which may lead to 503 UH (NoHealthyUpstream).',
        },
      ],
    },
    {
      name: 'a DestinationRule for a host with no service is IST0174',
      yaml: reviewsService + '\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: { name: reviews }\nspec: { host: reveiws }\n',
      want: [{ code: 'IST0174', level: 'Warning', object: 'DestinationRule default/reviews', path: 'spec.host', message: 'The host reveiws defined in the DestinationRule does not match any services in the mesh.' }],
    },
    {
      name: 'ServiceEntry subsets match endpoint labels, or WorkloadEntries through the workload selector',
      yaml: `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: db }
spec:
  hosts: [db.example.com]
  ports: [{ number: 3306, name: mysql, protocol: MySQL }]
  resolution: STATIC
  endpoints:
  - { address: 10.0.0.1, labels: { role: primary } }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: vm }
spec:
  hosts: [vm.example.com]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: vm } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: vm-1 }
spec: { address: 10.0.0.9, labels: { app: vm, version: v1 } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: db }
spec:
  host: db.example.com
  subsets: [{ name: primary, labels: { role: primary } }, { name: replica, labels: { role: replica } }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: vm }
spec:
  host: vm.example.com
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
`,
      want: [
        { code: 'IST0173', level: 'Error', object: 'DestinationRule default/db', path: 'spec.subsets[1]', message: 'The Subset replica defined in the DestinationRule does not select any pods. Which may lead to 503 UH (NoHealthyUpstream).' },
        { code: 'IST0173', level: 'Error', object: 'DestinationRule default/vm', path: 'spec.subsets[1]', message: 'The Subset v2 defined in the DestinationRule does not select any pods. Which may lead to 503 UH (NoHealthyUpstream).' },
      ],
    },
  ]);
});

describe('gateway.IngressGatewayPortAnalyzer', () => {
  runCases([
    {
      name: 'a selector that matches no workload in any namespace',
      yaml: `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw }
spec:
  selector: { istio: ingressgateway, app: edge }
  servers: [{ port: { number: 80, name: http, protocol: HTTP }, hosts: ["*"] }]
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: ingress, namespace: istio-system }
spec: { template: { metadata: { labels: { istio: ingressgateway } }, spec: { containers: [{ name: p, image: p }] } } }
`,
      want: [{ code: 'IST0101', level: 'Error', object: 'Gateway default/gw', path: 'spec.selector', message: 'Referenced selector not found: "app=edge,istio=ingressgateway"' }],
    },
  ]);
});

describe('sidecar.SelectorAnalyzer', () => {
  const sidecar = (name: string, ns: string, labels?: string): string => `
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: ${name}, namespace: ${ns} }
spec:
${labels ? `  workloadSelector: { labels: ${labels} }\n` : ''}  egress: [{ hosts: ["./*"] }]
`;
  runCases([
    {
      name: 'a selector matching only workloads of another namespace; the root namespace sees all',
      yaml: reviewsService + sidecar('s1', 'team', '{ app: reviews }') + sidecar('s2', 'istio-system', '{ app: reviews }'),
      want: [{ code: 'IST0101', level: 'Error', object: 'Sidecar team/s1', path: 'spec.workloadSelector.labels', message: 'Referenced selector not found: "app=reviews"' }],
    },
    {
      name: 'two Sidecars selecting one workload (IST0110), two without selector (IST0111)',
      yaml: reviewsService + sidecar('a', 'default', '{ app: reviews }') + sidecar('b', 'default', '{ version: v1 }') + sidecar('c', 'default') + sidecar('d', 'default'),
      want: [
        { code: 'IST0110', level: 'Error', object: 'Sidecar default/a', path: 'spec.workloadSelector.labels', message: 'The Sidecars [default/a default/b] in namespace "default" select the same workload pod "reviews-v1", which can lead to undefined behavior.' },
        { code: 'IST0110', level: 'Error', object: 'Sidecar default/b', path: 'spec.workloadSelector.labels', message: 'The Sidecars [default/a default/b] in namespace "default" select the same workload pod "reviews-v1", which can lead to undefined behavior.' },
        { code: 'IST0111', level: 'Error', object: 'Sidecar default/c', message: 'The Sidecars [default/c default/d] in namespace "default" have no workload selector, which can lead to undefined behavior.' },
        { code: 'IST0111', level: 'Error', object: 'Sidecar default/d', message: 'The Sidecars [default/c default/d] in namespace "default" have no workload selector, which can lead to undefined behavior.' },
      ],
    },
  ]);
});

describe('auth.AuthorizationPoliciesAnalyzer', () => {
  const ap = (name: string, ns: string, body: string): string => `
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ${name}, namespace: ${ns} }
spec:
${body}`;
  runCases([
    {
      name: 'selectors with no workload: namespaced, mesh-wide, and namespace-wide in an empty namespace',
      yaml: reviewsService + ap('a', 'default', '  selector: { matchLabels: { app: ratings } }') + ap('b', 'istio-system', '  selector: { matchLabels: { app: nothing } }') + ap('c', 'empty', '  action: ALLOW') + ap('d', 'istio-system', '  action: ALLOW'),
      want: [
        { code: 'IST0127', level: 'Warning', object: 'AuthorizationPolicy default/a', path: 'spec.selector.matchLabels', message: 'No matching workloads for this resource with the following labels: app=ratings' },
        { code: 'IST0127', level: 'Warning', object: 'AuthorizationPolicy empty/c', message: 'No matching workloads for this resource with the following labels: ' },
        { code: 'IST0127', level: 'Warning', object: 'AuthorizationPolicy istio-system/b', path: 'spec.selector.matchLabels', message: 'No matching workloads for this resource with the following labels: app=nothing' },
      ],
    },
    {
      name: 'source namespaces that exist nowhere; patterns and Namespace objects count',
      yaml:
        reviewsService +
        '\n---\napiVersion: v1\nkind: Namespace\nmetadata: { name: prod-eu }\n' +
        ap('a', 'default', '  selector: { matchLabels: { app: reviews } }\n  rules:\n  - from:\n    - source: { namespaces: [default, prodution, "prod-*", "*-eu"] }\n    - source: { notNamespaces: [istio-system, ghost] }'),
      want: [
        { code: 'IST0101', level: 'Error', object: 'AuthorizationPolicy default/a', path: 'spec.rules[0].from[0].source.namespaces[1]', message: 'Referenced namespace not found: "prodution"' },
        { code: 'IST0101', level: 'Error', object: 'AuthorizationPolicy default/a', path: 'spec.rules[0].from[1].source.notNamespaces[1]', message: 'Referenced namespace not found: "ghost"' },
      ],
    },
    {
      name: 'a port no selected workload or service exposes (MESH0101); service and container ports count',
      yaml:
        reviewsService.replace('ports: [{ name: http, port: 9080 }]', 'ports: [{ name: http, port: 80, targetPort: 9080 }]') +
        ap('a', 'default', '  selector: { matchLabels: { app: reviews } }\n  rules:\n  - to:\n    - operation: { ports: ["80", "9080", "8080"] }'),
      want: [{ code: 'MESH0101', level: 'Warning', object: 'AuthorizationPolicy default/a', path: 'spec.rules[0].to[0].operation.ports[2]', message: 'Port 8080 is not exposed by any workload or service this policy applies to.' }],
    },
  ]);
});

describe('authn.SelectorAnalyzer', () => {
  runCases([
    {
      name: 'PeerAuthentication and RequestAuthentication selectors that select nothing',
      yaml:
        reviewsService +
        `
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: strict-ratings }
spec:
  selector: { matchLabels: { app: ratings } }
  mtls: { mode: STRICT }
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: jwt, namespace: istio-system }
spec:
  selector: { matchLabels: { app: reviews } }
  jwtRules: [{ issuer: "https://issuer.example.com" }]
`,
      want: [{ code: 'IST0127', level: 'Warning', object: 'PeerAuthentication default/strict-ratings', path: 'spec.selector.matchLabels', message: 'No matching workloads for this resource with the following labels: app=ratings' }],
    },
  ]);
});

describe('peerauthentication.PolicyAnalyzer', () => {
  const pa = (name: string, ns: string, created: string, extra = ''): string => `
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: ${name}, namespace: ${ns}, creationTimestamp: "${created}" }
spec:
  mtls: { mode: STRICT }
${extra}`;
  runCases([
    {
      name: 'portLevelMtls without a selector is MESH0102',
      yaml: reviewsService + pa('ports', 'default', '2024-01-01T00:00:00Z', '  portLevelMtls: { "9080": { mode: DISABLE } }'),
      want: [
        {
          code: 'MESH0102',
          level: 'Error',
          object: 'PeerAuthentication default/ports',
          path: 'spec.portLevelMtls',
          message: 'portLevelMtls has no effect without a workload selector: port-level mTLS settings apply only to the workloads a PeerAuthentication selects.',
        },
      ],
    },
    {
      name: 'several mesh-wide PeerAuthentications: the oldest wins, by creationTimestamp then name',
      yaml: reviewsService + pa('zeta', 'istio-system', '2024-01-01T00:00:00Z') + pa('beta', 'istio-system', '2024-03-01T00:00:00Z') + pa('alpha', 'istio-system', '2024-03-01T00:00:00Z'),
      want: [
        {
          code: 'MESH0103',
          level: 'Warning',
          object: 'PeerAuthentication istio-system/alpha',
          message: 'Multiple mesh-wide PeerAuthentications in the root namespace istio-system (istio-system/zeta, istio-system/alpha, istio-system/beta); only the oldest, istio-system/zeta, takes effect.',
        },
        {
          code: 'MESH0103',
          level: 'Warning',
          object: 'PeerAuthentication istio-system/beta',
          message: 'Multiple mesh-wide PeerAuthentications in the root namespace istio-system (istio-system/zeta, istio-system/alpha, istio-system/beta); only the oldest, istio-system/zeta, takes effect.',
        },
      ],
    },
    {
      name: 'the root namespace is configurable',
      rootNamespace: 'mesh-root',
      yaml: reviewsService + pa('a', 'mesh-root', '2024-01-01T00:00:00Z') + pa('b', 'mesh-root', '2024-01-02T00:00:00Z') + pa('c', 'istio-system', '2024-01-02T00:00:00Z'),
      want: [
        {
          code: 'MESH0103',
          level: 'Warning',
          object: 'PeerAuthentication mesh-root/b',
          message: 'Multiple mesh-wide PeerAuthentications in the root namespace mesh-root (mesh-root/a, mesh-root/b); only the oldest, mesh-root/a, takes effect.',
        },
      ],
    },
  ]);
});

describe('service.PortNameAnalyzer', () => {
  runCases([
    {
      name: 'port names without a protocol prefix are IST0118 (Info); appProtocol, UDP and system namespaces pass',
      yaml: `
apiVersion: v1
kind: Service
metadata: { name: web }
spec:
  selector: { app: web }
  ports:
  - { name: web, port: 80, targetPort: 8080 }
  - { name: http-web, port: 81 }
  - { name: metrics, port: 9090, appProtocol: http }
  - { name: dns, port: 53, protocol: UDP }
  - { name: grpc-api, port: 7070 }
  - { name: admin, port: 9000 }
---
apiVersion: v1
kind: Service
metadata: { name: kube-dns, namespace: kube-system }
spec: { ports: [{ name: dns-tcp, port: 53 }] }
`,
      want: [
        { code: 'IST0118', level: 'Info', object: 'Service default/web', path: 'spec.ports[0]', message: "Port name web (port: 80, targetPort: 8080) doesn't follow the naming convention of Istio port." },
        { code: 'IST0118', level: 'Info', object: 'Service default/web', path: 'spec.ports[5]', message: "Port name admin (port: 9000, targetPort: 9000) doesn't follow the naming convention of Istio port." },
      ],
    },
  ]);
});

describe('analyze output', () => {
  const yaml = reviewsService + vs('reviews', '  hosts: [reviews]\n  gateways: [nowhere]\n  http:\n  - route:\n    - destination: { host: reviewz }');

  it('formats messages as istioctl does, sorted by object then path', () => {
    assert.equal(
      formatAnalysis(analyze(objectsOf(yaml))),
      'Error [IST0101] (VirtualService default/reviews) Referenced gateway not found: "nowhere"\n' + 'Error [IST0101] (VirtualService default/reviews) Referenced host not found: "reviewz"\n',
    );
  });

  it('puts the file and line after the object when a locator gives them', () => {
    const messages = analyze(objectsOf(yaml), { locate: (_o, path) => ({ file: 'vs.yaml', line: path === 'spec.gateways[0]' ? 20 : 22 }) });
    assert.equal(formatAnalysis(messages).split('\n')[0], 'Error [IST0101] (VirtualService default/reviews vs.yaml:20) Referenced gateway not found: "nowhere"');
  });

  it('has a JSON form with origin, path and documentation link', () => {
    assert.deepEqual(analysisToJson(analyze(objectsOf(yaml)))[1], {
      code: 'IST0101',
      name: 'ReferencedResourceNotFound',
      level: 'Error',
      message: 'Referenced host not found: "reviewz"',
      origin: 'VirtualService default/reviews',
      path: 'spec.http[0].route[0].destination.host',
      documentationUrl: 'https://istio.io/latest/docs/reference/config/analysis/ist0101/',
    });
  });

  it('keeps the object reference and orders paths by index value', () => {
    const body = '  hosts: [x]\n  http:\n' + Array.from({ length: 11 }, (_, i) => `  - route:\n    - destination: { host: h${i} }\n`).join('');
    const messages = analyze(objectsOf(vs('many', body)));
    assert.deepEqual(
      messages.map((m) => m.path),
      Array.from({ length: 11 }, (_, i) => `spec.http[${i}].route[0].destination.host`),
    );
    assert.equal(messages[0]!.ref.metadata.name, 'many');
  });

  it('lists analyzers with unique names and descriptions, and codes in the message table', () => {
    const analyzers = listAnalyzers();
    assert.ok(analyzers.length >= 12);
    assert.equal(new Set(analyzers.map((a) => a.name)).size, analyzers.length);
    for (const a of analyzers) assert.ok(a.description.length > 10, a.name);
    const codes = new Set(allMessageTypes().map((t) => t.code));
    for (const a of analyzers) for (const m of a.messages) assert.ok(codes.has(m.code), m.code);
  });

  it('skips garbage without throwing', () => {
    assert.deepEqual(analyze([null as unknown as ConfigObject, { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'x' }, spec: 'nonsense' }]), []);
  });
});

describe('Bookinfo sample', () => {
  const dir = '/work/shared/istio-samples/bookinfo/';
  const files = ['platform/kube/bookinfo.yaml', 'networking/destination-rule-all.yaml', 'networking/virtual-service-all-v1.yaml', 'networking/bookinfo-gateway.yaml'];
  const ingress = `
apiVersion: apps/v1
kind: Deployment
metadata: { name: istio-ingressgateway, namespace: istio-system }
spec:
  selector: { matchLabels: { istio: ingressgateway } }
  template:
    metadata: { labels: { istio: ingressgateway, app: istio-ingressgateway } }
    spec: { containers: [{ name: istio-proxy, image: proxyv2, ports: [{ containerPort: 8080 }] }] }
`;

  it('reports only the subsets whose workloads bookinfo.yaml does not deploy (as Istio does)', () => {
    const objects = [...files.flatMap((f) => objectsOf(readFileSync(dir + f, 'utf8'))), ...objectsOf(ingress)];
    const subset = (name: string): string => `The Subset ${name} defined in the DestinationRule does not select any pods. Which may lead to 503 UH (NoHealthyUpstream).`;
    assert.deepEqual(brief(analyze(objects)), [
      { code: 'IST0173', level: 'Error', object: 'DestinationRule default/details', path: 'spec.subsets[1]', message: subset('v2') },
      { code: 'IST0173', level: 'Error', object: 'DestinationRule default/ratings', path: 'spec.subsets[1]', message: subset('v2') },
      { code: 'IST0173', level: 'Error', object: 'DestinationRule default/ratings', path: 'spec.subsets[2]', message: subset('v2-mysql') },
      { code: 'IST0173', level: 'Error', object: 'DestinationRule default/ratings', path: 'spec.subsets[3]', message: subset('v2-mysql-vm') },
    ]);
  });

  it('without the ingress gateway workload, the Gateway selector is reported', () => {
    const objects = files.flatMap((f) => objectsOf(readFileSync(dir + f, 'utf8')));
    const gw = analyze(objects).filter((m) => m.object.startsWith('Gateway'));
    assert.deepEqual(brief(gw), [{ code: 'IST0101', level: 'Error', object: 'Gateway default/bookinfo-gateway', path: 'spec.selector', message: 'Referenced selector not found: "istio=ingressgateway"' }]);
  });
});
