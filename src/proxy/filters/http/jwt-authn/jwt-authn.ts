// The JWT authentication filter (envoy.filters.http.jwt_authn): finds
// tokens where each provider says (from_headers with value_prefix,
// from_params; default `Authorization: Bearer` and `access_token`),
// verifies them with jose against local or remote JWKS (issuer, audiences,
// exp/nbf with clock skew, `alg: none` refused), and applies the first
// rule whose route match fits the request. Istio's requirement
// `requires_any [provider, allow_missing]` lets a request without a token
// through and refuses an invalid one with 401 (403 for a wrong audience)
// and Envoy's messages. Verified payloads go to dynamic metadata
// (payload_in_metadata) and, as Istio's authn filter does, to `istio_authn`
// (request.auth.principal `iss/sub`, audiences, presenter, claims) for RBAC.

import { compactVerify, errors as joseErrors } from 'jose';
import type { KeyObject } from 'node:crypto';
import { TYPE_URL_PREFIX } from '../../../../xds/index.ts';
import { configError } from '../../../errors.ts';
import type { HeaderMatcher } from '../../../config/matchers.ts';
import { headerMatcher, regexPredicate } from '../../../config/matchers.ts';
import { durationMs } from '../../../config/values.ts';
import type { Counter } from '../../../stats.ts';
import type { FactoryContext, HttpFilterExtension } from '../../../registry.ts';
import { setFilterMetadata } from '../../../rbac/stream-metadata.ts';
import type { FilterStatus, HttpFilter, HttpStream } from '../http-filter.ts';
import type { KeySet } from './jwks-cache.ts';
import { RemoteJwks, parseJwks } from './jwks-cache.ts';

type D = Record<string, any>;

export const JWT_AUTHN_TYPE_URL = `${TYPE_URL_PREFIX}envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication`;
export const JWT_AUTHN_METADATA = 'envoy.filters.http.jwt_authn';
export const ISTIO_AUTHN_METADATA = 'istio_authn';
/** Tokens longer than this are refused before any parsing. */
export const MAX_JWT_BYTES = 16 * 1024;
const SUPPORTED_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'HS256', 'HS384', 'HS512'];

/** Envoy's jwt_authn status messages. */
export const JwtStatus = {
  MISSING: 'Jwt is missing',
  BAD_FORMAT: 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections',
  HEADER_BAD_JSON: 'Jwt header is an invalid JSON',
  PAYLOAD_BAD_JSON: 'Jwt payload is an invalid JSON',
  ALG_NOT_SUPPORTED: 'Jwt header [alg] is not supported',
  UNKNOWN_ISSUER: 'Jwt issuer is not configured',
  EXPIRED: 'Jwt is expired',
  NOT_YET_VALID: 'Jwt not yet valid',
  NO_EXPIRATION: 'Jwt does not have expiration',
  AUDIENCE: 'Audiences in Jwt are not allowed',
  NO_KEY: "Jwks doesn't have key to match kid or alg from Jwt",
  VERIFY: 'Jwt verification fails',
  JWKS_FETCH: 'Jwks remote fetch is failed',
  TOO_LARGE: 'Jwt is too large',
} as const;

interface TokenLocation {
  readonly header?: string;
  readonly prefix?: string;
  readonly param?: string;
}

export interface JwtProvider {
  readonly name: string;
  readonly issuer: string;
  readonly audiences: readonly string[];
  readonly keys: () => Promise<KeySet>;
  readonly locations: readonly TokenLocation[];
  readonly forward: boolean;
  readonly forwardPayloadHeader: string;
  readonly payloadInMetadata: string;
  readonly claimToHeaders: ReadonlyArray<{ header: string; claim: string }>;
  readonly clockSkewS: number;
  readonly requireExpiration: boolean;
}

type Requirement =
  | { kind: 'provider'; provider: string; audiences?: readonly string[] }
  | { kind: 'any' | 'all'; list: readonly Requirement[] }
  | { kind: 'allow_missing' | 'allow_missing_or_failed' };

interface Rule {
  readonly matches: (s: HttpStream) => boolean;
  readonly requires: Requirement | undefined;
}

export interface JwtAuthnSettings {
  readonly providers: ReadonlyMap<string, JwtProvider>;
  readonly rules: readonly Rule[];
  readonly bypassCorsPreflight: boolean;
  readonly stats: { readonly allowed: Counter; readonly denied: Counter; readonly cors_preflight_bypassed: Counter; readonly jwks_fetch_success: Counter; readonly jwks_fetch_failed: Counter };
}

