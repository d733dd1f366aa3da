// Istio's "Secure Gateways" task end to end: a control plane, the ingress
// gateway and an httpbin-like backend as `mesh up` starts them; a CA and a
// server certificate for httpbin.example.com; the credential created with
// `mesh create secret tls` in the gateway's namespace (istio-system); a
// Gateway with SIMPLE TLS and credentialName; a real HTTPS client with SNI.
// Then: rotation reaches new handshakes while an open connection keeps
// working, MUTUAL with `NAME-cacert`, and a Secret in another namespace is
// not served.

import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { REPO_ROOT, runMesh, startControlPlane, tempDir } from '../helpers/processes.ts';
import type { RunningControlPlane } from '../helpers/processes.ts';
import { createCa, issueCertificate } from '../helpers/test-pki.ts';
import type { TestCa } from '../helpers/test-pki.ts';
import { freePort } from '../../src/runtime/sidecar/local-addresses.ts';
import { alive, descendants, eventually, startMesh } from '../runtime/helpers.ts';
import type { MeshProcess } from '../runtime/helpers.ts';

const HOST = 'httpbin.example.com';
/** The backend: answers every request with its path, as httpbin's /status/200 would with 200. */
const BACKEND = "require('node:http').createServer((q, s) => s.end('httpbin ' + q.url)).listen(Number(process.env.PORT), '127.0.0.1')";

interface Answer {
  readonly status: number;
  readonly body: string;
  /** Subject of the certificate the gateway presented. */
  readonly issuer: string;
}

/** One HTTP/1.1 GET over an already connected TLS socket. */
function getOver(socket: TLSSocket, path: string, host = HOST): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (d: Buffer): void => {
      text += d.toString('latin1');
      const head = text.indexOf('\r\n\r\n');
      if (head < 0) return;
      const length = Number(/content-length:\s*(\d+)/i.exec(text.slice(0, head))?.[1] ?? -1);
      if (length >= 0 && text.length - head - 4 < length) return;
      socket.off('data', onData);
      resolve({ status: Number(text.slice(9, 12)), body: text.slice(head + 4) });
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('close', () => reject(new Error(`connection closed before a response: ${text}`)));
    socket.write(`GET ${path} HTTP/1.1\r\nhost: ${host}\r\n\r\n`);
  });
}

/** A TLS connection to the gateway with SNI `servername`, trusting `ca`; rejects when the handshake fails. */
function handshake(port: number, servername: string, ca: string, client?: { certPem: string; keyPem: string }): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername, ca, ...(client ? { cert: client.certPem, key: client.keyPem } : {}), ALPNProtocols: ['http/1.1'] });
    socket.setTimeout(5000, () => socket.destroy(new Error('handshake timed out')));
    socket.once('secureConnect', () => {
      socket.setTimeout(0);
      resolve(socket);
    });
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('closed during the handshake')));
  });
}

/** A fresh connection, one request, closed after; TLS 1.3 client-certificate refusals surface on the first read. */
async function httpsGet(port: number, path: string, ca: string, options: { servername?: string; client?: { certPem: string; keyPem: string } } = {}): Promise<Answer> {
  const socket = await handshake(port, options.servername ?? HOST, ca, options.client);
  try {
    const issuer = socket.getPeerCertificate().issuer?.O ?? '';
    const answer = await getOver(socket, path, options.servername ?? HOST);
    return { ...answer, issuer: String(issuer) };
  } finally {
    socket.destroy();
  }
}

function gatewayYaml(port: number, servers: object[]): string {
  return stringify({ apiVersion: 'networking.istio.io/v1', kind: 'Gateway', metadata: { name: 'mygateway', namespace: 'default' }, spec: { selector: { istio: 'ingressgateway' }, servers: servers.map((s, i) => ({ port: { number: port, name: i === 0 ? 'https' : `https-${i}`, protocol: 'HTTPS' }, ...s })) } });
}

const VIRTUAL_SERVICE = stringify({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name: 'httpbin', namespace: 'default' },
  spec: { hosts: [HOST, 'other.example.com'], gateways: ['mygateway'], http: [{ match: [{ uri: { prefix: '/status' } }, { uri: { prefix: '/delay' } }], route: [{ destination: { host: 'httpbin', port: { number: 8000 } } }] }] },
});

