// Simulated sidecars for the Pilot scale benchmark, many in one process:
// each is one ADS stream (SotW or delta) with its own node id, multiplexed
// over a few gRPC channels. Each behaves as Envoy does with ADS: CDS and LDS
// wildcard first; then EDS for the EDS clusters CDS named and RDS for the
// route configs the listeners' HttpConnectionManagers name; every response is
// ACKed at once (nothing is ever NACKed).
//
// It decodes only what it needs: a resource's name (field 1 of Cluster,
// Listener, RouteConfiguration and ClusterLoadAssignment, read off the
// bytes), and, for Clusters and Listeners, their type / route names, decoded
// once per (name, size) and then cached for all clients: the clients share
// one view of the mesh, as real sidecars of one mesh mostly do.
//
// Started by bench/pilot-scale-bench.ts over IPC; exits when it goes away.
// Messages in:  {cmd:'start', target, clients, protocol, ips, ...}, {cmd:'mark'},
//               {cmd:'collect', id, since, typeUrl, match, quietMs, timeoutMs}, {cmd:'usage', id}
// Messages out: {event:'started'}, {event:'complete', ...}, {id, result}

import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import type { DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse } from '../../src/xds/index.ts';
import { ADS_SERVICE, TypeUrl, loadXdsProtos } from '../../src/xds/index.ts';

if (!process.send) {
  console.error('started by bench/pilot-scale-bench.ts over IPC');
  process.exit(2);
}
const send = (msg: unknown): void => void process.send!(msg);
process.on('disconnect', () => process.exit(0));
// Exit (rather than die) on SIGTERM, so that --cpu-prof (bench --client-cpu-prof) writes its profile.
process.on('SIGTERM', () => process.exit(0));

export interface ClientSpec {
  readonly id: string;
  readonly protocol: 'sotw' | 'delta';
}

export interface StartMessage {
  cmd: 'start';
  target: string;
  clients: ClientSpec[];
  /** ADS streams per gRPC channel (HTTP/2 connection). */
  streamsPerChannel: number;
  /** Spread the stream starts over this many ms (0: all at once). */
  rampMs: number;
}

export interface CollectMessage {
  cmd: 'collect';
  id: number;
  /** Absolute ms (performance.timeOrigin + now) of the apply. */
  since: number;
  typeUrl: string;
  /** A resource whose name includes this string makes a response "affected". */
  match: string;
  /** The change counts as converged after this long without affected responses. */
  quietMs: number;
  timeoutMs: number;
}

export interface CollectResult {
  /** Per converged client: last ACK of an affected response - since, ms. */
  delays: number[];
  /** Clients that got no affected response before the timeout. */
  missing: number;
  /** Responses after the mark by type short name, affected or not. */
  responsesByType: Record<string, number>;
  /** Resource bytes of those responses by type short name. */
  bytesByType: Record<string, number>;
  affectedResponses: number;
}

const now = (): number => performance.timeOrigin + performance.now();
/** HTTP/2 stream and connection window of the simulated sidecars (see the channels in start). */
const FLOW_CONTROL_WINDOW = 16 * 1024 * 1024;
const SHORT: Record<string, string> = { [TypeUrl.Cluster]: 'CDS', [TypeUrl.Listener]: 'LDS', [TypeUrl.RouteConfiguration]: 'RDS', [TypeUrl.ClusterLoadAssignment]: 'EDS' };

const protos = loadXdsProtos();
const ClusterType = protos.lookupType('envoy.config.cluster.v3.Cluster');
const ListenerType = protos.lookupType('envoy.config.listener.v3.Listener');
const HcmType = protos.lookupType(TypeUrl.HttpConnectionManager);

// ---- resource inspection (shared by all clients) ------------------------------

