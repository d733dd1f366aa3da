// The control plane of the Pilot scale benchmark: `mesh control-plane` as the
// CLI starts it (ControlPlane.start, same defaults), run in a child process
// the benchmark owns over IPC. It exits by itself when the benchmark goes
// away (IPC disconnect), even if the benchmark was killed, so no orphan stays.
// Messages: -> {ready, ports, pid}; <- {cmd: 'usage'} -> {usage: {cpu, memory}}.

import { ControlPlane } from '../../src/runtime/index.ts';
import { createLogger } from '../../src/common/index.ts';

const dataDir = process.argv[2];
if (!dataDir || !process.send) {
  console.error('usage: node bench/pilot-scale/control-plane.ts DATA_DIR  (started by bench/pilot-scale-bench.ts over IPC)');
  process.exit(2);
}

let plane: ControlPlane | undefined;
let stopping = false;
async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  // Bounded: a stuck shutdown must not keep the process.
  setTimeout(() => process.exit(code), 5000).unref();
  try {
    await plane?.stop();
  } catch {
    // exiting anyway
  }
  process.exit(code);
}

process.on('disconnect', () => void stop(0));
process.on('SIGTERM', () => void stop(0));
process.on('SIGINT', () => void stop(0));
process.on('message', (msg: { cmd?: string; id?: number }) => {
  if (msg.cmd === 'usage') process.send!({ id: msg.id, usage: { cpu: process.cpuUsage(), memory: process.memoryUsage(), xds: plane?.pilot.xds.stats() } });
  else if (msg.cmd === 'stop') void stop(0);
});

try {
  plane = await ControlPlane.start({ dataDir, listenAddress: '127.0.0.1', apiPort: 0, monitoringPort: 0, galleyPort: 0, xdsPort: 0, mixerPort: 0, caPort: 0, log: createLogger('control-plane') });
  process.send({ ready: true, ports: plane.ports, pid: process.pid });
} catch (err) {
  console.error('control plane failed to start:', err);
  await stop(1);
}
