// SO_ORIGINAL_DST: the destination a connection had before iptables REDIRECT
// sent it to the sidecar (15001 outbound, 15006 inbound). Node has no API for
// it, so this calls libc's getsockopt through koffi (FFI; its prebuilt
// binaries ship inside the npm package, nothing is compiled).
//
// Reliance on Node internals, documented: the file descriptor of a
// net.Socket is read from `socket._handle.fd` (libuv's TCPWrap exposes it on
// Unix). It is undocumented but has been stable for many major versions;
// when it is missing (or on a platform without SO_ORIGINAL_DST) the functions
// here return undefined and callers fall back to the local address.
//
// The function shape matches the proxy's OriginalDstResolver, so the runtime
// installs it with `setOriginalDstResolver(originalDestination)`.

import { createRequire } from 'node:module';
import type { Socket } from 'node:net';

/** Same shape as src/proxy's OriginalDstResolver (declared here: the agent does not import the proxy). */
export type OriginalDestinationResolver = (socket: Socket) => { address: string; port: number } | undefined;

const SOL_IP = 0;
const SOL_IPV6 = 41;
const SO_ORIGINAL_DST = 80; // linux/netfilter_ipv4.h
const IP6T_SO_ORIGINAL_DST = 80; // linux/netfilter_ipv6/ip6_tables.h
const AF_INET = 2;
const AF_INET6 = 10;

type GetSockOpt = (fd: number, level: number, name: number, buf: Buffer, len: number[]) => number;

let getsockopt: GetSockOpt | null | undefined;
let loadError: string | undefined;

function load(): GetSockOpt | null {
  if (getsockopt !== undefined) return getsockopt;
  if (process.platform !== 'linux') {
    loadError = `SO_ORIGINAL_DST is Linux-only (this is ${process.platform})`;
    getsockopt = null;
    return null;
  }
  try {
    const require = createRequire(import.meta.url);
    const koffi = require('koffi') as typeof import('koffi');
    const libc = koffi.load('libc.so.6');
    getsockopt = libc.func('int getsockopt(int sockfd, int level, int optname, _Out_ uint8_t *optval, _Inout_ uint32_t *optlen)') as unknown as GetSockOpt;
  } catch (err) {
    loadError = `cannot load getsockopt through koffi: ${(err as Error).message}`;
    getsockopt = null;
  }
  return getsockopt;
}

/** Whether SO_ORIGINAL_DST can be read here; `reason` says why not. */
export function originalDestinationSupport(): { ok: boolean; reason?: string } {
  return load() ? { ok: true } : { ok: false, reason: loadError };
}

/** The OS file descriptor behind a net.Socket (via the undocumented `_handle.fd`), or undefined. */
export function socketFd(socket: Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/** Decodes a struct sockaddr_in / sockaddr_in6 (family in host order, port big-endian). */
export function decodeSockaddr(buf: Buffer, len: number): { address: string; port: number } | undefined {
  if (len < 8) return undefined;
  const family = buf.readUInt16LE(0);
  const port = buf.readUInt16BE(2);
  if (family === AF_INET && len >= 8) {
    return { address: `${buf[4]}.${buf[5]}.${buf[6]}.${buf[7]}`, port };
  }
  if (family === AF_INET6 && len >= 24) {
    const groups: string[] = [];
    for (let i = 0; i < 8; i++) groups.push(buf.readUInt16BE(8 + i * 2).toString(16));
    // v4-mapped stays dotted, like Node prints it.
    if (groups.slice(0, 5).every((g) => g === '0') && groups[5] === 'ffff') return { address: `::ffff:${buf[20]}.${buf[21]}.${buf[22]}.${buf[23]}`, port };
    return { address: compressIpv6(groups), port };
  }
  return undefined;
}

function compressIpv6(groups: string[]): string {
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return groups.join(':');
  return `${groups.slice(0, bestStart).join(':')}::${groups.slice(bestStart + bestLen).join(':')}`;
}

function query(fd: number, level: number, name: number): { address: string; port: number } | undefined {
  const fn = load();
  if (!fn) return undefined;
  const buf = Buffer.alloc(28);
  const len = [buf.length];
  if (fn(fd, level, name, buf, len) !== 0) return undefined;
  return decodeSockaddr(buf, len[0]);
}

/**
 * The pre-REDIRECT destination of an accepted TCP socket. For a connection
 * that was not redirected it is the local address (conntrack's original
 * tuple); undefined when the kernel tracks no such connection (ENOENT, e.g.
 * no netfilter in that namespace) or the fd cannot be had. IPv6 sockets are asked with
 * IP6T_SO_ORIGINAL_DST, IPv4 (and v4-mapped) with SO_ORIGINAL_DST.
 */
export const originalDestination: OriginalDestinationResolver = (socket) => {
  const fd = socketFd(socket);
  if (fd === undefined) return undefined;
  const local = socket.localAddress ?? '';
  const v6 = local.includes(':') && !local.startsWith('::ffff:');
  if (v6) return query(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST);
  return query(fd, SOL_IP, SO_ORIGINAL_DST) ?? (local.startsWith('::ffff:') ? query(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST) : undefined);
};
