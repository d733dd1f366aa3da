// What Pilot sends sidecars for Mixer (src/pilot/networking/policy): nothing
// without Mixer config or without a Mixer address; with check rules an
// ext_authz filter on inbound HCMs only, failure_mode_allow from
// MeshConfig.policyCheckFailOpen; the quota filter and per-route descriptors
// only with a QuotaSpecBinding; the Mixer report logger only with report rules; the
// static Mixer cluster; every listener passes the xDS encoder.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultMeshConfig, parseMeshConfig } from '../../src/api/index.ts';
import type { MeshConfig } from '../../src/api/index.ts';
import { buildPushContext, createGenerators } from '../../src/pilot/index.ts';
import type { XdsResource } from '../../src/pilot/model/index.ts';
import { MIXER_CLUSTER } from '../../src/pilot/networking/policy/mixer-wiring.ts';
import { MIXER_REPORT_TYPE_URL, reporterSettings } from '../../src/proxy/access-loggers/mixer-report/mixer-report.ts';
import { packMessage, TypeUrl } from '../../src/xds/index.ts';
import { bookinfoRegistry, sidecarProxy } from '../pilot/networking-fixtures.ts';
import { snapshotOf } from './helpers.ts';

const DENY = `
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: deny, namespace: istio-system }
spec: { compiledAdapter: denier, params: { status: { code: 7, message: no } } }
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: nothing, namespace: istio-system }
spec: { compiledTemplate: checknothing }
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: deny, namespace: istio-system }
spec:
  match: source.labels["version"] == "v3"
  actions: [{ handler: deny, instances: [nothing] }]
`;

const QUOTA = `
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: q, namespace: istio-system }
spec: { compiledAdapter: memquota, params: { quotas: [{ name: rq.instance.istio-system, maxAmount: 1, validDuration: 1s }] } }
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: rq, namespace: istio-system }
spec: { compiledTemplate: quota, params: { dimensions: { source: 'source.labels["app"] | "unknown"' } } }
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: q, namespace: istio-system }
spec: { actions: [{ handler: q, instances: [rq] }] }
---
apiVersion: config.istio.io/v1alpha2
kind: QuotaSpec
metadata: { name: rc, namespace: istio-system }
spec: { rules: [{ quotas: [{ charge: 1, quota: rq }] }] }
---
apiVersion: config.istio.io/v1alpha2
kind: QuotaSpecBinding
metadata: { name: rc, namespace: istio-system }
spec: { quotaSpecs: [{ name: rc, namespace: istio-system }], services: [{ name: ratings, namespace: default }] }
`;

const REPORT = `
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: prom, namespace: istio-system }
spec: { compiledAdapter: prometheus, params: { metrics: [{ name: c_total, instanceName: c.istio-system, kind: COUNTER, labelNames: [code] }] } }
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: c, namespace: istio-system }
spec: { compiledTemplate: metric, params: { value: "1", dimensions: { code: response.code | 0 } } }
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: r, namespace: istio-system }
spec: { actions: [{ handler: prom, instances: [c] }] }
`;

type Obj = Record<string, any>;

function generate(yaml: string, opts: { mixerAddress?: string; mesh?: MeshConfig } = {}): { listeners: XdsResource[]; clusters: XdsResource[] } {
  const reg = bookinfoRegistry();
  const push = buildPushContext({
    snapshot: snapshotOf(yaml),
    services: reg.services,
    endpoints: (h) => reg.endpoints.get(h) ?? [],
    mesh: opts.mesh ?? defaultMeshConfig(),
    version: '1',
    ...(opts.mixerAddress ? { mixerAddress: opts.mixerAddress } : {}),
  });
  const gens = createGenerators();
  const proxy = sidecarProxy();
  return {
    listeners: [...gens.get(TypeUrl.Listener)!.generate(proxy, push, { full: true } as never)],
    clusters: [...gens.get(TypeUrl.Cluster)!.generate(proxy, push, { full: true } as never)],
  };
}

