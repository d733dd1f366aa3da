// A fixed-rate HTTP/1.1 load client (wrk2's method, which Debian's wrk
// lacks): N keep-alive connections share one schedule of requests at a
// constant rate; each request's latency runs from its scheduled time, not its
// send time, so a slow proxy cannot hide queueing (no coordinated omission).
// Raw sockets and a minimal Content-Length parser keep the client cheap.
//
// usage: node fixed-rate-client.ts <port> <rps> <connections> <seconds> <warmup-seconds> <path>
// prints one JSON line: {"p50":ms,"p90":ms,"p99":ms,"p999":ms,"max":ms,"count":n,"errors":n,"rps":n}

import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

const [port, rps, conns, seconds, warmup, path] = [Number(process.argv[2]), Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5]), Number(process.argv[6]), process.argv[7] ?? '/'];
const REQUEST = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: server.bench.svc.cluster.local\r\nUser-Agent: fixed-rate-client\r\n\r\n`);
const interval = 1000 / rps;
const total = Math.round((seconds + warmup) * rps);
const warmupCount = Math.round(warmup * rps);

const latencies: number[] = [];
let errors = 0;
let issued = 0;
let completed = 0;
const start = performance.now() + 200;
const due: number[] = [];

interface Conn {
  socket: Socket;
  busy: boolean;
  intended: number;
  index: number;
  buf: Buffer;
  need: number; // bytes of the whole response once headers are parsed; -1 before
}

const idle: Conn[] = [];

function send(c: Conn, intended: number, index: number): void {
  c.busy = true;
  c.intended = intended;
  c.index = index;
  c.buf = Buffer.alloc(0);
  c.need = -1;
  c.socket.write(REQUEST);
}

function dispatch(): void {
  while (due.length > 0 && idle.length > 0) {
    const c = idle.pop()!;
    const intended = due.shift()!;
    send(c, intended, Math.round((intended - start) / interval));
  }
}

function finish(c: Conn, ok: boolean): void {
  const now = performance.now();
  completed++;
  if (!ok) errors++;
  else if (c.index >= warmupCount) latencies.push(now - c.intended);
  c.busy = false;
  idle.push(c);
  dispatch();
  if (completed >= total) report();
}

function onData(c: Conn, chunk: Buffer): void {
  c.buf = c.buf.length ? Buffer.concat([c.buf, chunk]) : chunk;
  if (c.need < 0) {
    const end = c.buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = c.buf.subarray(0, end).toString('latin1');
    const m = /\r\ncontent-length: *(\d+)/i.exec(head);
    c.need = end + 4 + (m ? Number(m[1]) : 0);
    if (!head.startsWith('HTTP/1.1 200')) c.need = -2;
  }
  if (c.need === -2) {
    finish(c, false);
    return;
  }
  if (c.buf.length >= c.need) finish(c, true);
}

function tick(): void {
  const now = performance.now();
  while (issued < total && start + issued * interval <= now) {
    due.push(start + issued * interval);
    issued++;
  }
  dispatch();
  if (issued < total) setTimeout(tick, Math.max(0, start + issued * interval - performance.now()));
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

let reported = false;
function report(): void {
  if (reported) return;
  reported = true;
  const s = latencies.sort((a, b) => a - b);
  const r3 = (x: number): number => Math.round(x * 1000) / 1000;
  process.stdout.write(`${JSON.stringify({ p50: r3(pct(s, 50)), p90: r3(pct(s, 90)), p99: r3(pct(s, 99)), p999: r3(pct(s, 99.9)), max: r3(s.at(-1) ?? NaN), count: s.length, errors, rps: Math.round(s.length / seconds) })}\n`);
  for (const c of conns_) c.socket.destroy();
  process.exit(0);
}

const conns_: Conn[] = [];
let connected = 0;

function open(c: Conn): void {
  const socket = connect({ port, host: '127.0.0.1', noDelay: true });
  c.socket = socket;
  socket.on('data', (d: Buffer) => onData(c, d));
  socket.on('error', () => undefined);
  socket.once('close', () => {
    if (reported) return;
    // The server closed a kept-alive connection: count the request in flight as failed and reconnect.
    const i = idle.indexOf(c);
    if (i >= 0) idle.splice(i, 1);
    if (c.busy) {
      c.busy = false;
      completed++;
      errors++;
    }
    open(c);
  });
  socket.once('connect', () => {
    idle.push(c);
    if (connected < conns && ++connected === conns) tick();
    else dispatch();
  });
}

for (let i = 0; i < conns; i++) {
  const c = { busy: false, intended: 0, index: 0, buf: Buffer.alloc(0), need: -1 } as unknown as Conn;
  conns_.push(c);
  open(c);
}
setTimeout(() => report(), (seconds + warmup) * 1000 + 30_000).unref();
