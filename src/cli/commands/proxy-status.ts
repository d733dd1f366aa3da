// `mesh proxy-status [PROXY]`: every proxy connected to Pilot and, per xDS
// type, whether it holds what Pilot last sent (SYNCED), has not answered yet
// (STALE) or rejected it (NACKED, with the proxy's error), as istioctl does.

import { ApiClient } from '../client.ts';
import type { Command } from '../command.ts';
import { COMMON_FLAGS, str } from '../command.ts';
import { CliError, ExitCode } from '../exit-codes.ts';
import { parseOutputFormat } from '../output.ts';

interface TypeStatus {
  state: string;
  sentVersion?: string;
  ackedVersion?: string;
  error?: string;
  lastPushAt?: number;
}
interface ProxyStatus {
  id: string;
  type: string;
  protocol: string;
  types: Record<string, TypeStatus>;
}

const COLUMNS: [string, string][] = [
  ['CDS', 'type.googleapis.com/envoy.config.cluster.v3.Cluster'],
  ['LDS', 'type.googleapis.com/envoy.config.listener.v3.Listener'],
  ['EDS', 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment'],
  ['RDS', 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration'],
];

/** `sidecar~127.0.0.1~reviews-v1.default~default.svc.cluster.local` -> `reviews-v1.default`. */
export function proxyName(id: string): string {
  return id.split('~')[2] ?? id;
}

function cell(status: TypeStatus | undefined): string {
  if (!status || status.state === 'NOT_SENT') return 'NOT SENT';
  return status.state;
}

function ago(ms: number | undefined, now: number): string {
  if (ms === undefined) return '-';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  return s < 120 ? `${s}s` : `${Math.round(s / 60)}m`;
}

export function formatProxyStatus(proxies: readonly ProxyStatus[], now = Date.now()): string {
  const header = ['NAME', 'TYPE', ...COLUMNS.map(([c]) => c), 'VERSION', 'LAST PUSH'];
  const rows = proxies.map((p) => {
    const last = Math.max(...Object.values(p.types).map((t) => t.lastPushAt ?? 0));
    const version = Object.values(p.types).find((t) => t.ackedVersion)?.ackedVersion ?? '-';
    return [proxyName(p.id), p.type, ...COLUMNS.map(([, url]) => cell(p.types[url])), version, ago(last || undefined, now)];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('');
  const errors = proxies.flatMap((p) => COLUMNS.filter(([, url]) => p.types[url]?.state === 'NACKED').map(([c, url]) => `${proxyName(p.id)} ${c} NACKED: ${p.types[url]!.error ?? ''}`));
  return `${[line(header), ...rows.map(line)].join('\n')}\n${errors.length ? `\n${errors.join('\n')}\n` : ''}`;
}

export const proxyStatusCommand: Command = {
  name: 'proxy-status',
  summary: "Show each connected proxy's xDS sync state",
  help: `Usage: mesh proxy-status [PROXY] [-o table|json] [--server URL]

PROXY is a proxy id or its NAME.NAMESPACE. States per type: SYNCED (the proxy
ACKed what Pilot last sent), STALE (sent, not yet ACKed), NACKED (rejected; the
proxy's error is shown), NOT SENT.`,
  positionals: true,
  options: { output: COMMON_FLAGS.output, server: COMMON_FLAGS.server, help: COMMON_FLAGS.help },
  async run(flags, args, io) {
    const client = new ApiClient({ server: str(flags, 'server') });
    let proxies = (await client.getJson('/debug/syncz')) as ProxyStatus[];
    if (args[0] !== undefined) {
      proxies = proxies.filter((p) => p.id === args[0] || proxyName(p.id) === args[0]);
      if (proxies.length === 0) throw new CliError(ExitCode.NOT_FOUND, `no connected proxy "${args[0]}"`);
    }
    if (parseOutputFormat(str(flags, 'output')) === 'json') io.out(`${JSON.stringify(proxies, null, 2)}\n`);
    else if (proxies.length === 0) io.err('No proxies are connected.\n');
    else io.out(formatProxyStatus(proxies));
    return ExitCode.OK;
  },
};
