// CEXL, Mixer's expression language: CEL syntax (parsed by @bufbuild/cel)
// plus Istio's `a | b` default operator and functions (match, ip, timestamp,
// email, dnsName, uri, conditional, startsWith, endsWith, matches,
// emptyStringMap, toLower, size, reverse). Expressions are type-checked
// against an attribute vocabulary once, at config time, and compiled into
// closures that evaluate a bag without parsing or allocating much.
//
// Why not CEL's own checker and planner: @bufbuild/cel does not export its
// checker, and Mixer's semantics differ from CEL's in ways that matter here:
// attributes may be absent (absence flows up until a `|` supplies a default,
// and a match that meets it is false), IP/email/URI/DNS types are distinct
// from strings for the checker, and `"re".matches(s)` takes the pattern as
// the receiver as Istio did. So CEL's parser gives the syntax tree and this
// module types and compiles it.
//
// The `|` operator: CEL has no `|`. It sits at Go's additive precedence
// (CEXL was parsed with Go's grammar), so each lone `|` is rewritten to
// `+ __cexl_or__ +` before parsing; `(a + __cexl_or__) + b` in the tree is
// then read back as default(a, b). Being left-associative at the additive
// level, `a | b + c` is `(a | b) + c` and `a + b | c` is `(a + b) | c`,
// exactly as in Istio.

import { isIP } from 'node:net';
import { parse } from '@bufbuild/cel';
import { RE2JS } from 're2js';
import { expressionSyntaxProblem } from '../kinds/policy/expression-syntax.ts';
import type { AttributeValue, AttributeVocabulary, ValueType } from './vocabulary.ts';
import { BUILTIN_ROOTS } from './vocabulary.ts';

/** What an expression reads: a bag of attributes. */
export interface AttributeSource {
  get(name: string): AttributeValue | undefined;
}

/** A type the checker works with: a value type, or ANY for names it could not type (lenient mode). */
export type ExprType = ValueType | 'ANY';

/**
 * A compiled expression. Contract: `evaluate` never throws on any bag; it
 * returns undefined when an attribute the result depends on is absent (and no
 * `|` supplied a default) or when a runtime conversion fails (`ip("x")`).
 */
export interface CompiledExpression {
  readonly text: string;
  readonly type: ExprType;
  /** Attribute names the expression reads (for check-cache keys). */
  readonly attributes: readonly string[];
  evaluate(bag: AttributeSource): AttributeValue | undefined;
}

export interface CompileOptions {
  /**
   * Unknown attributes under a root the built-in vocabulary does not use
   * (`myorg.tenant`) become warnings and type ANY instead of errors: per-object
   * validation cannot see the attributemanifests that may declare them.
   */
  readonly lenientUnknownRoots?: boolean;
}

export interface CompileResult {
  readonly expression?: CompiledExpression;
  readonly errors: readonly string[];
  readonly warnings: readonly string[];
}

type Fn = (bag: AttributeSource) => AttributeValue | undefined;
interface Node {
  readonly type: ExprType;
  readonly fn: Fn;
  /** Set when the node is a constant, so functions can pre-compute (regexes, ip literals). */
  readonly constant?: AttributeValue;
}

// Loose shapes of @bufbuild/cel's parsed Expr (protobuf-es messages).
interface Expr {
  readonly exprKind: { readonly case: string | undefined; readonly value?: any };
}

const OR_MARKER = '__cexl_or__';
const STRINGY: ReadonlySet<ExprType> = new Set(['STRING', 'EMAIL_ADDRESS', 'URI', 'DNS_NAME']);
const NUMERIC: ReadonlySet<ExprType> = new Set(['INT64', 'DOUBLE']);
const ORDERED: ReadonlySet<ExprType> = new Set(['INT64', 'DOUBLE', 'STRING', 'TIMESTAMP', 'DURATION']);

class CompileError extends Error {}

