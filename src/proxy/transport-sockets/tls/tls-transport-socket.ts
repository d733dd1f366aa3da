// envoy.transport_sockets.tls: DownstreamTlsContext on filter chains and
// UpstreamTlsContext on clusters. Downstream: the server handshake on an
// accepted socket, client certificates required or optional, ALPN, then the
// peer's SANs checked against the validation context (SPIFFE URI SANs).
// Upstream: SNI, ALPN, TLS session reuse per host, the server verified
// against trusted_ca and the SAN matchers; a failure is a transport failure
// (the router answers 503 UF).

import { TLSSocket, connect as tlsConnect } from 'node:tls';
import type { Socket } from 'node:net';
import type { PeerCertificate } from 'node:tls';
import { TypeUrl } from '../../../xds/index.ts';
import { createLogger } from '../../../common/index.ts';
import type { Logger } from '../../../common/index.ts';
import { configError } from '../../errors.ts';
import type { TransportSocketExtension } from '../../registry.ts';
import { parseSubjectAltNames, sanMatches } from '../../secrets/secret.ts';
import type { DownstreamTransportSocket, TransportFailure, UpstreamTransportSocket } from '../transport-socket.ts';
import { TlsContextProvider } from './tls-context.ts';
import type { TlsStats } from './tls-stats.ts';
import type { ValidationContext } from '../../secrets/secret.ts';

type D = Record<string, any>;

let logger: Logger | undefined;

/** A handshake that has not finished after this long is abandoned (Node's tls.Server default is 120s). */
const HANDSHAKE_TIMEOUT_MS = 15_000;

interface HandshakeState {
  readonly tls: TLSSocket;
  readonly stats: TlsStats;
  readonly done: (socket: Socket | undefined) => void;
  readonly owner: DownstreamTls;
  /** The validation context the handshake started with (a rotation mid-handshake does not change it). */
  readonly validation: ValidationContext | undefined;
  timer: NodeJS.Timeout | undefined;
  finished: boolean;
}

const handshakes = new WeakMap<TLSSocket, HandshakeState>();

function finish(st: HandshakeState, ok: boolean): void {
  if (st.finished) return;
  st.finished = true;
  clearTimeout(st.timer);
  st.tls.removeListener('error', onHandshakeError);
  st.tls.removeListener('close', onHandshakeError);
  st.tls.removeListener('end', onHandshakeError);
  if (!ok) st.tls.destroy();
  st.done(ok ? st.tls : undefined);
}

function onHandshakeError(this: TLSSocket): void {
  const st = handshakes.get(this);
  if (!st) return;
  st.stats.connection_error.value++;
  finish(st, false);
}

function onHandshakeTimeout(st: HandshakeState): void {
  st.stats.connection_error.value++;
  finish(st, false);
}

function onSecure(this: TLSSocket): void {
  const st = handshakes.get(this);
  if (!st) return;
  st.owner.verify(st);
}

export class DownstreamTls implements DownstreamTransportSocket {
  private readonly context: TlsContextProvider;
  private readonly requireClientCertificate: boolean;

  constructor(context: TlsContextProvider, requireClientCertificate: boolean) {
    this.context = context;
    this.requireClientCertificate = requireClientCertificate;
  }

  accept(socket: Socket, stats: TlsStats, done: (socket: Socket | undefined) => void, clientAlpn?: readonly string[]): void {
    let active;
    try {
      active = this.context.current();
    } catch {
      active = undefined;
    }
    if (!active) {
      stats.secrets_not_ready.value++;
      socket.destroy();
      done(undefined);
      return;
    }
    let alpn = this.context.alpn;
    // BoringSSL (Envoy) goes on without ALPN when nothing overlaps; OpenSSL in
    // Node would abort the handshake, so offer none then (Istio clients offer
    // istio-h2 etc. to servers configured with h2/http/1.1).
    if (clientAlpn && alpn.length > 0 && !alpn.some((p) => clientAlpn.includes(p))) alpn = [];
    const tls = new TLSSocket(socket, {
      isServer: true,
      secureContext: active.secureContext,
      requestCert: active.validation !== undefined,
      rejectUnauthorized: this.requireClientCertificate,
      ALPNProtocols: alpn.length > 0 ? [...alpn] : undefined,
    });
    const st: HandshakeState = { tls, stats, done, owner: this, validation: active.validation, timer: undefined, finished: false };
    handshakes.set(tls, st);
    st.timer = setTimeout(onHandshakeTimeout, HANDSHAKE_TIMEOUT_MS, st);
    tls.on('error', onHandshakeError);
    // A peer that gives up mid-handshake may just close (listeners allow half-open sockets).
    tls.once('close', onHandshakeError);
    tls.once('end', onHandshakeError);
    tls.once('secure', onSecure);
  }

  /** After the handshake: Envoy refuses an unverified certificate and a SAN mismatch. */
  verify(st: HandshakeState): void {
    const tls = st.tls;
    const validation = st.validation;
    if (validation) {
      const peer = tls.getPeerCertificate();
      const presented = peer !== null && peer !== undefined && peer.raw !== undefined;
      if (!presented) {
        if (this.requireClientCertificate) {
          st.stats.fail_verify_no_cert.value++;
          return finish(st, false);
        }
        st.stats.no_certificate.value++;
      } else {
        const err = (tls as unknown as { ssl: { verifyError(): Error | null } }).ssl.verifyError();
        if (err) {
          st.stats.fail_verify_error.value++;
          return finish(st, false);
        }
        if (!sanMatches(validation.sanMatchers, parseSubjectAltNames(peer.subjectaltname))) {
          st.stats.fail_verify_san.value++;
          return finish(st, false);
        }
      }
    }
    st.stats.handshake.value++;
    // What tls.Server does before 'secureConnection'; http2 waits for it otherwise.
    (tls as unknown as { secureConnecting: boolean }).secureConnecting = false;
    finish(st, true);
  }
}

