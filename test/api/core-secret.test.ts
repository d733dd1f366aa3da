// The Kubernetes Secret kind as a gateway TLS credential: accepted shapes,
// errors that name the object and key without quoting key material, and
// what is passed over.

import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { credentialMaterial, formatDiagnostic, istioKinds, kubernetesForm, secretKind, validateObject } from '../../src/api/index.ts';
import type { SecretSpec } from '../../src/api/index.ts';
import { createCa, issueCertificate } from '../helpers/test-pki.ts';
import type { Pem, TestCa } from '../helpers/test-pki.ts';

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const secret = (fields: Record<string, unknown>): Record<string, unknown> => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'httpbin-credential', namespace: 'istio-system' }, ...fields });

describe('Secret (v1) as a TLS credential', () => {
  let ca: TestCa;
  let server: Pem;
  let other: Pem;
  before(async () => {
    ca = await createCa('example.com');
    server = await issueCertificate(ca, 'httpbin.example.com', { dnsNames: ['httpbin.example.com'] });
    other = await issueCertificate(ca, 'other.example.com');
  });

  it('accepts kubernetes.io/tls and stores stringData folded into base64 data', () => {
    const r = validateObject(secret({ type: 'kubernetes.io/tls', data: { 'tls.crt': b64(server.certPem), 'tls.key': b64(server.keyPem) }, stringData: { 'ca.crt': ca.certPem } }), istioKinds);
    assert.deepEqual(r.diagnostics, []);
    const spec = r.object.spec as SecretSpec;
    assert.equal(spec.type, 'kubernetes.io/tls');
    assert.deepEqual(Object.keys(spec.data).sort(), ['ca.crt', 'tls.crt', 'tls.key']);
    const material = credentialMaterial(spec);
    assert.equal(material.certChain, server.certPem);
    assert.equal(material.privateKey, server.keyPem);
    assert.equal(material.caCert, ca.certPem);
    // Shown again as Kubernetes has it: data beside metadata, no spec.
    const shown = kubernetesForm(r.object, secretKind);
    assert.equal(shown.spec, undefined);
    assert.equal(shown.type, 'kubernetes.io/tls');
  });

  it('accepts Opaque with the generic keys, and a CA-only NAME-cacert Secret', () => {
    assert.deepEqual(validateObject(secret({ type: 'Opaque', stringData: { cert: server.certPem, key: server.keyPem, cacert: ca.certPem } }), istioKinds).diagnostics, []);
    assert.deepEqual(validateObject(secret({ metadata: { name: 'httpbin-credential-cacert' }, data: { cacert: b64(ca.certPem) } }), istioKinds).diagnostics, []);
  });

  const bad: Array<{ name: string; fields: () => Record<string, unknown>; path: string; message: RegExp }> = [
    { name: 'data that is not base64', fields: () => ({ data: { 'tls.crt': '%%%' } }), path: 'data["tls.crt"]', message: /not valid base64/ },
    { name: 'a tls Secret without tls.key', fields: () => ({ type: 'kubernetes.io/tls', stringData: { 'tls.crt': server.certPem } }), path: 'data["tls.key"]', message: /needs "tls.key"/ },
    { name: 'a certificate that does not parse', fields: () => ({ stringData: { cert: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----', key: server.keyPem } }), path: 'stringData.cert', message: /does not parse/ },
    { name: 'a key that does not parse', fields: () => ({ stringData: { cert: server.certPem, key: 'not a key' } }), path: 'stringData.key', message: /not a PEM private key/ },
    { name: 'a key of another certificate', fields: () => ({ data: { 'tls.crt': b64(server.certPem), 'tls.key': b64(other.keyPem) } }), path: 'data["tls.key"]', message: /does not match the certificate in "tls.crt"/ },
    { name: 'a key pair without its certificate', fields: () => ({ stringData: { key: server.keyPem } }), path: 'data', message: /no certificate beside it/ },
    { name: 'a spec (Secrets have none)', fields: () => ({ spec: {}, stringData: { cacert: ca.certPem } }), path: 'spec', message: /Secret has no spec/ },
    { name: 'more than 1 MiB', fields: () => ({ stringData: { cacert: ca.certPem, 'big.bin': 'x'.repeat(1024 * 1024 + 1) } }), path: 'data', message: /at most 1048576/ },
  ];
  for (const c of bad) {
    it(`refuses ${c.name}, naming the field and never the key material`, () => {
      const r = validateObject(secret(c.fields()), istioKinds);
      const d = r.diagnostics.find((x) => x.severity === 'error' && x.path === c.path);
      assert.ok(d, `an error at ${c.path}: ${JSON.stringify(r.diagnostics)}`);
      assert.match(d.message, c.message);
      const text = formatDiagnostic(r, d);
      assert.match(text, /Secret istio-system\/httpbin-credential/);
      assert.doesNotMatch(text, /PRIVATE KEY|BEGIN/);
    });
  }

  it('passes over Secrets that are not TLS credentials, and other core kinds', () => {
    assert.match(validateObject(secret({ type: 'kubernetes.io/dockerconfigjson', data: {} }), istioKinds).ignored ?? '', /not a TLS credential/);
    assert.match(validateObject(secret({ stringData: { password: 'hunter2' } }), istioKinds).ignored ?? '', /not a TLS credential/);
    assert.match(validateObject({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } }, istioKinds).ignored ?? '', /Kubernetes kind; passed over/);
  });
});
