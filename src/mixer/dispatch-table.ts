// The dispatch table: every handler, instance, rule and QuotaSpec of one
// config snapshot, compiled (adapters built, expressions typed and compiled,
// references resolved) into an immutable object the data path reads. A new
// table is built per snapshot and swapped in whole; a snapshot with any
// unusable object yields problems instead of a table, and the caller keeps
// the last good one.

import type { AttributeValue, AttributeVocabulary, CompiledExpression, CompiledParams, ConfigObject, TemplateShape, ValueType } from '../api/index.ts';
import { AttributeVocabulary as Vocabulary, TEMPLATES, compileExpression, compileInstanceParams } from '../api/index.ts';
import type { ConfigSnapshot } from '../galley/index.ts';
import type { AdapterEnv, AdapterInfo, Handler, Instance, InstanceField, InstanceFieldTypes, InstanceValue } from './adapters/adapter.ts';
import type { AttributeBag } from './attribute-bag.ts';
import { MixerErrorCode } from './errors.ts';
import type { AdapterConnectionSpec, AdapterSpec, OutOfProcessOptions } from './out-of-process/index.ts';
import { outOfProcessAdapter, sharedAdapterConnections } from './out-of-process/index.ts';

/** Istio type URLs (as Galley's snapshots key them) of the kinds Mixer reads. */
export const POLICY_TYPE_URLS = {
  handler: 'config.istio.io/v1alpha2/handler',
  adapter: 'config.istio.io/v1alpha2/adapter',
  instance: 'config.istio.io/v1alpha2/instance',
  rule: 'config.istio.io/v1alpha2/rule',
  attributemanifest: 'config.istio.io/v1alpha2/attributemanifest',
  quotaSpec: 'config.istio.io/v1alpha2/QuotaSpec',
  quotaSpecBinding: 'config.istio.io/v1alpha2/QuotaSpecBinding',
} as const;

/** One problem with one object of a snapshot. */
export interface ConfigProblem {
  /** MESH_ERR_MIXER_CONFIG, or the more specific UNKNOWN_ADAPTER / ADAPTER_PARAMS. */
  readonly code: string;
  /** `handler denyall.istio-system` */
  readonly object: string;
  readonly path: string;
  readonly message: string;
}

export interface HandlerEntry {
  readonly name: string;
  readonly adapter: AdapterInfo<any>;
  readonly handler: Handler;
  /** Identity of the built handler's config: the same key reuses the handler across tables. */
  readonly key: string;
}

export interface InstanceEntry {
  readonly name: string;
  readonly template: TemplateShape;
  readonly params: CompiledParams;
  /** The params' static types, handed to adapters with every instance. */
  readonly types: InstanceFieldTypes;
}

export interface HeaderOperation {
  readonly name: string;
  readonly values: readonly CompiledExpression[];
  readonly operation: 'REPLACE' | 'REMOVE' | 'APPEND';
}

export interface RuleEntry {
  readonly name: string;
  readonly namespace: string;
  readonly match: CompiledExpression | undefined;
  readonly actions: readonly { readonly handler: HandlerEntry; readonly instances: readonly InstanceEntry[] }[];
  readonly requestHeaderOperations: readonly HeaderOperation[];
  readonly responseHeaderOperations: readonly HeaderOperation[];
}

export interface QuotaRule {
  readonly clauses: readonly { readonly attribute: string; readonly test: (value: string) => boolean }[][];
  readonly quotas: readonly { readonly quota: string; readonly charge: number }[];
}

export interface QuotaBinding {
  /** Matches a service by destination.service.host, or `*`. */
  readonly host: string;
  readonly rules: readonly QuotaRule[];
}

/**
 * One snapshot's compiled config. Contract: immutable; `referencedAttributes`
 * lists every attribute a check's outcome may depend on (for the proxy's
 * check cache key).
 */
export interface DispatchTable {
  readonly version: number;
  readonly vocabulary: AttributeVocabulary;
  readonly handlers: ReadonlyMap<string, HandlerEntry>;
  readonly instances: ReadonlyMap<string, InstanceEntry>;
  readonly rules: readonly RuleEntry[];
  readonly quotaBindings: readonly QuotaBinding[];
  readonly referencedAttributes: readonly string[];
  readonly rootNamespace: string;
}

