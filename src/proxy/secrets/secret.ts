// Secret resources (static_resources.secrets and SDS) -> readonly domain
// values: a certificate with its key, or a validation context (trusted CA and
// subject-alt-name matchers). File data sources are read once, when the
// secret is decoded, so a handshake never touches the disk.

import { readFileSync } from 'node:fs';
import { configError } from '../errors.ts';
import { stringMatcher } from '../config/matchers.ts';
import type { StringPredicate } from '../config/matchers.ts';

type D = Record<string, any>;

export interface TlsCertificate {
  readonly kind: 'tls_certificate';
  /** PEM chain, leaf first. */
  readonly certChain: Buffer;
  readonly privateKey: Buffer;
}

export type SanType = 'DNS' | 'URI' | 'EMAIL' | 'IP_ADDRESS' | 'ANY';

export interface SanMatcher {
  readonly type: SanType;
  readonly match: StringPredicate;
}

export interface ValidationContext {
  readonly kind: 'validation_context';
  /** PEM bundle of trusted roots; undefined means the peer certificate is not verified. */
  readonly trustedCa: Buffer | undefined;
  /** Any one must match one SAN of the peer; empty accepts every verified peer. */
  readonly sanMatchers: readonly SanMatcher[];
}

export type SecretValue = TlsCertificate | ValidationContext;

export interface Secret {
  readonly name: string;
  readonly value: SecretValue;
}

/** Reads a DataSource (filename, inline_bytes, inline_string, environment_variable). */
export function dataSource(ds: D | null | undefined, path: string): Buffer | undefined {
  if (!ds) return undefined;
  switch (ds.specifier) {
    case 'filename':
      try {
        return readFileSync(ds.filename);
      } catch (err) {
        throw configError(`${path}.filename`, `cannot read ${ds.filename}: ${(err as Error).message}`);
      }
    case 'inline_bytes':
      return Buffer.from(ds.inline_bytes);
    case 'inline_string':
      return Buffer.from(ds.inline_string, 'utf8');
    case 'environment_variable': {
      const v = process.env[ds.environment_variable];
      if (v === undefined) throw configError(`${path}.environment_variable`, `${ds.environment_variable} is not set`);
      return Buffer.from(v, 'utf8');
    }
    default:
      return undefined;
  }
}

export function decodeTlsCertificate(c: D, path: string): TlsCertificate {
  const certChain = dataSource(c.certificate_chain, `${path}.certificate_chain`);
  const privateKey = dataSource(c.private_key, `${path}.private_key`);
  if (!certChain) throw configError(`${path}.certificate_chain`, 'required');
  if (!privateKey) throw configError(`${path}.private_key`, 'required');
  return { kind: 'tls_certificate', certChain, privateKey };
}

const SAN_TYPES: Record<string, SanType> = { DNS: 'DNS', URI: 'URI', EMAIL: 'EMAIL', IP_ADDRESS: 'IP_ADDRESS' };

export function decodeValidationContext(v: D, path: string): ValidationContext {
  const sanMatchers: SanMatcher[] = [];
  (v.match_typed_subject_alt_names ?? []).forEach((m: D, i: number) => {
    const p = `${path}.match_typed_subject_alt_names[${i}]`;
    const type = SAN_TYPES[m.san_type];
    if (!type) throw configError(`${p}.san_type`, `${m.san_type} is not supported (DNS, URI, EMAIL, IP_ADDRESS)`);
    if (!m.matcher) throw configError(`${p}.matcher`, 'required');
    sanMatchers.push({ type, match: stringMatcher(m.matcher, `${p}.matcher`) });
  });
  // The deprecated untyped form matches any SAN type, as Envoy does.
  (v.match_subject_alt_names ?? []).forEach((m: D, i: number) => sanMatchers.push({ type: 'ANY', match: stringMatcher(m, `${path}.match_subject_alt_names[${i}]`) }));
  return { kind: 'validation_context', trustedCa: dataSource(v.trusted_ca, `${path}.trusted_ca`), sanMatchers };
}

/** Merges Istio's combined_validation_context: SDS root CA plus the default context's SAN matchers. */
export function combineValidation(dynamic: ValidationContext | undefined, defaults: ValidationContext): ValidationContext {
  if (!dynamic) return defaults;
  return { kind: 'validation_context', trustedCa: dynamic.trustedCa ?? defaults.trustedCa, sanMatchers: [...defaults.sanMatchers, ...dynamic.sanMatchers] };
}

export function decodeSecret(s: D, path: string): Secret {
  if (!s.name) throw configError(`${path}.name`, 'must not be empty');
  const p = `${path} "${s.name}"`;
  switch (s.type) {
    case 'tls_certificate':
      return { name: s.name, value: decodeTlsCertificate(s.tls_certificate, `${p}.tls_certificate`) };
    case 'validation_context':
      return { name: s.name, value: decodeValidationContext(s.validation_context, `${p}.validation_context`) };
    default:
      throw configError(p, `secret type ${s.type ?? '(none)'} is not supported (tls_certificate, validation_context)`);
  }
}

/** SAN entries of a peer certificate (Node's `subjectaltname` text: `URI:spiffe://..., DNS:a`). */
export function parseSubjectAltNames(text: string | undefined): Array<[SanType, string]> {
  if (!text) return [];
  const out: Array<[SanType, string]> = [];
  for (const part of text.split(', ')) {
    const colon = part.indexOf(':');
    const kind = part.slice(0, colon);
    let value = part.slice(colon + 1);
    if (value.startsWith('"')) value = JSON.parse(value) as string;
    const type = kind === 'URI' ? 'URI' : kind === 'DNS' ? 'DNS' : kind === 'email' ? 'EMAIL' : kind === 'IP Address' ? 'IP_ADDRESS' : undefined;
    if (type) out.push([type, value]);
  }
  return out;
}

/** Whether one SAN of the peer satisfies one matcher (no matchers: true). */
export function sanMatches(matchers: readonly SanMatcher[], sans: ReadonlyArray<[SanType, string]>): boolean {
  if (matchers.length === 0) return true;
  for (const m of matchers) for (const [type, value] of sans) if ((m.type === 'ANY' || m.type === type) && m.match(value)) return true;
  return false;
}
