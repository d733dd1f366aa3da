// The traffic capture flags `mesh run` and `mesh gateway` share (--capture,
// --capture-mode, --capture-bridge, --capture-subnet, --capture-egress,
// --capture-dns): their parseArgs options, the capture decision they lead to
// and the sidecar run they choose. Each command keeps its own help text.

import { isIPv4 } from 'node:net';
import type { Logger } from '../common/index.ts';
import { decideCapture, parseCaptureSetting } from '../runtime/capture/mode.ts';
import type { CaptureDecision, CaptureSetting } from '../runtime/capture/mode.ts';
import { runCapturedSidecar } from '../runtime/capture/captured-run.ts';
import type { CaptureNetworkOptions } from '../runtime/capture/captured-run.ts';
import { runSidecar } from '../runtime/sidecar/index.ts';
import type { SidecarOptions } from '../runtime/sidecar/index.ts';
import type { FlagValues } from './command.ts';
import { str, strings } from './command.ts';
import { CliError, ExitCode } from './exit-codes.ts';

/** The capture flags, for a command's `options`. */
export const CAPTURE_FLAGS = {
  capture: { type: 'boolean' },
  'capture-mode': { type: 'string' },
  'capture-bridge': { type: 'string' },
  'capture-subnet': { type: 'string' },
  'capture-egress': { type: 'boolean' },
  'capture-dns': { type: 'string', multiple: true },
} as const;

/** `--capture-dns 10.96.0.10` or `10.96.0.10:5353` (IPv4). */
export function dnsUpstream(value: string): { address: string; port: number } {
  const m = /^(\d+\.\d+\.\d+\.\d+)(?::(\d+))?$/.exec(value);
  const port = m?.[2] === undefined ? 53 : Number(m[2]);
  if (!m || !isIPv4(m[1]!) || port < 1 || port > 65535) throw new CliError(ExitCode.USAGE, `--capture-dns ${value}: expected an IPv4 address, optionally with :PORT`);
  return { address: m[1]!, port };
}

/** --capture (on) or --capture-mode; a bad mode is a usage error. */
export function captureSetting(flags: FlagValues): CaptureSetting {
  try {
    return flags.capture === true ? 'on' : parseCaptureSetting(str(flags, 'capture-mode'), '--capture-mode');
  } catch (err) {
    throw new CliError(ExitCode.USAGE, (err as Error).message);
  }
}

/**
 * Decides the mode for `setting` and logs which it picked (unless capture is
 * off); capture asked for on a host that cannot capture is a failure.
 */
export function captureDecision(setting: CaptureSetting, log: Logger): CaptureDecision {
  let decision;
  try {
    decision = decideCapture(setting);
  } catch (err) {
    throw new CliError(ExitCode.FAILURE, (err as Error).message);
  }
  if (setting !== 'off') log.info({ mode: decision.capture ? 'capture' : 'no-capture' }, decision.reason);
  return decision;
}

/** The bridge, subnet, egress and DNS flags as the captured run's network options. */
function captureNetwork(flags: FlagValues): CaptureNetworkOptions {
  const bridgeSuffix = str(flags, 'capture-bridge');
  const subnet = str(flags, 'capture-subnet');
  const dnsUpstreams = strings(flags, 'capture-dns').map((a) => dnsUpstream(a));
  return { ...(bridgeSuffix ? { bridgeSuffix } : {}), ...(subnet ? { subnet } : {}), egress: flags['capture-egress'] === true, ...(dnsUpstreams.length > 0 ? { dnsUpstreams } : {}) };
}

/** Runs the sidecar as `decision` says: in its own network namespace on the bridge the flags name, or without capture. */
export function runSidecarWithCapture(decision: CaptureDecision, flags: FlagValues, options: SidecarOptions): Promise<number> {
  return decision.capture ? runCapturedSidecar(options, captureNetwork(flags)) : runSidecar(options);
}