/** Compiles `text` against `vocabulary`. Every problem is returned, none thrown. */
export function compileExpression(text: string, vocabulary: AttributeVocabulary, options: CompileOptions = {}): CompileResult {
  const errors: string[] = [];
  const warnings: string[] = [];
  if (text.trim() === '') return { errors: ['expression may not be empty'], warnings };
  // The bracket/quote scanner names the problem better than a parser's list of expected tokens.
  const problem = expressionSyntaxProblem(text);
  if (problem) return { errors: [problem], warnings };
  let rewritten: string;
  try {
    rewritten = rewriteDefaultOperator(text);
  } catch (err) {
    return { errors: [(err as Error).message], warnings };
  }
  let root: Expr;
  try {
    root = parse(rewritten).expr as unknown as Expr;
  } catch (err) {
    return { errors: [`syntax error: ${syntaxMessage(err)}`], warnings };
  }
  const compiler = new ExpressionCompiler(vocabulary, options, errors, warnings);
  let node: Node | undefined;
  try {
    node = compiler.compile(root);
  } catch (err) {
    if (!(err instanceof CompileError)) throw err;
    errors.push(err.message);
  }
  if (errors.length > 0 || !node) return { errors, warnings };
  const fn = node.fn;
  const expression: CompiledExpression = Object.freeze({
    text,
    type: node.type,
    attributes: Object.freeze([...compiler.referenced].sort()),
    evaluate: (bag: AttributeSource) => {
      try {
        return fn(bag);
      } catch {
        return undefined;
      }
    },
  });
  return { expression, errors, warnings };
}

/** Compiles or throws an Error listing the problems; for built-in expressions known to be right. */
export function mustCompile(text: string, vocabulary: AttributeVocabulary): CompiledExpression {
  const result = compileExpression(text, vocabulary);
  if (!result.expression) throw new Error(`invalid expression "${text}": ${result.errors.join('; ')}`);
  return result.expression;
}

/** Whether a value of type `actual` may stand where `expected` is wanted. */
export function assignable(expected: ExprType, actual: ExprType): boolean {
  return expected === actual || expected === 'ANY' || actual === 'ANY' || (STRINGY.has(expected) && STRINGY.has(actual));
}

function syntaxMessage(err: unknown): string {
  const e = err as { rawMessage?: string; location?: { start?: { column?: number } }; message?: string };
  if (e.rawMessage) return `${e.rawMessage.replace(/ but expecting .*/, '')}${e.location?.start?.column ? ` (column ${e.location.start.column})` : ''}`;
  return String(e.message ?? err);
}

/** Replaces each lone `|` outside string literals with `+ __cexl_or__ +` (see the header). */
export function rewriteDefaultOperator(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === '"' || ch === "'") {
      const triple = text.startsWith(ch.repeat(3), i);
      const quote = triple ? ch.repeat(3) : ch;
      let j = i + quote.length;
      const raw = i > 0 && /[rR]/.test(text[i - 1]!);
      while (j < text.length && !text.startsWith(quote, j)) j += text[j] === '\\' && !raw ? 2 : 1;
      if (j >= text.length) throw new Error(`syntax error: unterminated string starting at column ${i + 1}`);
      out += text.slice(i, j + quote.length);
      i = j + quote.length;
      continue;
    }
    if (ch === '|') {
      if (text[i + 1] === '|') {
        out += '||';
        i += 2;
        continue;
      }
      out += ` + ${OR_MARKER} + `;
      i++;
      continue;
    }
    out += ch;
    i++;
  }
  return out;
}

const OPERATOR_NAMES: Record<string, string> = {
  '_==_': '==', '_!=_': '!=', '_<_': '<', '_<=_': '<=', '_>_': '>', '_>=_': '>=', '_+_': '+', '_-_': '-', '_*_': '*', '_/_': '/', '_%_': '%',
  '_&&_': '&&', '_||_': '||', '!_': '!', '-_': '-', '_[_]': '[]', '_?_:_': '?:', '@in': 'in',
};

class ExpressionCompiler {
  readonly referenced = new Set<string>();
  private readonly vocabulary: AttributeVocabulary;
  private readonly options: CompileOptions;
  private readonly errors: string[];
  private readonly warnings: string[];

