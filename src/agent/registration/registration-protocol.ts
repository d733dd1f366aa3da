// The wire contract of workload registration between a sidecar's agent and
// the control plane: `mesh.runtime.v1.WorkloadRegistration` on Citadel's CA
// port (TLS, the CA's serving certificate). Messages are JSON over gRPC: the
// service is the mesh's own (Istio's agent registers through the Kubernetes
// API or WorkloadEntry auto-registration, neither of which exists on one
// host), small, and read by one server implementation.
//
// Authentication is the CSR's: the workload certificate in the TLS handshake
// (mTLS) or a bootstrap token as `authorization: Bearer <token>`. The caller
// may only register, heartbeat or unregister workloads that run as its own
// service account (Pilot's SpiffeRegistrationAuthorizer).

import type * as grpc from '@grpc/grpc-js';

export const REGISTRATION_SERVICE_NAME = 'mesh.runtime.v1.WorkloadRegistration';

/** What a workload says about itself (Pilot's WorkloadRegistration, as JSON). */
export interface WorkloadRegistrationMessage {
  readonly name: string;
  readonly namespace: string;
  /** Address other sidecars dial. */
  readonly address: string;
  /** Workload ports by service port name. */
  readonly ports?: Readonly<Record<string, number>>;
  readonly labels?: Readonly<Record<string, string>>;
  readonly serviceAccount?: string;
  /** `region/zone/subzone` */
  readonly locality?: string;
}

export interface WorkloadRef {
  readonly name: string;
  readonly namespace: string;
}

/** Register: `registered` true; Heartbeat/Unregister: false when the control plane does not know the workload (register again). */
export interface RegistrationReply {
  readonly registered: boolean;
}

function serialize(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

function deserialize(bytes: Buffer): unknown {
  return JSON.parse(bytes.toString('utf8'));
}

function method(name: string): grpc.MethodDefinition<unknown, unknown> {
  return {
    path: `/${REGISTRATION_SERVICE_NAME}/${name}`,
    requestStream: false,
    responseStream: false,
    requestSerialize: serialize,
    requestDeserialize: deserialize,
    responseSerialize: serialize,
    responseDeserialize: deserialize,
  };
}

/** The service definition both sides use (grpc-js ServiceDefinition with JSON codecs). */
export const registrationServiceDefinition: grpc.ServiceDefinition = {
  Register: method('Register'),
  Heartbeat: method('Heartbeat'),
  Unregister: method('Unregister'),
};
