// Envoy's RBAC engine (envoy.config.rbac.v3.RBAC), shared by the HTTP and
// network RBAC filters: policies of permissions (what is done) and
// principals (who does it), compiled once per config into predicates over
// an RbacRequest. A policy matches when any permission and any principal
// match; ALLOW allows only matched requests, DENY denies them, LOG allows
// everything and reports the match.

import { BlockList, isIPv6 } from 'node:net';
import { configError } from '../errors.ts';
import { headerMatcher, stringMatcher } from '../config/matchers.ts';
import type { StringPredicate } from '../config/matchers.ts';
import { wrapped } from '../config/values.ts';
import type { ConnectionFacts } from './connection-facts.ts';

type D = Record<string, any>;

/** What a request looks like to RBAC; HTTP fields are absent for TCP. */
export interface RbacRequest {
  readonly conn: ConnectionFacts;
  /** Request header by lower-case name, pseudo-headers included (`:method`, `:path`, `:authority`); absent for TCP. */
  readonly header?: (name: string) => string | undefined;
  /** The request path without the query string; absent for TCP. */
  readonly path?: string;
  /** The downstream remote address after x-forwarded-for (Envoy's remote_ip). */
  readonly remoteIp: string;
  /** A namespace of the request's dynamic metadata. */
  readonly metadata: (filter: string) => Record<string, unknown> | undefined;
}

export type RbacPredicate = (r: RbacRequest) => boolean;
export type RbacAction = 'ALLOW' | 'DENY' | 'LOG';

export interface RbacEngine {
  readonly action: RbacAction;
  /** Policy names in evaluation order, each with its compiled predicate. */
  readonly policies: ReadonlyArray<{ readonly name: string; readonly matches: RbacPredicate }>;
}

export interface RbacDecision {
  readonly allowed: boolean;
  /** The first matching policy, '' when none matched. */
  readonly policy: string;
}

export function evaluate(engine: RbacEngine, r: RbacRequest): RbacDecision {
  let policy = '';
  for (const p of engine.policies) {
    if (p.matches(r)) {
      policy = p.name;
      break;
    }
  }
  const matched = policy !== '';
  return { allowed: engine.action === 'ALLOW' ? matched : engine.action === 'DENY' ? !matched : true, policy };
}

/** Decodes an RBAC message (`rules` or `shadow_rules`). */
export function decodeRbac(c: D, path: string): RbacEngine {
  const action = (c.action ?? 'ALLOW') as string;
  if (action !== 'ALLOW' && action !== 'DENY' && action !== 'LOG') throw configError(`${path}.action`, `unknown action ${action}`);
  const names = Object.keys(c.policies ?? {}).sort();
  const policies = names.map((name) => {
    const p = c.policies[name] as D;
    const at = `${path}.policies[${JSON.stringify(name)}]`;
    if (p.condition || p.checked_condition) throw configError(`${at}.condition`, 'CEL conditions are not supported');
    const perms = (p.permissions ?? []).map((x: D, i: number) => permission(x, `${at}.permissions[${i}]`));
    const principals = (p.principals ?? []).map((x: D, i: number) => principal(x, `${at}.principals[${i}]`));
    if (perms.length === 0) throw configError(`${at}.permissions`, 'must not be empty');
    if (principals.length === 0) throw configError(`${at}.principals`, 'must not be empty');
    const anyPerm = or(perms);
    const anyPrincipal = or(principals);
    return { name, matches: (r: RbacRequest) => anyPerm(r) && anyPrincipal(r) };
  });
  return { action, policies };
}

function or(list: RbacPredicate[]): RbacPredicate {
  if (list.length === 1) return list[0];
  return (r) => {
    for (const p of list) if (p(r)) return true;
    return false;
  };
}

function and(list: RbacPredicate[]): RbacPredicate {
  return (r) => {
    for (const p of list) if (!p(r)) return false;
    return true;
  };
}

function headerPredicate(h: D, path: string): RbacPredicate {
  const m = headerMatcher(h as never, path);
  // A TCP connection has no headers: header rules never match it.
  return (r) => r.header !== undefined && m.test(r.header(m.name));
}

function urlPath(p: D, path: string): RbacPredicate {
  if (p.rule !== 'path' || !p.path) throw configError(path, 'url_path needs a path matcher');
  const m = stringMatcher(p.path, `${path}.path`);
  return (r) => r.path !== undefined && m(r.path);
}

function permission(p: D, path: string): RbacPredicate {
  switch (p.rule) {
    case 'any':
      return () => true;
    case 'and_rules':
      return and((p.and_rules.rules ?? []).map((x: D, i: number) => permission(x, `${path}.and_rules.rules[${i}]`)));
    case 'or_rules':
      return or((p.or_rules.rules ?? []).map((x: D, i: number) => permission(x, `${path}.or_rules.rules[${i}]`)));
    case 'not_rule': {
      const inner = permission(p.not_rule, `${path}.not_rule`);
      return (r) => !inner(r);
    }
    case 'header':
      return headerPredicate(p.header, `${path}.header`);
    case 'url_path':
      return urlPath(p.url_path, `${path}.url_path`);
    case 'destination_ip': {
      const c = cidr(p.destination_ip, `${path}.destination_ip`);
      return (r) => c(r.conn.destinationIp);
    }
    case 'destination_port': {
      const port = Number(p.destination_port);
      return (r) => r.conn.destinationPort === port;
    }
    case 'destination_port_range': {
      const start = Number(p.destination_port_range.start);
      const end = Number(p.destination_port_range.end);
      return (r) => r.conn.destinationPort >= start && r.conn.destinationPort < end;
    }
    case 'requested_server_name': {
      const m = stringMatcher(p.requested_server_name, `${path}.requested_server_name`);
      return (r) => m(r.conn.sni);
    }
    case 'metadata':
      return metadataPredicate(p.metadata, `${path}.metadata`);
    default:
      throw configError(path, `unsupported permission rule ${p.rule ?? '(none set)'}`);
  }
}