  constructor(vocabulary: AttributeVocabulary, options: CompileOptions, errors: string[], warnings: string[]) {
    this.vocabulary = vocabulary;
    this.options = options;
    this.errors = errors;
    this.warnings = warnings;
  }

  compile(expr: Expr): Node {
    const { case: kind, value } = expr.exprKind;
    switch (kind) {
      case 'constExpr':
        return this.constant(value);
      case 'identExpr':
      case 'selectExpr':
        return this.attribute(expr);
      case 'callExpr':
        return this.call(value);
      default:
        throw new CompileError(`unsupported expression (${kind ?? 'empty'}): CEXL has attributes, literals, operators and functions only`);
    }
  }

  private constant(value: { constantKind: { case: string; value: unknown } }): Node {
    const { case: kind, value: v } = value.constantKind;
    switch (kind) {
      case 'stringValue':
        return constantNode('STRING', v as string);
      case 'int64Value':
      case 'uint64Value':
        return constantNode('INT64', Number(v as bigint));
      case 'doubleValue':
        return constantNode('DOUBLE', v as number);
      case 'boolValue':
        return constantNode('BOOL', v as boolean);
      case 'bytesValue':
        return constantNode('BYTES', v as Uint8Array);
      default:
        throw new CompileError(`unsupported literal (${kind}): CEXL has no null`);
    }
  }

  /** `a.b.c`: the longest declared prefix is the attribute; one more word is a key of a STRING_MAP. */
  private attribute(expr: Expr): Node {
    const parts: string[] = [];
    let e: Expr = expr;
    while (e.exprKind.case === 'selectExpr') {
      if (e.exprKind.value.testOnly) throw new CompileError('has() is not supported: use `a | default` for absent attributes');
      parts.unshift(e.exprKind.value.field as string);
      e = e.exprKind.value.operand as Expr;
    }
    if (e.exprKind.case !== 'identExpr') throw new CompileError(`field selection ".${parts[0]}" on a computed value is not supported`);
    parts.unshift(e.exprKind.value.name as string);
    const full = parts.join('.');
    if (full === OR_MARKER) throw new CompileError('misplaced "|" operator');
    for (let n = parts.length; n >= 1; n--) {
      const name = parts.slice(0, n).join('.');
      const type = this.vocabulary.typeOf(name);
      if (type === undefined) continue;
      this.referenced.add(name);
      if (n === parts.length) return { type, fn: (bag) => bag.get(name) };
      if (type === 'STRING_MAP' && n === parts.length - 1) {
        const key = parts[n]!;
        return { type: 'STRING', fn: (bag) => (bag.get(name) as ReadonlyMap<string, string> | undefined)?.get(key) };
      }
      throw new CompileError(`unknown attribute "${full}": "${name}" is ${type} and has no field "${parts.slice(n).join('.')}"`);
    }
    if (this.options.lenientUnknownRoots && !BUILTIN_ROOTS.has(parts[0]!)) {
      this.warnings.push(`attribute "${full}" is not in the built-in vocabulary; it must be declared by an attributemanifest`);
      this.referenced.add(full);
      return { type: 'ANY', fn: (bag) => bag.get(full) };
    }
    throw new CompileError(`unknown attribute "${full}"${suggestion(full, this.vocabulary)}`);
  }

  private call(call: { function: string; target?: Expr; args: Expr[] }): Node {
    const name = call.function;
    // `(a + __cexl_or__) + b` is the rewritten `a | b`.
    if (name === '_+_') {
      const left = call.args[0]!;
      if (left.exprKind.case === 'callExpr' && left.exprKind.value.function === '_+_') {
        const marker = left.exprKind.value.args[1] as Expr;
        if (marker.exprKind.case === 'identExpr' && marker.exprKind.value.name === OR_MARKER) {
          return this.defaultOp(this.compile(left.exprKind.value.args[0] as Expr), this.compile(call.args[1]!));
        }
      }
    }
    if (name === '_&&_' || name === '_||_') return this.logical(name === '_&&_', call.args);
    if (name === '_?_:_') return this.conditional(call.args);
    const target = call.target ? this.compile(call.target) : undefined;
    const args = call.args.map((a) => this.compile(a));
    const op = OPERATOR_NAMES[name];
    if (op !== undefined) return this.operator(name, op, args);
    return callFunction(name, target, args);
  }

