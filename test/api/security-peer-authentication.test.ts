// PeerAuthentication: mesh-wide, namespace and workload policies validate in
// both versions; port-level mTLS rules report exact paths and messages.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { istioKinds, validateObject, validateText } from '../../src/api/index.ts';

function diagnosticsOf(spec: unknown) {
  const result = validateObject({ apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name: 'pa', namespace: 'foo' }, spec }, istioKinds);
  const pick = (sev: string) => result.diagnostics.filter((d) => d.severity === sev).map((d) => [d.path, d.message]);
  return { errors: pick('error'), warnings: pick('warning') };
}

describe('PeerAuthentication: valid objects', () => {
  const docs = [
    { name: 'mesh-wide STRICT in istio-system', text: 'metadata: { name: default, namespace: istio-system }\nspec:\n  mtls:\n    mode: STRICT\n' },
    { name: 'namespace PERMISSIVE', text: 'metadata: { name: default, namespace: foo }\nspec:\n  mtls: { mode: PERMISSIVE }\n' },
    {
      name: 'workload with port-level DISABLE',
      text: 'metadata: { name: finance, namespace: foo }\nspec:\n  selector:\n    matchLabels: { app: finance }\n  mtls: { mode: STRICT }\n  portLevelMtls:\n    8080:\n      mode: DISABLE\n    9090: { mode: UNSET }\n',
    },
  ];
  for (const version of ['v1', 'v1beta1']) {
    for (const doc of docs) {
      it(`${doc.name} (${version})`, () => {
        const [result] = validateText(`apiVersion: security.istio.io/${version}\nkind: PeerAuthentication\n${doc.text}`, istioKinds);
        assert.deepEqual(result!.diagnostics, []);
        assert.equal(result!.kind?.kind, 'PeerAuthentication');
      });
    }
  }
});

describe('PeerAuthentication: rules', () => {
  const cases: { name: string; spec: unknown; errors: string[][]; warnings?: string[][] }[] = [
    {
      name: 'portLevelMtls without selector',
      spec: { portLevelMtls: { '8080': { mode: 'DISABLE' } } },
      errors: [['spec.portLevelMtls', 'mesh/namespace peer authentication cannot have port level mTLS (set a selector)']],
    },
    {
      name: 'portLevelMtls with an empty selector',
      spec: { selector: { matchLabels: {} }, portLevelMtls: { '8080': { mode: 'DISABLE' } } },
      errors: [['spec.portLevelMtls', 'mesh/namespace peer authentication cannot have port level mTLS (set a selector)']],
      warnings: [['spec.selector', 'workload selector specified without labels']],
    },
    {
      name: 'empty portLevelMtls',
      spec: { selector: { matchLabels: { app: 'a' } }, portLevelMtls: {} },
      errors: [['spec.portLevelMtls', 'port level mTLS, if defined, must have at least one element']],
    },
    {
      name: 'port numbers out of range',
      spec: { selector: { matchLabels: { app: 'a' } }, portLevelMtls: { '0': { mode: 'STRICT' }, '70000': { mode: 'STRICT' }, http: { mode: 'STRICT' } } },
      errors: [
        ['spec.portLevelMtls["0"]', 'port "0" must be in range 1..65535'],
        ['spec.portLevelMtls["70000"]', 'port "70000" must be in range 1..65535'],
        ['spec.portLevelMtls.http', 'port "http" must be in range 1..65535'],
      ],
    },
    { name: 'unknown mode (schema)', spec: { mtls: { mode: 'ISTIO_MUTUAL' } }, errors: [['spec.mtls.mode', 'invalid value string "ISTIO_MUTUAL"; allowed: "UNSET", "DISABLE", "PERMISSIVE", "STRICT"']] },
    { name: 'wildcard selector', spec: { selector: { matchLabels: { '*': 'x' } } }, errors: [['spec.selector.matchLabels["*"]', 'wildcard is not supported in selector: "*=x"']] },
    {
      name: 'invalid label key in selector',
      spec: { selector: { matchLabels: { 'bad key': 'x' } } },
      errors: [['spec.selector.matchLabels["bad key"]', 'invalid label key "bad key": name must be 1-63 characters of [A-Za-z0-9_.-], starting and ending alphanumeric']],
    },
    { name: 'targetRef is not a PeerAuthentication field (schema)', spec: { targetRef: { kind: 'Service', name: 'a' } }, errors: [['spec.targetRef', 'unknown field "targetRef"']] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const got = diagnosticsOf(c.spec);
      assert.deepEqual(got.errors, c.errors);
      assert.deepEqual(got.warnings, c.warnings ?? []);
    });
  }
});
