// networking.istio.io: a full-featured valid object of every kind validates
// cleanly in v1, v1beta1 and v1alpha3; the kinds are found by their kubectl
// names; and every Istio sample file validates with zero errors.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { istioKinds, istioTypeUrl, validateText } from '../../src/api/index.ts';

const FULL_OBJECTS: Record<string, string> = {
  VirtualService: `
kind: VirtualService
metadata: { name: reviews, namespace: bookinfo }
spec:
  hosts: [reviews, "*.example.com", 10.0.0.1]
  gateways: [mesh, istio-system/public-gateway, bookinfo-gateway]
  exportTo: [".", istio-system]
  http:
  - name: jason
    match:
    - name: by-user
      uri: { prefix: /api }
      scheme: { exact: https }
      method: { exact: GET }
      authority: { regex: "^reviews(:[0-9]+)?$" }
      headers:
        end-user: { exact: jason }
        x-present: {}
        ":method": { exact: GET }
      withoutHeaders:
        x-debug: { prefix: "1" }
      queryParams:
        version: { regex: "v[0-9]+" }
      port: 9080
      sourceLabels: { app: productpage, version: v1 }
      gateways: [mesh]
      sourceNamespace: bookinfo
      ignoreUriCase: true
      statPrefix: jason
    route:
    - destination: { host: reviews, subset: v2, port: { number: 9080 } }
      weight: 75
      headers:
        request: { set: { x-route: v2 }, add: { x-added: "1" }, remove: [x-internal] }
        response: { set: { cache-control: no-cache } }
    - destination: { host: reviews.bookinfo.svc.cluster.local, subset: v3 }
      weight: 25
    rewrite:
      uri: /v2/api
      authority: reviews.internal
    timeout: 2.5s
    retries:
      attempts: 3
      perTryTimeout: 500ms
      retryOn: 5xx,connect-failure,503,reset-before-request
      retryRemoteLocalities: true
      retryIgnorePreviousHosts: true
      backoff: 25ms
    fault:
      delay: { fixedDelay: 7s, percentage: { value: 10.5 } }
      abort: { httpStatus: 503, percentage: { value: 0.1 } }
    mirrors:
    - destination: { host: reviews-shadow, subset: v1 }
      percentage: { value: 5 }
    corsPolicy:
      allowOrigins: [{ exact: "https://example.com" }, { prefix: "https://dev." }, { regex: "https://.*\\\\.example\\\\.org" }]
      allowMethods: [GET, POST, OPTIONS]
      allowHeaders: [authorization, "*"]
      exposeHeaders: [x-request-id]
      maxAge: 24h
      allowCredentials: true
      unmatchedPreflights: IGNORE
    headers:
      request: { set: { x-forwarded-client: bookinfo } }
      response: { remove: [server] }
  - name: mirror-legacy
    match: [{ uri: { exact: /legacy } }]
    route: [{ destination: { host: reviews, subset: v1 } }]
    mirror: { host: reviews-shadow }
    mirrorPercentage: { value: 50 }
    rewrite:
      uriRegexRewrite: { match: "^/legacy(/.*)?$", rewrite: "/v1\\\\1" }
  - match: [{ uri: { exact: /old } }]
    redirect: { uri: /new, authority: example.com, port: 8443, scheme: https, redirectCode: 308 }
  - match: [{ uri: { exact: /derive } }]
    redirect: { uri: /derived, derivePort: FROM_REQUEST_PORT }
  - match: [{ uri: { exact: /teapot } }]
    directResponse: { status: 418, body: { string: "I'm a teapot" } }
  - match: [{ uri: { prefix: /delegated } }]
    delegate: { name: reviews-delegate, namespace: other }
  - match: [{ uri: { prefix: /grpc } }]
    route: [{ destination: { host: grpc-svc } }]
    fault:
      abort: { grpcStatus: UNAVAILABLE, percentage: { value: 1 } }
  tls:
  - match:
    - sniHosts: [login.example.com]
      destinationSubnets: [10.0.0.0/8, 2001:db8::/32]
      port: 443
      sourceLabels: { app: client }
      gateways: [mesh]
      sourceNamespace: bookinfo
    route:
    - destination: { host: login, port: { number: 443 } }
  tcp:
  - match:
    - port: 27017
      destinationSubnets: [192.168.0.0/16]
      sourceSubnet: 10.1.0.0/16
      sourceLabels: { app: reviews }
      gateways: [istio-system/public-gateway]
      sourceNamespace: bookinfo
    route:
    - destination: { host: mongo, port: { number: 27017 } }
      weight: 80
    - destination: { host: mongo-backup, port: { number: 27017 } }
      weight: 20
`,
  'VirtualService (gateway only)': `
kind: VirtualService
metadata: { name: edge, namespace: istio-system }
spec:
  hosts: [bookinfo.example.com, "outbound_.443_._.login.example.com"]
  gateways: [public-gateway]
  http:
  - match:
    - headers:
        "@request.auth.claims.group": { exact: admins }
      withoutHeaders:
        "@request.auth.claims[iss]": { regex: "*" }
    route: [{ destination: { host: productpage.bookinfo.svc.cluster.local, port: { number: 9080 } } }]
  tls:
  - match: [{ sniHosts: ["outbound_.443_._.login.example.com"] }]
    route: [{ destination: { host: login.example.com } }]
`,
  DestinationRule: `
kind: DestinationRule
metadata: { name: reviews, namespace: bookinfo }
spec:
  host: reviews.bookinfo.svc.cluster.local
  exportTo: ["."]
  workloadSelector:
    matchLabels: { app: productpage }
  trafficPolicy:
    loadBalancer:
      simple: LEAST_REQUEST
      localityLbSetting:
        enabled: true
        distribute:
        - from: us-west/zone1/*
          to: { "us-west/zone1/*": 80, "us-west/zone2/*": 20 }
      warmupDurationSecs: 30s
    connectionPool:
      tcp:
        maxConnections: 100
        connectTimeout: 30ms
        tcpKeepalive: { probes: 3, time: 7200s, interval: 75s }
        maxConnectionDuration: 1h
        idleTimeout: 1h
      http:
        http1MaxPendingRequests: 10
        http2MaxRequests: 1000
        maxRequestsPerConnection: 10
        maxRetries: 3
        idleTimeout: 30s
        h2UpgradePolicy: UPGRADE
        useClientProtocol: false
        maxConcurrentStreams: 100
    outlierDetection:
      splitExternalLocalOriginErrors: true
      consecutiveLocalOriginFailures: 5
      consecutiveGatewayErrors: 5
      consecutive5xxErrors: 7
      interval: 5m
      baseEjectionTime: 15m
      maxEjectionPercent: 50
      minHealthPercent: 10
    tls:
      mode: MUTUAL
      clientCertificate: /etc/certs/cert.pem
      privateKey: /etc/certs/key.pem
      caCertificates: /etc/certs/ca.pem
      subjectAltNames: [reviews.example.com]
      sni: reviews.example.com
      insecureSkipVerify: false
      caCrl: /etc/certs/crl.pem
    portLevelSettings:
    - port: { number: 9080 }
      loadBalancer:
        consistentHash:
          httpCookie: { name: user, path: /, ttl: 0s, attributes: [{ name: SameSite, value: Strict }] }
          ringHash: { minimumRingSize: 1024 }
    - port: { number: 9443 }
      tls: { mode: SIMPLE, credentialName: reviews-client }
      connectionPool: { tcp: { maxConnections: 5 } }
    tunnel: { protocol: CONNECT, targetHost: proxy.example.com, targetPort: 3128 }
    retryBudget: { percent: { value: 20 }, minRetryConcurrency: 3 }
  subsets:
  - name: v1
    labels: { version: v1 }
    trafficPolicy:
      proxyProtocol: { version: V2 }
  - name: v2
    labels: { version: v2 }
    trafficPolicy:
      loadBalancer:
        consistentHash:
          httpHeaderName: x-user
          maglev: { tableSize: 65537 }
  - name: v3
    labels: { version: v3 }
    trafficPolicy:
      loadBalancer:
        localityLbSetting:
          failover: [{ from: us-east, to: eu-west }]
          failoverPriority: [topology.istio.io/network]
        warmup: { duration: 60s, minimumPercent: 10, aggression: 1.5 }
      outlierDetection: { consecutive5xxErrors: 3 }
      tls: { mode: ISTIO_MUTUAL, sni: reviews }
`,
  Gateway: `
kind: Gateway
metadata: { name: public-gateway, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
  - name: http
    port: { number: 80, protocol: HTTP, name: http }
    hosts: ["*/bookinfo.example.com", "./*.internal.example.com", "legacy.example.com"]
    tls: { httpsRedirect: true }
  - name: https
    port: { number: 443, protocol: HTTPS, name: https }
    bind: 0.0.0.0
    hosts: [bookinfo/bookinfo.example.com]
    tls:
      mode: SIMPLE
      credentialName: bookinfo-cert
      minProtocolVersion: TLSV1_2
      maxProtocolVersion: TLSV1_3
      cipherSuites: [ECDHE-RSA-AES256-GCM-SHA384]
  - port: { number: 8443, protocol: HTTPS, name: https-mutual }
    hosts: ["*"]
    tls:
      mode: MUTUAL
      serverCertificate: /etc/certs/server.pem
      privateKey: /etc/certs/key.pem
      caCertificates: /etc/certs/ca.pem
      caCrl: /etc/certs/crl.pem
      subjectAltNames: [client.example.com]
      verifyCertificateSpki: [2hYxxb2Tx5S3YCzt59R0vHBVeiUwOcdxjdnfqvvWNq0=]
      verifyCertificateHash: ["DC:98:7E:47:F0:88:29:A6:54:8B:6E:A5:8C:2B:48:56:36:D5:4A:B1:0E:1E:EE:6B:29:5E:82:B0:91:5A:0D:0B"]
  - port: { number: 15443, protocol: TLS, name: tls-passthrough }
    hosts: ["*.local"]
    tls: { mode: AUTO_PASSTHROUGH }
  - port: { number: 15012, protocol: TLS, name: tls-istiod }
    hosts: ["*"]
    tls: { mode: ISTIO_MUTUAL }
  - port: { number: 31400, protocol: TCP, name: tcp }
    hosts: ["*"]
    defaultEndpoint: 127.0.0.1:31400
  - port: { number: 0, protocol: HTTP, name: uds }
    bind: unix:///var/run/gateway.sock
    hosts: ["*"]
  - port: { number: 9443, protocol: HTTPS, name: https-dual }
    hosts: ["*"]
    tls:
      mode: OPTIONAL_MUTUAL
      credentialNames: [cert-rsa, cert-ecdsa]
`,
  ServiceEntry: `
kind: ServiceEntry
metadata: { name: external-apis, namespace: bookinfo }
spec:
  hosts: [api.example.com, "*.googleapis.com"]
  addresses: [240.0.0.1, 240.1.0.0/16]
  ports:
  - { number: 443, protocol: HTTPS, name: https }
  - { number: 8080, protocol: HTTP, name: http, targetPort: 80 }
  location: MESH_EXTERNAL
  resolution: STATIC
  endpoints:
  - address: 1.2.3.4
    ports: { https: 8443 }
    labels: { region: eu }
    network: net1
    locality: eu-west/zone1
    weight: 10
    serviceAccount: api
  - address: "2001:db8::1"
  exportTo: ["*"]
  subjectAltNames: [spiffe://cluster.local/ns/bookinfo/sa/api]
`,
  Sidecar: `
kind: Sidecar
metadata: { name: default, namespace: bookinfo }
spec:
  workloadSelector:
    labels: { app: reviews }
  ingress:
  - port: { number: 9080, protocol: HTTP, name: http }
    bind: 0.0.0.0
    captureMode: IPTABLES
    defaultEndpoint: 127.0.0.1:8080
    connectionPool:
      http: { http1MaxPendingRequests: 100 }
  - port: { number: 9443, protocol: HTTPS, name: https }
    defaultEndpoint: unix:///var/run/app.sock
    tls:
      mode: SIMPLE
      serverCertificate: /etc/certs/server.pem
      privateKey: /etc/certs/key.pem
  egress:
  - port: { number: 0, protocol: HTTP, name: uds }
    bind: unix:///var/run/egress.sock
    captureMode: NONE
    hosts: [bookinfo/ratings.bookinfo.svc.cluster.local]
  - port: { number: 3306, protocol: MYSQL, name: mysql }
    bind: 127.0.0.1
    hosts: ["*/mysql.example.com"]
  - hosts: ["./*", "istio-system/*", "~/*.example.com"]
  inboundConnectionPool:
    tcp: { maxConnections: 1000 }
  outboundTrafficPolicy:
    mode: ALLOW_ANY
    egressProxy: { host: egress-proxy.example.com, subset: v1, port: { number: 3128 } }
`,
  WorkloadEntry: `
kind: WorkloadEntry
metadata: { name: details-vm, namespace: bookinfo }
spec:
  address: 10.0.0.7
  ports: { http: 9080, metrics: 15090 }
  labels: { app: details, version: v1 }
  network: vm-network
  locality: us-west/zone1/rack1
  weight: 3
  serviceAccount: bookinfo-details
`,
  WorkloadGroup: `
kind: WorkloadGroup
metadata: { name: details, namespace: bookinfo }
spec:
  metadata:
    labels: { app: details }
    annotations: { example.com/owner: team-a }
  template:
    ports: { http: 9080 }
    serviceAccount: bookinfo-details
    network: vm-network
    locality: us-west/zone1
    weight: 1
  probe:
    initialDelaySeconds: 5
    timeoutSeconds: 3
    periodSeconds: 4
    successThreshold: 3
    failureThreshold: 3
    httpGet:
      path: /ready
      port: 9080
      host: 127.0.0.1
      scheme: HTTPS
      httpHeaders: [{ name: x-probe, value: "1" }]
`,
};

