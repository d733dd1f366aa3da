// Istio's Fault Injection and Request Timeouts tasks end to end: Bookinfo
// with a sidecar per workload and the ingress gateway, Istio's sample rules
// (../shared/istio-samples/bookinfo/networking) applied unchanged after
// destination-rule-all.yaml; the Request Timeouts task's small
// VirtualServices written here as the task writes them.
//
// Defined once, run per mode: bookinfo-faults.test.ts (no capture) and
// bookinfo-faults-capture.test.ts (capture).

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { converge, downLeavesNothing, eventually, modeSkip, setupTimeoutMs, NETWORKING, RATINGS_UNAVAILABLE, reviewsVersion, stars, startBookinfo, UNAVAILABLE } from './bookinfo-helpers.ts';
import type { Bookinfo, Mode } from './bookinfo-helpers.ts';
import { virtualServiceYaml } from '../helpers/virtual-service-yaml.ts';

/** Istio's Fault Injection and Request Timeouts tasks, against one Bookinfo mesh in `mode`. */
export function faultTasks(mode: Mode): void {
  describe(`Bookinfo faults (${mode})`, { skip: modeSkip(mode) }, () => {
    let bi: Bookinfo;
    let jason = '';

    before(async () => {
      bi = await startBookinfo('faults', mode);
      await bi.apply(join(NETWORKING, 'destination-rule-all.yaml'));
      // The Fault Injection task starts from these two: jason on reviews v2, everyone else on v1.
      await bi.apply(join(NETWORKING, 'virtual-service-all-v1.yaml'), join(NETWORKING, 'virtual-service-reviews-test-v2.yaml'));
      jason = await bi.login('jason');
      await converge(bi, 'jason on reviews v2 (black stars)', (p) => reviewsVersion(p.text) === 'v2' && stars(p.text) === 'black', { cookie: jason });
      await converge(bi, 'others on reviews v1', (p) => reviewsVersion(p.text) === 'v1');
    }, { timeout: setupTimeoutMs(mode) + 30_000 });

    after(async () => {
      await bi?.stop();
    });

    test('virtual-service-ratings-test-delay.yaml: 7 s delay for jason; productpage gives reviews 3 s and one retry, so jason sees reviews unavailable after about 6 s', { timeout: 45_000 }, async () => {
      await bi.apply(join(NETWORKING, 'virtual-service-ratings-test-delay.yaml'));
      // Polls until the delay shows (each page then takes productpage's two 3 s attempts).
      const page = await eventually(async () => {
        const p = await bi.get('/productpage', { cookie: jason, timeoutMs: 15_000 });
        return p.text.includes(UNAVAILABLE) ? p : undefined;
      }, 'reviews unavailable for jason', 25_000);
      assert.equal(page.status, 200);
      assert.match(page.text, /Welcome <u>jason<\/u>/);
      assert.match(page.text, /Error fetching product reviews!/);
      assert.ok(page.ms >= 5_500 && page.ms < 9_000, `two 3 s attempts: ${page.ms} ms`);
      // Everyone else: reviews v1, which does not call ratings, at once.
      const anon = await bi.get('/productpage');
      assert.equal(reviewsVersion(anon.text), 'v1');
      assert.ok(!anon.text.includes(UNAVAILABLE));
      assert.ok(anon.ms < 3_000, `${anon.ms} ms`);
    });

    test('virtual-service-ratings-test-abort.yaml: jason sees "Ratings service is currently unavailable"', { timeout: 30_000 }, async () => {
      await bi.apply(join(NETWORKING, 'virtual-service-ratings-test-abort.yaml'));
      await eventually(async () => {
        const p = await bi.get('/productpage', { cookie: jason, timeoutMs: 15_000 });
        return p.text.includes(RATINGS_UNAVAILABLE) ? true : undefined;
      }, 'ratings unavailable for jason', 25_000);
      for (let i = 0; i < 4; i++) {
        const p = await bi.get('/productpage', { cookie: jason });
        assert.equal(reviewsVersion(p.text), 'v2', 'reviews still answers (v2)');
        assert.ok(p.text.includes(RATINGS_UNAVAILABLE), p.text);
        assert.equal(stars(p.text), 'none');
        assert.ok(p.ms < 3_000, `the abort is immediate: ${p.ms} ms`);
        const anon = await bi.get('/productpage');
        assert.equal(reviewsVersion(anon.text), 'v1');
        assert.ok(!anon.text.includes(RATINGS_UNAVAILABLE));
      }
    });

    test('Request Timeouts: reviews -> v2, ratings delayed 2 s, then a 0.5 s timeout on reviews: reviews unavailable within about 1 s', { timeout: 45_000 }, async () => {
      await bi.apply(virtualServiceYaml({ host: 'reviews', subset: 'v2' }), virtualServiceYaml({
        host: 'ratings',
        subset: 'v1',
        before: `
fault:
  delay:
    percentage:
      value: 100
    fixedDelay: 2s`,
      }));
      // Everyone on v2 with black stars, about 2 s a page.
      const slow = await eventually(async () => {
        const p = await bi.get('/productpage', { timeoutMs: 15_000 });
        return reviewsVersion(p.text) === 'v2' && stars(p.text) === 'black' && p.ms >= 1_900 ? p : undefined;
      }, 'reviews v2 with the 2 s ratings delay', 25_000);
      assert.ok(slow.ms < 3_000, `${slow.ms} ms`);

      await bi.apply(virtualServiceYaml({ host: 'reviews', subset: 'v2', after: 'timeout: 0.5s' }));
      const page = await eventually(async () => {
        const p = await bi.get('/productpage', { timeoutMs: 15_000 });
        return p.text.includes(UNAVAILABLE) ? p : undefined;
      }, 'reviews unavailable with the 0.5 s timeout', 25_000);
      // Two attempts (productpage retries once) of 0.5 s each: about 1 s, not the 2 s of the delay.
      // (Bounds with room for a loaded host: at least the two timeouts, and well under the 2 s delay plus a retry.)
      const pages = [page, await bi.get('/productpage'), await bi.get('/productpage')];
      for (const p of pages) {
        assert.equal(p.status, 200);
        assert.ok(p.text.includes(UNAVAILABLE), 'reviews unavailable');
        assert.ok(p.ms >= 900 && p.ms < 2_500, `about 1 s: ${p.ms} ms`);
      }
      const median = pages.map((p) => p.ms).sort((a, b) => a - b)[1]!;
      assert.ok(median < 1_700, `about 1 s: median ${median} ms`);
    });

    downLeavesNothing(() => bi);
  });
}