function principal(p: D, path: string): RbacPredicate {
  switch (p.identifier) {
    case 'any':
      return () => true;
    case 'and_ids':
      return and((p.and_ids.ids ?? []).map((x: D, i: number) => principal(x, `${path}.and_ids.ids[${i}]`)));
    case 'or_ids':
      return or((p.or_ids.ids ?? []).map((x: D, i: number) => principal(x, `${path}.or_ids.ids[${i}]`)));
    case 'not_id': {
      const inner = principal(p.not_id, `${path}.not_id`);
      return (r) => !inner(r);
    }
    case 'authenticated': {
      const pn = p.authenticated?.principal_name;
      if (!pn) return (r) => r.conn.authenticated;
      const m = stringMatcher(pn, `${path}.authenticated.principal_name`);
      return (r) => r.conn.authenticated && r.conn.principals.some(m);
    }
    case 'source_ip':
    case 'direct_remote_ip': {
      const c = cidr(p[p.identifier], `${path}.${p.identifier}`);
      return (r) => c(r.conn.directRemoteIp);
    }
    case 'remote_ip': {
      const c = cidr(p.remote_ip, `${path}.remote_ip`);
      return (r) => c(r.remoteIp);
    }
    case 'header':
      return headerPredicate(p.header, `${path}.header`);
    case 'url_path':
      return urlPath(p.url_path, `${path}.url_path`);
    case 'metadata':
      return metadataPredicate(p.metadata, `${path}.metadata`);
    default:
      throw configError(path, `unsupported principal ${p.identifier ?? '(none set)'}`);
  }
}

function unmapped(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

/** CidrRange -> a predicate on an address string. */
export function cidr(c: D, path: string): (ip: string) => boolean {
  const address = String(c?.address_prefix ?? '');
  const v6 = isIPv6(address);
  const len = wrapped(c?.prefix_len, v6 ? 128 : 32);
  const list = new BlockList();
  try {
    list.addSubnet(address, len, v6 ? 'ipv6' : 'ipv4');
  } catch (err) {
    throw configError(path, `invalid CIDR ${address}/${len}: ${(err as Error).message}`);
  }
  return (ip) => {
    if (!ip) return false;
    const a = unmapped(ip);
    const family = isIPv6(a) ? 'ipv6' : 'ipv4';
    if ((family === 'ipv6') !== v6) return false;
    try {
      return list.check(a, family);
    } catch {
      return false;
    }
  };
}

// ---- MetadataMatcher / ValueMatcher ----

function metadataPredicate(m: D, path: string): RbacPredicate {
  if (!m.filter) throw configError(`${path}.filter`, 'must not be empty');
  const keys: string[] = (m.path ?? []).map((s: D, i: number) => {
    if (s.segment !== 'key' && s.key === undefined) throw configError(`${path}.path[${i}]`, 'only key segments are supported');
    return String(s.key);
  });
  if (keys.length === 0) throw configError(`${path}.path`, 'must not be empty');
  const value = valueMatcher(m.value, `${path}.value`);
  const invert = m.invert === true;
  return (r) => {
    let v: unknown = r.metadata(m.filter);
    for (const k of keys) v = v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>)[k] : undefined;
    return value(v) !== invert;
  };
}

/** envoy.type.matcher.v3.ValueMatcher over a JSON-like value (Struct contents). */
export function valueMatcher(v: D, path: string): (value: unknown) => boolean {
  if (!v) throw configError(path, 'required');
  switch (v.match_pattern) {
    case 'null_match':
      return (x) => x === null;
    case 'double_match': {
      const d = v.double_match;
      if (d.match_pattern === 'exact') return (x) => typeof x === 'number' && x === d.exact;
      const start = Number(d.range?.start);
      const end = Number(d.range?.end);
      return (x) => typeof x === 'number' && x >= start && x < end;
    }
    case 'string_match': {
      const s: StringPredicate = stringMatcher(v.string_match, `${path}.string_match`);
      return (x) => typeof x === 'string' && s(x);
    }
    case 'bool_match':
      return (x) => x === v.bool_match;
    case 'present_match':
      return (x) => (x !== undefined) === (v.present_match === true);
    case 'list_match': {
      const inner = valueMatcher(v.list_match.one_of, `${path}.list_match.one_of`);
      // A single claim value (string) is treated as a one-element list, as
      // Istio's claim matching needs for `aud`, `groups` and `scope`.
      return (x) => (Array.isArray(x) ? x.some(inner) : x !== undefined && inner(x));
    }
    case 'or_match': {
      const list = (v.or_match.value_matchers ?? []).map((m: D, i: number) => valueMatcher(m, `${path}.or_match.value_matchers[${i}]`));
      return (x) => list.some((f: (y: unknown) => boolean) => f(x));
    }
    default:
      throw configError(path, `unsupported value matcher ${v.match_pattern ?? '(none set)'}`);
  }
}
