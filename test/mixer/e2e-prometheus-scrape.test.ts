// A real Prometheus server scrapes the mesh (test/helpers/prometheus-server.ts):
// the control plane's monitoring port, where a metric defined in Mixer config
// (prometheus adapter) lives, and the stats listener of every `mesh run`
// sidecar (Istio's 15090 /stats/prometheus, served by the sidecar's
// `prometheus_stats` listener). The Mixer config is in place
// before the workloads start, so every request through ratings' sidecar is
// reported and the count Prometheus sees equals the requests made.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { PrometheusServer, prometheusSkipReason } from '../helpers/prometheus-server.ts';
import type { PromSample } from '../helpers/prometheus-server.ts';
import { eventually } from '../runtime/helpers.ts';
import { MixerMesh, RATINGS } from './e2e-helpers.ts';
import { REQUEST_COUNT_DIMENSIONS, requestCounterYaml } from './mixer-config-fixtures.ts';

const skip = prometheusSkipReason();

const TELEMETRY = requestCounterYaml({ handler: 'scrapeprom', metric: 'scrape_requests_total', instance: 'scraperequestcount', rule: 'scrapetelemetry', dimensions: REQUEST_COUNT_DIMENSIONS, match: 'context.protocol == "http"' });

/** Requests each test sends per reviews version on top of start()'s warm-up calls. */
const REQUESTS = 7;

let mesh: MixerMesh;
let prom: PrometheusServer;

before(async () => {
  if (skip) return;
  mesh = await MixerMesh.start({ config: TELEMETRY });
  prom = await PrometheusServer.start([
    { name: 'control-plane', targets: [`127.0.0.1:${mesh.cp.ports.monitoring}`] },
    { name: 'sidecars', targets: mesh.statsTargets, metricsPath: '/stats/prometheus' },
  ]);
  for (let i = 0; i < REQUESTS; i++) {
    assert.equal((await mesh.call(mesh.v1Port)).status, 200);
    assert.equal((await mesh.call(mesh.v3Port)).status, 200);
  }
});

after(async () => {
  await prom?.stop();
  await mesh?.stop();
});

/** Polls `promql` until its value (one series) is `expected`; fails with the last answer. */
async function valueBecomes(promql: string, expected: number): Promise<PromSample> {
  let last: PromSample[] = [];
  try {
    return await eventually(async () => {
      last = await prom.query(promql);
      return last.length === 1 && last[0].value === expected ? last[0] : undefined;
    }, `${promql} == ${expected}`, 20_000);
  } catch (err) {
    throw new Error(`${(err as Error).message}; last answer ${JSON.stringify(last)}`, { cause: err });
  }
}

// Prometheus applies new targets after its 5 s discovery throttle, then scrapes every second.
test('Prometheus has every target up: the control plane and the three sidecars', { skip, timeout: 60_000 }, async () => {
  const targets = await eventually(async () => {
    const t = await prom.targets();
    return t.length === 4 && t.every((x) => x.health === 'up') ? t : undefined;
  }, 'all targets up', 45_000).catch(async (err: Error) => assert.fail(`${err.message}: ${JSON.stringify(await prom.targets())}`));
  assert.deepEqual(targets.filter((t) => t.job === 'sidecars').map((t) => t.instance).sort(), [...mesh.statsTargets].sort());
  assert.deepEqual(targets.filter((t) => t.job === 'control-plane').map((t) => t.instance), [`127.0.0.1:${mesh.cp.ports.monitoring}`]);
  for (const t of targets.filter((x) => x.job === 'sidecars')) assert.match(t.scrapeUrl, /\/stats\/prometheus$/);
});

test('a sidecar stats port serves only /stats/prometheus, never the admin API behind it', { skip }, async () => {
  const stats = mesh.statsTargets[0];
  for (const path of ['/quitquitquit', '/config_dump', '/drain_listeners', '/']) {
    const res = await fetch(`http://${stats}${path}`, { method: path === '/config_dump' || path === '/' ? 'GET' : 'POST' });
    await res.arrayBuffer();
    assert.equal(res.status, 404, path);
  }
  assert.equal((await fetch(`http://${stats}/stats/prometheus`)).status, 200);
});