  private defaultOp(a: Node, bIn: Node): Node {
    const b = coerceLiteral(bIn, a.type);
    if (!assignable(a.type, b.type)) throw new CompileError(`operator "|" needs operands of one type, got ${a.type} and ${b.type}`);
    const fa = a.fn;
    const fb = b.fn;
    return { type: a.type === 'ANY' ? b.type : a.type, fn: (bag) => fa(bag) ?? fb(bag) };
  }

  private logical(and: boolean, exprs: Expr[]): Node {
    const [a, b] = exprs.map((e) => this.compile(e)) as [Node, Node];
    expectType(and ? '&&' : '||', 'BOOL', a);
    expectType(and ? '&&' : '||', 'BOOL', b);
    const fa = a.fn;
    const fb = b.fn;
    // CEL's commutative short-circuit: an absent side does not matter when the other decides.
    if (and) {
      return {
        type: 'BOOL',
        fn: (bag) => {
          const x = fa(bag);
          if (x === false) return false;
          const y = fb(bag);
          if (y === false) return false;
          return x === undefined || y === undefined ? undefined : true;
        },
      };
    }
    return {
      type: 'BOOL',
      fn: (bag) => {
        const x = fa(bag);
        if (x === true) return true;
        const y = fb(bag);
        if (y === true) return true;
        return x === undefined || y === undefined ? undefined : false;
      },
    };
  }

  private conditional(exprs: Expr[]): Node {
    const [c, a, b] = exprs.map((e) => this.compile(e)) as [Node, Node, Node];
    return conditionalNode('?:', c, a, b);
  }

  private operator(name: string, op: string, args: Node[]): Node {
    let [a, b] = args as [Node, Node];
    switch (name) {
      case '_==_':
      case '_!=_': {
        [a, b] = [coerceLiteral(a, b.type), coerceLiteral(b, a.type)];
        if (!assignable(a.type, b.type)) throw new CompileError(`operator "${op}" cannot compare ${a.type} with ${b.type}`);
        const eq = equalityOf(a.type === 'ANY' ? b.type : a.type);
        const neg = name === '_!=_';
        return strict2('BOOL', a, b, (x, y) => eq(x, y) !== neg);
      }
      case '_<_':
      case '_<=_':
      case '_>_':
      case '_>=_': {
        const numeric = NUMERIC.has(a.type) && NUMERIC.has(b.type);
        if (!numeric && (!assignable(a.type, b.type) || (!ORDERED.has(a.type) && a.type !== 'ANY'))) {
          throw new CompileError(`operator "${op}" cannot order ${a.type} and ${b.type}`);
        }
        const cmp = (x: AttributeValue, y: AttributeValue): number => {
          const p = x instanceof Date ? x.getTime() : (x as number | string);
          const q = y instanceof Date ? y.getTime() : (y as number | string);
          return p < q ? -1 : p > q ? 1 : 0;
        };
        const test = name === '_<_' ? (c: number) => c < 0 : name === '_<=_' ? (c: number) => c <= 0 : name === '_>_' ? (c: number) => c > 0 : (c: number) => c >= 0;
        return strict2('BOOL', a, b, (x, y) => test(cmp(x, y)));
      }
      case '_+_':
        if (STRINGY.has(a.type) && STRINGY.has(b.type)) return strict2('STRING', a, b, (x, y) => (x as string) + (y as string));
        if (a.type === 'DURATION' && b.type === 'DURATION') return strict2('DURATION', a, b, (x, y) => (x as number) + (y as number));
        if (a.type === 'TIMESTAMP' && b.type === 'DURATION') return strict2('TIMESTAMP', a, b, (x, y) => new Date((x as Date).getTime() + (y as number)));
        return this.arithmetic(op, a, b, (x, y) => x + y);
      case '_-_':
        if (a.type === 'TIMESTAMP' && b.type === 'TIMESTAMP') return strict2('DURATION', a, b, (x, y) => (x as Date).getTime() - (y as Date).getTime());
        if (a.type === 'DURATION' && b.type === 'DURATION') return strict2('DURATION', a, b, (x, y) => (x as number) - (y as number));
        return this.arithmetic(op, a, b, (x, y) => x - y);
      case '_*_':
        return this.arithmetic(op, a, b, (x, y) => x * y);
      case '_/_':
        return this.arithmetic(op, a, b, (x, y) => x / y, true);
      case '_%_':
        return this.arithmetic(op, a, b, (x, y) => x % y, true);
      case '-_':
        expectNumeric('-', a);
        return strict1(a.type, a, (x) => -(x as number));
      case '!_':
        expectType('!', 'BOOL', a);
        return strict1('BOOL', a, (x) => !x);
      case '_[_]':
        expectType('[]', 'STRING_MAP', a);
        expectType('[]', 'STRING', b);
        return strict2('STRING', a, b, (m, k) => (m as ReadonlyMap<string, string>).get(k as string));
      case '@in':
        expectType('in', 'STRING', a);
        expectType('in', 'STRING_MAP', b);
        return strict2('BOOL', a, b, (k, m) => (m as ReadonlyMap<string, string>).has(k as string));
      default:
        throw new CompileError(`unsupported operator "${op}"`);
    }
  }