/** Field 1 (a string) of a message, read off its bytes; '' when the message does not start with it. */
function nameOf(bytes: Uint8Array): string {
  if (bytes.length < 2 || bytes[0] !== 0x0a) return '';
  let len = 0;
  let shift = 0;
  let i = 1;
  for (; i < bytes.length && i < 6; i++) {
    const b = bytes[i]!;
    len |= (b & 0x7f) << shift;
    shift += 7;
    if ((b & 0x80) === 0) break;
  }
  i += 1;
  return intern(Buffer.from(bytes.buffer, bytes.byteOffset + i, Math.min(len, bytes.length - i)).toString('utf8'));
}

// One string per resource name for all the simulated sidecars (2000 of them
// each holding ~3000 names): the client process's heap, and so its GC, which
// competes with the control plane for the same CPUs, stays small.
const internedNames = new Map<string, string>();
function intern(name: string): string {
  const known = internedNames.get(name);
  if (known !== undefined) return known;
  internedNames.set(name, name);
  return name;
}

/** name -> byte length -> EDS or not (nested maps: no key string per cluster and response). */
const clusterIsEds = new Map<string, Map<number, boolean>>();
function isEdsCluster(name: string, bytes: Uint8Array): boolean {
  let byLength = clusterIsEds.get(name);
  if (!byLength) {
    byLength = new Map();
    clusterIsEds.set(name, byLength);
  }
  let eds = byLength.get(bytes.length);
  if (eds === undefined) {
    const c = ClusterType.decode(bytes) as unknown as { type?: number; eds_cluster_config?: unknown };
    // Cluster.DiscoveryType EDS = 3
    eds = c.type === 3;
    byLength.set(bytes.length, eds);
  }
  return eds;
}

const listenerRoutes = new Map<string, readonly string[]>();
function routesOf(name: string, bytes: Uint8Array): readonly string[] {
  const key = `${name}\n${bytes.length}`;
  let routes = listenerRoutes.get(key);
  if (routes === undefined) {
    const found = new Set<string>();
    const visit = (value: unknown): void => {
      if (!value || typeof value !== 'object') return;
      if (Array.isArray(value)) {
        for (const v of value) visit(v);
        return;
      }
      const any = value as { type_url?: string; value?: Uint8Array };
      if (any.type_url === TypeUrl.HttpConnectionManager && any.value) {
        const hcm = HcmType.decode(any.value) as unknown as { rds?: { route_config_name?: string } };
        if (hcm.rds?.route_config_name) found.add(hcm.rds.route_config_name);
        return;
      }
      if (value instanceof Uint8Array) return;
      for (const v of Object.values(value)) visit(v);
    };
    visit(ListenerType.decode(bytes));
    routes = [...found];
    listenerRoutes.set(key, routes);
  }
  return routes;
}

// ---- recording for convergence ----------------------------------------------------

interface Record_ {
  client: number;
  typeUrl: string;
  names: string[];
  ackAt: number;
  /** Resource bytes of the response. */
  bytes: number;
}
let recording: Record_[] | undefined;

// ---- one simulated sidecar ----------------------------------------------------

const WATCH_ORDER = [TypeUrl.Cluster, TypeUrl.Listener];

class Sidecar {
  readonly index: number;
  readonly spec: ClientSpec;
  startedAt = 0;
  completeAt = 0;
  responses = 0;
  bytes = 0;
  errors = 0;
  private call: grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse> | grpc.ClientDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse> | undefined;
  /** What is subscribed by name (RDS, EDS). */
  private readonly names = new Map<string, Set<string>>([
    [TypeUrl.RouteConfiguration, new Set()],
    [TypeUrl.ClusterLoadAssignment, new Set()],
  ]);
  /** What was received at least once, per type. */
  private readonly received = new Map<string, Set<string>>([
    [TypeUrl.RouteConfiguration, new Set()],
    [TypeUrl.ClusterLoadAssignment, new Set()],
  ]);
  private readonly acked = new Set<string>();
  /** Delta: what the client holds of CDS/LDS (name -> EDS cluster / route names). */
  private readonly deltaClusters = new Map<string, boolean>();
  private readonly deltaListeners = new Map<string, readonly string[]>();
  /** SotW: the version of each type (for requests). */
  private readonly versions = new Map<string, string>();
  private readonly nonces = new Map<string, string>();
  private readonly onComplete: (s: Sidecar) => void;

