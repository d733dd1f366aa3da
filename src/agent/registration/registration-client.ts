// The agent's side of workload registration: registers the workload with
// the control plane over the CA port, heartbeats on an interval, registers
// again when the control plane has forgotten it (a restart), and unregisters
// on shutdown. It authenticates with the workload certificate (mTLS), read
// fresh for every call so rotation is followed, or a bootstrap token.

import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../common/index.ts';
import { createLogger } from '../../common/index.ts';
import type { RegistrationReply, WorkloadRegistrationMessage } from './registration-protocol.ts';
import { registrationServiceDefinition } from './registration-protocol.ts';

/** How a call proves who the workload is (the CSR's credentials). */
export type RegistrationCredential =
  | { readonly kind: 'certificate'; readonly certChainPem: string; readonly privateKeyPem: string; readonly rootCertPem: string }
  | { readonly kind: 'token'; readonly token: string; readonly rootCertPem: string };

export interface RegistrationClientOptions {
  /** host:port of the CA port. */
  readonly address: string;
  readonly registration: WorkloadRegistrationMessage;
  /** The credential for the next call (the current certificate, usually). */
  readonly credential: () => RegistrationCredential;
  /** Name checked in the CA's serving certificate (default istiod.istio-system.svc). */
  readonly serverName?: string;
  /** Default 5 s (the registry marks a workload unhealthy after 15 s without one). */
  readonly heartbeatIntervalMs?: number;
  readonly timeoutMs?: number;
  readonly log?: Logger;
}

type Stub = grpc.Client & Record<'Register' | 'Heartbeat' | 'Unregister', (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: grpc.requestCallback<RegistrationReply>) => void>;

const Client = grpc.makeGenericClientConstructor(registrationServiceDefinition, 'WorkloadRegistration');

export class RegistrationClient {
  private readonly options: RegistrationClientOptions;
  private readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private stub: Stub | undefined;
  private stubKey = '';

  constructor(options: RegistrationClientOptions) {
    this.options = options;
    this.log = options.log ?? createLogger('agent.registration');
  }

  /** Registers once (rejects with the control plane's reason), then heartbeats until stop(). */
  async start(): Promise<void> {
    await this.call('Register', this.options.registration);
    this.log.info({ name: this.options.registration.name, namespace: this.options.registration.namespace, address: this.options.registration.address, ports: this.options.registration.ports }, 'workload registered');
    this.schedule();
  }

  /** Stops heartbeating and removes the workload from the registry (best effort). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    const { name, namespace } = this.options.registration;
    try {
      await this.call('Unregister', { name, namespace });
      this.log.info({ name, namespace }, 'workload unregistered');
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'unregistering failed; the registry drops the workload when heartbeats stop');
    } finally {
      this.stub?.close();
      this.stub = undefined;
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.beat(), this.options.heartbeatIntervalMs ?? 5000);
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    const { name, namespace } = this.options.registration;
    try {
      const reply = await this.call('Heartbeat', { name, namespace });
      if (!reply.registered && !this.stopped) {
        // The control plane restarted (registrations live in its memory): register again.
        await this.call('Register', this.options.registration);
        this.log.info({ name, namespace }, 'workload registered again');
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'heartbeat failed; retrying');
    }
    this.schedule();
  }

  private call(methodName: 'Register' | 'Heartbeat' | 'Unregister', request: unknown): Promise<RegistrationReply> {
    const credential = this.options.credential();
    const metadata = new grpc.Metadata();
    if (credential.kind === 'token') metadata.set('authorization', `Bearer ${credential.token}`);
    const stub = this.stubFor(credential);
    return new Promise((resolve, reject) => {
      stub[methodName](request, metadata, { deadline: Date.now() + (this.options.timeoutMs ?? 5000) }, (err, value) => {
        if (err) reject(new Error(`${methodName} refused by ${this.options.address}: ${err.details || err.message}`, { cause: err }));
        else resolve(value ?? { registered: false });
      });
    });
  }

  /** One channel per credential: a rotated certificate gets a new TLS connection. */
  private stubFor(credential: RegistrationCredential): Stub {
    const key = credential.kind === 'certificate' ? credential.certChainPem : `token|${credential.rootCertPem}`;
    if (this.stub && this.stubKey === key) return this.stub;
    this.stub?.close();
    const creds = credential.kind === 'certificate'
      ? grpc.credentials.createSsl(Buffer.from(credential.rootCertPem), Buffer.from(credential.privateKeyPem), Buffer.from(credential.certChainPem))
      : grpc.credentials.createSsl(Buffer.from(credential.rootCertPem));
    const name = this.options.serverName ?? 'istiod.istio-system.svc';
    this.stub = new Client(this.options.address, creds, { 'grpc.ssl_target_name_override': name, 'grpc.default_authority': name, 'grpc.use_local_subchannel_pool': 1 }) as unknown as Stub;
    this.stubKey = key;
    return this.stub;
  }
}