  private arithmetic(op: string, a: Node, b: Node, f: (x: number, y: number) => number, integerDivision = false): Node {
    expectNumeric(op, a);
    expectNumeric(op, b);
    const type: ExprType = a.type === 'INT64' && b.type === 'INT64' ? 'INT64' : a.type === 'ANY' ? b.type : a.type === 'DOUBLE' || b.type === 'DOUBLE' ? 'DOUBLE' : a.type;
    if (type === 'INT64' && integerDivision) {
      return strict2(type, a, b, (x, y) => ((y as number) === 0 ? undefined : Math.trunc(f(x as number, y as number))));
    }
    return strict2(type, a, b, (x, y) => f(x as number, y as number));
  }
}

function suggestion(name: string, vocabulary: AttributeVocabulary): string {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of vocabulary.names()) {
    const d = editDistance(name, candidate, bestDistance);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best ? ` (did you mean "${best}"?)` : '';
}

function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) >= limit) return limit;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/**
 * A string literal where a DURATION, TIMESTAMP, IP_ADDRESS or BYTES is wanted
 * is converted at compile time, as Istio's own config relied on
 * (`response.duration | "0ms"`); other nodes are returned unchanged.
 */
function coerceLiteral(node: Node, want: ExprType): Node {
  if (node.type !== 'STRING' || typeof node.constant !== 'string') return node;
  const text = node.constant;
  let value: AttributeValue | undefined;
  if (want === 'DURATION') value = parseDurationMs(text);
  else if (want === 'TIMESTAMP') value = parseTimestamp(text);
  else if (want === 'IP_ADDRESS') value = canonicalIp(text);
  else return node;
  if (value === undefined) throw new CompileError(`${JSON.stringify(text)} is not a valid ${want}`);
  return constantNode(want, value);
}

function constantNode(type: ExprType, value: AttributeValue): Node {
  return { type, fn: () => value, constant: value };
}

function expectType(op: string, type: ValueType, node: Node): void {
  if (!assignable(type, node.type)) throw new CompileError(`"${op}" needs ${type}, got ${node.type}`);
}

function expectNumeric(op: string, node: Node): void {
  if (!NUMERIC.has(node.type) && node.type !== 'ANY') throw new CompileError(`operator "${op}" needs INT64 or DOUBLE, got ${node.type}`);
}

function strict1(type: ExprType, a: Node, f: (x: AttributeValue) => AttributeValue | undefined): Node {
  const fa = a.fn;
  return {
    type,
    fn: (bag) => {
      const x = fa(bag);
      return x === undefined ? undefined : f(x);
    },
  };
}

