// How Mixer-era objects name each other (handlers, instances, quotas).
// Istio 1.1+ wrote references as `name` (same namespace) or `name.namespace`;
// configs from 1.0 used `name.kind.namespace`, which Mixer still resolved.

import type { Diagnostics, FieldPath } from '../../diagnostics.ts';
import { isDns1123Label } from '../../validators.ts';

/** The parts of a reference, or undefined when it is malformed. */
export function parseMixerRef(ref: string): { name: string; kind?: string; namespace?: string } | undefined {
  const parts = ref.split('.');
  if (parts.length > 3 || !parts.every((p) => isDns1123Label(p))) return undefined;
  if (parts.length === 1) return { name: parts[0]! };
  if (parts.length === 2) return { name: parts[0]!, namespace: parts[1]! };
  return { name: parts[0]!, kind: parts[1]!, namespace: parts[2]! };
}

/** Checks a reference to a handler or instance; `what` names it in the message. */
export function checkMixerRef(diag: Diagnostics, path: FieldPath, what: string, ref: string): boolean {
  if (ref === '') {
    diag.error(path, `${what} reference must not be empty`);
    return false;
  }
  if (!parseMixerRef(ref)) {
    diag.error(path, `invalid ${what} reference "${ref}": use "name" or "name.namespace" (DNS-1123 labels)`);
    return false;
  }
  return true;
}
