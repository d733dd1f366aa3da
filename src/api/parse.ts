// Reading config from YAML or JSON text: multi-document files, `kind: List`,
// and the line of every field so errors can point into the file.

import { isMap, isSeq, LineCounter, parseAllDocuments } from 'yaml';
import type { Document, Node } from 'yaml';
import type { Diagnostic } from './diagnostics.ts';
import type { KindRegistry } from './kind-registry.ts';
import type { SourceLocation } from './object.ts';
import { validateObject } from './validate.ts';
import type { ValidateOptions, ValidationResult } from './validate.ts';

/** One document of a file, with a way to find the line of any field inside it. */
export interface ParsedDocument {
  readonly value: unknown;
  readonly source: SourceLocation;
  /** The line of a field path such as `spec.http[0].route`, or undefined. */
  lineOf(path: string): number | undefined;
  /** A YAML syntax error in this document; value is then undefined. */
  readonly syntaxError?: string;
}

/** Splits `spec.http[0]["a.b"]` into `['spec', 'http', 0, 'a.b']`. */
export function pathSegments(path: string): (string | number)[] {
  const out: (string | number)[] = [];
  const re = /([^.[\]]+)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]/g;
  for (const m of path.matchAll(re)) {
    if (m[1] !== undefined) out.push(m[1]);
    else if (m[2] !== undefined) out.push(Number(m[2]));
    else if (m[3] !== undefined) out.push(JSON.parse(m[3]) as string);
  }
  return out;
}

export function parseDocuments(text: string, file?: string): ParsedDocument[] {
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const list = Array.isArray(docs) ? docs : [docs];
  const out: ParsedDocument[] = [];
  for (const doc of list) {
    const docLine = doc.contents?.range ? lines.linePos(doc.contents.range[0]).line : undefined;
    if (doc.errors.length > 0) {
      const err = doc.errors[0]!;
      const line = lines.linePos(err.pos[0]).line;
      out.push({ value: undefined, source: { file, line }, lineOf: () => line, syntaxError: err.message.split('\n')[0] });
      continue;
    }
    if (doc.contents === null) continue; // an empty document, e.g. after a trailing `---`
    const value = doc.toJS({ maxAliasCount: 100 }) as unknown;
    if (value === null || value === undefined) continue; // only comments, e.g. a license header
    // `kind: List` wraps several objects; each item becomes a document of its own.
    if (isList(value)) {
      (value as { items: unknown[] }).items.forEach((item, i) => {
        const itemNode = doc.getIn(['items', i], true) as Node | undefined;
        const itemLine = itemNode?.range ? lines.linePos(itemNode.range[0]).line : docLine;
        out.push({ value: item, source: { file, line: itemLine }, lineOf: (p) => lineIn(doc, lines, ['items', i, ...pathSegments(p)]) });
      });
      continue;
    }
    out.push({ value, source: { file, line: docLine }, lineOf: (p) => lineIn(doc, lines, pathSegments(p)) });
  }
  return out;
}

function isList(value: unknown): boolean {
  const v = value as { kind?: unknown; items?: unknown } | null;
  return v !== null && typeof v === 'object' && v.kind === 'List' && Array.isArray(v.items);
}

// The deepest node on the path that exists gives the line: a missing field is
// reported at the line of its parent.
function lineIn(doc: Document, lines: LineCounter, segments: (string | number)[]): number | undefined {
  let node: unknown = doc.contents;
  let line: number | undefined = (node as Node | null)?.range ? lines.linePos((node as Node).range![0]).line : undefined;
  for (const segment of segments) {
    if (isMap(node)) {
      const pair = node.items.find((p) => (p.key as { value?: unknown } | null)?.value === segment);
      if (!pair) break;
      const keyNode = pair.key as Node;
      if (keyNode.range) line = lines.linePos(keyNode.range[0]).line;
      node = pair.value;
    } else if (isSeq(node) && typeof segment === 'number') {
      node = node.items[segment];
      if ((node as Node | undefined)?.range) line = lines.linePos((node as Node).range![0]).line;
    } else break;
  }
  return line;
}

/** Parses and validates every object of a YAML/JSON text; diagnostics carry lines. */
export function validateText(text: string, registry: KindRegistry, options: ValidateOptions & { file?: string } = {}): ValidationResult[] {
  const results: ValidationResult[] = [];
  for (const doc of parseDocuments(text, options.file)) {
    if (doc.syntaxError !== undefined) {
      results.push({
        object: { apiVersion: '', kind: 'Document', metadata: { name: `at line ${doc.source.line ?? '?'}` }, spec: undefined },
        diagnostics: [{ severity: 'error', path: '', message: `YAML syntax error: ${doc.syntaxError}`, line: doc.source.line }],
        source: doc.source,
      });
      continue;
    }
    const result = validateObject(doc.value, registry, options, doc.source);
    const diagnostics: Diagnostic[] = result.diagnostics.map((d) => ({ ...d, line: doc.lineOf(d.path) ?? doc.source.line }));
    results.push({ ...result, diagnostics, lineOf: doc.lineOf });
  }
  return results;
}
