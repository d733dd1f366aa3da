// A gateway's credentials by name, wired between its agent and its proxy:
// the secret names the proxy's TLS contexts ask of `sds-grpc` other than the
// agent's own (`default`, `ROOTCA`) go to the control plane through a
// CredentialClient, and what comes back is applied to the proxy as SDS
// updates. An updated Secret therefore reaches new handshakes without a
// restart, while established connections keep the certificate they used.

import type { Logger } from '../../common/index.ts';
import { CredentialClient, ROOT_SECRET_NAME, WORKLOAD_SECRET_NAME } from '../../agent/index.ts';
import type { WorkloadSecret } from '../../agent/index.ts';
import type { Proxy } from '../../proxy/index.ts';

export interface GatewayCredentialsOptions {
  readonly proxy: Proxy;
  /** The SDS cluster Pilot's TLS contexts name (Istio's `sds-grpc`). */
  readonly sdsCluster: string;
  /** host:port of the control plane's TLS port. */
  readonly address: string;
  readonly workloadSecret: () => WorkloadSecret;
  readonly log: Logger;
}

/** Starts forwarding; returns the function that stops it. */
export function forwardGatewayCredentials(o: GatewayCredentialsOptions): () => void {
  const source = { kind: 'cluster', cluster: o.sdsCluster } as const;
  const client = new CredentialClient({
    address: o.address,
    credential: () => {
      const s = o.workloadSecret();
      return { certChainPem: s.certChainPem, privateKeyPem: s.privateKeyPem, rootCertPem: s.rootCertPem };
    },
    node: o.proxy.bootstrap.node ?? {},
    onSecrets: (secrets, version) => o.proxy.secrets.apply(source, secrets, version),
    log: o.log,
  });
  const ownNames = new Set([WORKLOAD_SECRET_NAME, ROOT_SECRET_NAME]);
  const forward = (names: readonly string[]): void => client.subscribe(names.filter((n) => !ownNames.has(n)));
  // The proxy tells its SDS subscriber about new names; keep that one and add ours.
  const previous = o.proxy.secrets.onClusterNames;
  o.proxy.secrets.onClusterNames = (cluster, names) => {
    previous?.(cluster, names);
    if (cluster === o.sdsCluster) forward(names);
  };
  // Names the first listeners asked for before this hook existed.
  forward(o.proxy.secrets.names(source));
  return () => {
    o.proxy.secrets.onClusterNames = previous;
    client.close();
  };
}
