// The sidecar's DNS proxy (Istio's agent DNS proxy, ISTIO_META_DNS_CAPTURE):
// listens on 127.0.0.1:15053 (UDP and TCP) inside the workload namespace,
// where iptables sends the app's port-53 traffic. Mesh names (Kubernetes-style
// service names in their short and long forms, ServiceEntry hosts) are
// answered from a table the runtime keeps current; other names are forwarded
// to the upstream resolvers, bounded in time and concurrency. The proxy runs
// as the proxy uid, so its own upstream queries are not captured again.

import { createSocket } from 'node:dgram';
import type { Socket as UdpSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { connect, createServer, isIPv4, isIPv6 } from 'node:net';
import type { Server, Socket } from 'node:net';
import { buildErrorFromHeader, buildResponse, DnsFormatError, parseMessage, RCode, RecordType } from './dns-message.ts';
import type { Answer, DnsMessage } from './dns-message.ts';
import { parseResolvConf, searchDomains } from './netns.ts';

export interface Upstream {
  address: string;
  port: number;
}

export interface DnsProxyOptions {
  /** Listen address (default 127.0.0.1) and port (default 15053; 0 picks a free one for UDP and TCP alike). */
  host?: string;
  port?: number;
  /** The workload's namespace: short names (`reviews`) resolve in it (default "default"). */
  namespace?: string;
  /** Cluster domain (default cluster.local). Names under it that are not in the table get NXDOMAIN locally. */
  domain?: string;
  /** Where other names go. Default: the nameservers of /etc/resolv.conf read at construction (read it on the host, before entering the namespace, and pass it here). */
  upstreams?: readonly Upstream[];
  /** Per-upstream attempt timeout (default 2000 ms). */
  upstreamTimeoutMs?: number;
  /** Concurrent forwarded queries before new ones get SERVFAIL (default 256). */
  maxInflight?: number;
  /** TTL of local answers (default 30 s). */
  ttl?: number;
  /** Idle TCP client connections are closed after this long (default 10 s). */
  tcpIdleTimeoutMs?: number;
  maxTcpConnections?: number;
}

export interface DnsProxyStats {
  local: number;
  nxdomainLocal: number;
  forwarded: number;
  upstreamFailures: number;
  overloaded: number;
  malformed: number;
}

/** name -> addresses (IPv4 and/or IPv6). Names may start with `*.` (ServiceEntry wildcard hosts). */
export type NameTable = Map<string, readonly string[]> | Record<string, string | readonly string[]>;

interface Entry {
  v4: string[];
  v6: string[];
}

const MAX_TCP_MESSAGE = 65535;

function norm(name: string): string {
  const n = name.trim().toLowerCase();
  return n.endsWith('.') ? n.slice(0, -1) : n;
}

/** Upstreams from a resolv.conf file (port 53); empty when it cannot be read. */
export function upstreamsFromResolvConf(path = '/etc/resolv.conf'): Upstream[] {
  try {
    return parseResolvConf(readFileSync(path, 'utf8'))
      .nameservers.filter((a) => isIPv4(a) || isIPv6(a))
      .map((address) => ({ address, port: 53 }));
  } catch {
    return [];
  }
}

export class DnsProxy {
  readonly namespace: string;
  readonly domain: string;
  readonly search: string[];
  readonly stats: DnsProxyStats = { local: 0, nxdomainLocal: 0, forwarded: 0, upstreamFailures: 0, overloaded: 0, malformed: 0 };
  private readonly opts: Required<Omit<DnsProxyOptions, 'upstreams' | 'namespace' | 'domain'>>;
  private upstreams: Upstream[];
  private exact = new Map<string, Entry>();
  private aliases = new Map<string, Entry>();
  private wildcards: [string, Entry][] = [];
  private udp?: UdpSocket;
  private tcp?: Server;
  private readonly tcpClients = new Set<Socket>();
  private inflight = 0;
  private boundPort = 0;

  constructor(opts: DnsProxyOptions = {}) {
    this.namespace = opts.namespace ?? 'default';
    this.domain = norm(opts.domain ?? 'cluster.local');
    this.search = searchDomains(this.namespace, this.domain);
    this.opts = {
      host: opts.host ?? '127.0.0.1',
      port: opts.port ?? 15053,
      upstreamTimeoutMs: opts.upstreamTimeoutMs ?? 2000,
      maxInflight: opts.maxInflight ?? 256,
      ttl: opts.ttl ?? 30,
      tcpIdleTimeoutMs: opts.tcpIdleTimeoutMs ?? 10_000,
      maxTcpConnections: opts.maxTcpConnections ?? 256,
    };
    this.upstreams = [...(opts.upstreams ?? upstreamsFromResolvConf())];
  }

  /** Replaces the upstream resolvers. */
  setUpstreams(upstreams: readonly Upstream[]): void {
    this.upstreams = [...upstreams];
  }

  /**
   * Replaces the name table. A Kubernetes-style name `svc.ns.svc.<domain>`
   * also answers as `svc.ns.svc`, `svc.ns`, and `svc` when ns is the proxy's
   * namespace; exact names win over those aliases.
   */
  setNames(table: NameTable): void {
    const exact = new Map<string, Entry>();
    const aliases = new Map<string, Entry>();
    const wildcards: [string, Entry][] = [];
    const entries = table instanceof Map ? [...table] : Object.entries(table);
    const suffix = `.svc.${this.domain}`;
    for (const [rawName, value] of entries) {
      const addresses = typeof value === 'string' ? [value] : value;
      const entry: Entry = { v4: addresses.filter((a) => isIPv4(a)), v6: addresses.filter((a) => isIPv6(a)) };
      const bad = addresses.filter((a) => !isIPv4(a) && !isIPv6(a));
      if (bad.length) throw new Error(`DNS table entry ${rawName}: ${bad.join(', ')} is not an IP address`);
      const name = norm(rawName);
      if (name.startsWith('*.')) {
        wildcards.push([name.slice(1), entry]); // ".example.com"
        continue;
      }
      exact.set(name, entry);
      if (name.endsWith(suffix)) {
        const head = name.slice(0, -suffix.length).split('.');
        if (head.length === 2) {
          const [svc, ns] = head;
          aliases.set(`${svc}.${ns}.svc`, entry);
          aliases.set(`${svc}.${ns}`, entry);
          if (ns === this.namespace) aliases.set(svc, entry);
        }
      }
    }
    wildcards.sort((a, b) => b[0].length - a[0].length); // most specific first
    this.exact = exact;
    this.aliases = aliases;
    this.wildcards = wildcards;
  }

  private find(name: string): Entry | undefined {
    const hit = this.exact.get(name) ?? this.aliases.get(name);
    if (hit) return hit;
    for (const [suffix, entry] of this.wildcards) if (name.endsWith(suffix) && name.length > suffix.length) return entry;
    return undefined;
  }

  /**
   * How a name is answered: `local` with addresses, `nxdomain` (a cluster
   * name not in the table), or `forward`. Search-expanded names (`reviews.default.default.svc.cluster.local`,
   * `api.example.com.default.svc.cluster.local`) are answered as the name
   * they expand, saving the client its round trips through the search list.
   */
  resolve(qname: string): { kind: 'local'; v4: string[]; v6: string[] } | { kind: 'nxdomain' } | { kind: 'forward' } {
    const name = norm(qname);
    const direct = this.find(name);
    if (direct) return { kind: 'local', ...direct };
    for (const sd of this.search) {
      if (name.endsWith(`.${sd}`)) {
        const stripped = name.slice(0, -(sd.length + 1));
        const hit = this.find(stripped);
        if (hit) return { kind: 'local', ...hit };
      }
    }
    if (name === this.domain || name.endsWith(`.${this.domain}`)) return { kind: 'nxdomain' };
    return { kind: 'forward' };
  }

  /** The listening port (UDP and TCP). */
  get port(): number {
    return this.boundPort;
  }

  async start(): Promise<{ address: string; port: number }> {
    if (this.udp) throw new Error('DNS proxy already started');
    for (let attempt = 0; ; attempt++) {
      const udp = createSocket({ type: isIPv6(this.opts.host) ? 'udp6' : 'udp4' });
      try {
        await new Promise<void>((resolve, reject) => {
          udp.once('error', reject);
          udp.bind(this.opts.port, this.opts.host, () => {
            udp.off('error', reject);
            resolve();
          });
        });
        const port = udp.address().port;
        const tcp = createServer((s) => this.onTcp(s));
        tcp.maxConnections = this.opts.maxTcpConnections;
        await new Promise<void>((resolve, reject) => {
          tcp.once('error', reject);
          tcp.listen(port, this.opts.host, () => {
            tcp.off('error', reject);
            resolve();
          });
        });
        udp.on('message', (msg, rinfo) => void this.onUdp(msg, rinfo.address, rinfo.port));
        udp.on('error', () => undefined);
        tcp.on('error', () => undefined);
        this.udp = udp;
        this.tcp = tcp;
        this.boundPort = port;
        return { address: this.opts.host, port };
      } catch (err) {
        udp.close();
        if (this.opts.port === 0 && (err as NodeJS.ErrnoException).code === 'EADDRINUSE' && attempt < 10) continue;
        throw err;
      }
    }
  }

  async close(): Promise<void> {
    const udp = this.udp;
    const tcp = this.tcp;
    this.udp = undefined;
    this.tcp = undefined;
    for (const s of this.tcpClients) s.destroy();
    this.tcpClients.clear();
    if (udp) await new Promise<void>((r) => udp.close(() => r()));
    if (tcp) await new Promise<void>((r) => tcp.close(() => r()));
  }

  /** Answers one wire-format query (UDP or TCP); undefined means drop. */
  async handle(buf: Buffer, transport: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    let query: DnsMessage;
    try {
      query = parseMessage(buf);
    } catch (err) {
      if (!(err instanceof DnsFormatError)) throw err;
      this.stats.malformed++;
      return buildErrorFromHeader(buf, RCode.FORMERR);
    }
    if (query.qr) return undefined; // a response: never answer those
    if (query.opcode !== 0) return buildResponse(query, { rcode: RCode.NOTIMP });
    const q = query.questions[0];
    if (query.questions.length !== 1 || !q) {
      this.stats.malformed++;
      return buildResponse(query, { rcode: RCode.FORMERR });
    }
    const r = this.resolve(q.name);
    if (r.kind === 'local') {
      this.stats.local++;
      const ttl = this.opts.ttl;
      let answers: Answer[] = [];
      if (q.type === RecordType.A || q.type === RecordType.ANY) answers = answers.concat(r.v4.map((address) => ({ name: q.name, type: RecordType.A, ttl, address })));
      if (q.type === RecordType.AAAA || q.type === RecordType.ANY) answers = answers.concat(r.v6.map((address) => ({ name: q.name, type: RecordType.AAAA, ttl, address })));
      return buildResponse(query, { answers, authoritative: true }); // no matching family: NOERROR/NODATA
    }
    if (r.kind === 'nxdomain') {
      this.stats.nxdomainLocal++;
      return buildResponse(query, { rcode: RCode.NXDOMAIN, authoritative: true });
    }
    if (this.inflight >= this.opts.maxInflight) {
      this.stats.overloaded++;
      return buildResponse(query, { rcode: RCode.SERVFAIL });
    }
    this.inflight++;
    this.stats.forwarded++;
    try {
      for (const up of this.upstreams) {
        if (this.isSelf(up)) continue;
        const reply = await (transport === 'udp' ? this.forwardUdp(up, buf, query) : this.forwardTcp(up, buf, query)).catch(() => undefined);
        if (reply) return reply;
      }
      this.stats.upstreamFailures++;
      return buildResponse(query, { rcode: RCode.SERVFAIL });
    } finally {
      this.inflight--;
    }
  }

  private isSelf(up: Upstream): boolean {
    return up.port === this.boundPort && (up.address === this.opts.host || (this.opts.host === '0.0.0.0' && up.address.startsWith('127.')));
  }

  private async onUdp(msg: Buffer, address: string, port: number): Promise<void> {
    const reply = await this.handle(msg, 'udp').catch(() => undefined);
    if (reply && this.udp) this.udp.send(reply, port, address);
  }

  private onTcp(socket: Socket): void {
    this.tcpClients.add(socket);
    socket.setTimeout(this.opts.tcpIdleTimeoutMs, () => socket.destroy());
    socket.on('error', () => undefined);
    socket.on('close', () => this.tcpClients.delete(socket));
    let pending: Buffer = Buffer.alloc(0);
    let busy = 0;
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      while (pending.length >= 2) {
        const len = pending.readUInt16BE(0);
        if (pending.length < 2 + len) break;
        const msg = pending.subarray(2, 2 + len);
        pending = pending.subarray(2 + len);
        if (++busy > 16) {
          socket.destroy(); // a client pipelining without reading
          return;
        }
        void this.handle(Buffer.from(msg), 'tcp')
          .catch(() => undefined)
          .then((reply) => {
            busy--;
            if (!reply || socket.destroyed) return;
            const head = Buffer.alloc(2);
            head.writeUInt16BE(reply.length, 0);
            socket.write(Buffer.concat([head, reply]));
          });
      }
    });
  }

  private forwardUdp(up: Upstream, buf: Buffer, query: DnsMessage): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      const sock = createSocket(isIPv6(up.address) ? 'udp6' : 'udp4');
      let done = false;
      const finish = (v: Buffer | undefined) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        sock.close();
        resolve(v);
      };
      const timer = setTimeout(() => finish(undefined), this.opts.upstreamTimeoutMs);
      sock.on('error', () => finish(undefined));
      sock.on('message', (reply, rinfo) => {
        if (rinfo.port !== up.port || !sameAddress(rinfo.address, up.address)) return;
        if (matches(reply, query)) finish(reply);
      });
      sock.send(buf, up.port, up.address);
    });
  }

  private forwardTcp(up: Upstream, buf: Buffer, query: DnsMessage): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      const sock = connect({ host: up.address, port: up.port });
      let got = Buffer.alloc(0);
      let done = false;
      const finish = (v: Buffer | undefined) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        sock.destroy();
        resolve(v);
      };
      const timer = setTimeout(() => finish(undefined), this.opts.upstreamTimeoutMs);
      sock.on('error', () => finish(undefined));
      sock.on('close', () => finish(undefined));
      sock.on('connect', () => {
        const head = Buffer.alloc(2);
        head.writeUInt16BE(buf.length, 0);
        sock.write(Buffer.concat([head, buf]));
      });
      sock.on('data', (chunk: Buffer) => {
        got = Buffer.concat([got, chunk]);
        if (got.length > MAX_TCP_MESSAGE + 2) return finish(undefined);
        if (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) {
          const reply = got.subarray(2, 2 + got.readUInt16BE(0));
          finish(matches(reply, query) ? Buffer.from(reply) : undefined);
        }
      });
    });
  }
}

function sameAddress(a: string, b: string): boolean {
  return a === b || a === `::ffff:${b}` || b === `::ffff:${a}`;
}

/** A reply belongs to a query when its id matches and, if it has a question, it is the same one. */
function matches(reply: Buffer, query: DnsMessage): boolean {
  if (reply.length < 12 || reply.readUInt16BE(0) !== query.id || !(reply[2] & 0x80)) return false;
  try {
    const m = parseMessage(reply);
    const q = query.questions[0];
    return m.questions.length === 0 || (m.questions[0].name === q.name && m.questions[0].type === q.type);
  } catch {
    return false;
  }
}
