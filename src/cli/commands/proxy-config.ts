// `mesh proxy-config cluster|listener|route|endpoint|all PROXY`: the xDS
// config Pilot generated for one proxy, as tables in istioctl's style or as
// Envoy's config dump JSON.

import { ApiClient } from '../client.ts';
import type { Command } from '../command.ts';
import { COMMON_FLAGS, str } from '../command.ts';
import { CliError, ExitCode } from '../exit-codes.ts';
import { parseOutputFormat } from '../output.ts';

type Dump = { configs: Record<string, unknown>[] };
type Any = Record<string, any>;

const SECTIONS = {
  cluster: { dump: 'ClustersConfigDump', list: 'dynamic_active_clusters', item: (e: Any) => e.cluster },
  listener: { dump: 'ListenersConfigDump', list: 'dynamic_listeners', item: (e: Any) => e.active_state?.listener },
  route: { dump: 'RoutesConfigDump', list: 'dynamic_route_configs', item: (e: Any) => e.route_config },
  endpoint: { dump: 'EndpointsConfigDump', list: 'dynamic_endpoint_configs', item: (e: Any) => e.endpoint_config },
} as const;
type Section = keyof typeof SECTIONS;

function items(dump: Dump, section: Section): Any[] {
  const spec = SECTIONS[section];
  const config = dump.configs.find((c) => String(c['@type']).endsWith(spec.dump)) as Any | undefined;
  return ((config?.[spec.list] as Any[] | undefined) ?? []).map(spec.item).filter(Boolean);
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('');
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

const portOf = (addr: Any | undefined): string => String(addr?.socket_address?.port_value ?? '');

export function formatSection(dump: Dump, section: Section): string {
  const list = items(dump, section);
  if (section === 'cluster') {
    return table(['SERVICE FQDN', 'PORT', 'SUBSET', 'DIRECTION', 'TYPE'], list.map((c) => {
      const [direction = '', port = '', subset = '', host = ''] = String(c.name).split('|');
      return String(c.name).includes('|') ? [host, port, subset || '-', direction, String(c.type ?? '')] : [String(c.name), '-', '-', '-', String(c.type ?? '')];
    }));
  }
  if (section === 'listener') {
    return table(['NAME', 'ADDRESS', 'PORT', 'CHAINS'], list.map((l) => [String(l.name), String(l.address?.socket_address?.address ?? (l.api_listener ? '(api listener)' : '')), portOf(l.address), String((l.filter_chains as unknown[] | undefined)?.length ?? 0)]));
  }
  if (section === 'route') {
    return table(['NAME', 'VIRTUAL HOST', 'DOMAINS', 'ROUTES'], list.flatMap((r) => ((r.virtual_hosts as Any[] | undefined) ?? []).map((vh) => [String(r.name), String(vh.name), (vh.domains as string[]).slice(0, 3).join(',') + ((vh.domains as string[]).length > 3 ? ',...' : ''), String((vh.routes as unknown[] | undefined)?.length ?? 0)])));
  }
  return table(['ENDPOINT', 'STATUS', 'CLUSTER'], list.flatMap((cla) => ((cla.endpoints as Any[] | undefined) ?? []).flatMap((loc) => ((loc.lb_endpoints as Any[] | undefined) ?? []).map((e) => {
    const a = e.endpoint?.address?.socket_address;
    return [`${a?.address}:${a?.port_value}`, String(e.health_status ?? 'UNKNOWN'), String(cla.cluster_name)];
  }))));
}

export const proxyConfigCommand: Command = {
  name: 'proxy-config',
  summary: "Show the xDS config Pilot generated for a proxy",
  help: `Usage: mesh proxy-config cluster|listener|route|endpoint|all PROXY [-o table|json] [--server URL]

PROXY is a proxy id or its NAME.NAMESPACE (see mesh proxy-status). -o json
prints Envoy's config dump shape.`,
  positionals: true,
  options: { output: COMMON_FLAGS.output, server: COMMON_FLAGS.server, help: COMMON_FLAGS.help },
  async run(flags, args, io) {
    const [what, proxy] = args;
    const sections: Section[] = what === 'all' ? ['cluster', 'listener', 'route', 'endpoint'] : what && what in SECTIONS ? [what as Section] : [];
    if (sections.length === 0 || !proxy) throw new CliError(ExitCode.USAGE, 'usage: mesh proxy-config cluster|listener|route|endpoint|all PROXY');
    const client = new ApiClient({ server: str(flags, 'server') });
    const dump = (await client.getJson(`/debug/config_dump?proxyID=${encodeURIComponent(proxy)}`)) as Dump;
    if (parseOutputFormat(str(flags, 'output')) === 'json') {
      io.out(`${JSON.stringify(what === 'all' ? dump : items(dump, sections[0]!), null, 2)}\n`);
      return ExitCode.OK;
    }
    io.out(sections.map((s) => formatSection(dump, s)).join('\n'));
    return ExitCode.OK;
  },
};
