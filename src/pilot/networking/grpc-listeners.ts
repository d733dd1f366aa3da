// Proxyless gRPC listeners: an API listener per dialled target `host:port`
// whose HCM names a route config of the same name, as Istio's grpcgen does.
// gRPC's xDS client reads only the HCM's rds and http_filters; the router
// filter must be the last filter, and fault is one gRPC implements.

import { TypeUrl } from '../../xds/index.ts';
import type { ProxyNode, Service } from '../model/index.ts';
import type { PushContext } from '../push-context.ts';
import { routerFilter, typed } from './envoy-values.ts';
import { grpcTargetName } from './names.ts';
import { FAULT_FILTER } from './route-builder.ts';
import type { BuiltListener } from './sidecar-listeners.ts';

/** Resolves `host:port` names to visible services; unknown names are skipped (the client sees them absent). */
export function grpcTargets(push: PushContext, proxy: ProxyNode, names: readonly string[] | undefined): { service: Service; port: number; name: string }[] {
  const visible = push.servicesFor(proxy);
  if (!names) {
    return visible.flatMap((service) => service.ports.filter((p) => p.protocol !== 'UDP').map((p) => ({ service, port: p.port, name: grpcTargetName(service.hostname, p.port) })));
  }
  const byHost = new Map(visible.map((s) => [s.hostname, s]));
  const out: { service: Service; port: number; name: string }[] = [];
  for (const name of names) {
    const colon = name.lastIndexOf(':');
    if (colon <= 0) continue;
    const host = grpcTargetHost(name.slice(0, colon), proxy.namespace, push.domainSuffix);
    const port = Number(name.slice(colon + 1));
    const service = byHost.get(host);
    if (service && service.ports.some((p) => p.port === port)) out.push({ service, port, name });
  }
  return out;
}

/**
 * The service hostname a dialled host names, as Istio's grpcgen expands it
 * (tryFindFQDN): `reviews`, and also `reviews.NS` and `reviews.NS.svc` when
 * NS is the client's own namespace. Config host resolution (`resolveHost`)
 * takes any dotted name as a full name, which left `xds:///reviews.default:9080`
 * unresolved: the client waited for a listener Pilot never sent.
 */
export function grpcTargetHost(host: string, namespace: string, domainSuffix: string): string {
  if (!host.includes('.')) return `${host}.${namespace}.svc.${domainSuffix}`;
  for (const suffix of [`.${namespace}`, `.${namespace}.svc`]) {
    if (host.endsWith(suffix) && !host.slice(0, -suffix.length).includes('.')) return `${host.slice(0, -suffix.length)}.${namespace}.svc.${domainSuffix}`;
  }
  return host;
}

export function buildGrpcListeners(push: PushContext, proxy: ProxyNode, names: readonly string[] | undefined): BuiltListener[] {
  return grpcTargets(push, proxy, names).map(({ name, service, port }) => {
    const route = grpcTargetName(service.hostname, port);
    const hcm = typed(TypeUrl.HttpConnectionManager, {
      rds: { config_source: { ads: {}, resource_api_version: 'V3' }, route_config_name: route },
      http_filters: [{ name: FAULT_FILTER, typed_config: typed('envoy.extensions.filters.http.fault.v3.HTTPFault') }, routerFilter()],
    });
    return { name, value: { name, api_listener: { api_listener: hcm } } };
  });
}
