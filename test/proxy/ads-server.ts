// A small ADS management server for tests (grpc-js, state of the world):
// set resources per type URL, push them to every stream, and record every
// DiscoveryRequest so tests can check ACKs and NACKs.

import * as grpc from '@grpc/grpc-js';
import { staticCluster } from './helpers.ts';
import { ADS_SERVICE, loadXdsProtos, packMessage } from '../../src/xds/index.ts';
import type { AnyMessage, DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse } from '../../src/xds/index.ts';

type Call = grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>;
type DeltaCall = grpc.ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;

/** The name of an Envoy resource: `name`, or `cluster_name` for a ClusterLoadAssignment. */
function resourceName(r: object): string {
  const o = r as { name?: string; cluster_name?: string };
  return o.name ?? o.cluster_name ?? '';
}

export class TestAdsServer {
  readonly server = new grpc.Server();
  readonly requests: DiscoveryRequest[] = [];
  readonly deltaRequests: DeltaDiscoveryRequest[] = [];
  private readonly deltaCalls = new Set<DeltaCall>();
  private readonly deltaState = new Map<string, Map<string, { version: string; resource: AnyMessage }>>();
  port = 0;
  private readonly calls = new Set<Call>();
  private readonly state = new Map<string, { version: string; resources: AnyMessage[] }>();
  private nonce = 0;
  private waiters: Array<() => void> = [];

  async start(): Promise<void> {
    this.server.addService(loadXdsProtos().serviceDefinition(ADS_SERVICE), {
      StreamAggregatedResources: (call: Call) => {
        this.calls.add(call);
        const sent = new Set<string>();
        call.on('data', (req: DiscoveryRequest) => {
          this.requests.push(req);
          for (const w of this.waiters.splice(0)) w();
          // First request for a type on this stream: answer with what we have.
          const t = req.type_url!;
          if (!sent.has(t) && this.state.has(t)) {
            sent.add(t);
            this.send(call, t);
          }
        });
        call.on('end', () => call.end());
        call.on('error', () => undefined);
        call.on('close', () => this.calls.delete(call));
      },
      DeltaAggregatedResources: (call: DeltaCall) => {
        this.deltaCalls.add(call);
        const started = new Set<string>();
        call.on('data', (req: DeltaDiscoveryRequest) => {
          this.deltaRequests.push(req);
          for (const w of this.waiters.splice(0)) w();
          const t = req.type_url!;
          const held = this.deltaState.get(t);
          // Answer a type's first subscription with everything held (a test server need not filter by name).
          if (!started.has(t) && req.resource_names_subscribe?.length && held) {
            started.add(t);
            this.sendDelta(call, t, [...held.keys()], []);
          }
        });
        call.on('end', () => call.end());
        call.on('error', () => undefined);
        call.on('close', () => this.deltaCalls.delete(call));
      },
    });
    this.port = await new Promise((resolve, reject) => this.server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))));
  }

  /** Sets the resources of a type (Envoy JSON objects) and pushes them to every stream. */
  set(typeUrl: string, version: string, resources: object[]): void {
    this.state.set(typeUrl, { version, resources: resources.map((r) => packMessage(typeUrl, r)) });
    for (const call of this.calls) this.send(call, typeUrl);
  }

  /** Delta: adds or replaces resources (Envoy JSON) and removes names, pushing only the change. */
  setDelta(typeUrl: string, version: string, resources: object[], removed: string[] = []): void {
    let held = this.deltaState.get(typeUrl);
    if (!held) this.deltaState.set(typeUrl, (held = new Map()));
    for (const r of resources) held.set(resourceName(r), { version, resource: packMessage(typeUrl, r) });
    for (const n of removed) held.delete(n);
    for (const call of this.deltaCalls) this.sendDelta(call, typeUrl, resources.map(resourceName), removed);
  }

  private sendDelta(call: DeltaCall, typeUrl: string, names: string[], removed: string[]): void {
    const held = this.deltaState.get(typeUrl)!;
    call.write({
      system_version_info: '',
      type_url: typeUrl,
      resources: names.map((name) => ({ name, version: held.get(name)!.version, resource: held.get(name)!.resource })),
      removed_resources: removed,
      nonce: String(++this.nonce),
    });
  }

  async waitForDelta(pred: (r: DeltaDiscoveryRequest) => boolean, timeoutMs = 5000): Promise<DeltaDiscoveryRequest> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.deltaRequests.find(pred);
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`no matching DeltaDiscoveryRequest within ${timeoutMs}ms; got ${JSON.stringify(this.deltaRequests.map((r) => [r.type_url, r.resource_names_subscribe, r.response_nonce, r.error_detail?.message]))}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
  }

  private send(call: Call, typeUrl: string): void {
    const s = this.state.get(typeUrl)!;
    call.write({ version_info: s.version, resources: s.resources, type_url: typeUrl, nonce: String(++this.nonce) });
  }

  /** Resolves when a request matching `pred` has arrived (already or later). */
  async waitFor(pred: (r: DiscoveryRequest) => boolean, timeoutMs = 5000): Promise<DiscoveryRequest> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.requests.find(pred);
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`no matching DiscoveryRequest within ${timeoutMs}ms; got ${JSON.stringify(this.requests.map((r) => [r.type_url, r.version_info, r.response_nonce, r.error_detail?.message]))}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
  }

  stop(): void {
    for (const c of this.calls) c.end();
    for (const c of this.deltaCalls) c.end();
    this.server.forceShutdown();
  }
}

/** The bootstrap of a proxy that takes CDS and LDS over ADS from `adsPort` (state of the world or delta). */
export function adsBootstrap(adsPort: number, apiType: 'GRPC' | 'DELTA_GRPC', node: Record<string, unknown>): Record<string, unknown> {
  return {
    node,
    dynamic_resources: { ads_config: { api_type: apiType, transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'xds-grpc' } }] }, cds_config: { ads: {} }, lds_config: { ads: {} } },
    static_resources: { clusters: [staticCluster('xds-grpc', [adsPort])] },
  };
}

/** Polls `check` until it holds (5 s at most): config arrives over ADS asynchronously. */
export async function untilTrue(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
