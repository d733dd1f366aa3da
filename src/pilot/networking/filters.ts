// Network and HTTP filter configurations shared by sidecar, gateway and gRPC
// listeners: the HTTP connection manager (RDS or inline routes), its HTTP
// filter chain, and the listener filters.

import { TypeUrl } from '../../xds/index.ts';
import { adsConfigSource, bool, routerFilter, seconds, typed } from './envoy-values.ts';
import { CORS_FILTER, FAULT_FILTER } from './route-builder.ts';
import type { TelemetryFilters } from './telemetry-filters.ts';
import { NO_TELEMETRY } from './telemetry-filters.ts';

/**
 * Istio's order: metadata exchange first (the peer is known before anything
 * decides), then security, fault and cors (routes turn them on with
 * typed_per_filter_config), then istio.stats, then the router.
 */
export function envoyHttpFilters(security: readonly Record<string, unknown>[] = [], telemetry: TelemetryFilters = NO_TELEMETRY): Record<string, unknown>[] {
  return [
    ...telemetry.httpFirst,
    // Inbound security (jwt_authn, ext_authz, RBAC) decides before anything else runs.
    ...security,
    { name: FAULT_FILTER, typed_config: typed('envoy.extensions.filters.http.fault.v3.HTTPFault') },
    { name: CORS_FILTER, typed_config: typed('envoy.extensions.filters.http.cors.v3.Cors') },
    ...telemetry.httpLast,
    routerFilter(),
  ];
}

export interface HcmOptions {
  readonly statPrefix: string;
  /** RDS route config name; or `routeConfig` for an inline one. */
  readonly rds?: string;
  readonly routeConfig?: Record<string, unknown>;
  /** Edge proxies trust the peer address for x-forwarded-for; sidecars do not. */
  readonly useRemoteAddress?: boolean;
  /** Inbound sidecars forward the client certificate details, as Istio's APPEND_FORWARD. */
  readonly inbound?: boolean;
  /** Inbound security filters (security/inbound-security.ts), placed first. */
  readonly securityFilters?: readonly Record<string, unknown>[];
  /** Istio's telemetry filters for the listener's class (telemetry-filters.ts); none by default. */
  readonly telemetry?: TelemetryFilters;
}

export function httpConnectionManager(o: HcmOptions): Record<string, unknown> {
  const hcm: Record<string, unknown> = { stat_prefix: o.statPrefix };
  if (o.rds !== undefined) hcm.rds = { config_source: adsConfigSource(), route_config_name: o.rds };
  else hcm.route_config = o.routeConfig;
  hcm.http_filters = envoyHttpFilters(o.securityFilters, o.telemetry);
  hcm.use_remote_address = bool(Boolean(o.useRemoteAddress));
  hcm.upgrade_configs = [{ upgrade_type: 'websocket' }];
  hcm.stream_idle_timeout = seconds(0);
  hcm.normalize_path = bool(true);
  hcm.path_with_escaped_slashes_action = 'KEEP_UNCHANGED';
  if (o.inbound) {
    hcm.forward_client_cert_details = 'APPEND_FORWARD';
    // As Istio: the app learns the caller's identity (URI=spiffe://...) from the XFCC header.
    hcm.set_current_client_cert_details = { subject: bool(true), dns: true, uri: true };
  }
  return { name: 'envoy.filters.network.http_connection_manager', typed_config: typed(TypeUrl.HttpConnectionManager, hcm) };
}

export function tlsInspector(): Record<string, unknown> {
  return { name: 'envoy.filters.listener.tls_inspector', typed_config: typed('envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector') };
}

export function originalDst(): Record<string, unknown> {
  return { name: 'envoy.filters.listener.original_dst', typed_config: typed('envoy.extensions.filters.listener.original_dst.v3.OriginalDst') };
}
