// The life of a sidecar process, from `mesh run` and `mesh gateway`: start,
// run the app, forward SIGINT/SIGTERM to it, and exit with its exit code once
// it is gone (a finished batch job takes its sidecar with it).

import { constants } from 'node:os';
import type { SidecarOptions, SidecarStatus } from './sidecar.ts';
import { Sidecar } from './sidecar.ts';

/** Resolves with the process exit code: the app's, 128+signal if a signal ended it, 1 if the sidecar failed to start. */
export async function runSidecar(options: SidecarOptions, onReady?: (status: SidecarStatus) => void): Promise<number> {
  const sidecar = new Sidecar(options);
  let signalled: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (signalled) {
      // A second signal: stop waiting for the app.
      options.log.warn({ signal: sig }, 'second signal: killing the app');
      void sidecar.signal('SIGKILL');
      return;
    }
    signalled = sig;
    options.log.info({ signal: sig }, 'signal received: unregistering and stopping the app; outbound traffic flows until it exits');
    void sidecar.signal(sig);
  };
  const stopSignal = new Promise<void>((resolve) => {
    const handler = (sig: NodeJS.Signals): void => {
      onSignal(sig);
      if (!options.command?.length) resolve();
    };
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
  });
  try {
    const status = await sidecar.start();
    onReady?.(status);
    if (signalled) {
      await sidecar.stop();
      return 0;
    }
    const exit = await Promise.race([sidecar.run(), stopSignal.then(() => ({ code: 0, signal: null }))]);
    options.log.info({ code: exit.code, signal: exit.signal }, options.command?.length ? 'app exited; draining the sidecar' : 'stopping');
    await sidecar.stop();
    if (exit.signal) return 128 + (constants.signals[exit.signal] ?? 0);
    return exit.code ?? 0;
  } catch (err) {
    options.log.error({ err: (err as Error).message }, 'sidecar failed');
    await sidecar.stop().catch(() => undefined);
    throw err;
  }
}
