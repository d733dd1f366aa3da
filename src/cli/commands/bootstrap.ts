// `mesh bootstrap grpc`: writes the xDS bootstrap a proxyless gRPC client reads
// (GRPC_XDS_BOOTSTRAP), identifying it the way Istio's gRPC bootstrap does.

import { writeFile } from 'node:fs/promises';
import type { Command } from '../command.ts';
import { str } from '../command.ts';
import { CliError, ExitCode } from '../exit-codes.ts';

export interface GrpcBootstrapOptions {
  readonly xdsAddress: string;
  readonly name: string;
  readonly namespace: string;
  readonly ip: string;
  readonly domainSuffix?: string;
  readonly labels?: Readonly<Record<string, string>>;
}

/** The bootstrap JSON: one plaintext ADS server, Istio's node id and metadata (GENERATOR grpc, NAMESPACE). */
export function grpcBootstrap(options: GrpcBootstrapOptions): object {
  const domain = `${options.namespace}.svc.${options.domainSuffix ?? 'cluster.local'}`;
  return {
    xds_servers: [{ server_uri: options.xdsAddress, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: {
      id: `sidecar~${options.ip}~${options.name}.${options.namespace}~${domain}`,
      metadata: { GENERATOR: 'grpc', NAMESPACE: options.namespace, INSTANCE_IPS: options.ip, ...(options.labels ? { LABELS: options.labels } : {}) },
      // grpc-js-xds refuses a node without locality.
      locality: {},
    },
  };
}

function parseLabels(values: string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new CliError(ExitCode.USAGE, `--label takes KEY=VALUE, got "${v}"`);
    labels[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return labels;
}

export const bootstrapCommand: Command = {
  name: 'bootstrap',
  summary: 'Write an xDS bootstrap file (proxyless gRPC)',
  help: `Usage: mesh bootstrap grpc --name NAME [-n NAMESPACE] [--ip IP] [--xds-address HOST:PORT]
                           [--label KEY=VALUE ...] [-o FILE]

Writes the JSON a gRPC xDS client reads from GRPC_XDS_BOOTSTRAP, so that
xds:///reviews.default.svc.cluster.local:9080 resolves through the mesh:
  mesh bootstrap grpc --name ratings-v1 -n default -o /tmp/bootstrap.json
  GRPC_XDS_BOOTSTRAP=/tmp/bootstrap.json node my-client.js
Defaults: namespace default, ip 127.0.0.1, xds-address 127.0.0.1:15010, standard output.`,
  positionals: true,
  options: {
    name: { type: 'string' },
    namespace: { type: 'string', short: 'n' },
    ip: { type: 'string' },
    'xds-address': { type: 'string' },
    label: { type: 'string', multiple: true },
    output: { type: 'string', short: 'o' },
    help: { type: 'boolean', short: 'h' },
  },
  async run(flags, args, io) {
    if (args[0] !== 'grpc' || args.length > 1) throw new CliError(ExitCode.USAGE, 'usage: mesh bootstrap grpc --name NAME (only gRPC bootstraps exist today)');
    const name = str(flags, 'name');
    if (!name) throw new CliError(ExitCode.USAGE, '--name is required: the workload name of the client');
    const labels = Array.isArray(flags.label) ? parseLabels(flags.label as string[]) : undefined;
    const text = `${JSON.stringify(grpcBootstrap({ name, namespace: str(flags, 'namespace') ?? 'default', ip: str(flags, 'ip') ?? '127.0.0.1', xdsAddress: str(flags, 'xds-address') ?? '127.0.0.1:15010', labels }), null, 2)}\n`;
    const output = str(flags, 'output');
    if (output === undefined || output === '-') io.out(text);
    else {
      await writeFile(output, text);
      io.err(`wrote ${output}; run the client with GRPC_XDS_BOOTSTRAP=${output}\n`);
    }
    return ExitCode.OK;
  },
};
