// The `mesh` CLI end to end: real `mesh` processes against a real
// `mesh control-plane` process with its durable store.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { runMesh, SAMPLES, startControlPlane, tempDir } from '../helpers/processes.ts';
import type { RunningControlPlane } from '../helpers/processes.ts';
import { virtualServiceYaml } from '../helpers/virtual-service-yaml.ts';

const REVIEWS_V1ALPHA3 = virtualServiceYaml({ apiVersion: 'networking.istio.io/v1alpha3', host: 'reviews', subset: 'v1' });

const BAD_WEIGHTS = virtualServiceYaml({ host: 'reviews', subset: 'v1', weight: -5 });

describe('mesh without a control plane', () => {
  test('--help lists the commands and exits 0', async () => {
    const r = await runMesh(['--help']);
    assert.equal(r.code, 0);
    for (const name of ['validate', 'apply', 'get', 'delete', 'analyze', 'control-plane']) assert.match(r.stdout, new RegExp(`\\n  ${name} `));
  });

  test('every command has --help', async () => {
    for (const name of ['validate', 'apply', 'get', 'delete', 'analyze', 'control-plane']) {
      const r = await runMesh([name, '--help']);
      assert.equal(r.code, 0, name);
      assert.match(r.stdout, new RegExp(`^Usage: mesh ${name}`), name);
    }
  });

  test('an unknown command or flag is a usage error (exit 2)', async () => {
    assert.equal((await runMesh(['frobnicate'])).code, 2);
    const r = await runMesh(['get', 'vs', '--colour']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /Unknown option '--colour'/);
  });

  test('validate accepts every Istio sample unchanged and passes over Kubernetes kinds', async () => {
    const r = await runMesh(['validate', '-f', SAMPLES]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\d+ valid, 0 invalid, \d+ passed over\n$/);
    assert.match(r.stderr, /note: .*bookinfo\.yaml:\d+: Service \(v1\) is a Kubernetes kind; passed over/);
  });

  test('validate names the file, line, object and field of an error (exit 1)', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'bad.yaml'), BAD_WEIGHTS);
    const r = await runMesh(['validate', '-f', join(dir, 'bad.yaml')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^error: VirtualService default/reviews \\(${join(dir, 'bad.yaml').replace(/[/.]/g, '\\$&')}:13\\): spec\\.http\\[0\\]\\.route\\[0\\]\\.weight: weight -5 must not be negative$`, 'm'));
    assert.equal(r.stdout, '0 valid, 1 invalid, 0 passed over\n');
  });

  test('validate reads standard input with -f - and honours -n', async () => {
    const r = await runMesh(['validate', '-f', '-', '-n', 'bookinfo', '-o', 'json'], { input: REVIEWS_V1ALPHA3 });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { namespace: string; name: string; diagnostics: unknown[] }[];
    assert.deepEqual(out.map((o) => [o.namespace, o.name, o.diagnostics.length]), [['bookinfo', 'reviews', 0]]);
  });

  test('control-plane refuses an invalid MeshConfig with the field and exit 1', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'mesh.yaml'), 'trustDomain: example.org\noutboundTrafficPolicy:\n  mode: SOMETIMES\n');
    const r = await runMesh(['control-plane', '--mesh-config', join(dir, 'mesh.yaml'), '--data-dir', join(dir, 'data'), '--api-port', '0', '--monitoring-port', '0', '--galley-port', '0']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'error: invalid MeshConfig: outboundTrafficPolicy.mode: invalid value string "SOMETIMES"; allowed: "REGISTRY_ONLY", "ALLOW_ANY" [MESH_ERR_API_INVALID]\n');
  });

  test('bootstrap grpc writes the node identity Istio\'s gRPC bootstrap uses', async () => {
    const r = await runMesh(['bootstrap', 'grpc', '--name', 'ratings-v1', '-n', 'bookinfo', '--ip', '127.0.0.2', '--xds-address', '127.0.0.1:15010', '--label', 'app=ratings']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), {
      xds_servers: [{ server_uri: '127.0.0.1:15010', channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
      node: { id: 'sidecar~127.0.0.2~ratings-v1.bookinfo~bookinfo.svc.cluster.local', metadata: { GENERATOR: 'grpc', NAMESPACE: 'bookinfo', INSTANCE_IPS: '127.0.0.2', LABELS: { app: 'ratings' } }, locality: {} },
    });
    assert.equal((await runMesh(['bootstrap', 'grpc'])).code, 2);
  });

  test('apply with no control plane reachable exits 3 and says how to start one', async () => {
    const r = await runMesh(['apply', '-f', '-', '--server', 'http://127.0.0.1:1'], { input: REVIEWS_V1ALPHA3 });
    assert.equal(r.code, 3);
    assert.match(r.stderr, /cannot reach the control plane at http:\/\/127\.0\.0\.1:1 .*mesh control-plane/);
  });
});

describe('mesh against a running control plane', () => {
  let plane: RunningControlPlane;
  let env: Record<string, string>;
  before(async () => {
    plane = await startControlPlane();
    env = { MESH_SERVER: plane.server };
  });
  after(async () => plane.stop());

  test('apply creates, re-apply is unchanged, get shows the objects', async () => {
    const file = join(SAMPLES, 'bookinfo/networking/destination-rule-all.yaml');
    const first = await runMesh(['apply', '-f', file], { env });
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout, ['productpage', 'reviews', 'ratings', 'details'].map((n) => `DestinationRule default/${n} created\n`).join(''));
    const again = await runMesh(['apply', '-f', file], { env });
    assert.equal(again.stdout, ['productpage', 'reviews', 'ratings', 'details'].map((n) => `DestinationRule default/${n} unchanged\n`).join(''));
    const table = await runMesh(['get', 'destinationrules'], { env });
    assert.equal(table.code, 0);
    assert.match(table.stdout, /^NAMESPACE\s+NAME\s+HOSTS\s+AGE\n/);
    assert.match(table.stdout, /\ndefault\s+reviews\s+reviews\s+\d+s\n/);
  });

  test('an object is written back in the apiVersion the user gave', async () => {
    const r = await runMesh(['apply', '-f', '-'], { env, input: REVIEWS_V1ALPHA3 });
    assert.equal(r.stdout, 'VirtualService default/reviews created\n');
    const got = await runMesh(['get', 'vs', 'reviews', '-o', 'yaml'], { env });
    const obj = parseYaml(got.stdout) as { apiVersion: string; metadata: { resourceVersion: string; generation: number } };
    assert.equal(obj.apiVersion, 'networking.istio.io/v1alpha3');
    assert.equal(obj.metadata.generation, 1);
    assert.match(obj.metadata.resourceVersion, /^\d+$/);
  });

  test('an invalid apply fails with the error and changes nothing', async () => {
    const before = await runMesh(['get', 'vs', 'reviews', '-o', 'json'], { env });
    const r = await runMesh(['apply', '-f', '-'], { env, input: BAD_WEIGHTS });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: VirtualService default\/reviews \(<stdin>:13\): spec\.http\[0\]\.route\[0\]\.weight: weight -5 must not be negative$/m);
    assert.match(r.stderr, /nothing was applied/);
    const afterGet = await runMesh(['get', 'vs', 'reviews', '-o', 'json'], { env });
    assert.equal(afterGet.stdout, before.stdout);
  });

  test('--dry-run reports without changing the store', async () => {
    const input = REVIEWS_V1ALPHA3.replace('name: reviews', 'name: ratings').replaceAll('host: reviews', 'host: ratings').replace('- reviews', '- ratings');
    const r = await runMesh(['apply', '--dry-run', '-f', '-'], { env, input });
    assert.equal(r.stdout, 'VirtualService default/ratings created (dry run)\n');
    const get = await runMesh(['get', 'vs', 'ratings'], { env });
    assert.equal(get.code, 4);
  });

  test('-n places objects without a namespace; -A lists every namespace', async () => {
    const r = await runMesh(['apply', '-n', 'team-a', '-f', '-'], { env, input: REVIEWS_V1ALPHA3 });
    assert.equal(r.stdout, 'VirtualService team-a/reviews created\n');
    const all = await runMesh(['get', 'virtualservices', '-A', '-o', 'json'], { env });
    const list = JSON.parse(all.stdout) as { items: { metadata: { namespace: string; name: string } }[] };
    assert.deepEqual(list.items.map((o) => `${o.metadata.namespace}/${o.metadata.name}`), ['default/reviews', 'team-a/reviews']);
  });

  test('delete removes; deleting again is not found (exit 4)', async () => {
    const r = await runMesh(['delete', 'vs', 'reviews', '-n', 'team-a'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'VirtualService team-a/reviews deleted\n');
    const again = await runMesh(['delete', 'vs', 'reviews', '-n', 'team-a'], { env });
    assert.equal(again.code, 4);
    assert.equal((await runMesh(['delete', 'vs', 'reviews', '-n', 'team-a', '--ignore-not-found'], { env })).code, 0);
  });

  test('an unknown kind is exit 4 with the known kinds listed', async () => {
    const r = await runMesh(['get', 'frobs'], { env });
    assert.equal(r.code, 4);
    assert.match(r.stderr, /unknown kind "frobs"; known kinds: .*virtualservices/);
  });

  test('proxy-status with no proxy connected says so; proxy-config of an unknown proxy is not found', async () => {
    const r = await runMesh(['proxy-status'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, 'No proxies are connected.\n');
    const c = await runMesh(['proxy-config', 'cluster', 'nobody.default'], { env });
    assert.equal(c.code, 4);
    assert.match(c.stderr, /no connected proxy nobody\.default/);
  });

  test('/ready and /metrics answer on the monitoring port', async () => {
    const ready = await fetch(`http://127.0.0.1:${plane.ports.monitoring}/ready`);
    assert.equal(ready.status, 200);
    const metrics = await (await fetch(`http://127.0.0.1:${plane.ports.monitoring}/metrics`)).text();
    assert.match(metrics, /galley_config_objects\{type="networking\.istio\.io\/v1\/DestinationRule"\} 4/);
    assert.match(metrics, /galley_config_changes_total\{action="created"\} \d+/);
  });
});