describe('secure ingress gateway with credentialName (Istio "Secure Gateways")', { timeout: 240_000 }, () => {
  const runDir = tempDir('e2e-secure-gw-');
  let cp: RunningControlPlane | undefined;
  let up: MeshProcess | undefined;
  let pids: number[] = [];
  let port = 0;
  let ca: TestCa;
  let files = 0;
  const file = (name: string, text: string): string => {
    const p = join(runDir, `${++files}-${name}`);
    writeFileSync(p, text);
    return p;
  };
  const mesh = async (args: string[], input?: string): Promise<string> => {
    const r = await runMesh([...args, '--server', cp!.server], input === undefined ? {} : { input });
    assert.equal(r.code, 0, `mesh ${args.join(' ')}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  };
  const cpWarnings = (): string => cp!.logs.filter((l) => l.includes('credentialName')).map((l) => String((JSON.parse(l) as { msg?: string }).msg)).join('\n');

  before(async () => {
    cp = await startControlPlane([], join(runDir, 'data'));
    port = await freePort('0.0.0.0');
    const topology = {
      namespace: 'default',
      workingDir: REPO_ROOT,
      controlPlane: cp.server,
      gateway: true,
      services: [{ name: 'httpbin', port: 8000, serviceAccount: 'httpbin', command: [process.execPath, '-e', BACKEND], versions: [{ version: 'v1' }] }],
    };
    writeFileSync(join(runDir, 'mesh.yaml'), stringify(topology));
    up = startMesh(['up', '-f', join(runDir, 'mesh.yaml'), '--run-dir', join(runDir, 'run'), '--quiet']);
    await up.waitFor((_e, line) => line.startsWith('mesh up: ') && line.includes('ready in'), 90_000);
    pids = descendants(up.child.pid!);
    ca = await createCa('example.com');
  });

  after(async () => {
    if (up?.child.pid) pids = [...new Set([...pids, ...descendants(up.child.pid)])];
    if (up) await runMesh(['down', '--run-dir', join(runDir, 'run')]);
    await up?.stop('SIGKILL');
    await cp?.stop();
    for (const pid of pids) if (alive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    rmSync(runDir, { recursive: true, force: true });
  });

  it('serves HTTPS with the credential from the store; rotation reaches new handshakes and keeps open connections', async () => {
    const server = await issueCertificate(ca, HOST, { dnsNames: [HOST] });
    const certFile = file('httpbin.crt', server.certPem);
    const keyFile = file('httpbin.key', server.keyPem);
    assert.match(await mesh(['create', 'secret', 'tls', 'httpbin-credential', '--cert', certFile, '--key', keyFile, '-n', 'istio-system']), /Secret istio-system\/httpbin-credential created/);
    await mesh(['apply', '-f', file('gw.yaml', gatewayYaml(port, [{ hosts: [HOST], tls: { mode: 'SIMPLE', credentialName: 'httpbin-credential' } }])), '-f', file('vs.yaml', VIRTUAL_SERVICE)]);

    const first = await eventually(async () => {
      const a = await httpsGet(port, '/status/418', ca.certPem).catch(() => undefined);
      return a?.status === 200 ? a : undefined;
    }, 'HTTPS through the gateway with the credential', 30_000);
    assert.equal(first.body, 'httpbin /status/418');
    assert.equal(first.issuer, 'example.com Inc.');

    // `mesh get secret` shows the certificate, never the key.
    const table = await mesh(['get', 'secret', 'httpbin-credential', '-n', 'istio-system']);
    assert.match(table, /kubernetes\.io\/tls\s+tls\.crt,tls\.key\s+.*CN=httpbin\.example\.com/);
    const yaml = await mesh(['get', 'secrets', '-n', 'istio-system', '-o', 'yaml']);
    assert.doesNotMatch(yaml, /PRIVATE KEY|LS0tLS1CRUdJTi/);
    assert.match(yaml, /tls\.key: "?<redacted: \d+ bytes>"?/);

    // An open keep-alive connection from before the rotation.
    const open = await handshake(port, HOST, ca.certPem);
    assert.equal((await getOver(open, '/status/before')).status, 200);

    // Rotate: a new CA and certificate, as the task's "new certificate" step; kubectl's create --dry-run | apply idiom.
    const ca2 = await createCa('rotated.example.com');
    const server2 = await issueCertificate(ca2, HOST, { dnsNames: [HOST] });
    const secretYaml = await mesh(['create', 'secret', 'tls', 'httpbin-credential', '--cert', file('httpbin2.crt', server2.certPem), '--key', file('httpbin2.key', server2.keyPem), '-n', 'istio-system', '--dry-run', '-o', 'yaml']);
    assert.match(await mesh(['apply', '-f', '-'], secretYaml), /Secret istio-system\/httpbin-credential configured|updated/);
    const rotated = await eventually(async () => {
      const a = await httpsGet(port, '/status/200', ca2.certPem).catch(() => undefined);
      return a?.status === 200 ? a : undefined;
    }, 'new handshakes get the rotated certificate', 30_000);
    assert.equal(rotated.issuer, 'rotated.example.com Inc.');
    await assert.rejects(httpsGet(port, '/status/200', ca.certPem), 'the old CA no longer verifies the gateway');
    // The connection made before the rotation keeps working.
    assert.equal((await getOver(open, '/status/after')).status, 200);
    open.destroy();
    ca = ca2;
  });

  it('MUTUAL: NAME-cacert verifies clients; no client certificate is refused', async () => {
    const clientCa = await createCa('clients.example.com');
    await mesh(['create', 'secret', 'generic', 'httpbin-credential-cacert', `--from-file=cacert=${file('client-ca.crt', clientCa.certPem)}`, '-n', 'istio-system']);
    await mesh(['apply', '-f', file('gw-mutual.yaml', gatewayYaml(port, [{ hosts: [HOST], tls: { mode: 'MUTUAL', credentialName: 'httpbin-credential' } }]))]);
    const client = await issueCertificate(clientCa, 'client.example.com', { client: true });
    await eventually(async () => (await httpsGet(port, '/status/200', ca.certPem).then(() => undefined, () => true)), 'MUTUAL in force: no client certificate is refused', 30_000);
    const answer = await httpsGet(port, '/status/200', ca.certPem, { client });
    assert.equal(answer.status, 200, 'a client certificate from the CA gets 200');
    const stranger = await issueCertificate(await createCa('stranger.example.com'), 'stranger', { client: true });
    await assert.rejects(httpsGet(port, '/status/200', ca.certPem, { client: stranger }), 'a client certificate from another CA: refused');
  });

  it('a Secret in another namespace than the gateway is not served', async () => {
    const otherCa = await createCa('other.example.com');
    const other = await issueCertificate(otherCa, 'other.example.com', { dnsNames: ['other.example.com'] });
    // The Secret sits in default (the Gateway's namespace), not in istio-system where the gateway runs.
    await mesh(['create', 'secret', 'tls', 'other-credential', '--cert', file('other.crt', other.certPem), '--key', file('other.key', other.keyPem), '-n', 'default']);
    await mesh(['apply', '-f', file('gw-two.yaml', gatewayYaml(port, [
      { hosts: [HOST], tls: { mode: 'SIMPLE', credentialName: 'httpbin-credential' } },
      { hosts: ['other.example.com'], tls: { mode: 'SIMPLE', credentialName: 'other-credential' } },
    ]))]);
    await eventually(async () => (cpWarnings().includes('other-credential') ? true : undefined), 'the control plane warns about the missing credential', 30_000);
    assert.match(cpWarnings(), /credentialName "other-credential" of Gateway default\/mygateway: no usable Secret istio-system\/other-credential/);
    await assert.rejects(httpsGet(port, '/status/200', otherCa.certPem, { servername: 'other.example.com' }), 'no certificate for other.example.com');
    // The other server of the same listener keeps serving.
    assert.equal((await httpsGet(port, '/status/200', ca.certPem)).status, 200);
    const gatewayLog = join(runDir, 'run', 'logs', 'istio-ingressgateway.log');
    if (existsSync(gatewayLog)) assert.doesNotMatch(readFileSync(gatewayLog, 'utf8'), /PRIVATE KEY/);
    assert.doesNotMatch(cp!.logs.join('\n'), /PRIVATE KEY/);
  });
});
