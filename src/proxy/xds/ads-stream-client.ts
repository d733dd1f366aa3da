// What the state-of-the-world and the delta ADS clients share: one
// bidirectional stream to the management server, reopened with capped
// exponential backoff; the node sent on the first request of each stream;
// responses handled one at a time, in order, and only while their stream is
// the current one; after CDS or LDS, EDS, RDS and SDS follow the names the
// new clusters and listeners need; `initialized` once CDS and LDS each
// answered once. The subclasses speak their protocol: the requests, the
// ACK/NACK and what is held between responses.

import * as grpc from '@grpc/grpc-js';
import { ADS_SERVICE, TypeUrl, loadXdsProtos } from '../../xds/index.ts';
import type { NodeMessage } from '../../xds/index.ts';
import type { Logger } from '../../common/index.ts';
import type { XdsConfigSink } from './xds-sink.ts';
import { ReconnectBackoff } from './reconnect-backoff.ts';

export interface AdsClientOptions {
  /** host:port of the management server. */
  readonly target: string;
  readonly node: NodeMessage;
  readonly logger: Logger;
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

type AdsMethod = 'StreamAggregatedResources' | 'DeltaAggregatedResources';

export abstract class AdsStreamClient<Req extends { node?: NodeMessage | null }, Res extends { type_url: string }> {
  protected readonly sink: XdsConfigSink;
  protected readonly options: AdsClientOptions;
  protected stream: grpc.ClientDuplexStream<Req, Res> | undefined;
  private readonly client: grpc.Client;
  private readonly method: AdsMethod;
  /** `ADS` / `delta ADS`, for log lines. */
  private readonly label: string;
  private readonly backoff: ReconnectBackoff;
  private queue: Promise<void> = Promise.resolve();
  private stopped = false;
  private sentNode = false;
  private readonly seen = new Set<string>();
  private markInitialized!: () => void;
  /** Resolves once CDS and LDS each answered once (accepted or not). */
  readonly initialized: Promise<void> = new Promise((r) => (this.markInitialized = r));

  constructor(sink: XdsConfigSink, options: AdsClientOptions, method: AdsMethod, label: string) {
    this.sink = sink;
    this.options = options;
    this.method = method;
    this.label = label;
    this.backoff = new ReconnectBackoff(options);
    const Client = loadXdsProtos().service(ADS_SERVICE);
    this.client = new Client(options.target, grpc.credentials.createInsecure());
  }

  start(): void {
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.backoff.cancel();
    this.stream?.cancel();
    this.client.close();
    this.markInitialized();
  }

  /** A new stream: send every subscription again, with what is held. */
  protected abstract resubscribe(): void;
  /** Applies one response and ACKs or NACKs it; false when its type is not subscribed. */
  protected abstract handle(res: Res): Promise<boolean>;
  /** Sets the names of a non-wildcard subscription, requesting the change. */
  protected abstract follow(typeUrl: string, names: string[]): void;

  /** Writes on the current stream (nothing without one); the first request of a stream carries the node. */
  protected write(req: Req): void {
    if (!this.stream) return;
    if (!this.sentNode) {
      req.node = this.options.node;
      this.sentNode = true;
    }
    this.stream.write(req);
  }

  private connect(): void {
    if (this.stopped) return;
    const stream = (this.client as unknown as Record<AdsMethod, () => grpc.ClientDuplexStream<Req, Res>>)[this.method]();
    this.stream = stream;
    this.sentNode = false;
    const connected = this.sink.stats.gauge('control_plane.connected_state');
    const up = (): void => {
      connected.value = 1;
      this.backoff.reset();
    };
    stream.on('metadata', up);
    stream.on('data', (res: Res) => {
      up();
      this.queue = this.queue.then(() => this.onResponse(stream, res));
    });
    const retry = (err?: Error): void => {
      if (this.stream !== stream) return;
      this.stream = undefined;
      connected.value = 0;
      if (this.stopped) return;
      const backoffMs = this.backoff.schedule(() => this.connect());
      this.options.logger.warn({ err: err?.message, backoffMs }, `${this.label} stream closed; reconnecting`);
    };
    stream.on('error', retry);
    stream.on('end', () => retry());
    this.resubscribe();
  }

  private async onResponse(stream: grpc.ClientDuplexStream<Req, Res>, res: Res): Promise<void> {
    if (stream !== this.stream) return;
    if (!(await this.handle(res))) return;
    const sink = this.sink;
    if (res.type_url === TypeUrl.Cluster) this.follow(TypeUrl.ClusterLoadAssignment, sink.clusters.edsNames());
    if (res.type_url === TypeUrl.Listener) this.follow(TypeUrl.RouteConfiguration, sink.listeners.rdsNames());
    // SDS over ADS: secrets named by the clusters and listeners just applied.
    if ((res.type_url === TypeUrl.Cluster || res.type_url === TypeUrl.Listener) && sink.secrets) this.follow(TypeUrl.Secret, sink.secrets.names({ kind: 'ads' }));
    this.seen.add(res.type_url);
    if (this.seen.has(TypeUrl.Cluster) && this.seen.has(TypeUrl.Listener)) this.markInitialized();
  }
}
