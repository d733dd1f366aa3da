// security.istio.io PeerAuthentication: the mTLS mode a workload accepts,
// mesh-wide (root namespace), per namespace, per workload and per port.

import type { KindDefinition, ValidationContext } from '../../kind-registry.ts';
import { strict, z } from '../../schema.ts';
import { checkWorkloadSelector, policySelector } from './policy-target.ts';

export const MTLS_MODES = ['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT'] as const;

const mutualTls = strict({ mode: z.enum(MTLS_MODES).optional() });

export const peerAuthenticationSpec = strict({
  selector: policySelector.optional(),
  mtls: mutualTls.optional(),
  // Keys are port numbers; YAML map keys arrive as strings.
  portLevelMtls: z.record(z.string(), mutualTls).optional(),
});
export type PeerAuthenticationSpec = z.infer<typeof peerAuthenticationSpec>;

function validatePeerAuthentication(spec: PeerAuthenticationSpec, ctx: ValidationContext): void {
  const { diag, path } = ctx;
  const emptySelector = spec.selector === undefined || Object.keys(spec.selector.matchLabels ?? {}).length === 0;
  const ports = spec.portLevelMtls;
  if (ports !== undefined) {
    const keys = Object.keys(ports);
    if (keys.length === 0) diag.error(path.key('portLevelMtls'), 'port level mTLS, if defined, must have at least one element');
    else if (emptySelector) {
      // Ports only mean something for a known workload; mesh/namespace policies cover every port.
      diag.error(path.key('portLevelMtls'), 'mesh/namespace peer authentication cannot have port level mTLS (set a selector)');
    }
    for (const key of keys) {
      const n = Number(key);
      if (!/^\d+$/.test(key) || n < 1 || n > 65535) diag.error(path.key('portLevelMtls').key(key), `port "${key}" must be in range 1..65535`);
    }
  }
  checkWorkloadSelector(diag, path.key('selector'), spec.selector);
}

export const peerAuthenticationKind: KindDefinition<PeerAuthenticationSpec> = {
  group: 'security.istio.io',
  kind: 'PeerAuthentication',
  versions: ['v1', 'v1beta1'],
  plural: 'peerauthentications',
  shortNames: ['pa'],
  spec: peerAuthenticationSpec,
  validate: validatePeerAuthentication,
};
