// Named secrets for TLS contexts: static ones from the bootstrap and dynamic
// ones from SDS (over the ADS stream, or a separate SDS cluster such as
// Istio's `sds-grpc`). A TLS context holds a SecretProvider and reads
// `current` when it builds a context for a new connection; a new version
// bumps `version`, so rotation reaches new connections while established
// ones keep the certificate they handshook with.

import type { StatsStore } from '../stats.ts';
import { configError } from '../errors.ts';
import type { Secret, SecretValue } from './secret.ts';
import { decodeSecret } from './secret.ts';

type D = Record<string, any>;

/** Where a dynamic secret comes from: the ADS stream, or an SDS server reached through a cluster. */
export type SecretSource = { readonly kind: 'static' } | { readonly kind: 'ads' } | { readonly kind: 'cluster'; readonly cluster: string };

/** One named secret as it changes; shared by every TLS context that names it. */
export interface SecretProvider {
  readonly name: string;
  readonly source: SecretSource;
  /** Undefined until the first SDS response carrying it. */
  readonly current: SecretValue | undefined;
  /** Increments on every change; contexts rebuild when it moved. */
  readonly version: number;
  /** The xDS version_info it came with (undefined for static secrets), and when. */
  readonly versionInfo: string | undefined;
  readonly lastUpdated: Date | undefined;
}

interface MutableProvider {
  name: string;
  source: SecretSource;
  current: SecretValue | undefined;
  version: number;
  versionInfo: string | undefined;
  lastUpdated: Date | undefined;
}

/** Starts a subscription to a separate SDS server (the proxy installs one; tests may leave it unset). */
export type SdsClusterSubscriber = (cluster: string, names: readonly string[]) => void;

export class SecretManager {
  private readonly providers = new Map<string, MutableProvider>();
  private readonly stats: StatsStore;
  /** Called when the secret names wanted from an SDS cluster change. */
  onClusterNames: SdsClusterSubscriber | undefined;

  constructor(stats: StatsStore) {
    this.stats = stats;
  }

  private key(source: SecretSource, name: string): string {
    return source.kind === 'cluster' ? `cluster:${source.cluster}/${name}` : `${source.kind}/${name}`;
  }

  /** Replaces the static secrets (bootstrap static_resources.secrets). */
  setStatic(resources: readonly D[], where = 'static_resources.secrets'): void {
    const secrets = resources.map((s, i) => decodeSecret(s, `${where}[${i}]`));
    for (const s of secrets) this.set({ kind: 'static' }, s);
  }

  /** The provider an SdsSecretConfig names; a static secret must exist already (else the config is rejected). */
  provider(sds: D, path: string): SecretProvider {
    if (!sds.name) throw configError(`${path}.name`, 'must not be empty');
    const source = this.sourceOf(sds.sds_config, `${path}.sds_config`);
    const key = this.key(source, sds.name);
    let p = this.providers.get(key);
    if (!p) {
      if (source.kind === 'static') throw configError(`${path}.name`, `no static secret "${sds.name}" (static_resources.secrets)`);
      p = { name: sds.name, source, current: undefined, version: 0, versionInfo: undefined, lastUpdated: undefined };
      this.providers.set(key, p);
      // ADS names are read by the ADS client after each CDS/LDS response; a separate SDS server is told now.
      if (source.kind === 'cluster') this.onClusterNames?.(source.cluster, this.names(source));
    }
    return p;
  }

  private sourceOf(cs: D | null | undefined, path: string): SecretSource {
    if (!cs) return { kind: 'static' };
    if (cs.config_source_specifier === 'ads') return { kind: 'ads' };
    if (cs.config_source_specifier === 'api_config_source') {
      const api = cs.api_config_source;
      const cluster = api.grpc_services?.[0]?.envoy_grpc?.cluster_name;
      if (api.api_type !== 'GRPC' || !cluster) throw configError(`${path}.api_config_source`, 'only a GRPC api_config_source with an envoy_grpc cluster is supported');
      return { kind: 'cluster', cluster };
    }
    throw configError(path, `config source ${cs.config_source_specifier ?? '(none)'} is not supported for secrets (ads or api_config_source)`);
  }

  /** Secret names wanted from `source` (what the SDS request lists). */
  names(source: SecretSource): string[] {
    const out: string[] = [];
    for (const p of this.providers.values()) if (p.source.kind === source.kind && (source.kind !== 'cluster' || (p.source as { cluster: string }).cluster === source.cluster)) out.push(p.name);
    return out.sort();
  }

  /** Applies an SDS response: decodes every secret first, so a bad one changes nothing (NACK). */
  apply(source: SecretSource, resources: readonly D[], versionInfo?: string): void {
    const secrets = resources.map((s) => decodeSecret(s, 'Secret'));
    for (const s of secrets) this.set(source, s, versionInfo);
  }

  private set(source: SecretSource, s: Secret, versionInfo?: string): void {
    const key = this.key(source, s.name);
    let p = this.providers.get(key);
    if (!p) this.providers.set(key, (p = { name: s.name, source, current: undefined, version: 0, versionInfo: undefined, lastUpdated: undefined }));
    p.current = s.value;
    p.version++;
    p.versionInfo = versionInfo;
    p.lastUpdated = new Date();
    this.stats.counter(`sds.${s.name}.update_success`).value++;
  }

  /** Every secret provider, for /config_dump and /certs. */
  all(): readonly SecretProvider[] {
    return [...this.providers.values()];
  }
}
