// Traffic capture for the sidecar model (Istio's istio-iptables + agent DNS
// proxy + the proxy's SO_ORIGINAL_DST): workload network namespaces, the
// iptables rules that send a workload's TCP to the sidecar, the original
// destination of a redirected connection, and the DNS proxy. See
// docs/capture.md.
export * from './netns.ts';
export * from './iptables.ts';
export * from './original-dst.ts';
export * from './dns-message.ts';
export * from './dns-proxy.ts';
export * from './workload.ts';
export { run as runCommand, runChecked as runCommandChecked, which as findExecutable } from './exec.ts';
export type { RunOptions as RunCommandOptions, RunResult as RunCommandResult } from './exec.ts';
