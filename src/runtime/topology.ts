// A declared topology for `mesh up` (mesh.yaml): services with versions,
// replicas, commands, ports, service accounts and environment, an optional
// ingress gateway, config files to apply, and optionally an existing
// control plane to join.
//
//   namespace: default                 # default for every service
//   controlPlane: http://127.0.0.1:15080   # omit to start one
//   gateway: { name: istio-ingressgateway, namespace: istio-system }   # or true / false
//   egressGateway: { name: istio-egressgateway, namespace: istio-system }   # or true / false
//   apply: [rules.yaml]                # applied after the ServiceEntries (paths relative to this file)
//   capture: auto                      # true | false (default) | auto, or { mode, bridge, subnet, egress }
//   certTtl: 24h                       # workload certificate lifetime (mesh run --cert-ttl)
//   services:
//     - name: reviews
//       port: 9080
//       serviceAccount: bookinfo-reviews
//       command: [node, samples/bookinfo/reviews.ts]
//       env: { KEY: value }
//       versions: [{ version: v1, replicas: 1, env: {...} }]

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { parseCaptureSetting } from './capture/mode.ts';
import { parseCertTtlSeconds } from './cert-ttl.ts';
import type { CaptureSetting } from './capture/mode.ts';

export interface TopologyCapture {
  readonly mode: CaptureSetting;
  /** Bridge suffix (mesh-br<suffix>). */
  readonly bridge?: string;
  readonly subnet?: string;
  readonly egress?: boolean;
}

export interface TopologyVersion {
  readonly version: string;
  readonly replicas: number;
  readonly env: Readonly<Record<string, string>>;
  readonly command?: readonly string[];
}

export interface TopologyService {
  readonly name: string;
  readonly namespace: string;
  readonly port: number;
  readonly serviceAccount: string;
  readonly command: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly versions: readonly TopologyVersion[];
}

export interface TopologyGateway {
  readonly name: string;
  readonly namespace: string;
  /** The workload labels Gateways select it by (`istio: ingressgateway` / `istio: egressgateway`). */
  readonly labels: Readonly<Record<string, string>>;
}

/** `gateway` / `egressGateway`: true, false or {name, namespace}; undefined when off. */
function gatewayOf(value: unknown, defaultName: string, istioLabel: string, where: string): TopologyGateway | undefined {
  if (value === undefined || value === null || value === false) return undefined;
  if (value !== true && (typeof value !== 'object' || Array.isArray(value))) throw new Error(`${where}: expected true, false or {name, namespace}`);
  const g = (value === true ? {} : value) as Record<string, unknown>;
  return { name: typeof g.name === 'string' ? g.name : defaultName, namespace: typeof g.namespace === 'string' ? g.namespace : 'istio-system', labels: { istio: istioLabel } };
}

export interface Topology {
  readonly file: string;
  /** Directory commands run in (the file's directory unless `workingDir` says otherwise). */
  readonly workingDir: string;
  readonly controlPlane?: string;
  /** The ingress gateway (labels istio=ingressgateway). */
  readonly gateway?: TopologyGateway;
  /** The egress gateway (labels istio=egressgateway), Istio's istio-egressgateway. */
  readonly egressGateway?: TopologyGateway;
  readonly apply: readonly string[];
  /** Traffic capture (docs/capture.md); off unless asked for. */
  readonly capture: TopologyCapture;
  /** Workload certificate lifetime in seconds for every sidecar; Citadel's default (24 h) when absent. */
  readonly certTtlSeconds?: number;
  readonly services: readonly TopologyService[];
}

const NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

function envOf(value: unknown, where: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new Error(`${where}: a map of strings is expected`);
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, String(v)]));
}

function commandOf(value: unknown, where: string): string[] | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value.split(/\s+/).filter(Boolean);
  if (Array.isArray(value) && value.length > 0) return value.map(String);
  throw new Error(`${where}: a list of strings (or one string) is expected`);
}