/** The typed_config of every network filter `name` on the listeners of one direction. */
function networkFilters(listeners: XdsResource[], direction: 'INBOUND' | 'OUTBOUND', name: string): Obj[] {
  const out: Obj[] = [];
  for (const l of listeners) {
    const v = l.value as Obj;
    if ((v.traffic_direction === 'INBOUND') !== (direction === 'INBOUND')) continue;
    for (const c of v.filter_chains ?? []) for (const f of c.filters ?? []) if (f.name === name) out.push(f.typed_config);
  }
  return out;
}

const hcms = (listeners: XdsResource[], direction: 'INBOUND' | 'OUTBOUND'): Obj[] => networkFilters(listeners, direction, 'envoy.filters.network.http_connection_manager');
const tcpProxies = (listeners: XdsResource[], direction: 'INBOUND' | 'OUTBOUND'): Obj[] => networkFilters(listeners, direction, 'envoy.filters.network.tcp_proxy');

// Istio's telemetry filters (metadata exchange, stats) are on every HCM with or without Mixer (test/pilot/telemetry-filters.test.ts): left out here.
const TELEMETRY_FILTERS = new Set(['istio.metadata_exchange', 'istio.stats']);
const names = (hcm: Obj): string[] => (hcm.http_filters as Obj[]).map((f) => f.name as string).filter((n) => !TELEMETRY_FILTERS.has(n));
const filter = (hcm: Obj, name: string): Obj => (hcm.http_filters as Obj[]).find((f) => f.name === name)!;

test('no Mixer config, or no Mixer address: the listeners and clusters are the plain ones', () => {
  const plain = generate('', { mixerAddress: '127.0.0.1:9091' });
  const noAddress = generate(DENY + '---' + QUOTA + '---' + REPORT);
  for (const g of [plain, noAddress]) {
    for (const hcm of [...hcms(g.listeners, 'INBOUND'), ...hcms(g.listeners, 'OUTBOUND')]) {
      assert.ok(!names(hcm).some((n) => n.startsWith('istio.mixer')), names(hcm).join());
      assert.equal(hcm.access_log, undefined);
    }
    assert.ok(!g.clusters.some((c) => c.name === MIXER_CLUSTER));
  }
});

test('check rules: ext_authz to the Mixer cluster on inbound HCMs, after the attributes filter; outbound only forwards attributes', () => {
  const g = generate(DENY, { mixerAddress: '127.0.0.1:9191' });
  const inbound = hcms(g.listeners, 'INBOUND');
  assert.ok(inbound.length > 0);
  for (const hcm of inbound) {
    assert.deepEqual(names(hcm), ['istio.mixer', 'istio.mixer.check', 'envoy.filters.http.fault', 'envoy.filters.http.cors', 'envoy.filters.http.router']);
    const check = filter(hcm, 'istio.mixer.check').typed_config;
    assert.equal(check.grpc_service.envoy_grpc.cluster_name, MIXER_CLUSTER);
    assert.equal(check.failure_mode_allow, false, 'Istio 1.4 default: policyCheckFailOpen false');
    assert.deepEqual(check.metadata_context_namespaces, ['istio.mixer']);
    assert.equal(hcm.access_log, undefined, 'no report rules, no ALS');
  }
  for (const hcm of hcms(g.listeners, 'OUTBOUND')) assert.deepEqual(names(hcm).slice(0, 1), ['istio.mixer']);
  for (const hcm of hcms(g.listeners, 'OUTBOUND')) assert.ok(!names(hcm).includes('istio.mixer.check'));
  const cluster = g.clusters.find((c) => c.name === MIXER_CLUSTER)?.value as Obj;
  assert.equal(cluster.type, 'STATIC');
  assert.deepEqual(cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address, { socket_address: { address: '127.0.0.1', port_value: 9191 } });
  for (const l of g.listeners) packMessage(TypeUrl.Listener, l.value);
  for (const c of g.clusters) packMessage(TypeUrl.Cluster, c.value);
});

test('policyCheckFailOpen sets failure_mode_allow; disablePolicyChecks drops check and quota', () => {
  const open = generate(DENY, { mixerAddress: '127.0.0.1:9091', mesh: parseMeshConfig('policyCheckFailOpen: true') });
  for (const hcm of hcms(open.listeners, 'INBOUND')) assert.equal(filter(hcm, 'istio.mixer.check').typed_config.failure_mode_allow, true);
  const disabled = generate(DENY + '---' + QUOTA, { mixerAddress: '127.0.0.1:9091', mesh: parseMeshConfig('disablePolicyChecks: true') });
  for (const hcm of hcms(disabled.listeners, 'INBOUND')) assert.ok(!names(hcm).some((n) => n.startsWith('istio.mixer')));
});

