// The network RBAC filter (envoy.filters.network.rbac): checks each new
// connection (after TLS, so the peer's SPIFFE identity is known) against
// the RBAC rules before the next filter (tcp_proxy, HCM) takes it. A denied
// connection is closed. Stats under `<stat_prefix>.rbac.` as Envoy names
// them (allowed, denied, shadow_allowed, shadow_denied).

import type { Socket } from 'node:net';
import { TYPE_URL_PREFIX } from '../../../../xds/index.ts';
import { configError } from '../../../errors.ts';
import { connectionFacts } from '../../../rbac/connection-facts.ts';
import type { RbacEngine, RbacRequest } from '../../../rbac/rbac-engine.ts';
import { decodeRbac, evaluate } from '../../../rbac/rbac-engine.ts';
import { filterMetadata, setFilterMetadata } from '../../../rbac/stream-metadata.ts';
import type { NetworkFilterExtension, NetworkFilterFactory } from '../../../registry.ts';
import type { Counter } from '../../../stats.ts';

type D = Record<string, any>;

export const NETWORK_RBAC_TYPE_URL = `${TYPE_URL_PREFIX}envoy.extensions.filters.network.rbac.v3.RBAC`;
export const NETWORK_RBAC_METADATA = 'envoy.filters.network.rbac';

export interface NetworkRbacSettings {
  readonly rules: RbacEngine | undefined;
  readonly shadow: RbacEngine | undefined;
  readonly stats: { readonly allowed: Counter; readonly denied: Counter; readonly shadow_allowed: Counter; readonly shadow_denied: Counter };
  /** shadow_rules_stat_prefix, which Envoy also puts in front of the shadow metadata keys (Istio's CUSTOM marks connections for ext_authz this way). */
  readonly shadowPrefix: string;
}

export class NetworkRbacFilter implements NetworkFilterFactory {
  readonly settings: NetworkRbacSettings;
  private next: NetworkFilterFactory | undefined;

  constructor(settings: NetworkRbacSettings) {
    this.settings = settings;
  }

  setNext(next: NetworkFilterFactory): void {
    this.next = next;
  }

  /** Decides once per connection; a denied one never reaches the next filter. */
  onConnection(socket: Socket): void {
    if (!this.admit(socket)) return;
    this.next?.onConnection(socket);
  }

  admit(socket: Socket): boolean {
    const { rules, shadow, stats, shadowPrefix } = this.settings;
    const conn = connectionFacts(socket);
    const request: RbacRequest = { conn, remoteIp: conn.directRemoteIp, metadata: (f) => filterMetadata(socket, f) };
    if (shadow) {
      const d = evaluate(shadow, request);
      if (d.allowed) stats.shadow_allowed.value++;
      else stats.shadow_denied.value++;
      setFilterMetadata(socket, NETWORK_RBAC_METADATA, { [`${shadowPrefix}shadow_effective_policy_id`]: d.policy, [`${shadowPrefix}shadow_engine_result`]: d.allowed ? 'allowed' : 'denied' });
    }
    if (!rules || rules.action === 'LOG') return true;
    const d = evaluate(rules, request);
    if (d.allowed) {
      stats.allowed.value++;
      return true;
    }
    stats.denied.value++;
    setFilterMetadata(socket, NETWORK_RBAC_METADATA, { enforced_effective_policy_id: d.policy });
    socket.destroy();
    return false;
  }

  get activeConnections(): number {
    return this.next?.activeConnections ?? 0;
  }

  get rdsNames(): readonly string[] {
    return this.next?.rdsNames ?? [];
  }

  drain(): void {
    this.next?.drain();
  }

  close(): void {
    this.next?.close();
  }
}

export const networkRbacExtension: NetworkFilterExtension = {
  typeUrl: NETWORK_RBAC_TYPE_URL,
  category: 'network',
  create(c: D, ctx, path) {
    if (!c.stat_prefix) throw configError(`${path}.stat_prefix`, 'must not be empty');
    if (c.matcher || c.shadow_matcher) throw configError(`${path}.matcher`, 'the unified matcher API is not supported; use rules');
    const prefix = c.stat_prefix.endsWith('.') ? `${c.stat_prefix}rbac.` : `${c.stat_prefix}.rbac.`;
    const counter = (n: string): Counter => ctx.stats.counter(prefix + n);
    const shadowPrefix: string = c.shadow_rules_stat_prefix ?? '';
    return new NetworkRbacFilter({
      rules: c.rules ? decodeRbac(c.rules, `${path}.rules`) : undefined,
      shadow: c.shadow_rules ? decodeRbac(c.shadow_rules, `${path}.shadow_rules`) : undefined,
      stats: { allowed: counter('allowed'), denied: counter('denied'), shadow_allowed: counter(`${shadowPrefix}shadow_allowed`), shadow_denied: counter(`${shadowPrefix}shadow_denied`) },
      shadowPrefix,
    });
  },
};
