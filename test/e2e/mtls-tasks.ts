// Istio's Mutual TLS Migration end to end: Bookinfo with a sidecar per
// workload and the ingress gateway; destination-rule-all-mtls.yaml (Istio's
// sample, unchanged: every subset with ISTIO_MUTUAL) and a mesh-wide STRICT
// PeerAuthentication in istio-system. Through the gateway everything still
// works (every hop is mTLS between sidecars); a plaintext client calling a
// workload's inbound port directly is accepted while PERMISSIVE and refused
// once STRICT.
//
// Defined once, run per mode: bookinfo-mtls.test.ts (no capture) and
// bookinfo-mtls-capture.test.ts (capture).

import assert from 'node:assert/strict';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { downLeavesNothing, eventually, modeSkip, setupTimeoutMs, NETWORKING, reviewsVersion, stars, startBookinfo, UNAVAILABLE } from './bookinfo-helpers.ts';
import type { Bookinfo, Mode } from './bookinfo-helpers.ts';
import { alive } from '../runtime/helpers.ts';

/** Istio's Mutual TLS Migration task, against one Bookinfo mesh in `mode`. */
export function mtlsTasks(mode: Mode): void {
  describe(`Bookinfo mtls (${mode})`, { skip: modeSkip(mode) }, () => {
    let bi: Bookinfo;

    before(async () => {
      bi = await startBookinfo('mtls', mode);
      await bi.apply(join(NETWORKING, 'destination-rule-all-mtls.yaml'));
    }, { timeout: setupTimeoutMs(mode) + 20_000 });

    after(async () => {
      await bi?.stop();
    });

    /** The workload address of a sidecar (`"ip":"127.a.b.c"` in its ready line). */
    function workloadIp(proc: string): string {
      const line = bi.log(proc).split('\n').find((l) => l.includes('sidecar ready'));
      const ip = line && /"ip":"([\d.]+)"/.exec(line)?.[1];
      assert.ok(ip, `${proc}: sidecar ready line with its address`);
      return ip;
    }

    /** A plaintext HTTP/1.1 GET on a fresh connection (no pooling): status and body, or the error. */
    function plaintext(host: string, port: number, path: string): Promise<{ status?: number; body?: string; error?: string }> {
      return new Promise((resolve) => {
        const req = request({ host, port, path, agent: false, headers: { connection: 'close' }, timeout: 5000 }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode, body }));
          res.on('error', (err) => resolve({ error: err.message }));
        });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', (err) => resolve({ error: (err as NodeJS.ErrnoException).code ?? err.message }));
        req.end();
      });
    }

    const WORKLOADS = [
      { proc: 'reviews-v1-0', path: '/reviews/0', body: /Reviewer1/ },
      { proc: 'ratings-v1-0', path: '/ratings/0', body: /Reviewer1/ },
      { proc: 'details-v1-0', path: '/details/0', body: /ISBN/ },
      { proc: 'productpage-v1-0', path: '/productpage', body: /Simple Bookstore App/ },
    ];

    test('PERMISSIVE (no PeerAuthentication): with destination-rule-all-mtls.yaml the pages work, and a plaintext client reaches a workload\'s inbound port', { timeout: 30_000 }, async () => {
      await eventually(async () => {
        const p = await bi.get('/productpage');
        return p.status === 200 && p.text.includes('Reviews served by:') && !p.text.includes(UNAVAILABLE) ? true : undefined;
      }, 'productpage over ISTIO_MUTUAL', 20_000);
      for (const w of WORKLOADS) {
        const r = await plaintext(workloadIp(w.proc), 9080, w.path);
        assert.equal(r.status, 200, `${w.proc} plaintext while PERMISSIVE: ${JSON.stringify(r)}`);
        assert.match(r.body ?? '', w.body);
      }
    });

    test('STRICT mesh-wide (PeerAuthentication default in istio-system): productpage still works through the gateway, plaintext to an inbound port is refused', { timeout: 45_000 }, async () => {
      await bi.apply(`apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: istio-system
spec:
  mtls:
    mode: STRICT
`);
      const reviews = workloadIp('reviews-v1-0');
      await eventually(async () => ((await plaintext(reviews, 9080, '/reviews/0')).status === undefined ? true : undefined), 'plaintext to reviews v1 refused', 20_000);
      for (const w of WORKLOADS) {
        const r = await plaintext(workloadIp(w.proc), 9080, w.path);
        assert.equal(r.status, undefined, `${w.proc} answered plaintext under STRICT: ${JSON.stringify(r)}`);
        assert.ok(r.error, `${w.proc}: refused`);
      }
      // Every hop is mTLS: gateway -> productpage -> details, reviews (all three versions) -> ratings.
      const versions = new Set<string>();
      for (let i = 0; i < 12; i++) {
        const p = await bi.get('/productpage');
        assert.equal(p.status, 200);
        assert.match(p.text, /Book Details/, 'details answered');
        assert.ok(!p.text.includes(UNAVAILABLE), 'reviews answered');
        assert.ok(!p.text.includes('Ratings service is currently unavailable'), 'ratings answered');
        const v = reviewsVersion(p.text);
        assert.ok(v);
        versions.add(v);
        assert.equal(stars(p.text), v === 'v1' ? 'none' : v === 'v2' ? 'black' : 'red');
      }
      assert.deepEqual([...versions].sort(), ['v1', 'v2', 'v3'], 'round robin over the three versions');
    });

    test('the control plane dies (SIGKILL): Bookinfo keeps serving on its last config, still STRICT', { timeout: 30_000 }, async () => {
      const pid = bi.controlPlanePid();
      process.kill(pid, 'SIGKILL');
      await eventually(async () => (alive(pid) ? undefined : true), 'the control plane gone', 10_000);
      for (let i = 0; i < 6; i++) {
        const p = await bi.get('/productpage');
        assert.equal(p.status, 200);
        assert.match(p.text, /Book Details/, 'details answered');
        assert.ok(!p.text.includes(UNAVAILABLE), 'reviews answered');
      }
      const r = await plaintext(workloadIp('ratings-v1-0'), 9080, '/ratings/0');
      assert.equal(r.status, undefined, `plaintext still refused: ${JSON.stringify(r)}`);
    });

    downLeavesNothing(() => bi);
  });
}