class JwtError extends Error {
  readonly status: number;
  constructor(message: string, status = 401) {
    super(message);
    this.status = status;
  }
}

interface Verified {
  readonly provider: JwtProvider;
  readonly token: string;
  readonly payload: Record<string, unknown>;
  readonly payloadSegment: string;
  readonly location: TokenLocation;
}

type Outcome = { ok: true; verified: Verified[] } | { ok: false; error: JwtError; missing: boolean };

function decodeSegment(seg: string): unknown {
  return JSON.parse(Buffer.from(seg, 'base64url').toString('utf8'));
}

/** Verifies one token for one provider; throws JwtError with Envoy's message. */
export async function verifyJwt(token: string, p: JwtProvider, audiences: readonly string[] = p.audiences, nowS = Date.now() / 1000): Promise<Record<string, unknown>> {
  if (token.length > MAX_JWT_BYTES) throw new JwtError(JwtStatus.TOO_LARGE);
  const parts = token.split('.');
  if (parts.length !== 3) throw new JwtError(JwtStatus.BAD_FORMAT);
  let header: D;
  let payload: D;
  try {
    header = decodeSegment(parts[0]) as D;
    if (header === null || typeof header !== 'object') throw new Error('not an object');
  } catch {
    throw new JwtError(JwtStatus.HEADER_BAD_JSON);
  }
  // `none` (and anything unknown) never verifies: no unsigned tokens.
  if (typeof header.alg !== 'string' || !SUPPORTED_ALGS.includes(header.alg)) throw new JwtError(JwtStatus.ALG_NOT_SUPPORTED);
  try {
    payload = decodeSegment(parts[1]) as D;
    if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) throw new Error('not an object');
  } catch {
    throw new JwtError(JwtStatus.PAYLOAD_BAD_JSON);
  }
  if (p.issuer && payload.iss !== p.issuer) throw new JwtError(JwtStatus.UNKNOWN_ISSUER);
  if (typeof payload.exp === 'number') {
    if (payload.exp + p.clockSkewS < nowS) throw new JwtError(JwtStatus.EXPIRED);
  } else if (p.requireExpiration) throw new JwtError(JwtStatus.NO_EXPIRATION);
  if (typeof payload.nbf === 'number' && payload.nbf - p.clockSkewS > nowS) throw new JwtError(JwtStatus.NOT_YET_VALID);
  if (audiences.length > 0) {
    const aud = Array.isArray(payload.aud) ? payload.aud : payload.aud === undefined ? [] : [payload.aud];
    if (!aud.some((a) => audiences.includes(String(a)))) throw new JwtError(JwtStatus.AUDIENCE, 403);
  }
  let keys: KeySet;
  try {
    keys = await p.keys();
  } catch {
    throw new JwtError(JwtStatus.JWKS_FETCH);
  }
  let candidates: unknown[];
  try {
    candidates = [await keys(header as never, { payload: parts[1], signature: parts[2] } as never)];
  } catch (err) {
    if (err instanceof joseErrors.JWKSMultipleMatchingKeys) {
      candidates = [];
      for await (const k of err as unknown as AsyncIterable<unknown>) candidates.push(k);
    } else throw new JwtError(JwtStatus.NO_KEY);
  }
  for (const key of candidates) {
    try {
      await compactVerify(token, key as KeyObject, { algorithms: [header.alg] });
      return payload;
    } catch {
      // try the next key with the same kid/alg
    }
  }
  throw new JwtError(JwtStatus.VERIFY);
}

function errorRank(o: Extract<Outcome, { ok: false }>): number {
  if (o.missing) return 0;
  return o.error.message === JwtStatus.UNKNOWN_ISSUER ? 1 : 2;
}

function extract(s: HttpStream, loc: TokenLocation): string | undefined {
  if (loc.header !== undefined) {
    const raw = s.req.headers[loc.header];
    const v = Array.isArray(raw) ? raw[0] : raw;
    if (!v) return undefined;
    if (!loc.prefix) return v.trim();
    const at = v.indexOf(loc.prefix);
    if (at < 0) return undefined;
    // Envoy: the token runs from after the prefix to the next ',' or space.
    const rest = v.slice(at + loc.prefix.length).trim();
    return rest.split(/[ ,]/)[0] || undefined;
  }
  if (!s.query) return undefined;
  return new URLSearchParams(s.query).get(loc.param!) ?? undefined;
}

