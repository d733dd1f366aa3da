// Every environment knob the mesh reads, declared once with what it does.
// Code reads knobs through `env()` so `mesh --help` can list them.

export interface EnvKnob {
  readonly name: string;
  readonly description: string;
  readonly defaultValue?: string;
}

export const ENV_KNOBS = {
  MESH_SERVER: { name: 'MESH_SERVER', description: 'URL of the control plane API the CLI talks to', defaultValue: 'http://127.0.0.1:15080' },
  MESH_DATA_DIR: { name: 'MESH_DATA_DIR', description: 'directory of the durable config store of `mesh control-plane`', defaultValue: '.mesh/data' },
  MESH_LOG_LEVEL: { name: 'MESH_LOG_LEVEL', description: 'log level: trace, debug, info, warn, error, silent', defaultValue: 'info' },
  MESH_CACHE_DIR: { name: 'MESH_CACHE_DIR', description: 'caches for a faster process start (parsed xDS protos, V8 compiled code); `off`: none; unset: node_modules/.cache/mesh', defaultValue: '' },
  MESH_PROXY_HTTP1_DOWNSTREAM: { name: 'MESH_PROXY_HTTP1_DOWNSTREAM', description: 'the proxy serves HTTP/1.1 with its own codec; `node`: with node:http instead', defaultValue: '' },
  MESH_PROXY_HTTP1_UPSTREAM: { name: 'MESH_PROXY_HTTP1_UPSTREAM', description: 'the proxy calls HTTP/1.1 upstreams with its own pool; `node`: with node:http\'s Agent instead', defaultValue: '' },
  MESH_WORKLOAD_CERT_TTL: { name: 'MESH_WORKLOAD_CERT_TTL', description: 'workload certificate lifetime `mesh run` asks Citadel for (6s, 90m, 24h); unset: the CA default', defaultValue: '' },
} as const satisfies Record<string, EnvKnob>;

export type EnvKnobName = keyof typeof ENV_KNOBS;

export function env(name: EnvKnobName): string | undefined {
  const value = process.env[name];
  return value === undefined || value === '' ? ENV_KNOBS[name].defaultValue : value;
}
