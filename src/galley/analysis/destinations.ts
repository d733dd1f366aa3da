// The destinations of a VirtualService with the field path of each: routes of
// http, tcp and tls rules, and http mirrors.

import type { ConfigObject } from '../../api/index.ts';
import type { Fields } from './fields.ts';
import { int, list, record, specOf, str } from './fields.ts';

export interface RouteDestination {
  /** `route` or `mirror`: mirrors are named so in messages (`mirror host`). */
  readonly role: 'route' | 'mirror';
  readonly host: string;
  readonly subset?: string;
  readonly port?: number;
  /** Path of the destination object, e.g. `spec.http[0].route[1].destination`. */
  readonly path: string;
}

export function routeDestinations(vs: ConfigObject): RouteDestination[] {
  const spec = specOf(vs);
  const out: RouteDestination[] = [];
  for (const protocol of ['http', 'tcp', 'tls'] as const) {
    list(spec[protocol]).forEach((rule, i) => {
      const r = record(rule);
      if (!r) return;
      list(r.route).forEach((route, j) => {
        const d = record(record(route)?.destination);
        if (d) push(out, 'route', d, `spec.${protocol}[${i}].route[${j}].destination`);
      });
      if (protocol !== 'http') return;
      const mirror = record(r.mirror);
      if (mirror) push(out, 'mirror', mirror, `spec.http[${i}].mirror`);
      list(r.mirrors).forEach((m, j) => {
        const d = record(record(m)?.destination);
        if (d) push(out, 'mirror', d, `spec.http[${i}].mirrors[${j}].destination`);
      });
    });
  }
  return out;
}

function push(out: RouteDestination[], role: RouteDestination['role'], d: Fields, path: string): void {
  const host = str(d.host);
  if (host === undefined || host === '') return;
  const subset = str(d.subset);
  out.push({ role, host, subset: subset || undefined, port: int(record(d.port)?.number), path });
}

/** The gateways a VirtualService binds to; none named means the mesh gateway. */
export function gatewaysOf(vs: ConfigObject): string[] {
  const gws = list(specOf(vs).gateways).filter((g): g is string => typeof g === 'string');
  return gws.length > 0 ? gws : ['mesh'];
}
