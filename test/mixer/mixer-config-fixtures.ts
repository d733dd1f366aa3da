// Mixer config for tests and bench/mixer-bench.ts, as the YAML `mesh apply`
// and snapshotOf() take: small builders for the objects the tests keep
// writing (memquota quota with its QuotaSpec and binding, a prometheus
// counter, a listchecker, a denier), each parameterised by what the tests
// vary. Everything is in istio-system unless a namespace is given.

const API_VERSION = 'config.istio.io/v1alpha2';
const ISTIO_SYSTEM = 'istio-system';

/** Expression per name (instance dimensions, label values); written verbatim as YAML values. */
export type Expressions = Readonly<Record<string, string>>;

/**
 * One config object. `spec` is its spec as YAML: a flow mapping (`{ ... }`)
 * on one line, or block lines indented from column 0.
 */
export function configObject(kind: string, name: string, spec: string, namespace = ISTIO_SYSTEM): string {
  const body = spec.trim();
  const specYaml = body.startsWith('{') ? ` ${body}` : `\n${indent(body, 2)}`;
  return `apiVersion: ${API_VERSION}\nkind: ${kind}\nmetadata: { name: ${name}, namespace: ${namespace} }\nspec:${specYaml}\n`;
}

/** Objects as one multi-document YAML text. */
export function configYaml(...objects: readonly string[]): string {
  return `\n${objects.join('---\n')}`;
}

/** A rule sending what `match` selects (everything without one) to each `handler: [instances]` action. */
export function ruleObject(name: string, options: { readonly match?: string; readonly actions: readonly (readonly [handler: string, instances: readonly string[]])[]; readonly extra?: string }): string {
  const actions = options.actions.map(([handler, instances]) => `{ handler: ${handler}, instances: [${instances.join(', ')}] }`);
  const lines = [
    ...(options.match !== undefined ? [`match: ${options.match}`] : []),
    actions.length === 1 ? `actions: [${actions[0]}]` : `actions:\n${actions.map((a) => `- ${a}`).join('\n')}`,
    ...(options.extra !== undefined ? [options.extra.trim()] : []),
  ];
  return configObject('rule', name, lines.join('\n'));
}

/** A block mapping of `expressions`, one `name: expression` a line. */
function expressionLines(expressions: Expressions): string {
  return Object.entries(expressions).map(([k, v]) => `${k}: ${v}`).join('\n');
}

function indent(text: string, spaces: number): string {
  const pad = ' '.repeat(spaces);
  return text.split('\n').map((l) => (l === '' ? l : pad + l)).join('\n');
}

// --- quota ---------------------------------------------------------------

/** A quota override: its dimensions (name: value) and limit. */
export interface QuotaOverride {
  readonly dimensions: Expressions;
  readonly maxAmount: number;
  readonly validDuration?: string;
}

/** The limit of the one quota `requestcountquota.instance.istio-system`. */
export interface QuotaLimit {
  readonly maxAmount: number;
  readonly validDuration: string;
  readonly overrides?: readonly QuotaOverride[];
}

/** The spec of a memquota handler with the quota `requestcountquota` limited as `limit` says. */
export function memquotaSpec(limit: QuotaLimit): string {
  const overrides = (limit.overrides ?? []).map((o) => [
    `- dimensions: { ${Object.entries(o.dimensions).map(([k, v]) => `${k}: ${v}`).join(', ')} }`,
    `  maxAmount: ${o.maxAmount}`,
    ...(o.validDuration !== undefined ? [`  validDuration: ${o.validDuration}`] : []),
  ].join('\n'));
  return [
    'compiledAdapter: memquota',
    'params:',
    '  quotas:',
    '  - name: requestcountquota.instance.istio-system',
    `    maxAmount: ${limit.maxAmount}`,
    `    validDuration: ${limit.validDuration}`,
    ...(overrides.length > 0 ? ['    overrides:', indent(overrides.join('\n'), 4)] : []),
  ].join('\n');
}

/** The dimensions most quota tests count by: the caller's version label and the destination host. */
export const VERSION_AND_DESTINATION: Expressions = {
  source: 'source.labels["version"] | "unknown"',
  destination: 'destination.service.host | "unknown"',
};