export interface BuildOptions {
  readonly adapters: ReadonlyMap<string, AdapterInfo<any>>;
  /** The namespace whose rules apply to every request (Istio's config root). */
  readonly rootNamespace: string;
  readonly baseVocabulary?: AttributeVocabulary;
  /** Handlers of the previous table, by key, to reuse instead of rebuilding. */
  readonly previous?: DispatchTable;
  readonly env: (handlerName: string) => AdapterEnv;
  /** Connections and limits of out-of-process adapters; the process-wide pool by default. */
  readonly outOfProcess?: OutOfProcessOptions;
}

export type BuildResult = { readonly table: DispatchTable; readonly problems: readonly [] } | { readonly table?: undefined; readonly problems: readonly ConfigProblem[] };

const qualified = (obj: ConfigObject): string => `${obj.metadata.name}.${obj.metadata.namespace ?? 'default'}`;

/** `name`, `name.namespace` or `name.kind.namespace` relative to `namespace`, as `name.namespace`. */
export function resolveRef(ref: string, namespace: string): string {
  const parts = ref.split('.');
  if (parts.length === 1) return `${ref}.${namespace}`;
  if (parts.length === 3) return `${parts[0]}.${parts[2]}`;
  return ref;
}

/** Builds the table of `snapshot`. Handlers built here and not kept are closed on failure. */
export function buildDispatchTable(snapshot: ConfigSnapshot, options: BuildOptions): BuildResult {
  const problems: ConfigProblem[] = [];
  const problem = (kind: string, obj: ConfigObject, path: string, message: string, code: string = MixerErrorCode.CONFIG): void => {
    problems.push({ code, object: `${kind} ${qualified(obj)}`, path, message });
  };

  // 1. The vocabulary: Istio's plus every attributemanifest.
  let vocabulary = options.baseVocabulary ?? Vocabulary.builtin();
  for (const obj of snapshot.objects(POLICY_TYPE_URLS.attributemanifest)) {
    const attrs = ((obj.spec as { attributes?: Record<string, { valueType: ValueType }> }).attributes) ?? {};
    const { vocabulary: next, conflicts } = vocabulary.extend(Object.entries(attrs).map(([k, v]) => [k, v.valueType] as const));
    for (const c of conflicts) problem('attributemanifest', obj, 'spec.attributes', `conflicting attribute type ${c}`);
    vocabulary = next;
  }

  // 2. Handlers: adapter found, params valid, handler built (or reused).
  const previousByKey = new Map<string, HandlerEntry>();
  for (const h of options.previous?.handlers.values() ?? []) previousByKey.set(h.key, h);
  const handlers = new Map<string, HandlerEntry>();
  const built: Handler[] = [];
  const adapterObjects = new Map<string, ConfigObject>();
  for (const obj of snapshot.objects(POLICY_TYPE_URLS.adapter)) {
    if (options.adapters.has(obj.metadata.name)) problem('adapter', obj, 'metadata.name', `an adapter object may not take the name of the built-in adapter "${obj.metadata.name}"; rename it`);
    else adapterObjects.set(qualified(obj), obj);
  }
  for (const obj of snapshot.objects(POLICY_TYPE_URLS.handler)) {
    const spec = obj.spec as { compiledAdapter?: string; adapter?: string; params?: Record<string, unknown>; connection?: AdapterConnectionSpec };
    const found = resolveAdapter(obj, spec, adapterObjects, options, problem);
    if (!found) continue;
    const { adapter, identity } = found;
    const { params, errors } = adapter.validate(spec.params ?? {});
    for (const e of errors) problem('handler', obj, `spec.params.${e.path}`, e.message, MixerErrorCode.ADAPTER_PARAMS);
    if (!params) continue;
    const name = qualified(obj);
    const key = `${name}\u0000${identity}\u0000${JSON.stringify(params)}`;
    const reused = previousByKey.get(key);
    if (reused) {
      handlers.set(name, reused);
      continue;
    }
    try {
      const handler = adapter.build(params, options.env(name));
      built.push(handler);
      handlers.set(name, { name, adapter, handler, key });
    } catch (err) {
      problem('handler', obj, 'spec.params', `the ${adapter.name} adapter could not build a handler: ${(err as Error).message}`);
    }
  }

  // 3. Instances: template known, params compiled against the vocabulary.
  const instances = new Map<string, InstanceEntry>();
  for (const obj of snapshot.objects(POLICY_TYPE_URLS.instance)) {
    const spec = obj.spec as { compiledTemplate?: string; template?: string; params?: Record<string, unknown> };
    // `template: metric` (how Istio's out-of-process adapter samples name a
    // template) means the same template when it is one of the compiled-in ones.
    const template = TEMPLATES[spec.compiledTemplate ?? spec.template ?? ''];
    if (!template) {
      problem('instance', obj, spec.compiledTemplate ? 'spec.compiledTemplate' : 'spec.template', spec.compiledTemplate ? `unknown template "${spec.compiledTemplate}"` : `template "${spec.template ?? ''}" is not one of the templates Mixer has (${Object.keys(TEMPLATES).join(', ')}); template objects are not supported`);
      continue;
    }
    const compiled = compileInstanceParams(template, spec.params ?? {}, vocabulary);
    const errors = compiled.problems.filter((p) => p.severity === 'error');
    for (const p of errors) problem('instance', obj, ['spec.params', ...p.path].join('.'), p.message);
    if (errors.length === 0) instances.set(qualified(obj), { name: qualified(obj), template, params: compiled.params, types: typesOf(compiled.params) });
  }

  // 4. Rules: match typed BOOL, references resolved, templates supported by the handler.
  const rules: RuleEntry[] = [];
  const referenced = new Set<string>();
  for (const obj of snapshot.objects(POLICY_TYPE_URLS.rule)) {
    const ns = obj.metadata.namespace ?? 'default';
    const spec = obj.spec as {
      match?: string;
      actions?: { handler: string; instances?: string[] }[];
      requestHeaderOperations?: { name: string; values?: string[]; operation?: HeaderOperation['operation'] }[];
      responseHeaderOperations?: { name: string; values?: string[]; operation?: HeaderOperation['operation'] }[];
    };
    let ok = true;
    let match: CompiledExpression | undefined;
    if (spec.match !== undefined && spec.match.trim() !== '') {
      const result = compileExpression(spec.match, vocabulary);
      for (const e of result.errors) problem('rule', obj, 'spec.match', e);
      if (result.expression && result.expression.type !== 'BOOL') problem('rule', obj, 'spec.match', `match is ${result.expression.type}, it must be BOOL`);
      if (!result.expression || result.expression.type !== 'BOOL') ok = false;
      match = result.expression;
    }
    const actions: RuleEntry['actions'][number][] = [];
    (spec.actions ?? []).forEach((a, i) => {
      const handler = handlers.get(resolveRef(a.handler, ns));
      if (!handler) {
        problem('rule', obj, `spec.actions[${i}].handler`, `handler "${a.handler}" not found (or not usable)`);
        ok = false;
        return;
      }
      const list: InstanceEntry[] = [];
      (a.instances ?? []).forEach((ref, j) => {
        const inst = instances.get(resolveRef(ref, ns));
        if (!inst) {
          problem('rule', obj, `spec.actions[${i}].instances[${j}]`, `instance "${ref}" not found (or not usable)`);
          ok = false;
        } else if (!handler.adapter.templates.includes(inst.template.name)) {
          problem('rule', obj, `spec.actions[${i}].instances[${j}]`, `handler ${handler.name} (${handler.adapter.name}) does not handle template ${inst.template.name}`);
          ok = false;
        } else list.push(inst);
      });
      actions.push({ handler, instances: list });
    });
    const headerOps = (field: 'requestHeaderOperations' | 'responseHeaderOperations'): HeaderOperation[] =>
      (spec[field] ?? []).map((op, i) => ({
        name: op.name,
        operation: op.operation ?? 'REPLACE',
        values: (op.values ?? []).flatMap((v, j) => {
          const result = compileExpression(v, vocabulary);
          for (const e of result.errors) problem('rule', obj, `spec.${field}[${i}].values[${j}]`, e);
          if (!result.expression) ok = false;
          return result.expression ? [result.expression] : [];
        }),
      }));
    const requestHeaderOperations = headerOps('requestHeaderOperations');
    const responseHeaderOperations = headerOps('responseHeaderOperations');
    if (!ok) continue;
    // Only what can change a check's answer belongs in the proxy's cache key.
    const checks = actions.some((a) => a.instances.some((i) => i.template.variety === 'check'));
    if (checks || requestHeaderOperations.length > 0 || responseHeaderOperations.length > 0) {
      for (const a of match?.attributes ?? []) referenced.add(a);
      for (const op of [...requestHeaderOperations, ...responseHeaderOperations]) for (const v of op.values) for (const a of v.attributes) referenced.add(a);
    }
    for (const action of actions) {
      for (const inst of action.instances) if (inst.template.variety === 'check') collectAttributes(inst.params, referenced);
    }
    rules.push({ name: qualified(obj), namespace: ns, match, actions, requestHeaderOperations, responseHeaderOperations });
  }

  // 5. QuotaSpecs bound to services.
  const specs = new Map<string, QuotaRule[]>();
  for (const obj of snapshot.objects(POLICY_TYPE_URLS.quotaSpec)) {
    const spec = obj.spec as { rules?: { match?: { clause?: Record<string, { exact?: string; prefix?: string; regex?: string }> }[]; quotas?: { quota: string; charge?: number }[] }[] };
    specs.set(qualified(obj), (spec.rules ?? []).map((r) => ({
      clauses: (r.match ?? []).map((m) => Object.entries(m.clause ?? {}).map(([attribute, sm]) => ({ attribute, test: stringMatcher(sm) }))),
      quotas: (r.quotas ?? []).map((q) => ({ quota: resolveRef(q.quota, obj.metadata.namespace ?? 'default'), charge: q.charge ?? 1 })),
    })));
  }
  const quotaBindings: QuotaBinding[] = [];
  for (const obj of snapshot.objects(POLICY_TYPE_URLS.quotaSpecBinding)) {
    const ns = obj.metadata.namespace ?? 'default';
    const spec = obj.spec as { services?: { name?: string; namespace?: string; domain?: string; service?: string }[]; quotaSpecs?: { name: string; namespace?: string }[] };
    const bound: QuotaRule[] = [];
    (spec.quotaSpecs ?? []).forEach((q, i) => {
      const found = specs.get(`${q.name}.${q.namespace ?? ns}`);
      if (!found) problem('QuotaSpecBinding', obj, `spec.quotaSpecs[${i}]`, `QuotaSpec ${q.name}.${q.namespace ?? ns} not found`);
      else bound.push(...found);
    });
    for (const s of spec.services ?? []) {
      const host = s.service ? s.service : `${s.name}.${s.namespace ?? ns}.svc.${s.domain ?? 'cluster.local'}`;
      quotaBindings.push({ host, rules: bound });
    }
  }

  if (problems.length > 0) {
    // Handlers built for a table that will not be used are closed now.
    for (const h of built) void Promise.resolve().then(() => h.close()).catch(() => undefined);
    return { problems };
  }
  const table: DispatchTable = Object.freeze({
    version: snapshot.version,
    vocabulary,
    handlers,
    instances,
    rules,
    quotaBindings,
    referencedAttributes: Object.freeze([...referenced].sort()),
    rootNamespace: options.rootNamespace,
  });
  return { table, problems: [] };
}

