// Envoy's matchers (StringMatcher, HeaderMatcher, QueryParameterMatcher) as
// precompiled predicates. Regexes are RE2 (safe_regex), so a route table from
// the control plane can never make the proxy backtrack forever.

import { RE2JS } from 're2js';
import { configError } from '../errors.ts';

export type StringPredicate = (value: string) => boolean;

interface DecodedStringMatcher {
  match_pattern?: string;
  exact?: string;
  prefix?: string;
  suffix?: string;
  contains?: string;
  safe_regex?: { regex: string } | null;
  ignore_case?: boolean;
}

export function compileRegex(regex: string, path: string): RE2JS {
  try {
    return RE2JS.compile(regex);
  } catch (err) {
    throw configError(path, `invalid RE2 regex "${regex}": ${(err as Error).message}`);
  }
}

/** A full-string RE2 match, as Envoy's safe_regex matchers require. */
export function regexPredicate(regex: string, path: string): StringPredicate {
  const re = compileRegex(regex, path);
  return (v) => re.matches(v);
}

export function stringMatcher(m: DecodedStringMatcher, path: string): StringPredicate {
  const ic = m.ignore_case === true;
  switch (m.match_pattern) {
    case 'exact': {
      const want = ic ? m.exact!.toLowerCase() : m.exact!;
      return ic ? (v) => v.toLowerCase() === want : (v) => v === want;
    }
    case 'prefix': {
      const want = ic ? m.prefix!.toLowerCase() : m.prefix!;
      return ic ? (v) => v.toLowerCase().startsWith(want) : (v) => v.startsWith(want);
    }
    case 'suffix': {
      const want = ic ? m.suffix!.toLowerCase() : m.suffix!;
      return ic ? (v) => v.toLowerCase().endsWith(want) : (v) => v.endsWith(want);
    }
    case 'contains': {
      const want = ic ? m.contains!.toLowerCase() : m.contains!;
      return ic ? (v) => v.toLowerCase().includes(want) : (v) => v.includes(want);
    }
    case 'safe_regex':
      return regexPredicate(m.safe_regex!.regex, `${path}.safe_regex.regex`);
    default:
      throw configError(path, `unsupported string matcher ${m.match_pattern ?? '(none set)'}`);
  }
}

/** Matches one request header value (undefined when absent). */
export type HeaderPredicate = (value: string | undefined) => boolean;

export interface HeaderMatcher {
  readonly name: string;
  readonly test: HeaderPredicate;
}

interface DecodedHeaderMatcher extends DecodedStringMatcher {
  name: string;
  header_match_specifier?: string;
  present_match?: boolean;
  string_match?: DecodedStringMatcher | null;
  range_match?: { start: string; end: string } | null;
  invert_match?: boolean;
  treat_missing_header_as_empty?: boolean;
}

export function headerMatcher(m: DecodedHeaderMatcher, path: string): HeaderMatcher {
  if (!m.name) throw configError(`${path}.name`, 'must not be empty');
  const name = m.name.toLowerCase();
  const missingAsEmpty = m.treat_missing_header_as_empty === true;
  let inner: HeaderPredicate;
  switch (m.header_match_specifier) {
    case undefined:
    case '':
      // No specifier: the header must be present (Envoy's default).
      inner = (v) => v !== undefined;
      break;
    case 'present_match': {
      const want = m.present_match === true;
      inner = (v) => (v !== undefined) === want;
      break;
    }
    case 'string_match': {
      const p = stringMatcher(m.string_match!, `${path}.string_match`);
      inner = (v) => (v === undefined ? missingAsEmpty && p('') : p(v));
      break;
    }
    case 'exact_match':
    case 'prefix_match':
    case 'suffix_match':
    case 'contains_match': {
      const kind = m.header_match_specifier.replace('_match', '');
      const p = stringMatcher({ match_pattern: kind, [kind]: (m as unknown as Record<string, string>)[m.header_match_specifier] }, path);
      inner = (v) => (v === undefined ? missingAsEmpty && p('') : p(v));
      break;
    }
    case 'safe_regex_match': {
      const p = regexPredicate((m as unknown as { safe_regex_match: { regex: string } }).safe_regex_match.regex, `${path}.safe_regex_match.regex`);
      inner = (v) => v !== undefined && p(v);
      break;
    }
    case 'range_match': {
      const start = Number(m.range_match!.start);
      const end = Number(m.range_match!.end);
      inner = (v) => {
        if (v === undefined || !/^-?\d+$/.test(v)) return false;
        const n = Number(v);
        return n >= start && n < end;
      };
      break;
    }
    default:
      throw configError(path, `unsupported header matcher ${m.header_match_specifier}`);
  }
  // Envoy: invert_match negates the result, but a missing header never matches
  // an inverted present/string matcher unless treat_missing_header_as_empty.
  const test: HeaderPredicate = m.invert_match ? (v) => !inner(v) : inner;
  return { name, test };
}

export interface QueryParamMatcher {
  readonly name: string;
  readonly test: (value: string | null) => boolean;
}

export function queryParamMatcher(m: { name: string; query_parameter_match_specifier?: string; string_match?: DecodedStringMatcher | null; present_match?: boolean }, path: string): QueryParamMatcher {
  if (!m.name) throw configError(`${path}.name`, 'must not be empty');
  if (m.query_parameter_match_specifier === 'string_match') {
    const p = stringMatcher(m.string_match!, `${path}.string_match`);
    return { name: m.name, test: (v) => v !== null && p(v) };
  }
  const present = m.query_parameter_match_specifier === 'present_match' ? m.present_match === true : true;
  return { name: m.name, test: (v) => (v !== null) === present };
}