export class JwtAuthnFilter implements HttpFilter {
  private readonly settings: JwtAuthnSettings;
  private done = false;

  constructor(settings: JwtAuthnSettings) {
    this.settings = settings;
  }

  decodeHeaders(s: HttpStream): FilterStatus {
    const st = this.settings;
    if (st.bypassCorsPreflight && s.req.method === 'OPTIONS' && s.req.headers.origin && s.req.headers['access-control-request-method']) {
      st.stats.cors_preflight_bypassed.value++;
      return 'continue';
    }
    const rule = st.rules.find((r) => r.matches(s));
    if (!rule?.requires) return 'continue';
    // Tokens of every provider, found once: allow_missing means "none present".
    const found: Array<{ provider: JwtProvider; token: string; location: TokenLocation }> = [];
    for (const p of st.providers.values()) {
      for (const loc of p.locations) {
        const token = extract(s, loc);
        if (token !== undefined) {
          found.push({ provider: p, token, location: loc });
          break;
        }
      }
    }
    this.check(rule.requires, found).then(
      (outcome) => this.finish(s, outcome),
      () => this.finish(s, { ok: false, error: new JwtError(JwtStatus.VERIFY), missing: false }),
    );
    return this.done ? 'continue' : 'stop';
  }

  private async check(req: Requirement, found: ReadonlyArray<{ provider: JwtProvider; token: string; location: TokenLocation }>): Promise<Outcome> {
    switch (req.kind) {
      case 'allow_missing_or_failed':
        return { ok: true, verified: await this.verifiedOnly(found) };
      case 'allow_missing':
        return found.length === 0 ? { ok: true, verified: [] } : { ok: false, error: new JwtError(JwtStatus.MISSING), missing: true };
      case 'provider': {
        const p = this.settings.providers.get(req.provider)!;
        const f = found.find((x) => x.provider === p);
        if (!f) return { ok: false, error: new JwtError(JwtStatus.MISSING), missing: true };
        try {
          const payload = await verifyJwt(f.token, p, req.audiences ?? p.audiences);
          return { ok: true, verified: [{ provider: p, token: f.token, payload, payloadSegment: f.token.split('.')[1], location: f.location }] };
        } catch (err) {
          return { ok: false, error: err instanceof JwtError ? err : new JwtError(JwtStatus.VERIFY), missing: false };
        }
      }
      case 'all': {
        const verified: Verified[] = [];
        for (const r of req.list) {
          const o = await this.check(r, found);
          if (!o.ok) return o;
          verified.push(...o.verified);
        }
        return { ok: true, verified };
      }
      case 'any': {
        let best: Extract<Outcome, { ok: false }> | undefined;
        for (const r of req.list) {
          const o = await this.check(r, found);
          if (o.ok) return o;
          // The most telling error wins: a configured issuer's verdict over
          // "issuer is not configured" (another provider's) over "missing".
          if (!best || errorRank(o) > errorRank(best)) best = o;
        }
        return best ?? { ok: false, error: new JwtError(JwtStatus.MISSING), missing: true };
      }
    }
  }

  private async verifiedOnly(found: ReadonlyArray<{ provider: JwtProvider; token: string; location: TokenLocation }>): Promise<Verified[]> {
    const out: Verified[] = [];
    for (const f of found) {
      try {
        const payload = await verifyJwt(f.token, f.provider);
        out.push({ provider: f.provider, token: f.token, payload, payloadSegment: f.token.split('.')[1], location: f.location });
      } catch {
        // failed tokens are ignored here
      }
    }
    return out;
  }

