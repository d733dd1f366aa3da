// The `access_log` list of the HCM and of tcp_proxy (envoy.config.accesslog.v3
// AccessLog): each entry's typed_config names a logger in the registry.

import type { AccessLogger } from '../access-log.ts';
import { resolveTypedConfig } from '../config/typed-struct.ts';
import { configError } from '../errors.ts';
import type { FactoryContext } from '../registry.ts';

type D = Record<string, any>;

/** The loggers of an `access_log` list; errors name the entry (`<path>[i].typed_config`). */
export function accessLoggersFrom(list: readonly D[] | undefined, ctx: FactoryContext, path: string): AccessLogger[] {
  return (list ?? []).map((a, i) => {
    const p = `${path}[${i}]`;
    if (!a.typed_config) throw configError(`${p}.typed_config`, 'required');
    // A TypedStruct names its logger by its inner type URL (istio.mixer.report), as for HTTP filters.
    const { typeUrl, config } = resolveTypedConfig(a.typed_config, `${p}.typed_config`);
    return ctx.registry.get('access_log', typeUrl, p).create(config, ctx, `${p}.typed_config`, a.name).logger;
  });
}
