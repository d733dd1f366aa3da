// Gateway credentials by name (Istio's `credentialName`), served the way
// istiod serves them: Envoy's SecretDiscoveryService (StreamSecrets, state of
// the world) on the control plane's TLS port, for the gateway's agent to
// forward to its proxy. A stream is authenticated by the client certificate
// the TLS handshake verified (a SPIFFE identity of the mesh), and authorized
// as Istio does for Kubernetes Secrets: the node must be a gateway (router)
// and a Secret is served only from the namespace of the verified identity.
// Names are `NAME` (the key pair, `cert`/`key` or `tls.crt`/`tls.key`) and
// `NAME-cacert` (the CA: Secret `NAME-cacert`, else `ca.crt`/`cacert` of
// `NAME`); Istio's `kubernetes://` prefix is accepted. A name that resolves to
// nothing is left out of the response (the proxy keeps that chain without a
// certificate) and logged with the Gateways that reference it. A changed
// Secret is pushed to the streams that asked for it; unchanged streams get
// nothing.

import * as grpc from '@grpc/grpc-js';
import type { ConfigObject, CredentialMaterial, SecretSpec } from '../../api/index.ts';
import { credentialMaterial, istioTypeUrl, secretKind } from '../../api/index.ts';
import type { Logger } from '../../common/index.ts';
import { parseSpiffeId } from '../../common/index.ts';
import type { ConfigSnapshot } from '../../galley/index.ts';
import { loadXdsProtos, packMessage, TypeUrl } from '../../xds/index.ts';
import type { AnyMessage, DiscoveryRequest, DiscoveryResponse } from '../../xds/index.ts';
import { parseNodeId } from '../model/index.ts';

const SDS_SERVICE = 'envoy.service.secret.v3.SecretDiscoveryService';
const SECRET_TYPE = istioTypeUrl(secretKind);
const GATEWAY_TYPE = 'networking.istio.io/v1/Gateway';
const CA_SUFFIX = '-cacert';
const KUBERNETES_PREFIX = 'kubernetes://';

export interface CredentialServerLimits {
  /** Open streams at once; more are refused with RESOURCE_EXHAUSTED. */
  readonly maxStreams: number;
  /** Names one request may list. */
  readonly maxNames: number;
  /** Length of one name (a Kubernetes object name is at most 253, plus the prefix). */
  readonly maxNameLength: number;
}

export const DEFAULT_CREDENTIAL_LIMITS: CredentialServerLimits = { maxStreams: 1024, maxNames: 256, maxNameLength: 300 };

/** Where config comes from: Galley's SnapshotDistributor fits. */
export interface CredentialSnapshots {
  current(): ConfigSnapshot | undefined;
  subscribe(listener: (snapshot: ConfigSnapshot) => void): () => void;
}

export interface CredentialServerOptions {
  readonly snapshots: CredentialSnapshots;
  /** Only SPIFFE identities of this trust domain are accepted. */
  readonly trustDomain: string;
  readonly log: Logger;
  readonly limits?: Partial<CredentialServerLimits>;
}

type Call = grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>;

interface StreamState {
  readonly call: Call;
  /** Namespace of the verified identity: the only one Secrets are read from. */
  readonly namespace: string;
  readonly peer: string;
  nodeId: string | undefined;
  names: readonly string[];
  /** What the last response held, to skip pushes that change nothing. */
  sentKey: string | undefined;
  nonce: number;
  /** Names already reported missing, so one stream warns once per name. */
  readonly warned: Set<string>;
}

export class CredentialServer {
  private readonly options: CredentialServerOptions;
  private readonly limits: CredentialServerLimits;
  private readonly streams = new Set<StreamState>();
  private unsubscribe: (() => void) | undefined;

  constructor(options: CredentialServerOptions) {
    this.options = options;
    this.limits = { ...DEFAULT_CREDENTIAL_LIMITS, ...options.limits };
  }

