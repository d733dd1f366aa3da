// What a sidecar asks the control plane for before it starts, over the
// runtime's loopback API (src/runtime/runtime-api.ts) and the config API.

export interface RuntimeInfo {
  readonly xdsAddress: string;
  readonly caAddress: string;
  readonly trustDomain: string;
  readonly trustBundlePem: string;
}

export interface MeshServiceInfo {
  readonly hostname: string;
  readonly namespace: string;
  /** ServiceEntry addresses (capture mode: the service's VIP). */
  readonly addresses?: readonly string[];
  readonly ports: readonly { readonly name: string; readonly port: number; readonly protocol: string }[];
}

export class ControlPlaneClient {
  readonly server: string;

  constructor(server: string) {
    this.server = server.replace(/\/+$/, '');
  }

  info(): Promise<RuntimeInfo> {
    return this.request('GET', '/runtime/v1/info') as Promise<RuntimeInfo>;
  }

  async services(): Promise<MeshServiceInfo[]> {
    return ((await this.request('GET', '/runtime/v1/services')) as { services: MeshServiceInfo[] }).services;
  }

  async bootstrapToken(namespace: string, serviceAccount: string): Promise<string> {
    return ((await this.request('POST', '/runtime/v1/bootstrap-token', { namespace, serviceAccount })) as { token: string }).token;
  }

  /** Creates or updates config objects through the config API (POST /apply). */
  async apply(objects: unknown[]): Promise<void> {
    await this.request('POST', '/apply', { objects });
  }

  /** Whether a config object exists (GET on its path). */
  async exists(path: string): Promise<boolean> {
    const res = await this.fetch('GET', path);
    await res.body?.cancel();
    return res.ok;
  }

  private async fetch(method: string, path: string, body?: unknown): Promise<Response> {
    try {
      return await fetch(`${this.server}${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (err) {
      throw new Error(`control plane ${this.server} unreachable: ${(err as Error).message}`, { cause: err });
    }
  }

  private async request(method: string, path: string, body?: unknown): Promise<unknown> {
    const res = await this.fetch(method, path, body);
    const text = await res.text();
    if (!res.ok) throw new Error(`control plane ${method} ${path}: ${res.status} ${text.trim()}`);
    return JSON.parse(text);
  }
}

/** A port of a Service the runtime declares (ServiceEntry `ports` entry). */
export interface DeclaredPort {
  readonly name: string;
  readonly number: number;
  readonly protocol: string;
}

/**
 * The ServiceEntry the runtime declares for a service it runs: Istio's shape
 * of a Kubernetes Service. `ports`: one HTTP port by number (a workload's
 * service port), or a list (a gateway's Service, e.g. istio-egressgateway's
 * http2 80 and https 443); `selector`: the workloads behind it (default
 * app=NAME).
 */
export function serviceEntryFor(name: string, namespace: string, ports: number | readonly DeclaredPort[], domain = 'cluster.local', addresses: readonly string[] = [], selector: Readonly<Record<string, string>> = { app: name }): Record<string, unknown> {
  const list = typeof ports === 'number' ? [{ number: ports, name: 'http', protocol: 'HTTP' }] : ports.map((p) => ({ number: p.number, name: p.name, protocol: p.protocol }));
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name, namespace },
    spec: {
      hosts: [`${name}.${namespace}.svc.${domain}`],
      ...(addresses.length > 0 ? { addresses: [...addresses] } : {}),
      location: 'MESH_INTERNAL',
      resolution: 'STATIC',
      ports: list,
      workloadSelector: { labels: { ...selector } },
    },
  };
}