  constructor(index: number, spec: ClientSpec, onComplete: (s: Sidecar) => void) {
    this.index = index;
    this.spec = spec;
    this.onComplete = onComplete;
  }

  start(client: grpc.Client & Record<string, (...a: unknown[]) => unknown>): void {
    this.startedAt = now();
    const node = { id: this.spec.id, cluster: 'bench', metadata: { fields: {} } };
    if (this.spec.protocol === 'sotw') {
      const call = client.StreamAggregatedResources() as grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;
      this.call = call;
      call.on('data', (res: DiscoveryResponse) => this.onSotw(call, res));
      call.on('error', () => (this.errors += 1));
      let first = true;
      for (const typeUrl of WATCH_ORDER) {
        call.write({ ...(first ? { node } : {}), type_url: typeUrl, resource_names: [], version_info: '', response_nonce: '' });
        first = false;
      }
    } else {
      const call = client.DeltaAggregatedResources() as grpc.ClientDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;
      this.call = call;
      call.on('data', (res: DeltaDiscoveryResponse) => this.onDelta(call, res));
      call.on('error', () => (this.errors += 1));
      let first = true;
      for (const typeUrl of WATCH_ORDER) {
        call.write({ ...(first ? { node } : {}), type_url: typeUrl, resource_names_subscribe: [], resource_names_unsubscribe: [], response_nonce: '' });
        first = false;
      }
    }
  }

  stop(): void {
    this.call?.cancel();
  }

  private record(typeUrl: string, names: string[], at: number, bytes: number): void {
    if (recording) recording.push({ client: this.index, typeUrl, names, ackAt: at, bytes });
  }

  private checkComplete(): void {
    if (this.completeAt) return;
    if (!this.acked.has(TypeUrl.Cluster) || !this.acked.has(TypeUrl.Listener)) return;
    for (const [typeUrl, want] of this.names) {
      const got = this.received.get(typeUrl)!;
      for (const n of want) if (!got.has(n)) return;
    }
    this.completeAt = now();
    this.onComplete(this);
  }

  // -- SotW --

  private onSotw(call: grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>, res: DiscoveryResponse): void {
    this.responses += 1;
    const bytesBefore = this.bytes;
    const typeUrl = res.type_url;
    const names: string[] = [];
    const follow: DiscoveryRequest[] = [];
    if (typeUrl === TypeUrl.Cluster) {
      const eds = new Set<string>();
      for (const any of res.resources) {
        this.bytes += any.value.length;
        const name = nameOf(any.value);
        names.push(name);
        if (isEdsCluster(name, any.value)) eds.add(name);
      }
      const req = this.resubscribe(TypeUrl.ClusterLoadAssignment, eds);
      if (req) follow.push(req);
    } else if (typeUrl === TypeUrl.Listener) {
      const routes = new Set<string>();
      for (const any of res.resources) {
        this.bytes += any.value.length;
        const name = nameOf(any.value);
        names.push(name);
        for (const r of routesOf(name, any.value)) routes.add(r);
      }
      const req = this.resubscribe(TypeUrl.RouteConfiguration, routes);
      if (req) follow.push(req);
    } else {
      const got = this.received.get(typeUrl);
      for (const any of res.resources) {
        this.bytes += any.value.length;
        const name = nameOf(any.value);
        names.push(name);
        got?.add(name);
      }
    }
    this.versions.set(typeUrl, res.version_info);
    this.nonces.set(typeUrl, res.nonce);
    // Envoy: the ACK of CDS/LDS goes after the EDS/RDS requests they cause.
    for (const req of follow) call.write(req);
    const subscribed = this.names.get(typeUrl);
    call.write({ type_url: typeUrl, version_info: res.version_info, response_nonce: res.nonce, resource_names: subscribed ? [...subscribed] : [] });
    const at = now();
    this.acked.add(typeUrl);
    this.record(typeUrl, names, at, this.bytes - bytesBefore);
    this.checkComplete();
  }

