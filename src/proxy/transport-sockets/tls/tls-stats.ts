// Envoy's TLS stats (`<scope>.ssl.*`), declared once per listener or cluster.

import type { Counter, StatsStore } from '../../stats.ts';

export interface TlsStats {
  readonly handshake: Counter;
  readonly connection_error: Counter;
  readonly no_certificate: Counter;
  readonly fail_verify_no_cert: Counter;
  readonly fail_verify_error: Counter;
  readonly fail_verify_san: Counter;
  /** `server_ssl_socket_factory.downstream_context_secrets_not_ready` / `client_ssl_socket_factory.upstream_context_secrets_not_ready`. */
  readonly secrets_not_ready: Counter;
}

/** Stats under `prefix` (`listener.0.0.0.0_15006.` or `cluster.outbound|80||a.`). */
export function tlsStats(store: StatsStore, prefix: string, side: 'downstream' | 'upstream'): TlsStats {
  const c = (n: string): Counter => store.counter(`${prefix}ssl.${n}`);
  return {
    handshake: c('handshake'),
    connection_error: c('connection_error'),
    no_certificate: c('no_certificate'),
    fail_verify_no_cert: c('fail_verify_no_cert'),
    fail_verify_error: c('fail_verify_error'),
    fail_verify_san: c('fail_verify_san'),
    secrets_not_ready: store.counter(side === 'downstream' ? `${prefix}server_ssl_socket_factory.downstream_context_secrets_not_ready` : `${prefix}client_ssl_socket_factory.upstream_context_secrets_not_ready`),
  };
}