function strict2(type: ExprType, a: Node, b: Node, f: (x: AttributeValue, y: AttributeValue) => AttributeValue | undefined): Node {
  const fa = a.fn;
  const fb = b.fn;
  return {
    type,
    fn: (bag) => {
      const x = fa(bag);
      if (x === undefined) return undefined;
      const y = fb(bag);
      return y === undefined ? undefined : f(x, y);
    },
  };
}

function conditionalNode(what: string, c: Node, a: Node, b: Node): Node {
  expectType(what, 'BOOL', c);
  if (!assignable(a.type, b.type)) throw new CompileError(`${what} branches have different types, ${a.type} and ${b.type}`);
  const [fc, fa, fb] = [c.fn, a.fn, b.fn];
  return {
    type: a.type === 'ANY' ? b.type : a.type,
    fn: (bag) => {
      const x = fc(bag);
      return x === undefined ? undefined : x ? fa(bag) : fb(bag);
    },
  };
}

function equalityOf(type: ExprType): (x: AttributeValue, y: AttributeValue) => boolean {
  switch (type) {
    case 'TIMESTAMP':
      return (x, y) => (x as Date).getTime() === (y as Date).getTime();
    case 'BYTES':
      return (x, y) => Buffer.compare(x as Uint8Array, y as Uint8Array) === 0;
    case 'STRING_MAP':
      return (x, y) => {
        const m = x as ReadonlyMap<string, string>;
        const n = y as ReadonlyMap<string, string>;
        if (m.size !== n.size) return false;
        for (const [k, v] of m) if (n.get(k) !== v) return false;
        return true;
      };
    default:
      return (x, y) => x === y;
  }
}

/** `10.0.0.1`, `::1` in canonical form, or undefined. */
export function canonicalIp(text: string): string | undefined {
  const kind = isIP(text);
  if (kind === 4) return text;
  if (kind === 6) return new URL(`http://[${text}]/`).hostname.slice(1, -1);
  return undefined;
}

/** RFC 3339 text to a Date, or undefined. */
function parseTimestamp(text: string): Date | undefined {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(text)) return undefined;
  const d = new Date(text);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

const EMAIL = /^[^\s@<>]+@[^\s@<>]+$/;
const DNS_NAME = /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** Istio's match(): `*` at the end is a prefix match, at the start a suffix match, else exact. */
export function globMatch(value: string, pattern: string): boolean {
  if (pattern.endsWith('*')) return value.startsWith(pattern.slice(0, -1));
  if (pattern.startsWith('*')) return value.endsWith(pattern.slice(1));
  return value === pattern;
}

/** A conversion function: checked at compile time when its argument is a literal. */
function converter(name: string, result: ValueType, args: Node[], convert: (s: string) => AttributeValue | undefined): Node {
  if (args.length !== 1) throw new CompileError(`${name}() takes 1 argument, got ${args.length}`);
  const a = args[0]!;
  expectType(`${name}()`, 'STRING', a);
  if (a.constant !== undefined) {
    const value = convert(a.constant as string);
    if (value === undefined) throw new CompileError(`${name}(${JSON.stringify(a.constant)}): not a valid ${result}`);
    return constantNode(result, value);
  }
  return strict1(result, a, (x) => convert(x as string));
}

function arity(name: string, args: Node[], n: number): void {
  if (args.length !== n) throw new CompileError(`${name}() takes ${n} argument${n === 1 ? '' : 's'}, got ${args.length}`);
}

function regexOf(pattern: string): RE2JS {
  try {
    return RE2JS.compile(pattern);
  } catch (err) {
    throw new CompileError(`invalid regular expression ${JSON.stringify(pattern)}: ${(err as Error).message}`);
  }
}

