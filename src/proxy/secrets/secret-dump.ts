// A secret as /config_dump shows it (envoy.admin.v3.SecretsConfigDump):
// certificates and CAs as base64 inline_bytes, private keys "[redacted]".

import { TypeUrl } from '../../xds/index.ts';
import type { SecretValue } from './secret.ts';

export function renderSecret(name: string, value: SecretValue | undefined): Record<string, unknown> | undefined {
  if (!value) return undefined;
  if (value.kind === 'tls_certificate') {
    return { '@type': TypeUrl.Secret, name, tls_certificate: { certificate_chain: { inline_bytes: value.certChain.toString('base64') }, private_key: { inline_string: '[redacted]' } } };
  }
  return { '@type': TypeUrl.Secret, name, validation_context: value.trustedCa ? { trusted_ca: { inline_bytes: value.trustedCa.toString('base64') } } : {} };
}
