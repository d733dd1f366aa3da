// Mixer's stdio adapter through real sidecars (e2e-helpers.ts: a control
// plane and `mesh run` workloads, reviews v1 and v3 calling ratings with mTLS
// between the sidecars). A `stdio` handler (JSON lines on the control
// plane's standard error), a `logentry` instance and a rule that logs the
// calls to ratings except its health probes. Every call ratings' sidecar
// reports to Mixer becomes exactly one JSON line carrying the configured
// attribute values: the caller's workload and version, the destination
// service, path, method, response code (200, the app's 404, a denier's 403),
// the caller's mTLS principal, the request time; the probes the rule's match
// excludes leave no line.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { eventually } from '../runtime/helpers.ts';
import { MixerMesh, RATINGS } from './e2e-helpers.ts';
import { denyV3Yaml } from './mixer-config-fixtures.ts';

const INSTANCE = 'e2eaccesslog.istio-system';
const REVIEWS_PRINCIPAL = 'spiffe://cluster.local/ns/default/sa/reviews';

// No `|` defaults in the variables: an attribute that does not reach Mixer
// leaves its field out of the line, and the exact comparison below fails.
const STDIO = `
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: stdiolog, namespace: istio-system }
spec:
  compiledAdapter: stdio
  params:
    outputAsJson: true
    severityLevels: { Warning: WARNING }
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: e2eaccesslog, namespace: istio-system }
spec:
  compiledTemplate: logentry
  params:
    severity: 'conditional(response.code >= 400, "Warning", "Default")'
    timestamp: request.time
    variables:
      sourceWorkload: source.workload.name
      sourceVersion: source.labels["version"]
      destinationService: destination.service.host
      requestPath: request.path
      requestMethod: request.method
      responseCode: response.code
      sourcePrincipal: source.principal
      mtls: connection.mtls
      reporter: context.reporter.kind
    monitoredResourceType: '"global"'
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: stdiolog, namespace: istio-system }
spec:
  match: context.protocol == "http" && destination.service.name == "ratings" && !request.path.startsWith("/healthz")
  actions: [{ handler: stdiolog, instances: [e2eaccesslog] }]
`;

const DENY_V3_PROBES = denyV3Yaml({
  status: '{ code: 7, message: "reviews v3 may not read /denied" }',
  rule: 'denyv3denied',
  match: 'source.labels["version"] == "v3" && request.path.startsWith("/denied")',
});

let mesh: MixerMesh;

before(async () => {
  // The logging config is there before the workloads start: their first listeners carry the ALS logger.
  mesh = await MixerMesh.start({ config: STDIO });
});

after(async () => {
  await mesh?.stop();
});

/** The stdio lines of the e2eaccesslog instance on the control plane's standard error so far. */
function entries(): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of mesh.cpStderr) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as Record<string, unknown>;
    if (entry.instance === INSTANCE) out.push(entry);
  }
  return out;
}

interface Call {
  readonly from: 'v1' | 'v3';
  readonly path: string;
  readonly status: number;
  readonly before: number;
  readonly after: number;
}

test('stdio: one JSON line per reported call with exactly the configured attributes; excluded requests leave none', { timeout: 60_000 }, async () => {
  // A 403 from a denier on the inbound sidecar: the request never reaches the app, and is still reported.
  await mesh.apply(DENY_V3_PROBES);
  await eventually(async () => ((await mesh.call(mesh.v3Port, '/denied/probe')).status === 403 ? true : undefined), 'the denier answering 403 for reviews v3');

  const calls: Call[] = [];
  const call = async (from: 'v1' | 'v3', path: string): Promise<void> => {
    const before = Date.now();
    const r = await mesh.call(from === 'v1' ? mesh.v1Port : mesh.v3Port, path);
    calls.push({ from, path, status: r.status, before, after: Date.now() });
  };
  const tag = Date.now().toString(36);
  await call('v1', `/echo/${tag}/v1-a`);
  await call('v3', `/echo/${tag}/v3-a`);
  await call('v1', `/healthz/${tag}/v1`);
  await call('v1', `/status/404?${tag}-v1`);
  await call('v3', `/denied/${tag}/v3`);
  await call('v3', `/healthz/${tag}/v3`);
  await call('v1', `/denied/${tag}/v1`);
  // Last: once its line is there, every line for the calls before it is too (one reporting sidecar, reports in order).
  await call('v3', `/echo/${tag}/v3-last`);
  assert.deepEqual(calls.map((c) => c.status), [200, 200, 200, 404, 403, 200, 200, 200], 'the calls answered as expected');

  const ours = (): Record<string, unknown>[] => entries().filter((e) => String(e.requestPath).includes(tag));
  await eventually(async () => (ours().some((e) => e.requestPath === `/echo/${tag}/v3-last`) ? true : undefined), 'the last call logged by the stdio adapter', 20_000);
  const logged = ours();
  const expected = calls.filter((c) => !c.path.startsWith('/healthz'));
  assert.equal(logged.length, expected.length, `one line per call the rule matches, none for /healthz:\n${logged.map((e) => JSON.stringify(e)).join('\n')}`);
  for (const c of expected) {
    const lines = logged.filter((e) => e.requestPath === c.path);
    assert.equal(lines.length, 1, `one line for ${c.path}`);
    const { time, ...rest } = lines[0]!;
    assert.deepEqual(rest, {
      level: c.status >= 400 ? 'warning' : 'info',
      instance: INSTANCE,
      sourceWorkload: `reviews-${c.from}`,
      sourceVersion: c.from,
      destinationService: RATINGS,
      requestPath: c.path,
      requestMethod: 'GET',
      responseCode: c.status,
      sourcePrincipal: REVIEWS_PRINCIPAL,
      mtls: true,
      reporter: 'inbound',
    }, c.path);
    // The logentry's timestamp (request.time, when ratings' sidecar got the request) falls within the call.
    const at = Date.parse(String(time));
    assert.ok(at >= c.before && at <= c.after, `${c.path}: time ${String(time)} within [${new Date(c.before).toISOString()}, ${new Date(c.after).toISOString()}]`);
  }
  assert.deepEqual(logged.filter((e) => String(e.requestPath).startsWith('/healthz')), [], 'the rule excludes /healthz');
});