/** Reads and checks a topology file; errors name the file and field. */
export function loadTopology(file: string): Topology {
  const path = resolve(file);
  const doc = parse(readFileSync(path, 'utf8')) as Record<string, unknown> | null;
  const where = (field: string): string => `${file}: ${field}`;
  if (!doc || typeof doc !== 'object') throw new Error(where('not a YAML map'));
  const namespace = typeof doc.namespace === 'string' ? doc.namespace : 'default';
  if (!Array.isArray(doc.services) || doc.services.length === 0) throw new Error(where('services: at least one service is required'));
  const services = doc.services.map((raw: unknown, i: number): TopologyService => {
    const s = (raw ?? {}) as Record<string, unknown>;
    const at = (f: string): string => where(`services[${i}].${f}`);
    if (typeof s.name !== 'string' || !NAME.test(s.name)) throw new Error(at('name: a DNS label is required'));
    const port = s.port === undefined ? 9080 : Number(s.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(at(`port: ${String(s.port)} is not a port number`));
    const command = commandOf(s.command, at('command'));
    const versionsRaw = Array.isArray(s.versions) && s.versions.length > 0 ? s.versions : [{ version: 'v1' }];
    const versions = versionsRaw.map((v: unknown, j: number): TopologyVersion => {
      const r = (typeof v === 'string' ? { version: v } : (v ?? {})) as Record<string, unknown>;
      const replicas = r.replicas === undefined ? 1 : Number(r.replicas);
      if (!Number.isInteger(replicas) || replicas < 0) throw new Error(at(`versions[${j}].replicas: ${String(r.replicas)} is not a non-negative integer`));
      const vc = commandOf(r.command, at(`versions[${j}].command`));
      return { version: typeof r.version === 'string' ? r.version : 'v1', replicas, env: envOf(r.env, at(`versions[${j}].env`)), ...(vc ? { command: vc } : {}) };
    });
    if (!command && versions.some((v) => !v.command)) throw new Error(at('command: required (or a command per version)'));
    return {
      name: s.name,
      namespace: typeof s.namespace === 'string' ? s.namespace : namespace,
      port,
      serviceAccount: typeof s.serviceAccount === 'string' ? s.serviceAccount : s.name,
      command: command ?? [],
      env: envOf(s.env, at('env')),
      versions,
    };
  });
  const gateway = gatewayOf(doc.gateway, 'istio-ingressgateway', 'ingressgateway', where('gateway'));
  const egressGateway = gatewayOf(doc.egressGateway, 'istio-egressgateway', 'egressgateway', where('egressGateway'));
  const rawCapture = doc.capture;
  let capture: TopologyCapture;
  if (rawCapture && typeof rawCapture === 'object' && !Array.isArray(rawCapture)) {
    const c = rawCapture as Record<string, unknown>;
    capture = {
      mode: parseCaptureSetting(c.mode ?? 'auto', where('capture.mode')),
      ...(typeof c.bridge === 'string' ? { bridge: c.bridge } : {}),
      ...(typeof c.subnet === 'string' ? { subnet: c.subnet } : {}),
      ...(c.egress === true ? { egress: true } : {}),
    };
  } else {
    capture = { mode: parseCaptureSetting(rawCapture, where('capture')) };
  }
  let certTtlSeconds: number | undefined;
  if (doc.certTtl !== undefined) {
    certTtlSeconds = parseCertTtlSeconds(String(doc.certTtl));
    if (certTtlSeconds === undefined) throw new Error(where(`certTtl: ${String(doc.certTtl)} is not a duration such as 6s, 90m or 24h`));
  }
  const dir = dirname(path);
  return {
    file: path,
    workingDir: typeof doc.workingDir === 'string' ? resolve(dir, doc.workingDir) : dir,
    ...(typeof doc.controlPlane === 'string' ? { controlPlane: doc.controlPlane } : {}),
    ...(gateway ? { gateway } : {}),
    ...(egressGateway ? { egressGateway } : {}),
    apply: (Array.isArray(doc.apply) ? doc.apply : []).map((f: unknown) => resolve(dir, String(f))),
    capture,
    ...(certTtlSeconds !== undefined ? { certTtlSeconds } : {}),
    services,
  };
}