function callFunction(name: string, target: Node | undefined, args: Node[]): Node {
  // Receiver-style calls are the same functions with the receiver first.
  const all = target ? [target, ...args] : args;
  switch (name) {
    case 'match': {
      arity(name, all, 2);
      expectType('match()', 'STRING', all[0]!);
      expectType('match()', 'STRING', all[1]!);
      return strict2('BOOL', all[0]!, all[1]!, (v, p) => globMatch(v as string, p as string));
    }
    case 'matches': {
      // Istio: "pattern".matches(value); the pattern is the receiver.
      arity(name, all, 2);
      expectType('matches()', 'STRING', all[0]!);
      expectType('matches()', 'STRING', all[1]!);
      const [p, v] = all as [Node, Node];
      if (p.constant !== undefined) {
        const re = regexOf(p.constant as string);
        return strict1('BOOL', v, (x) => re.test(x as string));
      }
      return strict2('BOOL', p, v, (pattern, x) => {
        try {
          return RE2JS.compile(pattern as string).test(x as string);
        } catch {
          return undefined;
        }
      });
    }
    case 'startsWith':
    case 'endsWith':
    case 'contains': {
      arity(name, all, 2);
      expectType(`${name}()`, 'STRING', all[0]!);
      expectType(`${name}()`, 'STRING', all[1]!);
      const f = name === 'startsWith' ? (s: string, p: string) => s.startsWith(p) : name === 'endsWith' ? (s: string, p: string) => s.endsWith(p) : (s: string, p: string) => s.includes(p);
      return strict2('BOOL', all[0]!, all[1]!, (s, p) => f(s as string, p as string));
    }
    case 'ip':
      return converter(name, 'IP_ADDRESS', all, canonicalIp);
    case 'timestamp':
      return converter(name, 'TIMESTAMP', all, parseTimestamp);
    case 'duration':
      return converter(name, 'DURATION', all, parseDurationMs);
    case 'email':
      return converter(name, 'EMAIL_ADDRESS', all, (s) => (EMAIL.test(s) ? s : undefined));
    case 'dnsName':
      return converter(name, 'DNS_NAME', all, (s) => (DNS_NAME.test(s) ? s : undefined));
    case 'uri':
      return converter(name, 'URI', all, (s) => (URL.canParse(s) || s.startsWith('/') ? s : undefined));
    case 'conditional':
      arity(name, all, 3);
      return conditionalNode('conditional()', all[0]!, all[1]!, all[2]!);
    case 'emptyStringMap': {
      arity(name, all, 0);
      const empty: ReadonlyMap<string, string> = new Map();
      return constantNode('STRING_MAP', empty);
    }
    case 'toLower':
    case 'toUpper': {
      arity(name, all, 1);
      expectType(`${name}()`, 'STRING', all[0]!);
      const upper = name === 'toUpper';
      return strict1('STRING', all[0]!, (s) => (upper ? (s as string).toUpperCase() : (s as string).toLowerCase()));
    }
    case 'reverse':
      arity(name, all, 1);
      expectType('reverse()', 'STRING', all[0]!);
      return strict1('STRING', all[0]!, (s) => [...(s as string)].reverse().join(''));
    case 'size': {
      arity(name, all, 1);
      const a = all[0]!;
      if (!STRINGY.has(a.type) && a.type !== 'STRING_MAP' && a.type !== 'BYTES' && a.type !== 'ANY') throw new CompileError(`size() needs STRING, STRING_MAP or BYTES, got ${a.type}`);
      return strict1('INT64', a, (x) => (typeof x === 'string' ? [...x].length : x instanceof Uint8Array ? x.length : (x as ReadonlyMap<string, string>).size));
    }
    case 'string': {
      arity(name, all, 1);
      return strict1('STRING', all[0]!, (x) => formatValue(x));
    }
    default:
      throw new CompileError(`unknown function "${name}"`);
  }
}

/** `1h30m`, `250ms`, `1.5s` in milliseconds, or undefined. */
export function parseDurationMs(text: string): number | undefined {
  const re = /(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/gy;
  let total = 0;
  let matched = 0;
  for (const m of text.matchAll(re)) {
    const n = Number(m[1]);
    total += n * ({ h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, µs: 0.001, ns: 0.000001 } as Record<string, number>)[m[2]!]!;
    matched += m[0].length;
  }
  return matched === text.length && matched > 0 ? total : undefined;
}

/** A value as text: for labels, log lines and headers. */
export function formatValue(value: AttributeValue): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  return JSON.stringify(Object.fromEntries(value));
}