  /** SotW: a new name set for RDS/EDS; the request to send, if it changed. */
  private resubscribe(typeUrl: string, want: Set<string>): DiscoveryRequest | undefined {
    const current = this.names.get(typeUrl)!;
    if (current.size === want.size && [...want].every((n) => current.has(n))) return undefined;
    current.clear();
    for (const n of want) current.add(n);
    return { type_url: typeUrl, resource_names: [...want], version_info: this.versions.get(typeUrl) ?? '', response_nonce: this.nonces.get(typeUrl) ?? '' };
  }

  // -- delta --

  private onDelta(call: grpc.ClientDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>, res: DeltaDiscoveryResponse): void {
    this.responses += 1;
    const bytesBefore = this.bytes;
    const typeUrl = res.type_url;
    const names: string[] = [];
    const follow: DeltaDiscoveryRequest[] = [];
    if (typeUrl === TypeUrl.Cluster || typeUrl === TypeUrl.Listener) {
      for (const r of res.resources) {
        const name = intern(r.name);
        names.push(name);
        const bytes = r.resource?.value;
        if (!bytes) continue;
        this.bytes += bytes.length;
        if (typeUrl === TypeUrl.Cluster) this.deltaClusters.set(name, isEdsCluster(name, bytes));
        else this.deltaListeners.set(name, routesOf(name, bytes));
      }
      for (const n of res.removed_resources ?? []) {
        this.deltaClusters.delete(n);
        this.deltaListeners.delete(n);
      }
      const want = new Set<string>();
      if (typeUrl === TypeUrl.Cluster) {
        for (const [n, eds] of this.deltaClusters) if (eds) want.add(n);
      } else {
        for (const routes of this.deltaListeners.values()) for (const r of routes) want.add(r);
      }
      const sub = typeUrl === TypeUrl.Cluster ? TypeUrl.ClusterLoadAssignment : TypeUrl.RouteConfiguration;
      const current = this.names.get(sub)!;
      const add = [...want].filter((n) => !current.has(n));
      const drop = [...current].filter((n) => !want.has(n));
      if (add.length || drop.length) {
        for (const n of add) current.add(n);
        for (const n of drop) {
          current.delete(n);
          this.received.get(sub)!.delete(n);
        }
        follow.push({ type_url: sub, resource_names_subscribe: add, resource_names_unsubscribe: drop, response_nonce: '' });
      }
    } else {
      const got = this.received.get(typeUrl);
      for (const r of res.resources) {
        const name = intern(r.name);
        names.push(name);
        this.bytes += r.resource?.value?.length ?? 0;
        got?.add(name);
      }
    }
    for (const req of follow) call.write(req);
    call.write({ type_url: typeUrl, response_nonce: res.nonce, resource_names_subscribe: [], resource_names_unsubscribe: [] });
    const at = now();
    this.acked.add(typeUrl);
    this.record(typeUrl, names, at, this.bytes - bytesBefore);
    this.checkComplete();
  }
}

// ---- the process ---------------------------------------------------------------

const sidecars: Sidecar[] = [];
const channels: grpc.Client[] = [];