/**
 * The adapter of a handler: a compiled-in one by `compiledAdapter`, or an
 * out-of-process one from the `adapter` object named by `adapter` (looked up
 * in the handler's namespace, then the root namespace, as Istio did) and the
 * handler's `connection`. `identity` keys handler reuse across tables.
 */
function resolveAdapter(
  obj: ConfigObject,
  spec: { compiledAdapter?: string; adapter?: string; connection?: AdapterConnectionSpec },
  adapterObjects: ReadonlyMap<string, ConfigObject>,
  options: BuildOptions,
  problem: (kind: string, obj: ConfigObject, path: string, message: string, code?: string) => void,
): { adapter: AdapterInfo<any>; identity: string } | undefined {
  if (spec.compiledAdapter || !spec.adapter) {
    const name = spec.compiledAdapter ?? '';
    const adapter = options.adapters.get(name);
    if (!adapter) problem('handler', obj, 'spec.compiledAdapter', `unknown adapter "${name}": known are ${[...options.adapters.keys()].join(', ')}`, MixerErrorCode.UNKNOWN_ADAPTER);
    return adapter && { adapter, identity: name };
  }
  const ns = obj.metadata.namespace ?? 'default';
  const adapterObj = adapterObjects.get(resolveRef(spec.adapter, ns)) ?? adapterObjects.get(resolveRef(spec.adapter, options.rootNamespace));
  if (!adapterObj) {
    problem('handler', obj, 'spec.adapter', `adapter "${spec.adapter}" not found: an out-of-process handler needs an adapter object (config.istio.io/v1alpha2 adapter) declaring its templates, in namespace ${ns} or ${options.rootNamespace}`, MixerErrorCode.UNKNOWN_ADAPTER);
    return undefined;
  }
  if (!spec.connection?.address) {
    problem('handler', obj, 'spec.connection.address', 'an out-of-process adapter needs connection.address (host:port)');
    return undefined;
  }
  const adapterSpec = adapterObj.spec as AdapterSpec;
  try {
    const adapter = outOfProcessAdapter(adapterObj.metadata.name, adapterSpec, spec.connection, options.outOfProcess ?? { connections: sharedAdapterConnections });
    return { adapter, identity: JSON.stringify([qualified(adapterObj), adapterSpec, spec.connection]) };
  } catch (err) {
    // The message starts with the adapter's field (`config: ...`, `templates: ...`).
    const [field, ...rest] = (err as Error).message.split(': ');
    problem('adapter', adapterObj, `spec.${field}`, `${rest.join(': ')} (used by handler ${qualified(obj)})`);
    return undefined;
  }
}