  /** Adds the SDS service to a server bound with TLS that requests client certificates (Citadel's CA port). */
  register(server: grpc.Server): void {
    this.unsubscribe ??= this.options.snapshots.subscribe(() => {
      for (const s of this.streams) if (s.nodeId !== undefined) this.push(s);
    });
    const unimplemented = (what: string) => (call: { emit(event: 'error', err: Error): boolean }, callback?: grpc.sendUnaryData<unknown>): void => {
      const err = Object.assign(new Error(`${what} is not served; use StreamSecrets`), { code: grpc.status.UNIMPLEMENTED });
      if (callback) callback(err);
      else call.emit('error', err);
    };
    server.addService(loadXdsProtos().serviceDefinition(SDS_SERVICE), {
      StreamSecrets: (call: Call) => this.stream(call),
      FetchSecrets: unimplemented('FetchSecrets'),
      DeltaSecrets: unimplemented('DeltaSecrets'),
    });
  }

  close(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    for (const s of this.streams) s.call.end();
    this.streams.clear();
  }

  private refuse(call: Call, code: grpc.status, message: string): void {
    this.options.log.warn({ peer: call.getPeer(), code: grpc.status[code] }, `credential stream refused: ${message}`);
    // grpc-js sends the status when the stream ends after an 'error' event; destroy() would end it without any status, leaving the client waiting.
    call.removeAllListeners('data');
    call.emit('error', Object.assign(new Error(message), { code }));
  }

  private stream(call: Call): void {
    const identity = this.identityOf(call);
    if (!identity) return this.refuse(call, grpc.status.UNAUTHENTICATED, `connect with a workload certificate of trust domain ${this.options.trustDomain} (mTLS): credentials are served to verified identities only`);
    if (this.streams.size >= this.limits.maxStreams) return this.refuse(call, grpc.status.RESOURCE_EXHAUSTED, `too many credential streams (at most ${this.limits.maxStreams})`);
    const state: StreamState = { call, namespace: identity.namespace, peer: identity.id, nodeId: undefined, names: [], sentKey: undefined, nonce: 0, warned: new Set() };
    this.streams.add(state);
    const drop = (): void => {
      this.streams.delete(state);
    };
    call.on('end', () => {
      drop();
      call.end();
    });
    call.on('error', drop);
    call.on('cancelled', drop);
    call.on('data', (request: DiscoveryRequest) => this.onRequest(state, request));
  }

  /** The SPIFFE identity of a client certificate the handshake verified against the mesh roots. */
  private identityOf(call: Call): { id: string; namespace: string } | undefined {
    // grpc-js exposes the peer certificate only when the TLS handshake verified it.
    const peer = call.getAuthContext()?.sslPeerCertificate;
    const ids = (peer?.subjectaltname ?? '').split(/,\s*/).filter((s) => s.startsWith('URI:')).map((s) => s.slice(4));
    const own = ids.map((id) => ({ id, parsed: parseSpiffeId(id) })).filter((x) => x.parsed?.trustDomain === this.options.trustDomain);
    if (own.length !== 1) return undefined;
    return { id: own[0]!.id, namespace: own[0]!.parsed!.namespace };
  }

  private onRequest(state: StreamState, request: DiscoveryRequest): void {
    const { call } = state;
    if (request.type_url && request.type_url !== TypeUrl.Secret) return this.refuse(call, grpc.status.INVALID_ARGUMENT, `this service serves ${TypeUrl.Secret}, not ${request.type_url}`);
    if (state.nodeId === undefined) {
      const id = request.node?.id;
      const node = id ? parseNodeId(id) : undefined;
      if (!node) return this.refuse(call, grpc.status.INVALID_ARGUMENT, 'the first request must carry the node (id TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.DOMAIN)');
      // Istio: only gateways read Secrets, and only from their own namespace.
      if (node.type !== 'router') return this.refuse(call, grpc.status.PERMISSION_DENIED, `node ${id} is a ${node.type}: credentials by name are served to gateways (router) only`);
      if (node.namespace !== state.namespace) return this.refuse(call, grpc.status.PERMISSION_DENIED, `node ${id} claims namespace ${node.namespace} but its certificate is ${state.peer}`);
      state.nodeId = id;
    }
    if (request.error_detail?.code) this.options.log.warn({ node: state.nodeId, nonce: request.response_nonce, message: request.error_detail.message }, 'gateway rejected a credential (NACK)');
    const names = [...new Set(request.resource_names ?? [])].sort();
    if (names.length > this.limits.maxNames) return this.refuse(call, grpc.status.RESOURCE_EXHAUSTED, `${names.length} credential names in one request (at most ${this.limits.maxNames})`);
    const long = names.find((n) => n.length > this.limits.maxNameLength);
    if (long !== undefined) return this.refuse(call, grpc.status.INVALID_ARGUMENT, `a credential name of ${long.length} characters (at most ${this.limits.maxNameLength})`);
    // An ACK or NACK of the current names needs no answer; new names or a first request do.
    if (names.join('\n') !== state.names.join('\n') || state.sentKey === undefined) {
      state.names = names;
      state.sentKey = undefined;
      this.push(state);
    }
  }