test('the metric defined in Mixer config reaches Prometheus with its labels and one count per request', { skip, timeout: 60_000 }, async () => {
  for (const [version, port] of [['v1', mesh.v1Port], ['v3', mesh.v3Port]] as const) {
    const calls = mesh.okCalls.get(port)!;
    assert.ok(calls >= REQUESTS);
    const series = await valueBecomes(`istio_scrape_requests_total{job="control-plane",source_version="${version}"}`, calls);
    assert.deepEqual(
      { ...series.labels, instance: undefined },
      { __name__: 'istio_scrape_requests_total', job: 'control-plane', instance: undefined, response_code: '200', destination_service: RATINGS, source_version: version, reporter: 'inbound' },
    );
  }
});

test('each sidecar\'s Envoy series reach Prometheus under its own instance, one count per request', { skip, timeout: 60_000 }, async () => {
  const [ratingsStats, v1Stats, v3Stats] = mesh.statsTargets;
  const v1Calls = mesh.okCalls.get(mesh.v1Port)!;
  const v3Calls = mesh.okCalls.get(mesh.v3Port)!;
  // The calling sidecars, each on its own outbound cluster to ratings.
  const outbound = (instance: string): string => `envoy_cluster_upstream_rq{job="sidecars",instance="${instance}",envoy_cluster_name="outbound|9080||${RATINGS}",envoy_response_code="200"}`;
  await valueBecomes(outbound(v1Stats), v1Calls);
  await valueBecomes(outbound(v3Stats), v3Calls);
  // ratings' sidecar served both on its inbound cluster.
  await valueBecomes(`sum(envoy_cluster_upstream_rq{job="sidecars",instance="${ratingsStats}",envoy_cluster_name="inbound|9080||",envoy_response_code="200"})`, v1Calls + v3Calls);
});

// Istio's standard metrics with no Mixer config at all: Pilot puts istio.stats on every
// sidecar listener by default (src/pilot/networking/telemetry-filters.ts), outbound
// with reporter=source and inbound with reporter=destination, and the peer's labels
// arrive through the metadata exchange headers.
test('istio_requests_total from both reporters, with Istio labels, one count per call', { skip, timeout: 60_000 }, async () => {
  const [ratingsStats, v1Stats, v3Stats] = mesh.statsTargets;
  for (const [version, port, stats] of [['v1', mesh.v1Port, v1Stats], ['v3', mesh.v3Port, v3Stats]] as const) {
    const calls = mesh.okCalls.get(port)!;
    const workloads = `source_workload="reviews-${version}",source_app="reviews",source_version="${version}",destination_workload="ratings-v1",destination_app="ratings"`;
    const source = await valueBecomes(`istio_requests_total{job="sidecars",instance="${stats}",reporter="source",${workloads},destination_service="${RATINGS}",response_code="200"}`, calls);
    assert.equal(source.labels.destination_service_name, 'ratings');
    assert.equal(source.labels.destination_service_namespace, 'default');
    assert.equal(source.labels.request_protocol, 'http');
    assert.equal(source.labels.response_flags, '-');
    // ratings' sidecar reports the same calls; mTLS between the sidecars shows in the connection labels.
    // The service comes from the inbound cluster's istio.services metadata, not the Host header (the apps dial 127.0.0.1 here).
    const destination = await valueBecomes(`istio_requests_total{job="sidecars",instance="${ratingsStats}",reporter="destination",${workloads},destination_service="${RATINGS}",destination_service_name="ratings",destination_service_namespace="default",response_code="200"}`, calls);
    assert.equal(destination.labels.connection_security_policy, 'mutual_tls');
    assert.match(destination.labels.source_principal ?? '', /^spiffe:\/\/cluster\.local\/ns\/default\/sa\//);
  }
});