/** The static types of compiled params, in the same shape (maps as objects keyed by entry name). */
function typesOf(params: CompiledParams): InstanceFieldTypes {
  const out: Record<string, string | InstanceFieldTypes> = {};
  for (const [k, v] of Object.entries(params)) {
    if (v instanceof Map) out[k] = Object.fromEntries([...(v as ReadonlyMap<string, CompiledExpression>)].map(([name, e]) => [name, e.type]));
    else if (isCompiled(v)) out[k] = v.type;
    else out[k] = typesOf(v as CompiledParams);
  }
  return out;
}

function collectAttributes(params: CompiledParams, into: Set<string>): void {
  for (const v of Object.values(params)) {
    if (v instanceof Map) for (const e of v.values()) for (const a of (e as CompiledExpression).attributes) into.add(a);
    else if (isCompiled(v)) for (const a of v.attributes) into.add(a);
    else collectAttributes(v as CompiledParams, into);
  }
}

function isCompiled(v: unknown): v is CompiledExpression {
  return typeof (v as CompiledExpression).evaluate === 'function';
}

function stringMatcher(sm: { exact?: string; prefix?: string; regex?: string }): (value: string) => boolean {
  if (sm.exact !== undefined) return (v) => v === sm.exact;
  if (sm.prefix !== undefined) return (v) => v.startsWith(sm.prefix!);
  const re = new RegExp(`^(?:${sm.regex ?? ''})$`);
  return (v) => re.test(v);
}

