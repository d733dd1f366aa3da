// What an analyzer is and what it reports. An analyzer looks at the whole set
// of objects (through an AnalysisContext) and reports messages about single
// objects; it never changes anything and never throws on odd input.

import type { ConfigObject } from '../../api/index.ts';
import type { AnalysisContext } from './context.ts';
import type { AnalysisLevel, MessageType } from './messages.ts';

/** One finding about one object. */
export interface AnalysisMessage {
  /** `IST0101` for Istio's codes, `MESH01xx` for the mesh's own. */
  readonly code: string;
  /** `ReferencedResourceNotFound`. */
  readonly name: string;
  readonly level: AnalysisLevel;
  readonly message: string;
  /** The object the message is about, as `Kind namespace/name`. */
  readonly object: string;
  /** The object itself. */
  readonly ref: ConfigObject;
  /** The field the message is about, e.g. `spec.http[0].route[0].destination.host`. */
  readonly path?: string;
  /** Where the object (or the field) is in its file, when the caller could tell. */
  readonly source?: { readonly file?: string; readonly line?: number };
}

/** How an analyzer reports: the message type, the object, the text and the field. */
export type Report = (type: MessageType, object: ConfigObject, message: string, path?: string) => void;

/**
 * One check. Contract: `analyze` reads the context only, reports through
 * `report`, and is deterministic for a given input (order does not matter:
 * the caller sorts). `name` is unique among the registered analyzers.
 */
export interface Analyzer {
  /** `virtualservice.DestinationHostAnalyzer`: Istio's name where Istio has the analyzer. */
  readonly name: string;
  readonly description: string;
  /** The message types it can report, for `--list-analyzers` and the docs. */
  readonly messages: readonly MessageType[];
  analyze(ctx: AnalysisContext, report: Report): void;
}
