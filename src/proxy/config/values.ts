// Small readers for decoded protobuf values: durations, wrappers, percentages,
// socket addresses. Decoded messages carry 64-bit integers as strings.

import { configError } from '../errors.ts';

export interface DecodedDuration {
  readonly seconds: string | number;
  readonly nanos: number;
}

/** Milliseconds of a Duration, or `fallback` when unset. */
export function durationMs(d: DecodedDuration | null | undefined, fallback: number): number {
  if (!d) return fallback;
  return Number(d.seconds) * 1000 + Math.floor(d.nanos / 1e6);
}

export function wrapped<T>(w: { value: T } | null | undefined, fallback: T): T {
  return w ? w.value : fallback;
}

const DENOMINATORS: Record<string, number> = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 };

/** A FractionalPercent as a probability 0..1. */
export function fraction(p: { numerator: number; denominator: string } | null | undefined, fallback: number): number {
  if (!p) return fallback;
  return Math.min(1, p.numerator / (DENOMINATORS[p.denominator] ?? 100));
}

export interface SocketAddress {
  readonly address: string;
  readonly port: number;
}

export function socketAddress(a: { socket_address?: { address: string; port_value: number } | null } | null | undefined, path: string): SocketAddress {
  const sa = a?.socket_address;
  if (!sa) throw configError(path, 'a socket_address is required (pipe and internal addresses are not supported)');
  if (!sa.address) throw configError(`${path}.socket_address.address`, 'must not be empty');
  if (!Number.isInteger(sa.port_value) || sa.port_value < 0 || sa.port_value > 65535) throw configError(`${path}.socket_address.port_value`, `invalid port ${sa.port_value}`);
  return { address: sa.address, port: sa.port_value };
}
