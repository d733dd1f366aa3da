// VirtualServices as the tests write them (Istio's task style, one http
// route to one destination), so that a test says only what differs: host,
// subset, weight, a fault, a timeout, a mirror.

/** What one single-route VirtualService says. */
export interface SingleRouteVirtualService {
  /** The host, in `hosts` and as the destination. */
  readonly host: string;
  /** metadata.name (default: the host). */
  readonly name?: string;
  /** Default networking.istio.io/v1. */
  readonly apiVersion?: string;
  readonly subset?: string;
  readonly weight?: number;
  /** Keys of the http route before `route` (e.g. `fault:` or `timeout: 1s`), YAML lines indented from column 0. */
  readonly before?: string;
  /** Keys of the http route after `route` (e.g. `timeout: 0.5s`, `mirror:`), YAML lines indented from column 0. */
  readonly after?: string;
}

/** The VirtualService as YAML text, one key a line (error positions in it are stable). */
export function virtualServiceYaml(vs: SingleRouteVirtualService): string {
  const indented = (text: string): string[] => text.trim().split('\n').map((l) => `    ${l}`);
  const before = vs.before === undefined ? [] : indented(vs.before);
  const first = before.length > 0 ? [`  - ${before[0]!.trimStart()}`, ...before.slice(1), '    route:'] : ['  - route:'];
  return [
    `apiVersion: ${vs.apiVersion ?? 'networking.istio.io/v1'}`,
    'kind: VirtualService',
    'metadata:',
    `  name: ${vs.name ?? vs.host}`,
    'spec:',
    '  hosts:',
    `  - ${vs.host}`,
    '  http:',
    ...first,
    '    - destination:',
    `        host: ${vs.host}`,
    ...(vs.subset !== undefined ? [`        subset: ${vs.subset}`] : []),
    ...(vs.weight !== undefined ? [`      weight: ${vs.weight}`] : []),
    ...(vs.after === undefined ? [] : indented(vs.after)),
    '',
  ].join('\n');
}