function start(msg: StartMessage): void {
  const Client = protos.service(ADS_SERVICE);
  let completed = 0;
  const onComplete = (s: Sidecar): void => {
    completed += 1;
    send({ event: 'complete', index: s.index, ms: s.completeAt - s.startedAt, at: s.completeAt, completed });
  };
  msg.clients.forEach((spec, i) => sidecars.push(new Sidecar(i, spec, onComplete)));
  const perChannel = Math.max(1, msg.streamsPerChannel);
  for (let c = 0; c * perChannel < sidecars.length; c++) {
    // A distinct channel option keeps grpc-js from sharing one subchannel (connection) between them.
    // HTTP/2 windows as Envoy sets them for its xDS cluster (initial_stream_window_size and
    // initial_connection_window_size default to 256 MiB; here 16 MiB): with grpc-js's 64 KB
    // default, 100 streams share 64 KB in flight per connection, and a push to 2000 sidecars
    // waited on WINDOW_UPDATE round trips with both processes mostly idle.
    channels.push(new Client(msg.target, grpc.credentials.createInsecure(), { 'bench.channel': c, 'grpc.max_receive_message_length': 256 * 1024 * 1024, 'grpc.keepalive_time_ms': 60_000, 'grpc-node.flow_control_window': FLOW_CONTROL_WINDOW }));
  }
  const startOne = (i: number): void => sidecars[i]!.start(channels[Math.floor(i / perChannel)] as unknown as grpc.Client & Record<string, (...a: unknown[]) => unknown>);
  if (msg.rampMs <= 0) {
    for (let i = 0; i < sidecars.length; i++) startOne(i);
  } else {
    const interval = msg.rampMs / sidecars.length;
    const t0 = performance.now();
    let next = 0;
    const tick = (): void => {
      const due = Math.min(sidecars.length, Math.floor((performance.now() - t0) / interval) + 1);
      while (next < due) startOne(next++);
      if (next < sidecars.length) setTimeout(tick, Math.max(1, interval));
    };
    tick();
  }
  send({ event: 'started' });
}

async function collect(msg: CollectMessage): Promise<CollectResult> {
  const records = recording ?? [];
  const deadline = performance.now() + msg.timeoutMs;
  const isAffected = (r: Record_): boolean => r.typeUrl === msg.typeUrl && r.ackAt >= msg.since && r.names.some((n) => n.includes(msg.match));
  // Until every client has an affected response and none came for quietMs (a second push is waited for).
  for (;;) {
    await new Promise((r) => setTimeout(r, 50));
    const seen = new Set<number>();
    let last = 0;
    for (const r of records) {
      if (!isAffected(r)) continue;
      seen.add(r.client);
      last = Math.max(last, r.ackAt);
    }
    const t = performance.now();
    if (t > deadline) break;
    if (seen.size >= sidecars.length && now() - last >= msg.quietMs) break;
  }
  recording = undefined;
  const lastAck = new Map<number, number>();
  const responsesByType: Record<string, number> = {};
  const bytesByType: Record<string, number> = {};
  let affectedResponses = 0;
  for (const r of records) {
    if (r.ackAt < msg.since) continue;
    const short = SHORT[r.typeUrl] ?? r.typeUrl;
    responsesByType[short] = (responsesByType[short] ?? 0) + 1;
    bytesByType[short] = (bytesByType[short] ?? 0) + r.bytes;
    if (!isAffected(r)) continue;
    affectedResponses += 1;
    lastAck.set(r.client, Math.max(lastAck.get(r.client) ?? 0, r.ackAt));
  }
  const delays = [...lastAck.values()].map((t) => t - msg.since);
  return { delays, missing: sidecars.length - lastAck.size, responsesByType, bytesByType, affectedResponses };
}

process.on('message', (msg: { cmd: string; id?: number }) => {
  switch (msg.cmd) {
    case 'start':
      start(msg as unknown as StartMessage);
      break;
    case 'mark':
      recording = [];
      send({ id: msg.id, result: true });
      break;
    case 'collect':
      void collect(msg as unknown as CollectMessage).then((result) => send({ id: msg.id, result }));
      break;
    case 'usage': {
      let responses = 0;
      let bytes = 0;
      let errors = 0;
      let incomplete = 0;
      for (const s of sidecars) {
        responses += s.responses;
        bytes += s.bytes;
        errors += s.errors;
        if (!s.completeAt) incomplete += 1;
      }
      send({ id: msg.id, result: { cpu: process.cpuUsage(), memory: process.memoryUsage(), responses, bytes, errors, incomplete } });
      break;
    }
    case 'stop':
      for (const s of sidecars) s.stop();
      for (const c of channels) c.close();
      setTimeout(() => process.exit(0), 200).unref();
      break;
  }
});