describe('the control plane keeps config across restarts', () => {
  test('every Istio sample applies unchanged, and survives a restart of the control plane', async () => {
    const dataDir = tempDir();
    const first = await startControlPlane([], dataDir);
    let listed: string;
    try {
      const r = await runMesh(['apply', '-f', SAMPLES], { env: { MESH_SERVER: first.server } });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /VirtualService default\/bookinfo created\n/);
      assert.match(r.stdout, /Gateway istio-system\/cert-manager-gateway created\n/);
      listed = (await runMesh(['get', 'vs', '-A', '-o', 'json'], { env: { MESH_SERVER: first.server } })).stdout;
    } finally {
      await first.stop();
    }
    const second = await startControlPlane([], dataDir);
    try {
      const again = await runMesh(['get', 'vs', '-A', '-o', 'json'], { env: { MESH_SERVER: second.server } });
      assert.equal(again.stdout, listed);
      assert.ok((JSON.parse(listed) as { items: unknown[] }).items.length >= 10);
    } finally {
      await second.stop();
    }
  });
});

describe('the control plane serving a watched directory', () => {
  test('a bad file is reported in /status and skipped while good config is served; edits take effect', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'good.yaml'), REVIEWS_V1ALPHA3);
    writeFileSync(join(dir, 'bad.yaml'), BAD_WEIGHTS.replace('name: reviews', 'name: broken'));
    const plane = await startControlPlane(['--config-dir', dir]);
    try {
      const env = { MESH_SERVER: plane.server };
      const status = (await (await fetch(`${plane.server}/status`)).json()) as { store: string; errors: { file: string; errors: string[] }[] };
      assert.equal(status.store, 'directory');
      assert.equal(status.errors.length, 1);
      assert.match(status.errors[0]!.file, /bad\.yaml$/);
      assert.match(status.errors[0]!.errors[0]!, /VirtualService default\/broken .*spec\.http\[0\]\.route\[0\]\.weight: weight -5 must not be negative/);
      const listed = await runMesh(['get', 'vs', '-o', 'json'], { env });
      assert.deepEqual((JSON.parse(listed.stdout) as { items: { metadata: { name: string } }[] }).items.map((o) => o.metadata.name), ['reviews']);

      writeFileSync(join(dir, 'good.yaml'), REVIEWS_V1ALPHA3.replace('subset: v1', 'subset: v2'));
      const deadline = Date.now() + 10_000;
      let subset = '';
      while (Date.now() < deadline && subset !== 'v2') {
        const got = JSON.parse((await runMesh(['get', 'vs', 'reviews', '-o', 'json'], { env })).stdout) as { spec: { http: { route: { destination: { subset: string } }[] }[] } };
        subset = got.spec.http[0]!.route[0]!.destination.subset;
      }
      assert.equal(subset, 'v2');
      const refused = await runMesh(['apply', '-f', '-'], { env, input: REVIEWS_V1ALPHA3 });
      assert.equal(refused.code, 6);
      assert.match(refused.stderr, /read-only|READ_ONLY/i);
    } finally {
      await plane.stop();
    }
  });
});
