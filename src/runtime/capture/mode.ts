// Which mode the runtime runs workloads in: capture (network namespaces,
// iptables, SO_ORIGINAL_DST, DNS proxy; docs/capture.md) or no capture
// (a local port per service handed to the app; docs/runtime.md).
// `auto` picks capture when this host can do it and says which it picked.

import { captureSupport, findExecutable, originalDestinationSupport } from '../../agent/capture/index.ts';

export type CaptureSetting = 'on' | 'off' | 'auto';

export interface CaptureDecision {
  readonly capture: boolean;
  /** Why: for the log line that says which mode the runtime picked. */
  readonly reason: string;
}

/** Parses `true|false|auto` (mesh.yaml) or `on|off|auto` (flags). */
export function parseCaptureSetting(value: unknown, where: string): CaptureSetting {
  if (value === undefined || value === null || value === false || value === 'false' || value === 'off') return 'off';
  if (value === true || value === 'true' || value === 'on') return 'on';
  if (value === 'auto') return 'auto';
  throw new Error(`${where}: ${JSON.stringify(value)} is not one of true, false, auto`);
}

/** Whether this host can capture: Linux, root, ip/iptables/setpriv, and SO_ORIGINAL_DST through koffi. */
export function captureAvailable(): { ok: boolean; reason?: string } {
  const s = captureSupport();
  if (!s.ok) return { ok: false, reason: s.reason };
  if (!findExecutable('setpriv')) return { ok: false, reason: 'missing tool: setpriv (util-linux), needed to run the sidecar as uid 1337' };
  const o = originalDestinationSupport();
  if (!o.ok) return { ok: false, reason: o.reason };
  return { ok: true };
}

/** Decides the mode; `on` on a host that cannot capture is an error naming the reason. */
export function decideCapture(setting: CaptureSetting): CaptureDecision {
  if (setting === 'off') return { capture: false, reason: 'capture off: each app gets <SVC>_SERVICE_HOST/PORT' };
  const a = captureAvailable();
  if (setting === 'on') {
    if (!a.ok) throw new Error(`traffic capture was asked for but cannot run here: ${a.reason}`);
    return { capture: true, reason: 'capture on (asked for)' };
  }
  return a.ok ? { capture: true, reason: 'capture auto: root and the tools are here, capturing' } : { capture: false, reason: `capture auto: no capture (${a.reason})` };
}
