// The CLI's client of the control plane's config API (src/galley/http-api.ts).

import type { ConfigObject, KindDefinition } from '../api/index.ts';
import { env } from '../common/index.ts';
import { CliError, ExitCode } from './exit-codes.ts';

export interface ApiClientOptions {
  readonly server?: string;
  /** Per-request deadline. */
  readonly timeoutMs?: number;
}

export interface ApplyResponse {
  applied: { object: ConfigObject; action: string }[];
  ignored: string[];
  warnings: string[];
}

export interface ErrorBody {
  code?: string;
  message?: string;
  /** Pilot's /debug pages answer errors as {"error": "..."}. */
  error?: string;
  results?: { object: ConfigObject; diagnostics: { severity: string; path: string; message: string }[] }[];
}

export class ApiClient {
  readonly server: string;
  private readonly timeoutMs: number;

  constructor(options: ApiClientOptions = {}) {
    this.server = (options.server ?? env('MESH_SERVER') ?? 'http://127.0.0.1:15080').replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  async apply(objects: unknown[], params: { dryRun?: boolean; namespace?: string }): Promise<ApplyResponse> {
    const query = new URLSearchParams();
    if (params.dryRun) query.set('dryRun', 'true');
    if (params.namespace) query.set('namespace', params.namespace);
    return (await this.request('POST', `/apply?${query}`, { objects })) as ApplyResponse;
  }

  async list(kind: KindDefinition, namespace?: string): Promise<ConfigObject[]> {
    const path = namespace === undefined ? `${groupPath(kind)}/${kind.plural}` : `${groupPath(kind)}/namespaces/${encodeURIComponent(namespace)}/${kind.plural}`;
    return ((await this.request('GET', path)) as { items: ConfigObject[] }).items;
  }

  async get(kind: KindDefinition, namespace: string, name: string): Promise<ConfigObject> {
    return (await this.request('GET', objectPath(kind, namespace, name))) as ConfigObject;
  }

  async delete(kind: KindDefinition, namespace: string, name: string, dryRun = false): Promise<string> {
    const body = (await this.request('DELETE', `${objectPath(kind, namespace, name)}${dryRun ? '?dryRun=true' : ''}`)) as { message: string };
    return body.message;
  }

  /** GET of any JSON path of the control plane (Pilot's /debug pages). */
  async getJson(path: string): Promise<unknown> {
    return this.request('GET', path);
  }

  private async request(method: string, path: string, body?: unknown): Promise<unknown> {
    let res: Response;
    try {
      res = await fetch(`${this.server}${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
      throw new CliError(ExitCode.UNREACHABLE, `cannot reach the control plane at ${this.server} (${cause}); start it with \`mesh control-plane\` or point --server / MESH_SERVER at it`);
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      throw new CliError(ExitCode.FAILURE, `the control plane at ${this.server} answered ${res.status} with a body that is not JSON`);
    }
    if (res.ok) return parsed;
    throw new ApiRequestError(res.status, parsed as ErrorBody);
  }
}

/** Kubernetes' paths: `/api/v1` for the core group (Secret), `/apis/GROUP/VERSION` for the others. */
function groupPath(kind: KindDefinition): string {
  return kind.group === '' ? `/api/${kind.versions[0]}` : `/apis/${kind.group}/${kind.versions[0]}`;
}

function objectPath(kind: KindDefinition, namespace: string, name: string): string {
  return `${groupPath(kind)}/namespaces/${encodeURIComponent(namespace)}/${kind.plural}/${encodeURIComponent(name)}`;
}

/** A non-2xx answer of the API, mapped to the CLI's exit codes. */
export class ApiRequestError extends CliError {
  readonly status: number;
  readonly body: ErrorBody;
  constructor(status: number, body: ErrorBody) {
    const exit = status === 404 ? ExitCode.NOT_FOUND : status === 409 ? ExitCode.CONFLICT : status === 422 ? ExitCode.INVALID : ExitCode.FAILURE;
    super(exit, body.message ?? body.error ?? `request failed with HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}
