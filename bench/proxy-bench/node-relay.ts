// The runtime's floor, for the proxy benchmark: the cheapest proxy pair node
// can be. Each side relays bytes between a downstream connection and an
// upstream connection of its own (one upstream per downstream, so HTTP
// keep-alive passes through) with no HTTP parsing, routing, headers or
// telemetry; with mTLS the hop between the two sides is TLS 1.3 with client
// certificates, as between our sidecars. Whatever this pair costs in CPU,
// latency and memory, no HTTP proxy written for node can cost less.
//
// usage: node node-relay.ts <listen port> <upstream port> [mtls-client|mtls-server] [certs dir]

import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';

const [listenPort, upstreamPort, mode, certsDir] = process.argv.slice(2);
const read = (f: string): string => readFileSync(join(certsDir, f), 'utf8');
const clientTls = mode === 'mtls-client' ? { ca: read('ca.pem'), cert: read('client.pem'), key: read('client.key') } : undefined;

/** Copies bytes from `from` to `to`, pausing `from` while `to` is backed up; an end or error on either closes both. */
function relay(from: Socket, to: Socket): void {
  from.on('data', (chunk: Buffer) => {
    if (!to.write(chunk)) from.pause();
  });
  to.on('drain', () => from.resume());
  from.on('end', () => to.end());
  from.on('error', () => to.destroy());
  from.on('close', () => to.destroy());
}

function upstream(): Socket {
  if (!clientTls) return connect({ port: Number(upstreamPort), host: '127.0.0.1', noDelay: true });
  return tls.connect({ port: Number(upstreamPort), host: '127.0.0.1', servername: 'server.bench.svc.cluster.local', ...clientTls }).setNoDelay(true);
}

function accepted(down: Socket): void {
  down.setNoDelay(true);
  const up = upstream();
  relay(down, up);
  relay(up, down);
}

const server =
  mode === 'mtls-server'
    ? tls.createServer({ ca: read('ca.pem'), cert: read('server.pem'), key: read('server.key'), requestCert: true, rejectUnauthorized: true }, accepted)
    : createServer(accepted);
server.listen(Number(listenPort), '127.0.0.1', () => process.stdout.write('ready\n'));
process.once('SIGTERM', () => process.exit(0));
