// Output forms of analysis messages: Istio's text lines
// (`Error [IST0101] (VirtualService default/reviews) Referenced host not found: "reviewz"`)
// and a JSON form shaped like `istioctl analyze -o json`.

import type { AnalysisMessage } from './analyzer.ts';
import { documentationUrl } from './messages.ts';

/** One line per message, each ending in a newline, as istioctl prints them; the file and line follow the object when known. */
export function formatAnalysis(messages: readonly AnalysisMessage[]): string {
  return messages.map((m) => `${formatMessage(m)}\n`).join('');
}

export function formatMessage(m: AnalysisMessage): string {
  const where = m.source?.file ? ` ${m.source.file}${m.source.line !== undefined ? `:${m.source.line}` : ''}` : '';
  return `${m.level} [${m.code}] (${m.object}${where}) ${m.message}`;
}

/** The JSON record of one message (plain data, ready for JSON.stringify). */
export interface AnalysisMessageJson {
  readonly code: string;
  readonly name: string;
  readonly level: string;
  readonly message: string;
  readonly origin: string;
  readonly path?: string;
  readonly reference?: string;
  readonly documentationUrl: string;
}

export function analysisToJson(messages: readonly AnalysisMessage[]): AnalysisMessageJson[] {
  return messages.map((m) => ({
    code: m.code,
    name: m.name,
    level: m.level,
    message: m.message,
    origin: m.object,
    ...(m.path !== undefined ? { path: m.path } : {}),
    ...(m.source?.file ? { reference: `${m.source.file}${m.source.line !== undefined ? `:${m.source.line}` : ''}` } : {}),
    documentationUrl: documentationUrl(m.code),
  }));
}
