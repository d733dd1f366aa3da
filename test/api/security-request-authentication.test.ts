// RequestAuthentication: the httpbin JWT example and a full-featured rule
// validate in both versions; every JWT rule check reports path and message.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { istioKinds, validateObject, validateText } from '../../src/api/index.ts';

function diagnosticsOf(spec: unknown) {
  const result = validateObject({ apiVersion: 'security.istio.io/v1beta1', kind: 'RequestAuthentication', metadata: { name: 'ra', namespace: 'foo' }, spec }, istioKinds);
  const pick = (sev: string) => result.diagnostics.filter((d) => d.severity === sev).map((d) => [d.path, d.message]);
  return { errors: pick('error'), warnings: pick('warning') };
}

const JWKS = JSON.stringify({ keys: [{ kty: 'RSA', e: 'AQAB', kid: 'k1', n: 'xyz' }] });

describe('RequestAuthentication: valid objects', () => {
  const docs = [
    {
      name: 'httpbin JWT with jwksUri',
      text: `
metadata: { name: jwt-example, namespace: foo }
spec:
  selector:
    matchLabels: { app: httpbin }
  jwtRules:
  - issuer: "testing@secure.istio.io"
    jwksUri: "https://raw.githubusercontent.com/istio/istio/release-1.24/security/tools/jwt/samples/jwks.json"`,
    },
    {
      name: 'every JWT rule field, targetRef and inline jwks',
      text: `
metadata: { name: full, namespace: foo }
spec:
  targetRef: { kind: Gateway, group: gateway.networking.k8s.io, name: waypoint }
  jwtRules:
  - issuer: "issuer-foo"
    audiences: ["bookstore_android.apps.example.com", "bookstore_web.apps.example.com"]
    jwks: '${JWKS}'
    fromHeaders:
    - name: x-jwt-assertion
      prefix: "Bearer "
    - name: x-goog-iap-jwt-assertion
    fromParams: ["my_token"]
    fromCookies: ["session"]
    outputPayloadToHeader: x-jwt-payload
    outputClaimToHeaders:
    - { header: x-jwt-claim-foo, claim: foo }
    forwardOriginalToken: true
    timeout: 5s
  - issuer: "http://local"
    jwksUri: "http://jwks.local:8080/keys"`,
    },
  ];
  for (const version of ['v1', 'v1beta1']) {
    for (const doc of docs) {
      it(`${doc.name} (${version})`, () => {
        const [result] = validateText(`apiVersion: security.istio.io/${version}\nkind: RequestAuthentication\n${doc.text}`, istioKinds);
        assert.deepEqual(result!.diagnostics, []);
        assert.equal(result!.kind?.kind, 'RequestAuthentication');
      });
    }
  }
});

describe('RequestAuthentication: rules', () => {
  const r = (rule: Record<string, unknown>) => ({ jwtRules: [{ issuer: 'iss', ...rule }] });
  const cases: { name: string; spec: unknown; errors: string[][] }[] = [
    { name: 'empty issuer', spec: { jwtRules: [{ issuer: '' }] }, errors: [['spec.jwtRules[0].issuer', 'issuer must be set']] },
    { name: 'missing issuer (schema)', spec: { jwtRules: [{ jwksUri: 'https://a/b' }] }, errors: [['spec.jwtRules[0].issuer', 'required field is missing (expected string)']] },
    { name: 'empty audience', spec: r({ audiences: ['a', ''] }), errors: [['spec.jwtRules[0].audiences[1]', 'audience must be non-empty string']] },
    { name: 'jwksUri with another scheme', spec: r({ jwksUri: 'ftp://example.com/keys' }), errors: [['spec.jwtRules[0].jwksUri', 'URI scheme "ftp" is not supported in jwksUri "ftp://example.com/keys"; use http or https']] },
    { name: 'jwksUri not a URL', spec: r({ jwksUri: 'example.com/keys' }), errors: [['spec.jwtRules[0].jwksUri', 'invalid jwksUri "example.com/keys": not a URL']] },
    { name: 'jwksUri and jwks together', spec: r({ jwksUri: 'https://example.com/keys', jwks: JWKS }), errors: [['spec.jwtRules[0]', 'only one of jwksUri or jwks may be set']] },
    { name: 'jwks not JSON', spec: r({ jwks: '{keys' }), errors: [['spec.jwtRules[0].jwks', `jwks parse error: ${jsonError('{keys')}`]] },
    { name: 'jwks without keys or kty', spec: r({ jwks: '{"a":1}' }), errors: [['spec.jwtRules[0].jwks', 'jwks parse error: neither a key set ("keys") nor a key ("kty")']] },
    { name: 'jwks key without kty', spec: r({ jwks: '{"keys":[{"kty":"EC"},{"n":"x"}]}' }), errors: [['spec.jwtRules[0].jwks', 'jwks parse error: keys[1] has no "kty"']] },
    { name: 'single JWK is accepted', spec: r({ jwks: '{"kty":"oct","k":"abc"}' }), errors: [] },
    {
      name: 'empty and invalid locations',
      spec: r({ fromHeaders: [{ name: '' }, { name: 'bad header' }], fromParams: [''], fromCookies: [''] }),
      errors: [
        ['spec.jwtRules[0].fromHeaders[0].name', 'location header name must be non-empty string'],
        ['spec.jwtRules[0].fromHeaders[1].name', 'header name "bad header" is not a valid header name (letters, digits, "-" and "_")'],
        ['spec.jwtRules[0].fromParams[0]', 'location query must be non-empty string'],
        ['spec.jwtRules[0].fromCookies[0]', 'cookie name must be non-empty string'],
      ],
    },
    {
      name: 'output headers',
      spec: r({ outputPayloadToHeader: 'x:payload', outputClaimToHeaders: [{ header: '', claim: 'sub' }, { header: 'x@y', claim: 'sub' }] }),
      errors: [
        ['spec.jwtRules[0].outputPayloadToHeader', 'header name "x:payload" is not a valid header name (letters, digits, "-" and "_")'],
        ['spec.jwtRules[0].outputClaimToHeaders[0]', 'outputClaimToHeaders header and claim value must be non-empty string'],
        ['spec.jwtRules[0].outputClaimToHeaders[1].header', 'header name "x@y" is not a valid header name (letters, digits, "-" and "_")'],
      ],
    },
    { name: 'bad timeout', spec: r({ timeout: '5' }), errors: [['spec.jwtRules[0].timeout', 'invalid duration "5" (use a number with a unit: ns, us, ms, s, m, h, such as "1.5s")']] },
    {
      name: 'selector with targetRefs',
      spec: { selector: { matchLabels: { app: 'a' } }, targetRefs: [{ kind: 'ServiceEntry', group: 'networking.istio.io', name: 'se' }] },
      errors: [['spec', 'only one of targetRefs or workloadSelector can be set']],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const got = diagnosticsOf(c.spec);
      assert.deepEqual(got.errors, c.errors);
      assert.deepEqual(got.warnings, []);
    });
  }
});

function jsonError(text: string): string {
  try {
    JSON.parse(text);
    return '';
  } catch (err) {
    return (err as Error).message;
  }
}
