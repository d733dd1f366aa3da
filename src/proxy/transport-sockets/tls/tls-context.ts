// CommonTlsContext -> a source of Node SecureContexts. Certificates and the
// validation context come inline/from files or from SDS (a SecretProvider);
// the SecureContext is built once per secret version and reused for every
// handshake, so rotation costs one rebuild and new connections pick it up
// while established ones keep theirs.

import { createSecureContext } from 'node:tls';
import { createHash, randomBytes } from 'node:crypto';
import type { SecureContext } from 'node:tls';
import { configError } from '../../errors.ts';
import type { SecretManager, SecretProvider } from '../../secrets/secret-manager.ts';
import type { TlsCertificate, ValidationContext } from '../../secrets/secret.ts';
import { combineValidation, decodeTlsCertificate, decodeValidationContext } from '../../secrets/secret.ts';

type D = Record<string, any>;
type TlsVersion = 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';

const VERSIONS: Record<string, TlsVersion | undefined> = { TLS_AUTO: undefined, TLSv1_0: 'TLSv1', TLSv1_1: 'TLSv1.1', TLSv1_2: 'TLSv1.2', TLSv1_3: 'TLSv1.3' };

/** A built context for one handshake: the SecureContext and how to check the peer. */
export interface ActiveTlsContext {
  readonly secureContext: SecureContext;
  /** Undefined: the peer's certificate is not verified (no validation context). */
  readonly validation: ValidationContext | undefined;
}

type CertSource = TlsCertificate | SecretProvider;

function isProvider(c: CertSource): c is SecretProvider {
  return 'version' in c;
}

export class TlsContextProvider {
  readonly alpn: readonly string[];
  private readonly certs: readonly CertSource[];
  private readonly staticValidation: ValidationContext | undefined;
  private readonly validationProvider: SecretProvider | undefined;
  private readonly minVersion: TlsVersion | undefined;
  private readonly maxVersion: TlsVersion | undefined;
  private readonly ciphers: string | undefined;
  private built: ActiveTlsContext | undefined;
  private builtVersions = '';
  private readonly path: string;
  /** Per config: resumption survives a certificate rotation, never a config change. */
  private readonly ticketKeys = randomBytes(48);
  private readonly sessionIdContext: string;

  constructor(common: D | null | undefined, secrets: SecretManager, path: string) {
    const c: D = common ?? {};
    this.alpn = c.alpn_protocols ?? [];
    const certs: CertSource[] = [];
    (c.tls_certificates ?? []).forEach((t: D, i: number) => certs.push(decodeTlsCertificate(t, `${path}.tls_certificates[${i}]`)));
    (c.tls_certificate_sds_secret_configs ?? []).forEach((s: D, i: number) => certs.push(secrets.provider(s, `${path}.tls_certificate_sds_secret_configs[${i}]`)));
    this.certs = certs;
    switch (c.validation_context_type) {
      case 'validation_context':
        this.staticValidation = decodeValidationContext(c.validation_context, `${path}.validation_context`);
        break;
      case 'validation_context_sds_secret_config':
        this.validationProvider = secrets.provider(c.validation_context_sds_secret_config, `${path}.validation_context_sds_secret_config`);
        break;
      case 'combined_validation_context': {
        const cv: D = c.combined_validation_context;
        this.staticValidation = decodeValidationContext(cv.default_validation_context ?? {}, `${path}.combined_validation_context.default_validation_context`);
        this.validationProvider = secrets.provider(cv.validation_context_sds_secret_config, `${path}.combined_validation_context.validation_context_sds_secret_config`);
        break;
      }
      case undefined:
      case null:
        break;
      default:
        throw configError(`${path}.${c.validation_context_type}`, 'is not supported (validation_context, validation_context_sds_secret_config, combined_validation_context)');
    }
    const sv = this.staticValidation;
    if (sv && !sv.trustedCa && !this.validationProvider && sv.sanMatchers.length > 0) {
      throw configError(`${path}.validation_context`, 'SAN-based verification of peer certificates without trusted CA is insecure and not allowed');
    }
    const params: D = c.tls_params ?? {};
    this.minVersion = VERSIONS[params.tls_minimum_protocol_version ?? 'TLS_AUTO'] ?? 'TLSv1.2';
    this.maxVersion = VERSIONS[params.tls_maximum_protocol_version ?? 'TLS_AUTO'] ?? 'TLSv1.3';
    this.ciphers = params.cipher_suites?.length ? params.cipher_suites.join(':') : undefined;
    // Fail at config time for bad inline/file material, not on the first handshake.
    this.path = path;
    this.sessionIdContext = createHash('sha256').update(path).digest('hex').slice(0, 32);
    if (!certs.some(isProvider) && !this.validationProvider) this.current();
  }

  get hasCertificate(): boolean {
    return this.certs.length > 0;
  }

  /** True when the config verifies peers (a validation context, static or SDS). */
  get validates(): boolean {
    return this.staticValidation !== undefined || this.validationProvider !== undefined;
  }

  /** The context for a new handshake, or undefined while an SDS secret has not arrived. */
  current(): ActiveTlsContext | undefined {
    let versions = '';
    for (const c of this.certs) if (isProvider(c)) versions += `${c.version},`;
    if (this.validationProvider) versions += this.validationProvider.version;
    if (this.built && versions === this.builtVersions) return this.built;
    const certs: TlsCertificate[] = [];
    for (const c of this.certs) {
      const v = isProvider(c) ? c.current : c;
      if (!v) return undefined;
      if (v.kind !== 'tls_certificate') return undefined;
      certs.push(v);
    }
    let validation = this.staticValidation;
    if (this.validationProvider) {
      const v = this.validationProvider.current;
      if (!v || v.kind !== 'validation_context') return undefined;
      validation = this.staticValidation ? combineValidation(v, this.staticValidation) : v;
    }
    try {
      const secureContext = createSecureContext({
        cert: certs.length ? certs.map((c) => c.certChain) : undefined,
        key: certs.length ? certs.map((c) => c.privateKey) : undefined,
        ca: validation?.trustedCa,
        minVersion: this.minVersion,
        maxVersion: this.maxVersion,
        ciphers: this.ciphers,
        // Server side: stateless resumption (tickets) needs a session id context when client certs are verified.
        sessionIdContext: this.sessionIdContext,
        ticketKeys: this.ticketKeys,
      });
      this.built = { secureContext, validation };
      this.builtVersions = versions;
      return this.built;
    } catch (err) {
      throw configError(this.path, `cannot load certificates: ${(err as Error).message}`);
    }
  }
}
