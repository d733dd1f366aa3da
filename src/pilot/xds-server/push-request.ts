// A request to push config to proxies, and how two of them merge. Istio merges
// every event that arrives while a push is debounced or while a proxy is still
// busy with the previous push, so a burst of changes costs one push.

import { TypeUrl } from '../../xds/index.ts';
import type { PushContextLike } from '../model/index.ts';

const EDS_TYPE_URL: string = TypeUrl.ClusterLoadAssignment;

/** What a caller (config or registry change) asks of the server. */
export interface PushRequest<P extends PushContextLike = PushContextLike> {
  /** False for the endpoint fast path: only EDS, only for `changedHosts`. */
  readonly full: boolean;
  /** The new push context; absent keeps the current one. */
  readonly push?: P;
  /** Hostnames whose endpoints changed (fast path); absent means any. */
  readonly changedHosts?: ReadonlySet<string>;
  /**
   * Full pushes only: the xDS type URLs the change can affect (a VirtualService
   * change: listeners and routes, not clusters or endpoints); absent means all.
   * Types outside it are not regenerated, which at 2000 proxies x 1000
   * services is most of the cost of a push.
   */
  readonly types?: ReadonlySet<string>;
  /** Why, for logs and debug output (`config`, `endpoint`, ...). */
  readonly reason: string;
}

/** A request after merging, with what the metrics need. */
export interface MergedPush<P extends PushContextLike = PushContextLike> {
  readonly full: boolean;
  readonly push?: P;
  readonly changedHosts?: ReadonlySet<string>;
  /** Full pushes: the xDS types to regenerate; absent means all (see PushRequest.types). */
  readonly types?: ReadonlySet<string>;
  /** Each reason with how many requests gave it. */
  readonly reasons: ReadonlyMap<string, number>;
  /** When the oldest merged request arrived (clock ms): convergence is measured from here. */
  readonly since: number;
}

export function toMerged<P extends PushContextLike>(req: PushRequest<P>, now: number): MergedPush<P> {
  return { full: req.full, push: req.push, changedHosts: req.changedHosts, ...(req.full && req.types ? { types: req.types } : {}), reasons: new Map([[req.reason, 1]]), since: now };
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
  // The types of a merged full push: the union (absent, i.e. all, wins); an
  // endpoint push merged into a full one adds EDS (regenerated whole).
  let types: ReadonlySet<string> | undefined;
  if (full) {
    const of = (m: MergedPush<P>): ReadonlySet<string> | undefined => (m.full ? m.types : new Set([EDS_TYPE_URL]));
    const ta = of(a);
    const tb = of(b);
    if (ta && tb) types = new Set([...ta, ...tb]);
  }
  return { full, push: b.push ?? a.push, changedHosts, ...(types ? { types } : {}), reasons, since: Math.min(a.since, b.since) };
}
