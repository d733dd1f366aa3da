// The sidecar process of a captured workload: runs inside the workload's
// network namespace as uid/gid 1337 (so iptables leaves its own traffic
// alone), started by captured-run.ts with an IPC channel. For a gateway
// (`mesh gateway --capture`) the same process runs the router in the
// gateway's own namespace. It holds the
// agent, the proxy (original-dst resolver = SO_ORIGINAL_DST) and the DNS
// proxy; it does not start the app (the runtime does, as another user).
// Exits when told to stop or when the runtime goes away.

import { createLogger } from '../../common/index.ts';
import { Sidecar } from '../sidecar/sidecar.ts';
import type { FromSidecar, ToSidecar } from './protocol.ts';

const send = (m: FromSidecar): void => {
  if (process.connected) process.send!(m);
};

if (!process.send) {
  process.stderr.write('src/runtime/capture/sidecar-main.ts is started by `mesh run --capture`, with an IPC channel\n');
  process.exit(2);
}

let sidecar: Sidecar | undefined;
let stopping: Promise<void> | undefined;
let nextToken = 1;
const tokens = new Map<number, { resolve: (t: string) => void; reject: (e: Error) => void }>();

function stop(code: number): void {
  stopping ??= (async () => {
    await sidecar?.stop().catch(() => undefined);
    process.exit(code);
  })();
}

process.on('message', (raw) => {
  const m = raw as ToSidecar;
  switch (m.type) {
    case 'init': {
      const o = m.options;
      const log = createLogger(o.type === 'router' ? 'gateway' : 'sidecar').child({ workload: `${o.namespace}/${o.workloadName}` });
      sidecar = new Sidecar({
        ...o,
        controlPlane: '',
        log,
        capture: {
          dnsPort: m.dnsPort,
          address: m.address,
          info: m.info,
          services: m.services,
          names: m.names,
          dnsUpstreams: m.dnsUpstreams,
          bootstrapToken: () =>
            new Promise<string>((resolve, reject) => {
              const id = nextToken++;
              tokens.set(id, { resolve, reject });
              send({ type: 'token', id });
            }),
        },
      });
      sidecar.start().then(
        (status) => send({ type: 'ready', status }),
        (err: unknown) => {
          log.error({ err: (err as Error).message }, 'sidecar failed');
          send({ type: 'failed', error: (err as Error).message });
          stop(1);
        },
      );
      break;
    }
    case 'token': {
      const t = tokens.get(m.id);
      tokens.delete(m.id);
      if (m.token) t?.resolve(m.token);
      else t?.reject(new Error(m.error ?? 'no bootstrap token'));
      break;
    }
    case 'names':
      sidecar?.setNames(m.names);
      break;
    case 'register':
      void sidecar?.registerWhenServing(m.port).catch((err: unknown) => sidecar?.options.log.error({ err: (err as Error).message }, 'registration failed; the workload gets no inbound traffic'));
      break;
    case 'unregister':
      void sidecar?.unregister();
      break;
    case 'stop':
      stop(0);
      break;
  }
});
// The runtime is gone (crashed or killed): do not outlive it.
process.on('disconnect', () => stop(0));
// Signals go to the runtime, which stops this process in order.
process.on('SIGINT', () => undefined);
process.on('SIGTERM', () => stop(0));