  private finish(s: HttpStream, outcome: Outcome): void {
    this.done = true;
    if (s.ended) return;
    const stats = this.settings.stats;
    if (!outcome.ok) {
      stats.denied.value++;
      const status = outcome.error.status;
      s.res.setHeader('www-authenticate', `Bearer realm="http://${s.host}${s.path}"${status === 401 && !outcome.missing ? ', error="invalid_token"' : ''}`);
      s.sendLocalReply(status, outcome.error.message);
      return;
    }
    stats.allowed.value++;
    const headers = s.req.headers;
    for (const v of outcome.verified) {
      const p = v.provider;
      if (!p.forward && v.location.header !== undefined) delete headers[v.location.header];
      if (p.forwardPayloadHeader) headers[p.forwardPayloadHeader] = v.payloadSegment;
      for (const c of p.claimToHeaders) {
        const value = v.payload[c.claim];
        if (value !== undefined && typeof value !== 'object') headers[c.header] = String(value);
      }
      if (p.payloadInMetadata) setFilterMetadata(s.req, JWT_AUTHN_METADATA, { [p.payloadInMetadata]: v.payload });
    }
    const first = outcome.verified[0];
    if (first) {
      const pl = first.payload;
      const aud = Array.isArray(pl.aud) ? pl.aud.map(String) : pl.aud === undefined ? [] : [String(pl.aud)];
      setFilterMetadata(s.req, ISTIO_AUTHN_METADATA, {
        'request.auth.principal': `${String(pl.iss ?? '')}/${String(pl.sub ?? '')}`,
        'request.auth.audiences': aud,
        'request.auth.presenter': pl.azp === undefined ? '' : String(pl.azp),
        'request.auth.claims': pl,
        'request.auth.raw_claims': JSON.stringify(pl),
      });
    }
    s.continueDecoding();
  }
}

// ---- config ----

function dataSourceText(d: D, path: string): string {
  if (d?.specifier === 'inline_string' || d?.inline_string) return d.inline_string;
  if (d?.specifier === 'inline_bytes' || d?.inline_bytes) return Buffer.from(d.inline_bytes, typeof d.inline_bytes === 'string' ? 'base64' : undefined).toString();
  throw configError(path, 'only inline_string and inline_bytes are supported for local_jwks');
}

function decodeProvider(name: string, c: D, ctx: FactoryContext, path: string, onFetch: (ok: boolean) => void): JwtProvider {
  let keys: () => Promise<KeySet>;
  if (c.jwks_source_specifier === 'local_jwks' || (c.local_jwks && !c.remote_jwks)) {
    let set: KeySet;
    try {
      set = parseJwks(dataSourceText(c.local_jwks, `${path}.local_jwks`));
    } catch (err) {
      throw configError(`${path}.local_jwks`, `invalid JWKS: ${(err as Error).message}`);
    }
    const ready = Promise.resolve(set);
    keys = () => ready;
  } else if (c.jwks_source_specifier === 'remote_jwks' || c.remote_jwks) {
    const http = c.remote_jwks.http_uri;
    if (!http?.uri) throw configError(`${path}.remote_jwks.http_uri.uri`, 'must not be empty');
    try {
      new URL(http.uri);
    } catch {
      throw configError(`${path}.remote_jwks.http_uri.uri`, `invalid URI ${http.uri}`);
    }
    const remote = new RemoteJwks(
      { uri: http.uri, cluster: http.cluster ?? '', timeoutMs: durationMs(http.timeout, 1000), cacheDurationMs: durationMs(c.remote_jwks.cache_duration, 600_000) },
      ctx.clusters,
      ctx.clock,
      onFetch,
    );
    keys = () => remote.get();
  } else throw configError(path, 'one of local_jwks or remote_jwks is required');
  const locations: TokenLocation[] = [
    ...(c.from_headers ?? []).map((h: D) => ({ header: String(h.name).toLowerCase(), prefix: h.value_prefix ?? '' })),
    ...(c.from_params ?? []).map((q: string) => ({ param: q })),
  ];
  if ((c.from_cookies ?? []).length > 0) throw configError(`${path}.from_cookies`, 'cookies are not supported');
  if (locations.length === 0) locations.push({ header: 'authorization', prefix: 'Bearer ' }, { param: 'access_token' });
  return {
    name,
    issuer: c.issuer ?? '',
    audiences: c.audiences ?? [],
    keys,
    locations,
    forward: c.forward === true,
    forwardPayloadHeader: (c.forward_payload_header ?? '').toLowerCase(),
    payloadInMetadata: c.payload_in_metadata ?? '',
    claimToHeaders: (c.claim_to_headers ?? []).map((x: D) => ({ header: String(x.header_name).toLowerCase(), claim: x.claim_name })),
    clockSkewS: c.clock_skew_seconds ?? 60,
    requireExpiration: c.require_expiration === true,
  };
}

