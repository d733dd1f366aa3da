// Shared by the xds-server tests: a Pilot ADS server on 127.0.0.1 port 0, raw
// grpc-js ADS clients, a fake clock, and small generators that serve whatever
// resources a test's push context holds.

import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import type { DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse } from '../../src/xds/index.ts';
import { ADS_PROTO_FILES, ADS_SERVICE, TypeUrl, loadXdsProtos, unpackMessage } from '../../src/xds/index.ts';
import type { GenerateRequest, ProxyNode, XdsGenerator, XdsResource } from '../../src/pilot/model/index.ts';
import type { PilotXdsServerOptions } from '../../src/pilot/xds-server/index.ts';
import { PilotXdsServer } from '../../src/pilot/xds-server/index.ts';
import { FakeClock } from '../helpers/fake-clock.ts';
export { FakeClock };
import { Queue } from '../helpers/queue.ts';
export { Queue };



/** A push context holding, per type URL, the resources every proxy gets. */
export interface TestPush {
  readonly version: string;
  readonly resources: Readonly<Record<string, readonly XdsResource[]>>;
}

export interface GeneratorCall {
  readonly typeUrl: string;
  readonly proxy: string;
  readonly request: GenerateRequest;
}

/** Generators serving TestPush.resources, filtered by requested names; every call is recorded. */
export function testGenerators(calls: GeneratorCall[] = []): Map<string, XdsGenerator<TestPush>> {
  const make = (typeUrl: string): XdsGenerator<TestPush> => ({
    typeUrl,
    generate(proxy: ProxyNode, push: TestPush, request: GenerateRequest) {
      calls.push({ typeUrl, proxy: proxy.id, request });
      const all = push.resources[typeUrl] ?? [];
      return request.names ? all.filter((r) => request.names!.includes(r.name)) : all;
    },
  });
  return new Map([TypeUrl.Listener, TypeUrl.Cluster, TypeUrl.RouteConfiguration, TypeUrl.ClusterLoadAssignment].map((t) => [t, make(t)]));
}

export const HOST_A = 'a.default.svc.cluster.local';
export const HOST_B = 'b.default.svc.cluster.local';
export const CLUSTER_A = `outbound|80||${HOST_A}`;
export const CLUSTER_B = `outbound|80||${HOST_B}`;

export function listener(name: string, port: number, route = '80'): XdsResource {
  return {
    name,
    value: {
      name,
      address: { socket_address: { address: '0.0.0.0', port_value: port } },
      filter_chains: [
        {
          filters: [
            {
              name: 'envoy.filters.network.http_connection_manager',
              typed_config: {
                '@type': TypeUrl.HttpConnectionManager,
                stat_prefix: name,
                rds: { route_config_name: route, config_source: { ads: {}, resource_api_version: 2 } },
                http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': TypeUrl.Router } }],
              },
            },
          ],
        },
      ],
    },
  };
}

export function cluster(name: string, timeoutSeconds = 1): XdsResource {
  return { name, value: { name, type: 3 /* EDS */, eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 2 } }, connect_timeout: { seconds: timeoutSeconds } } };
}

export function route(name: string, clusterName: string, domain = '*'): XdsResource {
  return { name, value: { name, virtual_hosts: [{ name: domain, domains: [domain], routes: [{ match: { prefix: '/' }, route: { cluster: clusterName } }] }] } };
}

export function endpoints(clusterName: string, ...addresses: Array<[string, number]>): XdsResource {
  return {
    name: clusterName,
    value: {
      cluster_name: clusterName,
      endpoints: [{ locality: { region: 'r1', zone: 'z1' }, load_balancing_weight: { value: 1 }, lb_endpoints: addresses.map(([address, port]) => ({ endpoint: { address: { socket_address: { address, port_value: port } } } })) }],
    },
  };
}

/** A small mesh: one listener, two clusters with routes and endpoints. */
export function basePush(version = 'v1', overrides: Partial<Record<string, readonly XdsResource[]>> = {}): TestPush {
  const resources: Record<string, readonly XdsResource[]> = {
    [TypeUrl.Listener]: [listener('0.0.0.0_80', 80)],
    [TypeUrl.Cluster]: [cluster(CLUSTER_A), cluster(CLUSTER_B)],
    [TypeUrl.RouteConfiguration]: [route('80', CLUSTER_A)],
    [TypeUrl.ClusterLoadAssignment]: [endpoints(CLUSTER_A, ['10.0.0.1', 8080]), endpoints(CLUSTER_B, ['10.0.0.2', 8080])],
  };
  for (const [k, v] of Object.entries(overrides)) if (v) resources[k] = v;
  return { version, resources };
}

