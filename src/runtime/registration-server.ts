// The control plane's side of workload registration
// (`mesh.runtime.v1.WorkloadRegistration`, src/agent/registration): served on
// Citadel's CA port with its TLS credentials. Each call is authenticated as
// the CSR is (a workload certificate the TLS handshake verified against the
// mesh roots, or a bootstrap token) and then authorized by Pilot's
// SpiffeRegistrationAuthorizer inside LocalRegistry.register: a workload may
// only register itself.

import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../common/index.ts';
import { isMeshError, parseSpiffeId } from '../common/index.ts';
import { registrationServiceDefinition } from '../agent/index.ts';
import type { RegistrationReply, WorkloadRef, WorkloadRegistrationMessage } from '../agent/index.ts';
import type { Citadel } from '../citadel/index.ts';
import { systemCitadelClock, verifyBootstrapToken } from '../citadel/index.ts';
import type { LocalRegistry, RegistrationHandle } from '../pilot/index.ts';

export interface RegistrationServerOptions {
  readonly registry: LocalRegistry;
  readonly citadel: Citadel;
  readonly log: Logger;
}

type Call = grpc.ServerUnaryCall<unknown, RegistrationReply>;

export class RegistrationServer {
  private readonly options: RegistrationServerOptions;
  private readonly handles = new Map<string, RegistrationHandle>();

  constructor(options: RegistrationServerOptions) {
    this.options = options;
  }

  register(server: grpc.Server): void {
    const unary = (fn: (call: Call, caller: string) => RegistrationReply) => (call: Call, callback: grpc.sendUnaryData<RegistrationReply>): void => {
      this.authenticate(call).then(
        (caller) => callback(null, fn(call, caller)),
        (err: unknown) => callback(this.refusal(err, call.getPeer())),
      ).catch((err: unknown) => callback(this.refusal(err, call.getPeer())));
    };
    server.addService(registrationServiceDefinition, {
      Register: unary((call, caller) => {
        const reg = call.request as WorkloadRegistrationMessage;
        const handle = this.options.registry.register(reg, caller);
        this.handles.set(`${reg.namespace}/${reg.name}`, handle);
        this.options.log.info({ workload: `${reg.namespace}/${reg.name}`, address: reg.address, ports: reg.ports, caller }, 'workload registered');
        return { registered: true };
      }),
      Heartbeat: unary((call, caller) => {
        const ref = call.request as WorkloadRef;
        return { registered: this.options.registry.heartbeat(String(ref.name), String(ref.namespace), caller) };
      }),
      Unregister: unary((call, caller) => {
        const ref = call.request as WorkloadRef;
        this.handles.delete(`${ref.namespace}/${ref.name}`);
        const removed = this.options.registry.unregister(String(ref.name), String(ref.namespace), caller);
        if (removed) this.options.log.info({ workload: `${ref.namespace}/${ref.name}`, caller }, 'workload unregistered');
        return { registered: false };
      }),
    });
  }

  /** The caller's SPIFFE ID: its verified client certificate first, else its bootstrap token. */
  private async authenticate(call: Call): Promise<string> {
    const peer = call.getAuthContext()?.sslPeerCertificate;
    // grpc-js fills sslPeerCertificate only when the handshake verified the chain against the CA's trust bundle.
    if (peer?.subjectaltname) {
      const trustDomain = this.options.citadel.trustDomain;
      const ids = peer.subjectaltname.split(/,\s*/).filter((s) => s.startsWith('URI:')).map((s) => s.slice(4)).filter((id) => parseSpiffeId(id)?.trustDomain === trustDomain);
      if (ids.length === 1) return ids[0]!;
    }
    const header = call.metadata.get('authorization')[0];
    const m = header === undefined ? null : /^Bearer\s+(\S+)$/i.exec(String(header));
    if (m) {
      const material = this.options.citadel.ca.material;
      return verifyBootstrapToken(m[1]!, [{ keys: material.signingKeys, algorithm: material.algorithm }], this.options.citadel.trustDomain, systemCitadelClock);
    }
    throw Object.assign(new Error('no credential: connect with the workload certificate (mTLS) or send "authorization: Bearer <bootstrap token>"'), { code: grpc.status.UNAUTHENTICATED });
  }

  private refusal(err: unknown, peer: string): Partial<grpc.StatusObject> {
    const e = err as Error & { code?: unknown };
    let code = grpc.status.INTERNAL;
    if (typeof e.code === 'number') code = e.code;
    else if (isMeshError(err)) {
      code = /UNAUTHORIZED/.test(err.code) ? grpc.status.PERMISSION_DENIED
        : /UNAUTHENTICATED/.test(err.code) ? grpc.status.UNAUTHENTICATED
          : /INVALID|UNKNOWN_GROUP/.test(err.code) ? grpc.status.INVALID_ARGUMENT
            : /CONFLICT/.test(err.code) ? grpc.status.ALREADY_EXISTS : grpc.status.FAILED_PRECONDITION;
    }
    this.options.log.warn({ peer, err: e.message }, 'registration refused');
    return { code, details: isMeshError(err) ? `${err.code}: ${err.message}` : e.message };
  }
}