function decodeRequirement(r: D | undefined, providers: ReadonlyMap<string, JwtProvider>, path: string): Requirement | undefined {
  if (!r) return undefined;
  const type = r.requires_type ?? Object.keys(r).find((k) => r[k] !== undefined && r[k] !== null && r[k] !== '');
  const need = (name: string, at: string): string => {
    if (!providers.has(name)) throw configError(at, `unknown provider "${name}"`);
    return name;
  };
  switch (type) {
    case 'provider_name':
      return { kind: 'provider', provider: need(r.provider_name, `${path}.provider_name`) };
    case 'provider_and_audiences':
      return { kind: 'provider', provider: need(r.provider_and_audiences.provider_name, `${path}.provider_and_audiences.provider_name`), audiences: r.provider_and_audiences.audiences ?? [] };
    case 'requires_any':
    case 'requires_all': {
      const list = (r[type].requirements ?? []).map((x: D, i: number) => decodeRequirement(x, providers, `${path}.${type}.requirements[${i}]`)!);
      return { kind: type === 'requires_any' ? 'any' : 'all', list };
    }
    case 'allow_missing':
    case 'allow_missing_or_failed':
      return { kind: type };
    default:
      throw configError(path, `unsupported requirement ${type ?? '(none set)'}`);
  }
}

function decodeRouteMatch(m: D, path: string): (s: HttpStream) => boolean {
  let pathPredicate: (p: string) => boolean;
  switch (m?.path_specifier) {
    case 'prefix':
      pathPredicate = (p) => p.startsWith(m.prefix);
      break;
    case 'path':
      pathPredicate = (p) => p === m.path;
      break;
    case 'safe_regex':
      pathPredicate = regexPredicate(m.safe_regex.regex, `${path}.safe_regex.regex`);
      break;
    case 'path_separated_prefix':
      pathPredicate = (p) => p === m.path_separated_prefix || p.startsWith(`${m.path_separated_prefix}/`);
      break;
    default:
      throw configError(path, `unsupported route match ${m?.path_specifier ?? '(none set)'}`);
  }
  const headers: HeaderMatcher[] = (m.headers ?? []).map((h: D, i: number) => headerMatcher(h as never, `${path}.headers[${i}]`));
  return (s) => {
    if (!pathPredicate(s.path)) return false;
    for (const h of headers) {
      const v = s.req.headers[h.name];
      if (!h.test(Array.isArray(v) ? v.join(',') : v)) return false;
    }
    return true;
  };
}

export function jwtAuthnSettings(c: D, ctx: FactoryContext, path: string): JwtAuthnSettings {
  const p = `http.${ctx.statPrefix ?? 'unknown'}.jwt_authn.`;
  const stats = {
    allowed: ctx.stats.counter(`${p}allowed`),
    denied: ctx.stats.counter(`${p}denied`),
    cors_preflight_bypassed: ctx.stats.counter(`${p}cors_preflight_bypassed`),
    jwks_fetch_success: ctx.stats.counter(`${p}jwks_fetch_success`),
    jwks_fetch_failed: ctx.stats.counter(`${p}jwks_fetch_failed`),
  };
  const onFetch = (ok: boolean): void => {
    (ok ? stats.jwks_fetch_success : stats.jwks_fetch_failed).value++;
  };
  const providers = new Map<string, JwtProvider>();
  for (const [name, pc] of Object.entries((c.providers ?? {}) as Record<string, D>)) providers.set(name, decodeProvider(name, pc, ctx, `${path}.providers[${JSON.stringify(name)}]`, onFetch));
  const rules = (c.rules ?? []).map((r: D, i: number) => ({
    matches: decodeRouteMatch(r.match, `${path}.rules[${i}].match`),
    requires: r.requirement_type === 'requirement_name' ? (() => {
      throw configError(`${path}.rules[${i}].requirement_name`, 'requirement_map is not supported');
    })() : decodeRequirement(r.requires, providers, `${path}.rules[${i}].requires`),
  }));
  return { providers, rules, bypassCorsPreflight: c.bypass_cors_preflight === true, stats };
}

export const jwtAuthnExtension: HttpFilterExtension = {
  typeUrl: JWT_AUTHN_TYPE_URL,
  category: 'http',
  create(c: D, ctx, path, name) {
    const settings = jwtAuthnSettings(c, ctx, path);
    return { name: name || 'envoy.filters.http.jwt_authn', terminal: false, create: () => new JwtAuthnFilter(settings) };
  },
};
