// Istio fetches the JWKS of every RequestAuthentication jwksUri in the
// control plane and inlines the keys into jwt_authn, so sidecars never need
// a route to the identity provider. This resolver keeps the last good key
// set per URI, refreshes it in the background (Istio's default every 20
// minutes), and tells listeners when a set changed so Pilot can push.
// Until the first fetch finishes the URI is reported `pending` (the
// generator then lets the proxy fetch it itself); a failed first fetch is
// `failed` (the generator inlines an empty set, so tokens of that issuer
// are refused rather than accepted unchecked).

import { jwksProblem } from '../../../api/kinds/security/request-authentication.ts';

export type JwksState = { readonly status: 'ok'; readonly jwks: string } | { readonly status: 'pending' } | { readonly status: 'failed'; readonly error: string };

export interface JwksResolverOptions {
  /** How often a known URI is fetched again; default 20 minutes. */
  readonly refreshMs?: number;
  /** Per-fetch timeout; default 5 s. */
  readonly timeoutMs?: number;
  /** Replaceable for tests; default the global fetch. */
  readonly fetch?: (url: string, init: { signal: AbortSignal }) => Promise<{ status: number; text(): Promise<string> }>;
  readonly now?: () => number;
}

interface Entry {
  state: JwksState;
  fetchedAt: number;
  inflight: Promise<void> | undefined;
}

export class JwksResolver {
  private readonly entries = new Map<string, Entry>();
  private readonly listeners = new Set<(uri: string) => void>();
  private readonly refreshMs: number;
  private readonly timeoutMs: number;
  private readonly fetchImpl: NonNullable<JwksResolverOptions['fetch']>;
  private readonly now: () => number;

  constructor(options: JwksResolverOptions = {}) {
    this.refreshMs = options.refreshMs ?? 20 * 60_000;
    this.timeoutMs = options.timeoutMs ?? 5_000;
    this.fetchImpl = options.fetch ?? ((url, init) => fetch(url, init));
    this.now = options.now ?? Date.now;
  }

  /** Called with the URI whenever its key set changes (a push is due). */
  onChange(listener: (uri: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The current state for `uri`; starts or refreshes a fetch in the background when due. */
  get(uri: string): JwksState {
    let e = this.entries.get(uri);
    if (!e) {
      e = { state: { status: 'pending' }, fetchedAt: 0, inflight: undefined };
      this.entries.set(uri, e);
    }
    if (!e.inflight && (e.state.status === 'pending' || this.now() - e.fetchedAt >= this.refreshMs)) e.inflight = this.refresh(uri, e);
    return e.state;
  }

  /** Resolves once `uri`'s current fetch (if any) is done; for tests and warm-up. */
  async settle(uri: string): Promise<JwksState> {
    this.get(uri);
    await this.entries.get(uri)?.inflight;
    return this.entries.get(uri)!.state;
  }

  private async refresh(uri: string, e: Entry): Promise<void> {
    let next: JwksState;
    try {
      const res = await this.fetchImpl(uri, { signal: AbortSignal.timeout(this.timeoutMs) });
      if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
      const text = await res.text();
      const problem = jwksProblem(text);
      if (problem) throw new Error(problem);
      next = { status: 'ok', jwks: text };
    } catch (err) {
      // The last good set keeps serving through a failed refresh.
      next = e.state.status === 'ok' ? e.state : { status: 'failed', error: (err as Error).message };
    }
    e.fetchedAt = this.now();
    e.inflight = undefined;
    const changed = JSON.stringify(next) !== JSON.stringify(e.state);
    e.state = next;
    if (changed) for (const l of this.listeners) l(uri);
  }
}

/** The process-wide resolver Pilot's generators use. */
export const defaultJwksResolver = new JwksResolver();