  private push(state: StreamState): void {
    const snapshot = this.options.snapshots.current();
    if (!snapshot) return;
    const resources: AnyMessage[] = [];
    let key = '';
    for (const name of state.names) {
      const found = this.resolve(snapshot, state.namespace, name);
      if (!found) {
        this.reportMissing(snapshot, state, name);
        continue;
      }
      state.warned.delete(name);
      key += `${name}@${found.source}\n`;
      resources.push(found.resource);
    }
    if (key === state.sentKey) return;
    state.sentKey = key;
    state.nonce++;
    state.call.write({ version_info: String(snapshot.version), resources, type_url: TypeUrl.Secret, nonce: String(state.nonce) });
    this.options.log.debug({ node: state.nodeId, names: state.names, served: resources.length }, 'credentials pushed');
  }

  /** The secret a name stands for in `namespace`, with the stored version it came from. */
  private resolve(snapshot: ConfigSnapshot, namespace: string, rawName: string): { resource: AnyMessage; source: string } | undefined {
    const name = rawName.startsWith(KUBERNETES_PREFIX) ? rawName.slice(KUBERNETES_PREFIX.length) : rawName;
    const lookup = (n: string): { obj: ConfigObject; material: CredentialMaterial } | undefined => {
      const obj = snapshot.get(SECRET_TYPE, namespace, n);
      return obj ? { obj, material: credentialMaterial(obj.spec as SecretSpec) } : undefined;
    };
    const source = (o: ConfigObject): string => `${o.metadata.name}/${o.metadata.resourceVersion ?? ''}`;
    if (name.endsWith(CA_SUFFIX)) {
      // Secret NAME-cacert first, then the CA inside Secret NAME, as Istio's credentials controller reads them.
      const own = lookup(name);
      const ca = own?.material.caCert !== undefined ? own : lookup(name.slice(0, -CA_SUFFIX.length));
      if (ca?.material.caCert === undefined) return undefined;
      return { source: source(ca.obj), resource: packMessage(TypeUrl.Secret, { name: rawName, validation_context: { trusted_ca: { inline_bytes: Buffer.from(ca.material.caCert) } } }) };
    }
    const pair = lookup(name);
    if (pair?.material.certChain === undefined || pair.material.privateKey === undefined) return undefined;
    return {
      source: source(pair.obj),
      resource: packMessage(TypeUrl.Secret, {
        name: rawName,
        tls_certificate: { certificate_chain: { inline_bytes: Buffer.from(pair.material.certChain) }, private_key: { inline_bytes: Buffer.from(pair.material.privateKey) } },
      }),
    };
  }

  /** One warning per stream and name, naming the Gateways whose servers ask for it. */
  private reportMissing(snapshot: ConfigSnapshot, state: StreamState, rawName: string): void {
    if (state.warned.has(rawName)) return;
    state.warned.add(rawName);
    const base = rawName.replace(KUBERNETES_PREFIX, '').replace(/-cacert$/, '');
    const gateways: string[] = [];
    for (const gw of snapshot.objects(GATEWAY_TYPE)) {
      const servers = ((gw.spec ?? {}) as { servers?: Array<{ tls?: { credentialName?: string; credentialNames?: string[] } }> }).servers ?? [];
      if (servers.some((s) => s.tls?.credentialName === base || s.tls?.credentialNames?.includes(base))) gateways.push(`${gw.metadata.namespace}/${gw.metadata.name}`);
    }
    this.options.log.warn(
      { node: state.nodeId, credentialName: rawName, secret: `${state.namespace}/${base}`, gateways },
      `credentialName "${rawName}" of Gateway ${gateways.join(', ') || '(none)'}: no usable Secret ${state.namespace}/${base}${rawName.endsWith(CA_SUFFIX) ? ' CA (cacert or ca.crt)' : ' key pair'} in the gateway's namespace; that server gets no certificate until one is applied`,
    );
  }
}
