// The CORS filter (envoy.filters.http.cors). The policy comes from the
// route's typed_per_filter_config (envoy.extensions.filters.http.cors.v3.
// CorsPolicy, what Istio emits), else the virtual host's, else the
// deprecated `cors` field of the route or virtual host. A preflight (OPTIONS
// with Origin and Access-Control-Request-Method) from an allowed origin is
// answered here; other requests from an allowed origin get the
// allow-origin, credentials and expose headers on their response.

import { TYPE_URL_PREFIX } from '../../../../xds/index.ts';
import type { CorsPolicy } from '../../../config/route-resilience.ts';
import { decodeCorsPolicy } from '../../../config/route-resilience.ts';
import type { Counter } from '../../../stats.ts';
import type { HttpFilterExtension } from '../../../registry.ts';
import type { FilterStatus, HttpFilter, HttpStream } from '../http-filter.ts';

type D = Record<string, any>;

export const CORS_FILTER_TYPE_URL = `${TYPE_URL_PREFIX}envoy.extensions.filters.http.cors.v3.Cors`;
export const CORS_POLICY_TYPE_URL = `${TYPE_URL_PREFIX}envoy.extensions.filters.http.cors.v3.CorsPolicy`;

export interface CorsSettings {
  readonly name: string;
  readonly stats: { readonly origin_valid: Counter; readonly origin_invalid: Counter };
  /** Decoded per-route policies, built once per decoded config object. */
  readonly policies: WeakMap<object, CorsPolicy>;
}

export class CorsFilter implements HttpFilter {
  private readonly settings: CorsSettings;

  constructor(settings: CorsSettings) {
    this.settings = settings;
  }

  private policy(s: HttpStream): CorsPolicy | undefined {
    const name = this.settings.name;
    const per = s.route.perFilterConfig.get(name) ?? s.virtualHost.perFilterConfig?.get(name);
    if (per) {
      if (per.disabled) return undefined;
      let p = this.settings.policies.get(per.config);
      if (!p) {
        p = decodeCorsPolicy(per.config, `typed_per_filter_config[${name}]`)!;
        this.settings.policies.set(per.config, p);
      }
      return p;
    }
    return s.route.cors ?? s.virtualHost.cors;
  }

  decodeHeaders(s: HttpStream): FilterStatus {
    const origin = s.req.headers.origin;
    if (!origin) return 'continue';
    const p = this.policy(s);
    if (!p || (p.enabled < 1 && !(Math.random() < p.enabled))) return 'continue';
    const allowed = p.allowOrigin.some((m) => m(origin));
    const stats = this.settings.stats;
    if (allowed) stats.origin_valid.value++;
    else stats.origin_invalid.value++;
    const res = s.res;
    const preflight = s.req.method === 'OPTIONS' && s.req.headers['access-control-request-method'] !== undefined;
    if (preflight) {
      if (!allowed) {
        if (p.forwardNotMatchingPreflights) return 'continue';
        s.sendLocalReply(200, '');
        return 'stop';
      }
      res.setHeader('access-control-allow-origin', origin);
      if (p.allowCredentials) res.setHeader('access-control-allow-credentials', 'true');
      if (p.allowMethods) res.setHeader('access-control-allow-methods', p.allowMethods);
      if (p.allowHeaders) res.setHeader('access-control-allow-headers', p.allowHeaders);
      if (p.maxAge) res.setHeader('access-control-max-age', p.maxAge);
      if (p.allowPrivateNetworkAccess && s.req.headers['access-control-request-private-network'] === 'true') res.setHeader('access-control-allow-private-network', 'true');
      s.sendLocalReply(200, '');
      return 'stop';
    }
    if (allowed) {
      // Set before the router copies the upstream's headers onto the same response.
      res.setHeader('access-control-allow-origin', origin);
      if (p.allowCredentials) res.setHeader('access-control-allow-credentials', 'true');
      if (p.exposeHeaders) res.setHeader('access-control-expose-headers', p.exposeHeaders);
    }
    return 'continue';
  }
}

export const corsExtension: HttpFilterExtension = {
  typeUrl: CORS_FILTER_TYPE_URL,
  category: 'http',
  validatePerRoute(c: D, path: string) {
    decodeCorsPolicy(c, path);
  },
  create(_c: D, ctx, _path, name) {
    const filterName = name || 'envoy.filters.http.cors';
    const p = `http.${ctx.statPrefix ?? 'unknown'}.cors.`;
    const settings: CorsSettings = { name: filterName, stats: { origin_valid: ctx.stats.counter(`${p}origin_valid`), origin_invalid: ctx.stats.counter(`${p}origin_invalid`) }, policies: new WeakMap() };
    return { name: filterName, terminal: false, create: () => new CorsFilter(settings) };
  },
};
