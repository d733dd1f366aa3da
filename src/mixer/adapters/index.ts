// The adapters compiled into Mixer, and the registry that finds them by name.

import type { AdapterInfo } from './adapter.ts';
import { denierAdapter } from './denier.ts';
import { listcheckerAdapter } from './listchecker.ts';
import { memquotaAdapter } from './memquota.ts';
import { prometheusAdapter } from './prometheus.ts';
import { redisquotaAdapter } from './redisquota.ts';
import { stdioAdapter } from './stdio.ts';
import { MixerError, MixerErrorCode } from '../errors.ts';

export const BUILTIN_ADAPTERS: readonly AdapterInfo<any>[] = [denierAdapter, listcheckerAdapter, memquotaAdapter, redisquotaAdapter, stdioAdapter, prometheusAdapter];

/** Adapters by name. A name registered twice is a start-up error (MESH_ERR_MIXER_DUPLICATE_ADAPTER). */
export function adapterRegistry(adapters: readonly AdapterInfo<any>[] = BUILTIN_ADAPTERS): ReadonlyMap<string, AdapterInfo<any>> {
  const map = new Map<string, AdapterInfo<any>>();
  for (const a of adapters) {
    if (map.has(a.name)) throw new MixerError(MixerErrorCode.DUPLICATE_ADAPTER, `adapter ${a.name} is registered twice`);
    map.set(a.name, a);
  }
  return map;
}

export { denierAdapter, listcheckerAdapter, memquotaAdapter, prometheusAdapter, redisquotaAdapter, stdioAdapter };