export class UpstreamTls implements UpstreamTransportSocket {
  private readonly context: TlsContextProvider;
  private readonly sni: string | undefined;
  /**
   * Resumable sessions by host:port (Envoy's session cache per cluster), each
   * with the TLS context it was made with: a session resumed after a
   * certificate rotation would present the old (soon expired) certificate.
   */
  private readonly sessions = new Map<string, { readonly context: unknown; readonly session: Buffer }>();

  constructor(context: TlsContextProvider, sni: string | undefined) {
    this.context = context;
    this.sni = sni;
  }

  get alpn(): readonly string[] {
    return this.context.alpn;
  }

  connect(host: string, port: number, stats: TlsStats): Socket {
    let active;
    let problem = 'secrets not ready';
    try {
      active = this.context.current();
    } catch (err) {
      problem = (err as Error).message;
    }
    const key = `${host}:${port}`;
    const alpn = this.context.alpn;
    const validation = active?.validation;
    const tls = tlsConnect({
      host,
      port,
      servername: this.sni,
      secureContext: active?.secureContext,
      ALPNProtocols: alpn.length > 0 ? [...alpn] : undefined,
      session: active && this.sessions.get(key)?.context === active.secureContext ? this.sessions.get(key)!.session : undefined,
      rejectUnauthorized: validation?.trustedCa !== undefined,
      // Envoy checks the SAN matchers, not the host name, unless told to.
      checkServerIdentity: (_host: string, cert: PeerCertificate) => {
        if (!validation || sanMatches(validation.sanMatchers, parseSubjectAltNames(cert.subjectaltname))) return undefined;
        stats.fail_verify_san.value++;
        const err = new Error(`peer certificate SANs (${cert.subjectaltname ?? 'none'}) match none of the configured subject alt names`) as NodeJS.ErrnoException;
        err.code = 'ERR_TLS_CERT_ALTNAME_INVALID';
        return err;
      },
    });
    if (!active) {
      stats.secrets_not_ready.value++;
      const err = new Error(`TLS context not ready: ${problem}`) as TransportFailure;
      err.transportFailureReason = `TLS_error: ${problem}`;
      tls.destroy(err);
      return tls;
    }
    let secure = false;
    const context = active.secureContext;
    tls.on('session', (session: Buffer) => this.sessions.set(key, { context, session }));
    tls.once('secureConnect', () => {
      secure = true;
      stats.handshake.value++;
    });
    // Registered before the pool's listener: the same Error object reaches it annotated.
    tls.once('error', (err: TransportFailure & { code?: string }) => {
      if (secure) return;
      this.sessions.delete(key);
      // TCP-level failures stay connect failures; the rest happened in the handshake.
      if (err.code === 'ECONNREFUSED' || err.code === 'EHOSTUNREACH' || err.code === 'ENETUNREACH' || err.code === 'EADDRNOTAVAIL') return;
      if (err.code !== 'ERR_TLS_CERT_ALTNAME_INVALID') {
        if (/certificate|verify|self.signed|issuer/i.test(err.message)) stats.fail_verify_error.value++;
      }
      stats.connection_error.value++;
      err.transportFailureReason = `TLS_error: ${err.code ?? ''}: ${err.message}`;
      logger ??= createLogger('proxy.tls');
      logger.warn({ upstream: key, sni: this.sni, reason: err.transportFailureReason }, 'upstream TLS handshake failed');
    });
    return tls;
  }
}

function requireCertificate(ctx: TlsContextProvider, path: string): void {
  if (!ctx.hasCertificate) throw configError(`${path}.common_tls_context`, 'a server needs tls_certificates or tls_certificate_sds_secret_configs');
}

export const tlsTransportSocketExtensions: TransportSocketExtension[] = [
  {
    typeUrl: TypeUrl.DownstreamTlsContext,
    category: 'transport_socket',
    create(c: D, context, path) {
      if (!context.secrets) throw configError(path, 'TLS needs the proxy secret manager');
      const ctx = new TlsContextProvider(c.common_tls_context, context.secrets, `${path}.common_tls_context`);
      requireCertificate(ctx, path);
      const require = c.require_client_certificate?.value === true;
      if (require && !ctx.validates) throw configError(`${path}.require_client_certificate`, 'needs a validation context to verify the client certificate');
      return { downstream: new DownstreamTls(ctx, require) };
    },
  },
  {
    typeUrl: TypeUrl.UpstreamTlsContext,
    category: 'transport_socket',
    create(c: D, context, path) {
      if (!context.secrets) throw configError(path, 'TLS needs the proxy secret manager');
      const ctx = new TlsContextProvider(c.common_tls_context, context.secrets, `${path}.common_tls_context`);
      return { upstream: new UpstreamTls(ctx, c.sni || undefined) };
    },
  },
];