/** Node metadata as a google.protobuf.Struct (protobufjs's own camelCase Struct, see resolve-proxy.ts). */
export function structOf(obj: Record<string, unknown>): unknown {
  const value = (v: unknown): unknown => {
    if (typeof v === 'string') return { stringValue: v };
    if (typeof v === 'number') return { numberValue: v };
    if (typeof v === 'boolean') return { boolValue: v };
    if (Array.isArray(v)) return { listValue: { values: v.map(value) } };
    if (v && typeof v === 'object') return { structValue: structOf(v as Record<string, unknown>) };
    return { nullValue: 'NULL_VALUE' };
  };
  return { fields: Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, value(v)])) };
}

export function nodeOf(name = 'app-1.default', metadata: Record<string, unknown> = { NAMESPACE: 'default', LABELS: { app: 'app' } }) {
  return { id: `sidecar~10.1.0.1~${name}~default.svc.cluster.local`, metadata: structOf(metadata) };
}

export interface Started {
  readonly port: number;
  readonly xds: PilotXdsServer<TestPush>;
  readonly clock: FakeClock;
  readonly calls: GeneratorCall[];
  readonly metrics: Registry;
  stop(): void;
}

export async function startPilot(options: Partial<PilotXdsServerOptions<TestPush>> = {}): Promise<Started> {
  const clock = new FakeClock(1_000_000);
  const calls: GeneratorCall[] = [];
  const metrics = new Registry();
  const xds = new PilotXdsServer<TestPush>({ generators: testGenerators(calls), initialPush: basePush(), clock, metrics, ...options });
  const server = new grpc.Server();
  xds.register(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    port,
    xds,
    clock,
    calls,
    metrics,
    stop() {
      xds.close();
      server.forceShutdown();
    },
  };
}

function adsClient(port: number): grpc.Client & Record<string, (...args: unknown[]) => unknown> {
  const Service = loadXdsProtos(ADS_PROTO_FILES).service(ADS_SERVICE);
  return new Service(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as never;
}

export interface Stream<Req, Res> {
  readonly responses: Queue<Res>;
  /** Resolves with the gRPC status the stream ended with. */
  readonly ended: Promise<grpc.StatusObject>;
  send(req: Req): void;
  close(): void;
}

function open<Req, Res>(port: number, method: string): Stream<Req, Res> {
  const client = adsClient(port);
  const call = client[method]!() as grpc.ClientDuplexStream<Req, Res>;
  const responses = new Queue<Res>();
  call.on('data', (r: Res) => responses.push(r));
  call.on('error', () => {});
  const ended = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
  return {
    responses,
    ended,
    send: (req) => call.write(req),
    close() {
      call.cancel();
      client.close();
    },
  };
}

export function sotwStream(port: number): Stream<DiscoveryRequest, DiscoveryResponse> {
  return open(port, 'StreamAggregatedResources');
}

export function deltaStream(port: number): Stream<DeltaDiscoveryRequest, DeltaDiscoveryResponse> {
  return open(port, 'DeltaAggregatedResources');
}

/** Resource names in a SotW response (decoded, since SotW resources carry no names). */
export function namesIn(res: DiscoveryResponse): string[] {
  return res.resources.map((r) => {
    const o = unpackMessage<{ name?: string; cluster_name?: string }>(r);
    return (res.type_url === TypeUrl.ClusterLoadAssignment ? o.cluster_name : o.name) ?? '';
  });
}

/** Takes the next response and checks its type. */
export async function nextOf<T extends { type_url: string }>(stream: Stream<unknown, T>, typeUrl: string): Promise<T> {
  const res = await stream.responses.take();
  if (res.type_url !== typeUrl) throw new Error(`expected a ${typeUrl} response, got ${res.type_url}`);
  return res;
}

/**
 * Waits for server-side state that a request (with no response to wait for,
 * such as an ACK) changes; polls, since nothing else signals it.
 */
export async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 2));
  }
}