describe('networking.istio.io: full-featured objects validate in every version', () => {
  for (const version of ['v1', 'v1beta1', 'v1alpha3']) {
    for (const [label, text] of Object.entries(FULL_OBJECTS)) {
      const kind = label.split(' ')[0];
      it(`${label} (${version})`, () => {
        const results = validateText(`apiVersion: networking.istio.io/${version}\n${text}`, istioKinds);
        assert.equal(results.length, 1);
        assert.deepEqual(results[0]!.diagnostics, []);
        assert.equal(results[0]!.kind?.kind, kind);
      });
    }
  }

  it('rejects a version Istio does not serve', () => {
    const [result] = validateText('apiVersion: networking.istio.io/v2\nkind: Gateway\nmetadata: { name: g }\nspec: {}\n', istioKinds);
    assert.deepEqual(result!.diagnostics.map((d) => [d.path, d.message]), [
      ['apiVersion', 'Gateway does not support apiVersion "networking.istio.io/v2"; supported: networking.istio.io/v1, networking.istio.io/v1beta1, networking.istio.io/v1alpha3'],
    ]);
  });
});

describe('networking.istio.io: kind names', () => {
  const names: [string, string][] = [
    ['vs', 'VirtualService'], ['virtualservices', 'VirtualService'], ['dr', 'DestinationRule'], ['destinationrules', 'DestinationRule'],
    ['gw', 'Gateway'], ['gateways.networking.istio.io', 'Gateway'], ['se', 'ServiceEntry'], ['serviceentries', 'ServiceEntry'],
    ['sidecars', 'Sidecar'], ['we', 'WorkloadEntry'], ['wle', 'WorkloadEntry'], ['workloadentries', 'WorkloadEntry'],
    ['wg', 'WorkloadGroup'], ['workloadgroups', 'WorkloadGroup'],
  ];
  for (const [name, kind] of names) {
    it(`${name} -> ${kind}`, () => assert.equal(istioKinds.resolve(name)?.kind, kind));
  }
  it('type URLs name v1', () => {
    assert.equal(istioTypeUrl(istioKinds.get('networking.istio.io', 'VirtualService')!), 'networking.istio.io/v1/VirtualService');
    assert.equal(istioTypeUrl(istioKinds.get('networking.istio.io', 'WorkloadGroup')!), 'networking.istio.io/v1/WorkloadGroup');
  });
});

