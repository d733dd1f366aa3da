// The HTTP RBAC filter (envoy.filters.http.rbac): enforces `rules` (ALLOW,
// DENY or LOG) and evaluates `shadow_rules` for stats only, as Istio's
// AuthorizationPolicy (and its dry-run annotation) need. A denied request
// gets 403 "RBAC: access denied"; the decision is recorded in the stream's
// dynamic metadata (`envoy.filters.http.rbac`), with Envoy's response code
// details `rbac_access_denied_matched_policy[<policy>]`. A route's
// RBACPerRoute replaces the rules (no `rbac` there disables the filter).

import { TYPE_URL_PREFIX } from '../../../../xds/index.ts';
import type { RbacEngine } from '../../../rbac/rbac-engine.ts';
import { decodeRbac, evaluate } from '../../../rbac/rbac-engine.ts';
import { rbacRequestOf } from '../../../rbac/http-request.ts';
import { setFilterMetadata } from '../../../rbac/stream-metadata.ts';
import { configError } from '../../../errors.ts';
import type { Counter, StatsStore } from '../../../stats.ts';
import type { HttpFilterExtension } from '../../../registry.ts';
import type { FilterStatus, HttpFilter, HttpStream } from '../http-filter.ts';

type D = Record<string, any>;

export const RBAC_FILTER_TYPE_URL = `${TYPE_URL_PREFIX}envoy.extensions.filters.http.rbac.v3.RBAC`;
export const RBAC_PER_ROUTE_TYPE_URL = `${TYPE_URL_PREFIX}envoy.extensions.filters.http.rbac.v3.RBACPerRoute`;
export const RBAC_METADATA = 'envoy.filters.http.rbac';
export const RBAC_DENIED_BODY = 'RBAC: access denied';

export interface RbacStats {
  readonly allowed: Counter;
  readonly denied: Counter;
  readonly shadow_allowed: Counter;
  readonly shadow_denied: Counter;
  readonly logged: Counter;
  readonly not_logged: Counter;
}

export interface RbacSettings {
  /** undefined: no enforcement (Envoy: `rules` unset). */
  readonly rules: RbacEngine | undefined;
  readonly shadow: RbacEngine | undefined;
  readonly stats: RbacStats;
  readonly shadowStats: RbacStats;
  /** shadow_rules_stat_prefix, which Envoy also puts in front of the shadow metadata keys. */
  readonly shadowPrefix: string;
}

export class RbacFilter implements HttpFilter {
  private readonly settings: RbacSettings;
  private readonly name: string;
  private readonly forRoute: (config: D, path: string) => RbacSettings;

  constructor(settings: RbacSettings, name: string, forRoute: (config: D, path: string) => RbacSettings) {
    this.settings = settings;
    this.name = name;
    this.forRoute = forRoute;
  }

  decodeHeaders(s: HttpStream): FilterStatus {
    let settings = this.settings;
    const perRoute = s.route.perFilterConfig.get(this.name);
    if (perRoute) {
      if (perRoute.disabled) return 'continue';
      try {
        settings = this.forRoute(perRoute.config, `route "${s.route.name}" typed_per_filter_config[${this.name}]`);
      } catch {
        return 'continue'; // validated when the route config was accepted
      }
    }
    const request = rbacRequestOf(s);
    if (settings.shadow) {
      const d = evaluate(settings.shadow, request);
      if (d.allowed) settings.shadowStats.shadow_allowed.value++;
      else settings.shadowStats.shadow_denied.value++;
      const p = settings.shadowPrefix;
      setFilterMetadata(s.req, RBAC_METADATA, { [`${p}shadow_effective_policy_id`]: d.policy, [`${p}shadow_engine_result`]: d.allowed ? 'allowed' : 'denied' });
    }
    const rules = settings.rules;
    if (!rules) return 'continue';
    const d = evaluate(rules, request);
    if (rules.action === 'LOG') {
      if (d.policy) settings.stats.logged.value++;
      else settings.stats.not_logged.value++;
      setFilterMetadata(s.req, 'envoy.common', { access_log_hint: d.policy !== '' });
      return 'continue';
    }
    if (d.allowed) {
      settings.stats.allowed.value++;
      return 'continue';
    }
    settings.stats.denied.value++;
    setFilterMetadata(s.req, RBAC_METADATA, { enforced_effective_policy_id: d.policy, response_code_details: `rbac_access_denied_matched_policy[${d.policy || 'none'}]` });
    s.sendLocalReply(403, RBAC_DENIED_BODY);
    return 'stop';
  }
}

function rbacStats(store: StatsStore | undefined, prefix: string): RbacStats {
  const c = (n: string): Counter => (store ? store.counter(prefix + n) : { value: 0 });
  return { allowed: c('allowed'), denied: c('denied'), shadow_allowed: c('shadow_allowed'), shadow_denied: c('shadow_denied'), logged: c('logged'), not_logged: c('not_logged') };
}

/** Decodes the filter config (or RBACPerRoute's `rbac`) into settings; stats live under `http.<hcm prefix>.rbac.`. */
export function rbacSettings(c: D, store: StatsStore | undefined, hcmPrefix: string, path: string): RbacSettings {
  if (c.matcher || c.shadow_matcher) throw configError(`${path}.matcher`, 'the unified matcher API is not supported; use rules');
  const base = `http.${hcmPrefix}.rbac.`;
  return {
    rules: c.rules ? decodeRbac(c.rules, `${path}.rules`) : undefined,
    shadow: c.shadow_rules ? decodeRbac(c.shadow_rules, `${path}.shadow_rules`) : undefined,
    stats: rbacStats(store, base + (c.rules_stat_prefix ?? '')),
    shadowStats: rbacStats(store, base + (c.shadow_rules_stat_prefix ?? '')),
    shadowPrefix: c.shadow_rules_stat_prefix ?? '',
  };
}

function perRouteSettings(c: D, store: StatsStore | undefined, hcmPrefix: string, path: string): RbacSettings {
  return rbacSettings(c.rbac ?? {}, store, hcmPrefix, `${path}.rbac`);
}

export const rbacExtension: HttpFilterExtension = {
  typeUrl: RBAC_FILTER_TYPE_URL,
  category: 'http',
  validatePerRoute(c: D, path: string) {
    perRouteSettings(c, undefined, '', path);
  },
  create(c: D, ctx, path, name) {
    const filterName = name || 'envoy.filters.http.rbac';
    const prefix = ctx.statPrefix ?? 'unknown';
    const settings = rbacSettings(c, ctx.stats, prefix, path);
    const cache = new WeakMap<D, RbacSettings>();
    const forRoute = (config: D, p: string): RbacSettings => {
      let rs = cache.get(config);
      if (!rs) cache.set(config, (rs = perRouteSettings(config, ctx.stats, prefix, p)));
      return rs;
    };
    return { name: filterName, terminal: false, create: () => new RbacFilter(settings, filterName, forRoute) };
  },
};
