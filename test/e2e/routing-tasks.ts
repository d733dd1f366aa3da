// Istio's Request Routing, Traffic Shifting and Mirroring tasks end to end:
// Bookinfo with a sidecar per workload and the ingress gateway, Istio's
// sample rules (../shared/istio-samples/bookinfo/networking) applied
// unchanged after destination-rule-all.yaml, every request through the gateway.
//
// Defined once, run per mode: bookinfo-routing.test.ts (no capture) and
// bookinfo-routing-capture.test.ts (capture).

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runMesh } from '../helpers/processes.ts';
import { virtualServiceYaml } from '../helpers/virtual-service-yaml.ts';
import { assertBinomial, converge, downLeavesNothing, eventually, modeSkip, setupTimeoutMs, NETWORKING, reviewsVersion, stars, startBookinfo } from './bookinfo-helpers.ts';
import type { Bookinfo, Mode } from './bookinfo-helpers.ts';

/** Istio's Request Routing, Traffic Shifting and Mirroring tasks, against one Bookinfo mesh in `mode`. */
export function routingTasks(mode: Mode): void {
  describe(`Bookinfo routing (${mode})`, { skip: modeSkip(mode) }, () => {
    let bi: Bookinfo;
    let jason = '';

    before(async () => {
      bi = await startBookinfo('routing', mode);
      await bi.apply(join(NETWORKING, 'destination-rule-all.yaml'));
      jason = await bi.login('jason');
    }, { timeout: setupTimeoutMs(mode) + 20_000 });

    after(async () => {
      await bi?.stop();
    });

    /** `n` answers of /api/v1/products/0/reviews through the gateway (reviews only: cheaper than the page), `parallel` at a time; versions counted. */
    async function sample(n: number, parallel = 4): Promise<Map<string, number>> {
      const counts = new Map<string, number>();
      let next = 0;
      await Promise.all(Array.from({ length: parallel }, async () => {
        while (next < n) {
          next++;
          const p = await bi.get('/api/v1/products/0/reviews');
          assert.equal(p.status, 200, p.text);
          const v = reviewsVersion(p.text) ?? 'none';
          counts.set(v, (counts.get(v) ?? 0) + 1);
        }
      }));
      return counts;
    }

    test('virtual-service-all-v1.yaml: every request goes to reviews v1 (no stars)', { timeout: 30_000 }, async () => {
      // Without rules, reviews v1, v2 and v3 all serve (round robin): stars show up.
      await eventually(async () => {
        const seen = new Set<string>();
        for (let i = 0; i < 12; i++) seen.add(reviewsVersion((await bi.get('/productpage')).text) ?? '');
        return seen.has('v2') || seen.has('v3') ? true : undefined;
      }, 'more than reviews v1 without rules', 10_000);
      await bi.apply(join(NETWORKING, 'virtual-service-all-v1.yaml'));
      await converge(bi, 'reviews v1 only', (p) => reviewsVersion(p.text) === 'v1', { n: 8 });
      for (let i = 0; i < 10; i++) {
        const p = await bi.get('/productpage');
        assert.equal(p.status, 200);
        assert.match(p.text, /Reviews served by:<\/dt>\s*<u>reviews-v1-/);
        assert.equal(stars(p.text), 'none');
      }
      for (let i = 0; i < 4; i++) assert.equal(reviewsVersion((await bi.get('/productpage', { cookie: jason })).text), 'v1', 'jason too');
    });

    test('virtual-service-reviews-test-v2.yaml: jason (logged in through the gateway) sees v2 black stars, everyone else v1', { timeout: 30_000 }, async () => {
      await bi.apply(join(NETWORKING, 'virtual-service-reviews-test-v2.yaml'));
      await converge(bi, 'jason on reviews v2', (p) => reviewsVersion(p.text) === 'v2', { cookie: jason });
      for (let i = 0; i < 6; i++) {
        const p = await bi.get('/productpage', { cookie: jason });
        assert.match(p.text, /Welcome <u>jason<\/u>/);
        assert.equal(reviewsVersion(p.text), 'v2');
        assert.equal(stars(p.text), 'black');
        const anon = await bi.get('/productpage');
        assert.equal(reviewsVersion(anon.text), 'v1');
        assert.equal(stars(anon.text), 'none');
      }
      // Another user is not jason.
      const other = await bi.login('alice');
      for (let i = 0; i < 4; i++) assert.equal(reviewsVersion((await bi.get('/productpage', { cookie: other })).text), 'v1');
    });

    test('virtual-service-reviews-50-v3.yaml then virtual-service-reviews-80-20.yaml: traffic shifts in proportion (binomial, 4 sigma)', { timeout: 60_000 }, async () => {
      await bi.apply(join(NETWORKING, 'virtual-service-reviews-50-v3.yaml'));
      await eventually(async () => (reviewsVersion((await bi.get('/api/v1/products/0/reviews')).text) === 'v3' ? true : undefined), 'reviews v3 in the mix', 20_000);
      const n = 160;
      const a = await sample(n);
      assert.deepEqual([...a.keys()].filter((v) => v !== 'v1' && v !== 'v3'), [], `only v1 and v3: ${JSON.stringify([...a])}`);
      assertBinomial(a.get('v3') ?? 0, n, 0.5, '50-v3: reviews v3');

      await bi.apply(join(NETWORKING, 'virtual-service-reviews-80-20.yaml'));
      // productpage's sidecar is the only proxy routing reviews; once v2 answers its new routes are in place.
      await eventually(async () => (reviewsVersion((await bi.get('/api/v1/products/0/reviews')).text) === 'v2' ? true : undefined), 'reviews v2 in the mix', 20_000);
      const b = await sample(n);
      assert.deepEqual([...b.keys()].filter((v) => v !== 'v1' && v !== 'v2'), [], `only v1 and v2: ${JSON.stringify([...b])}`);
      assertBinomial(b.get('v2') ?? 0, n, 0.2, '80-20: reviews v2');
      process.stdout.write(`# 50-v3: ${JSON.stringify([...a])}; 80-20: ${JSON.stringify([...b])}\n`);
    });

    test('mirroring: reviews v1 answers, a copy of every request reaches reviews v2 (host with -shadow)', { timeout: 40_000 }, async () => {
      await bi.apply(virtualServiceYaml({
        host: 'reviews',
        subset: 'v1',
        weight: 100,
        after: `
mirror:
  host: reviews
  subset: v2
mirrorPercentage:
  value: 100.0`,
      }));
      const seenBy = (proc: string, id: string): boolean => bi.log(proc).split('\n').some((l) => l.includes(id) && l.includes('"path":"/reviews/0"'));
      // The rule is in place once a page answered by v1 reaches v2 as well (under the previous 80/20 rule no
      // v1 answer ever reaches v2; productpage's sidecar holds the whole route, mirror included).
      await eventually(async () => {
        const id = randomUUID();
        const p = await bi.get('/productpage', { headers: { 'x-request-id': id } });
        if (reviewsVersion(p.text) !== 'v1') return undefined;
        return eventually(async () => (seenBy('reviews-v2-0', id) ? true : undefined), 'the copy in v2\'s log', 2_000).catch(() => undefined);
      }, 'reviews v1, mirrored to v2', 25_000);
      const ids: string[] = [];
      for (let i = 0; i < 8; i++) {
        const id = randomUUID();
        ids.push(id);
        const p = await bi.get('/productpage', { headers: { 'x-request-id': id } });
        assert.equal(reviewsVersion(p.text), 'v1');
        assert.equal(stars(p.text), 'none');
      }
      // Each request shows up in reviews v2's app log (it logs the trace headers).
      await eventually(async () => (ids.every((id) => seenBy('reviews-v2-0', id)) ? true : undefined), 'every mirrored request in reviews v2\'s log', 10_000);
      for (const id of ids) {
        assert.ok(seenBy('reviews-v1-0', id), 'v1 served it');
        assert.ok(!seenBy('reviews-v3-0', id), 'v3 never sees it');
      }
      // The copy's Host gets Envoy's `-shadow` suffix in the proxy (the apps do not log Host, and Pilot emits no
      // access log, so this is checked on the config productpage's sidecar gets): the mirror policy names reviews v2's
      // cluster, without disable_shadow_host_suffix_append (the dump is in Envoy's JSON, camelCase; snake_case accepted too).
      const name = /"workload":"default\/(productpage-v1-0-[0-9a-f]+)"/.exec(bi.log('productpage-v1-0'))?.[1];
      assert.ok(name, 'productpage sidecar name in its log');
      const rc = await runMesh(['proxy-config', 'all', `${name}.default`, '-o', 'json', '--server', bi.server]);
      assert.equal(rc.code, 0, rc.stderr);
      const mirrors: Array<Record<string, unknown>> = [];
      const walk = (v: unknown): void => {
        if (Array.isArray(v)) v.forEach(walk);
        else if (v && typeof v === 'object') {
          for (const [k, x] of Object.entries(v)) {
            if ((k === 'request_mirror_policies' || k === 'requestMirrorPolicies') && Array.isArray(x)) mirrors.push(...(x as Array<Record<string, unknown>>));
            walk(x);
          }
        }
      };
      walk(JSON.parse(rc.stdout));
      assert.ok(mirrors.some((m) => m.cluster === 'outbound|9080|v2|reviews.default.svc.cluster.local' && m.disable_shadow_host_suffix_append !== true && m.disableShadowHostSuffixAppend !== true), `mirror policies: ${JSON.stringify(mirrors)} in ${rc.stdout.slice(0, 3000)}`);
    });

    downLeavesNothing(() => bi);
  });
}
