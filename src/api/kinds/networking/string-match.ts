// StringMatch (exact | prefix | regex), used by HTTP match conditions and CORS
// origins. Regexes are RE2, as Envoy's safe_regex, and kept short because
// Envoy caps the compiled program size.

import type { Diagnostics, FieldPath } from '../../diagnostics.ts';
import { strict, z } from '../../schema.ts';
import { checkRegex } from '../../validators.ts';
import { checkOneOf } from './checks.ts';

export const stringMatch = strict({
  exact: z.string().optional(),
  prefix: z.string().optional(),
  regex: z.string().optional(),
});
export type StringMatch = z.infer<typeof stringMatch>;

// Envoy limits the RE2 program size; the length is a safe lower bound of it.
const MAX_REGEX_LENGTH = 1024;

/** validateStringRegexp: length bound, then RE2 syntax. */
export function checkRegexString(diag: Diagnostics, path: FieldPath, re: string): void {
  if (re.length > MAX_REGEX_LENGTH) {
    diag.error(path, `regex is too large (${re.length} characters), max length allowed is ${MAX_REGEX_LENGTH}`);
    return;
  }
  checkRegex(diag, path, re);
}

export interface StringMatchOptions {
  /** URI matches may use an empty prefix (match everything); Envoy's StringMatcher elsewhere may not. */
  readonly allowEmptyPrefix?: boolean;
  /** withoutHeaders takes `regex: "*"` to mean "header present", which is not RE2. */
  readonly allowStarRegex?: boolean;
}

/** validateStringMatch: one match type at most, no empty prefix or regex, RE2 regexes. */
export function checkStringMatch(diag: Diagnostics, path: FieldPath, sm: StringMatch, opts: StringMatchOptions = {}): void {
  const type = checkOneOf(diag, path, sm, ['exact', 'prefix', 'regex']);
  if (type === 'prefix' && sm.prefix === '' && !opts.allowEmptyPrefix) {
    diag.error(path.key('prefix'), 'prefix string match should not be empty (omit the match to match everything)');
  }
  if (type !== 'regex' || sm.regex === undefined) return;
  if (opts.allowStarRegex && sm.regex === '*') return;
  if (sm.regex === '') diag.error(path.key('regex'), 'regex string match should not be empty');
  else checkRegexString(diag, path.key('regex'), sm.regex);
}
