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

const MAX_REGEX_LENGTH = 1024;

/** validateStringRegexp: length bound, then RE2 syntax. */
export function checkRegexString(diag: Diagnostics, path: FieldPath, re: string): void {
  if (re.length > MAX_REGEX_LENGTH) {
    diag.error(path, `regex is too large (${re.length} characters); max length allowed is ${MAX_REGEX_LENGTH}`);
    return;
  }
  checkRegex(diag, path, re);
}

/** One match type at most; an empty regex is an error, since it would match everything by accident. */
export function checkStringMatch(diag: Diagnostics, path: FieldPath, sm: StringMatch): void {
  const type = checkOneOf(diag, path, sm, ['exact', 'prefix', 'regex']);
  if (type !== 'regex' || sm.regex === undefined) return;
  if (sm.regex === '') diag.error(path.key('regex'), 'regex string match should not be empty');
  else checkRegexString(diag, path.key('regex'), sm.regex);
}
