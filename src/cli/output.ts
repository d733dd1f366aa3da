// Printing objects as kubectl does: `-o yaml`, `-o json`, or a table.

import { stringify } from 'yaml';
import type { ConfigObject } from '../api/index.ts';
import { CliError, ExitCode } from './exit-codes.ts';

export type OutputFormat = 'yaml' | 'json' | 'table';

export function parseOutputFormat(value: string | undefined, fallback: OutputFormat = 'table'): OutputFormat {
  if (value === undefined) return fallback;
  if (value === 'yaml' || value === 'json' || value === 'table') return value;
  throw new CliError(ExitCode.USAGE, `unknown output format "${value}"; use yaml, json or table`);
}

export function formatObjects(objects: readonly ConfigObject[], format: OutputFormat, single: boolean, now = Date.now()): string {
  if (format === 'json') return `${JSON.stringify(single ? objects[0] : { apiVersion: 'v1', kind: 'List', items: objects }, null, 2)}\n`;
  if (format === 'yaml') return single ? stringify(objects[0]) : objects.map((o) => stringify(o)).join('---\n');
  return formatTable(objects, now);
}

function age(created: string | undefined, now: number): string {
  if (!created) return '<unknown>';
  const seconds = Math.max(0, Math.floor((now - Date.parse(created)) / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 172800) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

function hostsOf(obj: ConfigObject): string {
  const spec = (obj.spec ?? {}) as { hosts?: unknown; host?: unknown };
  if (Array.isArray(spec.hosts)) return JSON.stringify(spec.hosts);
  if (typeof spec.host === 'string') return spec.host;
  return '';
}

export function formatTable(objects: readonly ConfigObject[], now = Date.now()): string {
  if (objects.length === 0) return '';
  const withHosts = objects.some((o) => hostsOf(o) !== '');
  const header = ['NAMESPACE', 'NAME', ...(withHosts ? ['HOSTS'] : []), 'AGE'];
  const rows = objects.map((o) => [o.metadata.namespace ?? '', o.metadata.name, ...(withHosts ? [hostsOf(o)] : []), age(o.metadata.creationTimestamp, now)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('');
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}