const SAMPLES = '/work/shared/istio-samples';

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return yamlFiles(path);
    return /\.ya?ml$/.test(name) ? [path] : [];
  });
}

describe('Istio sample files validate with zero errors', () => {
  const files = yamlFiles(SAMPLES);
  it('finds the sample files', () => assert.ok(files.length >= 40, `only ${files.length} files`));
  for (const file of files) {
    it(file.slice(SAMPLES.length + 1), () => {
      const results = validateText(readFileSync(file, 'utf8'), istioKinds, { file });
      assert.ok(results.length > 0);
      for (const result of results) {
        assert.deepEqual(result.diagnostics.filter((d) => d.severity === 'error'), [], `${result.object.kind} ${result.object.metadata.name}`);
        if (result.kind === undefined) assert.match(result.ignored ?? '', /is a Kubernetes kind; passed over$/, `${result.object.kind} neither validated nor ignored`);
      }
    });
  }
  it('warns only where Istio warns too', () => {
    // Istio's own validation reports this sample's second rule as unreachable: the first rule has no match.
    const warnings: string[] = [];
    for (const file of files) {
      for (const r of validateText(readFileSync(file, 'utf8'), istioKinds, { file })) {
        for (const d of r.diagnostics) warnings.push(`${file.slice(SAMPLES.length + 1)}:${d.line} ${r.object.kind} ${d.path}: ${d.message}`);
      }
    }
    assert.deepEqual(warnings, [
      'bookinfo/networking/fault-injection-details-v1.yaml:18 VirtualService spec.http[1]: virtualService rule #1 not used (only the last rule can have no matches)',
    ]);
  });
  it('networking kinds are validated, Kubernetes kinds ignored', () => {
    const kinds = new Map<string, string>();
    for (const file of files) {
      for (const r of validateText(readFileSync(file, 'utf8'), istioKinds, { file })) kinds.set(r.object.kind, r.ignored ? 'ignored' : 'validated');
    }
    for (const kind of ['VirtualService', 'DestinationRule', 'Gateway', 'ServiceEntry']) assert.equal(kinds.get(kind), 'validated');
    for (const kind of ['Service', 'Deployment', 'ServiceAccount']) assert.equal(kinds.get(kind), 'ignored');
  });
});