test('a Mixer config change changes the check filter (a fresh check cache in the proxies)', () => {
  const a = generate(DENY, { mixerAddress: '127.0.0.1:9091' });
  const b = generate(DENY.replace('"v3"', '"v2"'), { mixerAddress: '127.0.0.1:9091' });
  const meta = (g: typeof a): unknown => filter(hcms(g.listeners, 'INBOUND')[0]!, 'istio.mixer.check').typed_config.grpc_service.initial_metadata;
  assert.notDeepEqual(meta(a), meta(b));
});

test('quota with a QuotaSpecBinding: the ratelimit filter and RateLimitPerRoute descriptors on inbound routes; report rules: the istio.mixer.report logger (Report API to the Mixer cluster)', () => {
  const g = generate(QUOTA + '---' + REPORT, { mixerAddress: '127.0.0.1:9091' });
  for (const hcm of hcms(g.listeners, 'INBOUND')) {
    assert.deepEqual(names(hcm).slice(0, 2), ['istio.mixer', 'istio.mixer.quota']);
    const rl = filter(hcm, 'istio.mixer.quota').typed_config;
    assert.equal(rl.domain, 'mixer');
    assert.equal(rl.rate_limit_service.grpc_service.envoy_grpc.cluster_name, MIXER_CLUSTER);
    for (const vh of hcm.route_config.virtual_hosts) {
      for (const r of vh.routes) {
        const per = r.typed_per_filter_config['istio.mixer.quota'];
        const keys = (per.rate_limits[0].actions as Obj[]).map((a) => a.metadata?.descriptor_key ?? a.request_headers?.descriptor_key);
        assert.ok(keys.includes('destination.service.host') && keys.includes('source.labels'), keys.join());
      }
    }
    assert.equal(hcm.access_log.length, 1);
    assert.equal(hcm.access_log[0].name, 'istio.mixer.report');
    assert.equal(hcm.access_log[0].typed_config.type_url, MIXER_REPORT_TYPE_URL);
    // No fields: the logger's default report_cluster is the cluster Pilot adds.
    assert.equal(reporterSettings({}, 'access_log[0]').cluster, MIXER_CLUSTER);
  }
  // Without a QuotaSpecBinding, quota rules reach no request: no filter.
  const unbound = generate(QUOTA.split('---').slice(0, 3).join('---'), { mixerAddress: '127.0.0.1:9091' });
  for (const hcm of hcms(unbound.listeners, 'INBOUND')) assert.ok(!names(hcm).includes('istio.mixer.quota'));
  for (const l of g.listeners) packMessage(TypeUrl.Listener, l.value);
});

test('report rules: inbound tcp_proxy reports each connection (open, every 10 s, close); outbound and check-only configs leave tcp_proxy alone', () => {
  const g = generate(REPORT, { mixerAddress: '127.0.0.1:9091' });
  const inbound = tcpProxies(g.listeners, 'INBOUND');
  assert.ok(inbound.length > 0, 'the sidecar has inbound TCP chains');
  for (const tcp of inbound) {
    assert.deepEqual(tcp.access_log.map((a: Obj) => a.name), ['istio.mixer.report']);
    assert.equal(tcp.access_log[0].typed_config.type_url, MIXER_REPORT_TYPE_URL);
    assert.equal(tcp.access_log_options.flush_access_log_on_connected, true);
    assert.equal(Number(tcp.access_log_options.access_log_flush_interval.seconds), 10);
  }
  for (const tcp of tcpProxies(g.listeners, 'OUTBOUND')) assert.equal(tcp.access_log, undefined);
  for (const tcp of tcpProxies(generate(DENY, { mixerAddress: '127.0.0.1:9091' }).listeners, 'INBOUND')) assert.equal(tcp.access_log, undefined);
  for (const l of g.listeners) packMessage(TypeUrl.Listener, l.value);
});