/**
 * Istio's request-count quota: a handler `quotahandler` with `handlerSpec`
 * (memquotaSpec(), or another quota adapter's spec), an instance
 * `requestcountquota` of `dimensions`, a rule `quota`, and a QuotaSpec
 * `request-count` charging 1 per request, bound to `service`
 * (default ratings in default).
 */
export function requestCountQuotaYaml(options: { readonly handlerSpec: string; readonly dimensions: Expressions; readonly service?: { readonly name: string; readonly namespace: string } }): string {
  const service = options.service ?? { name: 'ratings', namespace: 'default' };
  return configYaml(
    configObject('handler', 'quotahandler', options.handlerSpec),
    configObject('instance', 'requestcountquota', `compiledTemplate: quota\nparams:\n  dimensions:\n${indent(expressionLines(options.dimensions), 4)}`),
    ruleObject('quota', { actions: [['quotahandler', ['requestcountquota']]] }),
    configObject('QuotaSpec', 'request-count', 'rules:\n- quotas: [{ charge: 1, quota: requestcountquota }]'),
    configObject('QuotaSpecBinding', 'request-count', `quotaSpecs: [{ name: request-count, namespace: ${ISTIO_SYSTEM} }]\nservices: [{ name: ${service.name}, namespace: ${service.namespace} }]`),
  );
}

// --- telemetry -----------------------------------------------------------

/** The dimensions of the request counters: response code, destination service, source version, reporter. */
export const REQUEST_COUNT_DIMENSIONS: Expressions = {
  response_code: 'response.code | 0',
  destination_service: 'destination.service.host | "unknown"',
  source_version: 'source.labels["version"] | "unknown"',
  reporter: 'context.reporter.kind | "unknown"',
};

/**
 * A prometheus handler `handler` with one COUNTER `metric` (labels: the
 * dimensions' names), the metric instance `instance` (value 1, `dimensions`)
 * and a rule `rule` for what `match` selects.
 */
export function requestCounterYaml(options: { readonly handler: string; readonly metric: string; readonly instance: string; readonly rule: string; readonly dimensions: Expressions; readonly match?: string }): string {
  return configYaml(
    configObject('handler', options.handler, [
      'compiledAdapter: prometheus',
      'params:',
      '  metrics:',
      `  - name: ${options.metric}`,
      `    instanceName: ${options.instance}.${ISTIO_SYSTEM}`,
      '    kind: COUNTER',
      `    labelNames: [${Object.keys(options.dimensions).join(', ')}]`,
    ].join('\n')),
    configObject('instance', options.instance, `compiledTemplate: metric\nparams:\n  value: "1"\n  dimensions:\n${indent(expressionLines(options.dimensions), 4)}`),
    ruleObject(options.rule, { ...(options.match !== undefined ? { match: options.match } : {}), actions: [[options.handler, [options.instance]]] }),
  );
}

/** Istio 1.4's TCP metric dimensions (its default telemetry config), fewer of them. */
export const TCP_DIMENSIONS: Expressions = {
  destination_service: 'destination.service.host | "unknown"',
  destination_app: 'destination.labels["app"] | "unknown"',
  source_principal: 'source.principal | "unknown"',
  reporter: 'context.reporter.kind | "unknown"',
  security: 'conditional((connection.mtls | false), "mutual_tls", "none")',
};

/**
 * Istio 1.4's TCP metrics on a prometheus handler `prom`: tcp_sent_bytes_total,
 * tcp_received_bytes_total (connection.sent/received.bytes of every report),
 * tcp_connections_opened_total and tcp_connections_closed_total
 * (connection.event open / close), with TCP_DIMENSIONS.
 */
