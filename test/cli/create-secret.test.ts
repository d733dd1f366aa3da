// `mesh create secret tls|generic`: kubectl's flags, local checks of the
// certificate and key before anything is sent, exit codes, and the
// --dry-run -o yaml form that `mesh apply -f -` takes back.

import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { runMesh, startControlPlane, tempDir } from '../helpers/processes.ts';
import type { RunningControlPlane } from '../helpers/processes.ts';
import { createCa, issueCertificate } from '../helpers/test-pki.ts';

describe('mesh create secret', () => {
  const dir = tempDir('mesh-create-secret-');
  const path = (name: string): string => join(dir, name);
  before(async () => {
    const ca = await createCa('example.com');
    const server = await issueCertificate(ca, 'httpbin.example.com', { dnsNames: ['httpbin.example.com'] });
    const other = await issueCertificate(ca, 'other');
    writeFileSync(path('ca.crt'), ca.certPem);
    writeFileSync(path('tls.crt'), server.certPem);
    writeFileSync(path('tls.key'), server.keyPem);
    writeFileSync(path('other.key'), other.keyPem);
    const rotatedCa = await createCa('rotated.example.com');
    const rotated = await issueCertificate(rotatedCa, 'httpbin.example.com', { dnsNames: ['httpbin.example.com'] });
    writeFileSync(path('rotated.crt'), rotated.certPem);
    writeFileSync(path('rotated.key'), rotated.keyPem);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('tls --dry-run -o yaml prints a kubernetes.io/tls Secret with the files in data', async () => {
    const r = await runMesh(['create', 'secret', 'tls', 'httpbin-credential', '-n', 'istio-system', '--cert', path('tls.crt'), '--key', path('tls.key'), '--ca', path('ca.crt'), '--dry-run', '-o', 'yaml']);
    assert.equal(r.code, 0, r.stderr);
    const s = parse(r.stdout) as { apiVersion: string; kind: string; type: string; metadata: { namespace: string }; data: Record<string, string> };
    assert.equal(s.apiVersion, 'v1');
    assert.equal(s.kind, 'Secret');
    assert.equal(s.type, 'kubernetes.io/tls');
    assert.equal(s.metadata.namespace, 'istio-system');
    assert.deepEqual(Object.keys(s.data).sort(), ['ca.crt', 'tls.crt', 'tls.key']);
  });

  it('generic --from-file=KEY=FILE makes an Opaque Secret', async () => {
    const r = await runMesh(['create', 'secret', 'generic', 'httpbin-credential-cacert', `--from-file=cacert=${path('ca.crt')}`, '--dry-run', '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as { type: string; data: Record<string, string> };
    assert.equal(s.type, 'Opaque');
    assert.deepEqual(Object.keys(s.data), ['cacert']);
  });

  const failures: Array<{ name: string; args: () => string[]; code: number; stderr: RegExp }> = [
    { name: 'a key of another certificate (exit 1)', args: () => ['tls', 'c', '--cert', path('tls.crt'), '--key', path('other.key'), '--dry-run'], code: 1, stderr: /Secret default\/c: data\["tls.key"\]: does not match the certificate in "tls.crt"/ },
    { name: 'tls without --key (exit 2)', args: () => ['tls', 'c', '--cert', path('tls.crt')], code: 2, stderr: /needs --cert FILE and --key FILE/ },
    { name: 'a missing file (exit 2)', args: () => ['tls', 'c', '--cert', path('nope.crt'), '--key', path('tls.key')], code: 2, stderr: /--cert .*nope\.crt: ENOENT/ },
    { name: 'an unknown variant (exit 2)', args: () => ['docker-registry', 'c'], code: 2, stderr: /unknown secret type "docker-registry"/ },
    { name: '-o without --dry-run (exit 2)', args: () => ['tls', 'c', '--cert', path('tls.crt'), '--key', path('tls.key'), '-o', 'yaml'], code: 2, stderr: /goes with --dry-run/ },
  ];
  for (const f of failures) {
    it(`refuses ${f.name}, without printing key material`, async () => {
      const r = await runMesh(['create', 'secret', ...f.args()]);
      assert.equal(r.code, f.code, `${r.stdout}${r.stderr}`);
      assert.match(r.stderr, f.stderr);
      assert.doesNotMatch(r.stdout + r.stderr, /PRIVATE KEY/);
    });
  }

  describe('against a control plane', () => {
    let cp: RunningControlPlane | undefined;
    before(async () => {
      cp = await startControlPlane([], join(dir, 'data'));
    });
    after(async () => {
      await cp?.stop();
    });
    /** The Secret as stored, from the config API (Kubernetes' core group path). */
    const stored = async (namespace: string, name: string): Promise<{ metadata: { resourceVersion?: string }; spec: { type: string; data: Record<string, string> } }> => {
      const res = await fetch(`${cp!.server}/api/v1/namespaces/${namespace}/secrets/${name}`);
      assert.equal(res.status, 200, await res.clone().text());
      return (await res.json()) as { metadata: { resourceVersion?: string }; spec: { type: string; data: Record<string, string> } };
    };
    const b64 = (file: string): string => readFileSync(path(file)).toString('base64');

    it('refuses a Secret that exists already with exit 5, naming the replacement, and leaves it as it was', async () => {
      const created = await runMesh(['create', 'secret', 'tls', 'exists-credential', '-n', 'istio-system', '--cert', path('tls.crt'), '--key', path('tls.key'), '--server', cp!.server]);
      assert.equal(created.code, 0, created.stderr);
      assert.match(created.stdout, /Secret istio-system\/exists-credential created/);
      const before = await stored('istio-system', 'exists-credential');

      for (const extra of [[], ['--dry-run']]) {
        const again = await runMesh(['create', 'secret', 'tls', 'exists-credential', '-n', 'istio-system', '--cert', path('rotated.crt'), '--key', path('rotated.key'), '--server', cp!.server, ...extra]);
        assert.equal(again.code, 5, `${extra.join(' ')}: ${again.stdout}${again.stderr}`);
        assert.match(again.stderr, /Secret istio-system\/exists-credential already exists; to replace it: mesh create secret tls exists-credential \.\.\. --dry-run -o yaml \| mesh apply -f -/);
        assert.doesNotMatch(again.stdout + again.stderr, /PRIVATE KEY|created/);
      }
      const after = await stored('istio-system', 'exists-credential');
      assert.equal(after.metadata.resourceVersion, before.metadata.resourceVersion, 'not written');
      assert.equal(after.spec.data['tls.crt'], b64('tls.crt'));
      assert.equal(after.spec.data['tls.key'], b64('tls.key'));
    });

    it('replaces it through --dry-run -o yaml | mesh apply -f -', async () => {
      const created = await runMesh(['create', 'secret', 'tls', 'replaced-credential', '-n', 'istio-system', '--cert', path('tls.crt'), '--key', path('tls.key'), '--server', cp!.server]);
      assert.equal(created.code, 0, created.stderr);
      const before = await stored('istio-system', 'replaced-credential');

      const yaml = await runMesh(['create', 'secret', 'tls', 'replaced-credential', '-n', 'istio-system', '--cert', path('rotated.crt'), '--key', path('rotated.key'), '--ca', path('ca.crt'), '--dry-run', '-o', 'yaml', '--server', cp!.server]);
      assert.equal(yaml.code, 0, yaml.stderr);
      const applied = await runMesh(['apply', '-f', '-', '--server', cp!.server], { input: yaml.stdout });
      assert.equal(applied.code, 0, `${applied.stdout}${applied.stderr}`);
      assert.match(applied.stdout, /Secret istio-system\/replaced-credential configured/);
      assert.doesNotMatch(applied.stdout + applied.stderr, /PRIVATE KEY/);

      const after = await stored('istio-system', 'replaced-credential');
      assert.notEqual(after.metadata.resourceVersion, before.metadata.resourceVersion);
      assert.equal(after.spec.type, 'kubernetes.io/tls');
      assert.deepEqual(after.spec.data, { 'tls.crt': b64('rotated.crt'), 'tls.key': b64('rotated.key'), 'ca.crt': b64('ca.crt') });

      // Applying the same output again changes nothing.
      const again = await runMesh(['apply', '-f', '-', '--server', cp!.server], { input: yaml.stdout });
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /Secret istio-system\/replaced-credential unchanged/);
      assert.equal((await stored('istio-system', 'replaced-credential')).metadata.resourceVersion, after.metadata.resourceVersion);
    });
  });

  it('reports an unreachable control plane with exit 3', async () => {
    const r = await runMesh(['create', 'secret', 'tls', 'c', '--cert', path('tls.crt'), '--key', path('tls.key'), '--server', 'http://127.0.0.1:1']);
    assert.equal(r.code, 3, r.stderr);
  });
});
