// A request to push config to proxies, and how two of them merge. Istio merges
// every event that arrives while a push is debounced or while a proxy is still
// busy with the previous push, so a burst of changes costs one push.

import type { PushContextLike } from '../model/index.ts';

/** What a caller (config or registry change) asks of the server. */
export interface PushRequest<P extends PushContextLike = PushContextLike> {
  /** False for the endpoint fast path: only EDS, only for `changedHosts`. */
  readonly full: boolean;
  /** The new push context; absent keeps the current one. */
  readonly push?: P;
  /** Hostnames whose endpoints changed (fast path); absent means any. */
  readonly changedHosts?: ReadonlySet<string>;
  /** Why, for logs and debug output (`config`, `endpoint`, ...). */
  readonly reason: string;
}

/** A request after merging, with what the metrics need. */
export interface MergedPush<P extends PushContextLike = PushContextLike> {
  readonly full: boolean;
  readonly push?: P;
  readonly changedHosts?: ReadonlySet<string>;
  /** Each reason with how many requests gave it. */
  readonly reasons: ReadonlyMap<string, number>;
  /** When the oldest merged request arrived (clock ms): convergence is measured from here. */
  readonly since: number;
}

export function toMerged<P extends PushContextLike>(req: PushRequest<P>, now: number): MergedPush<P> {
  return { full: req.full, push: req.push, changedHosts: req.changedHosts, reasons: new Map([[req.reason, 1]]), since: now };
}

/**
 * Merges a later request into an earlier one: a full push wins over the fast
 * path, changed hosts are unioned (absent on either side means "any"), the
 * later push context wins.
 */
export function mergePush<P extends PushContextLike>(a: MergedPush<P>, b: MergedPush<P>): MergedPush<P> {
  const full = a.full || b.full;
  let changedHosts: ReadonlySet<string> | undefined;
  if (!full && a.changedHosts && b.changedHosts) changedHosts = new Set([...a.changedHosts, ...b.changedHosts]);
  const reasons = new Map(a.reasons);
  for (const [reason, n] of b.reasons) reasons.set(reason, (reasons.get(reason) ?? 0) + n);
  return { full, push: b.push ?? a.push, changedHosts, reasons, since: Math.min(a.since, b.since) };
}
