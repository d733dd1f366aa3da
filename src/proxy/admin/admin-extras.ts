// Admin endpoints beyond the config and stats dumps, in Envoy's shapes:
// /logging (GET lists levels, POST ?level=<l> or ?<logger>=<l> sets them),
// /drain_listeners (POST, ?graceful, ?inboundonly), /certs (the certificates
// of static and SDS secrets), /memory (heap figures as Envoy's tcmalloc
// fields). Envoy's level names map to pino's (warning -> warn, critical ->
// fatal, off -> silent).

import { X509Certificate } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../../common/index.ts';
import type { SecretProvider } from '../secrets/secret-manager.ts';

/** What these endpoints need of the proxy. */
export interface AdminExtrasView {
  readonly logger?: Logger;
  readonly secrets?: { all(): readonly SecretProvider[] };
  /** Stops accepting on the listeners (inbound only when asked); graceful drains open connections first. */
  drainListeners?(options: { graceful: boolean; inboundOnly: boolean }): void;
}

const ENVOY_LEVELS = ['trace', 'debug', 'info', 'warning', 'error', 'critical', 'off'] as const;
const TO_PINO: Record<string, string> = { trace: 'trace', debug: 'debug', info: 'info', warning: 'warn', error: 'error', critical: 'fatal', off: 'silent' };
const FROM_PINO: Record<string, string> = { trace: 'trace', debug: 'debug', info: 'info', warn: 'warning', error: 'error', fatal: 'critical', silent: 'off' };

/** The loggers /logging shows: the proxy's root logger, named as Envoy names its main one. */
const LOGGER_NAMES = ['main'];

function send(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=UTF-8'): void {
  res.writeHead(status, { 'content-type': type });
  res.end(body);
}

function loggingText(logger: Logger | undefined): string {
  const level = FROM_PINO[logger?.level ?? 'info'] ?? 'info';
  return `active loggers:\n${LOGGER_NAMES.map((n) => `  ${n}: ${level}\n`).join('')}`;
}

function logging(p: AdminExtrasView, req: IncomingMessage, res: ServerResponse, url: URL): void {
  if (req.method !== 'POST') return send(res, 200, loggingText(p.logger));
  let level: string | undefined;
  for (const [k, v] of url.searchParams) {
    if (k === 'level' || LOGGER_NAMES.includes(k)) level = v || k;
    else if (k === 'paths') level = v.split(',').map((x) => x.split(':')[1])[0];
    else return send(res, 404, `error: unknown logger name "${k}"\n\n${usage()}`);
  }
  if (level === undefined) return send(res, 200, loggingText(p.logger));
  if (!(ENVOY_LEVELS as readonly string[]).includes(level)) return send(res, 404, `error: unknown logger level\n\n${usage()}`);
  if (p.logger) p.logger.level = TO_PINO[level];
  send(res, 200, loggingText(p.logger));
}

const usage = (): string => `usage: /logging?level=<level> or /logging?<name>=<level>; levels: ${ENVOY_LEVELS.join(', ')}; names: ${LOGGER_NAMES.join(', ')}\n`;

function certInfo(pem: string, path: string): Record<string, unknown> {
  const c = new X509Certificate(pem);
  const expires = new Date(c.validTo);
  const sans = (c.subjectAltName ?? '').split(', ').filter(Boolean).map((s) => {
    const i = s.indexOf(':');
    const kind = s.slice(0, i);
    const value = s.slice(i + 1);
    return kind === 'URI' ? { uri: value } : kind === 'DNS' ? { dns: value } : kind === 'IP Address' ? { ip_address: value } : { [kind.toLowerCase()]: value };
  });
  return {
    path,
    serial_number: c.serialNumber.toLowerCase(),
    subject_alt_names: sans,
    days_until_expiration: String(Math.max(0, Math.floor((expires.getTime() - Date.now()) / 86_400_000))),
    valid_from: new Date(c.validFrom).toISOString(),
    expiration_time: expires.toISOString(),
  };
}

const pemBlocks = (b: Buffer | undefined): string[] => (b ? (b.toString('utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []) : []);

/** Envoy's /certs: {"certificates": [{"ca_cert": [...], "cert_chain": [...]}]}, one entry per secret. */
export function certsJson(secrets: readonly SecretProvider[]): unknown {
  const certificates: Array<Record<string, unknown>> = [];
  for (const s of secrets) {
    const v = s.current;
    if (!v) continue;
    const where = `<inline secret ${s.name}>`;
    if (v.kind === 'tls_certificate') certificates.push({ ca_cert: [], cert_chain: pemBlocks(v.certChain).slice(0, 1).map((pem) => certInfo(pem, where)) });
    else certificates.push({ ca_cert: pemBlocks(v.trustedCa).map((pem) => certInfo(pem, where)), cert_chain: [] });
  }
  return { certificates };
}

/** Envoy's /memory fields from V8's heap and the process RSS. */
export function memoryJson(): Record<string, string> {
  const m = process.memoryUsage();
  return { allocated: String(m.heapUsed), heap_size: String(m.heapTotal), pageheap_unmapped: '0', pageheap_free: String(m.heapTotal - m.heapUsed), total_thread_cache: '0', total_physical_bytes: String(m.rss) };
}

/** Answers the extra endpoints; false when `url` is not one of them. */
export function handleAdminExtras(p: AdminExtrasView, req: IncomingMessage, res: ServerResponse, url: URL): boolean {
  switch (url.pathname) {
    case '/logging':
      logging(p, req, res, url);
      return true;
    case '/drain_listeners':
      if (req.method !== 'POST') send(res, 405, 'This operation requires a POST.\n');
      else if (!p.drainListeners) send(res, 503, 'draining is not available\n');
      else {
        p.drainListeners({ graceful: url.searchParams.has('graceful'), inboundOnly: url.searchParams.has('inboundonly') });
        send(res, 200, 'OK\n');
      }
      return true;
    case '/certs':
      send(res, 200, JSON.stringify(certsJson(p.secrets?.all() ?? []), null, 2), 'application/json');
      return true;
    case '/memory':
      send(res, 200, JSON.stringify(memoryJson(), null, 2), 'application/json');
      return true;
    default:
      return false;
  }
}

export const ADMIN_EXTRA_PATHS: readonly string[] = ['/logging', '/drain_listeners', '/certs', '/memory'];
