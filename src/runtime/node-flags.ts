// V8 flags for the processes the runtime starts (and for proxies started by
// hand: bin/mesh.js re-executes `mesh run`, `mesh gateway` and `mesh proxy`
// with the ones missing). Under load V8 grows the
// young generation to its maximum (16 MB semi-spaces on 64-bit), which is
// most of a process's RSS growth.

// Sidecars and gateways: capped at 4 MB, RSS under load drops from about 315
// to 215 MB per sidecar with no measurable CPU cost (docs/proxy.md, measured
// with `bench/proxy-bench.ts --sidecar-flags`).
// Not `--heap-growing-percent=20..50` (full GC once the old space grows by
// that share): measured while the proxy still promoted ~8 MB/s of
// per-request garbage at 1000 rps, it held RSS near 135-140 MB for 10-20%
// more CPU. The promotion itself is gone since (docs/proxy.md, 2026-11-26).
// `--no-concurrent-array-buffer-sweeping`: every socket read brings a new
// ArrayBuffer, and V8 otherwise frees their memory on a worker thread woken
// after each scavenge; on a busy 2-core machine that wake-up and the
// cross-thread free() cost more than freeing in the pause (7% less CPU per
// request and about 10% more throughput through a sidecar pair, three
// interleaved rounds; docs/proxy.md).
export const SIDECAR_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4', '--no-concurrent-array-buffer-sweeping'];

/** A V8 flag's name without `--`, `no-` or a value (`--max_semi_space_size=8` -> `max-semi-space-size`). */
function flagName(flag: string): string {
  return flag.replace(/^--(no-)?/, '').split('=')[0]!.replaceAll('_', '-');
}

/**
 * The sidecar flags a process was not started with. A flag given in any
 * form (another value, its `--no-` opposite) counts as given: the user's
 * choice stands.
 */
export function missingSidecarFlags(execArgv: readonly string[]): string[] {
  const given = new Set(execArgv.map(flagName));
  return SIDECAR_NODE_FLAGS.filter((f) => !given.has(flagName(f)));
}

// The control plane keeps V8's defaults: capping its semi-spaces at 8-12 MB
// lowers Pilot's peak RSS with 2000 proxies (717-742 -> 641-686 MiB) but
// makes endpoint pushes slower (p99 390 -> 440-560 ms) through more frequent
// scavenges (`npm run bench:pilot -- --cp-semi-space-mb N`).
