// V8 flags for sidecar and gateway processes. Under load V8 grows the young
// generation to its maximum (16 MB semi-spaces on 64-bit), which is most of a
// sidecar's RSS growth: capped at 4 MB, RSS under load drops from about 315 to
// 215 MB per sidecar with no measurable CPU cost (docs/proxy.md, measured with
// `bench/proxy-bench.ts --sidecar-flags`). The control plane keeps V8's defaults.
export const SIDECAR_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];
