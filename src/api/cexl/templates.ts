// Mixer's compiled-in templates as shapes: which params an instance of each
// template takes, which of them are expressions and of what type. Shared by
// config validation (src/api) and Mixer's instance builders (src/mixer).

import type { CompiledExpression, CompileOptions, ExprType } from './compiler.ts';
import { assignable, compileExpression } from './compiler.ts';
import type { AttributeVocabulary } from './vocabulary.ts';

/** One field of a template: an expression of a type, a map of named expressions, or a nested message. */
export type TemplateField =
  | { readonly kind: 'expr'; readonly type: ExprType; readonly required?: boolean }
  | { readonly kind: 'exprMap'; readonly type: ExprType }
  | { readonly kind: 'object'; readonly fields: Readonly<Record<string, TemplateField>> };

/** When a template's instances are dispatched: on Check, on Report, or on Quota. */
export type TemplateVariety = 'check' | 'report' | 'quota';

export interface TemplateShape {
  readonly name: string;
  readonly variety: TemplateVariety;
  readonly fields: Readonly<Record<string, TemplateField>>;
}

const expr = (type: ExprType, required = false): TemplateField => ({ kind: 'expr', type, required });
const exprMap = (type: ExprType = 'ANY'): TemplateField => ({ kind: 'exprMap', type });

/** Istio's templates (mixer/template/*), by the name `compiledTemplate` uses. */
export const TEMPLATES: Readonly<Record<string, TemplateShape>> = Object.freeze({
  metric: { name: 'metric', variety: 'report', fields: { value: expr('ANY', true), dimensions: exprMap(), monitoredResourceType: expr('STRING'), monitoredResourceDimensions: exprMap() } },
  logentry: {
    name: 'logentry',
    variety: 'report',
    fields: { variables: exprMap(), timestamp: expr('TIMESTAMP'), severity: expr('STRING'), monitoredResourceType: expr('STRING'), monitoredResourceDimensions: exprMap() },
  },
  tracespan: {
    name: 'tracespan',
    variety: 'report',
    fields: {
      traceId: expr('STRING', true), spanId: expr('STRING', true), parentSpanId: expr('STRING'), spanName: expr('STRING', true),
      startTime: expr('TIMESTAMP', true), endTime: expr('TIMESTAMP', true), spanTags: exprMap(), httpStatusCode: expr('INT64'),
      clientSpan: expr('BOOL'), rewriteClientSpanId: expr('BOOL'), sourceName: expr('STRING'), sourceIp: expr('IP_ADDRESS'),
      destinationName: expr('STRING'), destinationIp: expr('IP_ADDRESS'), requestSize: expr('INT64'), requestTotalSize: expr('INT64'),
      responseSize: expr('INT64'), responseTotalSize: expr('INT64'), apiProtocol: expr('STRING'),
    },
  },
  reportnothing: { name: 'reportnothing', variety: 'report', fields: {} },
  checknothing: { name: 'checknothing', variety: 'check', fields: {} },
  listentry: { name: 'listentry', variety: 'check', fields: { value: expr('ANY', true) } },
  authorization: {
    name: 'authorization',
    variety: 'check',
    fields: {
      subject: { kind: 'object', fields: { user: expr('STRING'), groups: expr('STRING'), properties: exprMap() } },
      action: { kind: 'object', fields: { namespace: expr('STRING'), service: expr('STRING'), method: expr('STRING'), path: expr('STRING'), properties: exprMap() } },
    },
  },
  quota: { name: 'quota', variety: 'quota', fields: { dimensions: exprMap() } },
} satisfies Record<string, TemplateShape>);

/** The compiled params of an instance, mirroring its template's fields. */
export type CompiledParams = { readonly [field: string]: CompiledExpression | ReadonlyMap<string, CompiledExpression> | CompiledParams };

/** One problem in an instance's params, at a path relative to `params` (`dimensions.source`). */
export interface ParamProblem {
  readonly path: readonly (string | number)[];
  readonly message: string;
  readonly severity: 'error' | 'warning';
}

/** `monitored_resource_type` and `monitoredResourceType` are the same field (proto JSON takes both). */
function camel(key: string): string {
  return key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

/**
 * Compiles an instance's params against its template. Contract: reports
 * every problem (unknown field, missing required field, bad or mistyped
 * expression) with its path; the params are usable only when no problem is
 * an error.
 */
export function compileInstanceParams(
  template: TemplateShape,
  params: Readonly<Record<string, unknown>>,
  vocabulary: AttributeVocabulary,
  options: CompileOptions = {},
): { params: CompiledParams; problems: ParamProblem[] } {
  const problems: ParamProblem[] = [];
  const compiled = compileObject(template.fields, params, [], vocabulary, options, problems);
  return { params: compiled, problems };
}

function compileObject(
  fields: Readonly<Record<string, TemplateField>>,
  params: Readonly<Record<string, unknown>>,
  path: (string | number)[],
  vocabulary: AttributeVocabulary,
  options: CompileOptions,
  problems: ParamProblem[],
): CompiledParams {
  const out: Record<string, CompiledExpression | ReadonlyMap<string, CompiledExpression> | CompiledParams> = {};
  const seen = new Set<string>();
  for (const [rawKey, value] of Object.entries(params)) {
    const key = camel(rawKey);
    const field = fields[key];
    const at = [...path, rawKey];
    if (!field) {
      problems.push({ path: at, severity: 'error', message: `unknown field "${rawKey}": the template takes ${Object.keys(fields).join(', ') || 'no params'}` });
      continue;
    }
    seen.add(key);
    if (field.kind === 'expr') {
      const e = compileField(value, field.type, at, vocabulary, options, problems);
      if (e) out[key] = e;
    } else if (field.kind === 'exprMap') {
      if (!isRecord(value)) {
        problems.push({ path: at, severity: 'error', message: 'must be a map of names to expressions' });
        continue;
      }
      const map = new Map<string, CompiledExpression>();
      for (const [name, text] of Object.entries(value)) {
        const e = compileField(text, field.type, [...at, name], vocabulary, options, problems);
        if (e) map.set(name, e);
      }
      out[key] = map;
    } else {
      if (!isRecord(value)) {
        problems.push({ path: at, severity: 'error', message: 'must be an object' });
        continue;
      }
      out[key] = compileObject(field.fields, value, at, vocabulary, options, problems);
    }
  }
  for (const [key, field] of Object.entries(fields)) {
    if (field.kind === 'expr' && field.required && !seen.has(key)) problems.push({ path: [...path, key], severity: 'error', message: `${key} is required` });
  }
  return out;
}

function compileField(
  value: unknown,
  type: ExprType,
  path: (string | number)[],
  vocabulary: AttributeVocabulary,
  options: CompileOptions,
  problems: ParamProblem[],
): CompiledExpression | undefined {
  // YAML may give a bare number or boolean where an expression literal was meant.
  const text = typeof value === 'number' || typeof value === 'boolean' ? String(value) : value;
  if (typeof text !== 'string') {
    problems.push({ path, severity: 'error', message: 'must be an expression (a string)' });
    return undefined;
  }
  const result = compileExpression(text, vocabulary, options);
  for (const w of result.warnings) problems.push({ path, severity: 'warning', message: w });
  for (const e of result.errors) problems.push({ path, severity: 'error', message: `invalid expression "${text}": ${e}` });
  const e = result.expression;
  if (e && !assignable(type, e.type)) {
    problems.push({ path, severity: 'error', message: `expression "${text}" is ${e.type}, the field needs ${type}` });
    return undefined;
  }
  return e;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