/** Evaluates an instance's compiled params against a bag; absent values are left out. */
export function buildInstance(entry: InstanceEntry, bag: AttributeBag): Instance {
  return { name: entry.name, template: entry.template.name, fields: evaluateParams(entry.params, bag), types: entry.types };
}

function evaluateParams(params: CompiledParams, bag: AttributeBag): InstanceValue {
  const out: Record<string, InstanceField> = {};
  // Once per instance per reported request: for-in, not Object.entries' arrays.
  for (const k in params) {
    const v = params[k]!;
    if (v instanceof Map) {
      const m = new Map<string, AttributeValue>();
      for (const [name, e] of v as ReadonlyMap<string, CompiledExpression>) {
        const value = e.evaluate(bag);
        if (value !== undefined) m.set(name, value);
      }
      out[k] = m;
    } else if (isCompiled(v)) {
      const value = v.evaluate(bag);
      if (value !== undefined) out[k] = value;
    } else out[k] = evaluateParams(v as CompiledParams, bag);
  }
  return out;
}

/** Whether a rule applies to a request: rules in the root namespace always, others for their own namespace's destinations. */
export function ruleApplies(rule: RuleEntry, rootNamespace: string, bag: AttributeBag): boolean {
  if (rule.namespace !== rootNamespace) {
    const ns = bag.get('destination.namespace') ?? bag.get('destination.service.namespace');
    if (ns !== rule.namespace) return false;
  }
  return rule.match === undefined || rule.match.evaluate(bag) === true;
}
