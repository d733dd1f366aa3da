// Label selectors as Kubernetes matches them (equality only, as Istio's
// selectors are), and their text form `app=reviews,version=v1`.

export type Labels = Readonly<Record<string, string>>;

/** True when every key of the selector has the same value in the labels. An empty selector matches everything. */
export function selectorMatches(selector: Labels, labels: Labels | undefined): boolean {
  for (const [key, value] of Object.entries(selector)) {
    if (labels?.[key] !== value) return false;
  }
  return true;
}

/** `app=reviews,version=v1`, keys sorted, as klabels.SelectorFromSet(...).String() prints it. */
export function selectorString(selector: Labels): string {
  return Object.keys(selector)
    .sort()
    .map((k) => `${k}=${selector[k]}`)
    .join(',');
}

/** A label map from untrusted input: only string values are kept. */
export function asLabels(value: unknown): Record<string, string> | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v === 'string') out[k] = v;
    else if (typeof v === 'number' || typeof v === 'boolean') out[k] = String(v);
  }
  return out;
}