export function tcpMetricsYaml(): string {
  const metrics: Array<[metric: string, instance: string, value: string]> = [
    ['tcp_sent_bytes_total', 'tcpbytesent', 'connection.sent.bytes | 0'],
    ['tcp_received_bytes_total', 'tcpbytereceived', 'connection.received.bytes | 0'],
    ['tcp_connections_opened_total', 'tcpconnectionsopened', '"1"'],
    ['tcp_connections_closed_total', 'tcpconnectionsclosed', '"1"'],
  ];
  const labels = Object.keys(TCP_DIMENSIONS).join(', ');
  const tcp = 'context.protocol == "tcp"';
  return configYaml(
    configObject('handler', 'prom', ['compiledAdapter: prometheus', 'params:', '  metrics:', ...metrics.map(([m, i]) => `  - { name: ${m}, instanceName: ${i}.${ISTIO_SYSTEM}, kind: COUNTER, labelNames: [${labels}] }`)].join('\n')),
    ...metrics.map(([, i, value]) => configObject('instance', i, `compiledTemplate: metric\nparams:\n  value: ${value}\n  dimensions:\n${indent(expressionLines(TCP_DIMENSIONS), 4)}`)),
    ruleObject('tcpbytes', { match: tcp, actions: [['prom', ['tcpbytesent', 'tcpbytereceived']]] }),
    ruleObject('tcpopen', { match: `${tcp} && ((connection.event | "na") == "open")`, actions: [['prom', ['tcpconnectionsopened']]] }),
    ruleObject('tcpclose', { match: `${tcp} && ((connection.event | "na") == "close")`, actions: [['prom', ['tcpconnectionsclosed']]] }),
  );
}

/** The value of `istio_<metric>` in a Prometheus text for the series whose labels include every one of `labels`. */
export function seriesValue(text: string, metric: string, labels: readonly string[]): number | undefined {
  for (const m of text.matchAll(new RegExp(`^istio_${metric}\\{([^}]*)\\} (\\d+)`, 'gm'))) if (labels.every((l) => m[1].includes(l))) return Number(m[2]);
  return undefined;
}

// --- policy --------------------------------------------------------------

/**
 * A listchecker handler `handler` (its params as a flow mapping), a
 * listentry instance `instance` of `value` and a rule `rule` for what
 * `match` selects.
 */
export function listcheckerYaml(options: { readonly handler: string; readonly params: string; readonly instance: string; readonly value: string; readonly rule: string; readonly match?: string }): string {
  return configYaml(
    configObject('handler', options.handler, `compiledAdapter: listchecker\nparams: ${options.params}`),
    configObject('instance', options.instance, `{ compiledTemplate: listentry, params: { value: ${options.value} } }`),
    ruleObject(options.rule, { ...(options.match !== undefined ? { match: options.match } : {}), actions: [[options.handler, [options.instance]]] }),
  );
}

/** The source version whitelist: handler `versions` admitting v1 and v2, rule `checkversion`, for what `match` selects. */
export function versionWhitelistYaml(options: { readonly instance: string; readonly match?: string }): string {
  return listcheckerYaml({ handler: 'versions', params: '{ overrides: [v1, v2], blacklist: false }', instance: options.instance, value: '\'source.labels["version"] | "none"\'', rule: 'checkversion', ...(options.match !== undefined ? { match: options.match } : {}) });
}

/**
 * A denier handler `denyv3` answering `status` (a flow mapping) with the
 * given cache validity, a checknothing instance `denyrequest` and a rule
 * `rule` for what `match` selects; `ruleExtra` are more lines of the rule's
 * spec.
 */
export function denyV3Yaml(options: { readonly status: string; readonly validDuration?: string; readonly validUseCount?: number; readonly rule: string; readonly match: string; readonly ruleExtra?: string }): string {
  const params = [
    `status: ${options.status}`,
    ...(options.validDuration !== undefined ? [`validDuration: ${options.validDuration}`] : []),
    ...(options.validUseCount !== undefined ? [`validUseCount: ${options.validUseCount}`] : []),
  ];
  return configYaml(
    configObject('handler', 'denyv3', `compiledAdapter: denier\nparams:\n${indent(params.join('\n'), 2)}`),
    configObject('instance', 'denyrequest', '{ compiledTemplate: checknothing }'),
    ruleObject(options.rule, { match: options.match, actions: [['denyv3', ['denyrequest']]], ...(options.ruleExtra !== undefined ? { extra: options.ruleExtra } : {}) }),
  );
}
