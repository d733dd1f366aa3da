// The conformance suite every Mixer adapter passes (STYLE.md): it declares a
// name, the templates it handles and a default config that validates; it
// rejects bad params with a path; its handler answers for each template
// variety it claims, starts no timers of its own, and closes cleanly.
// Out-of-process adapters run the same suite: their AdapterInfo
// (src/mixer/out-of-process) talks to the real adapter process over gRPC
// (test/mixer/out-of-process.test.ts).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TEMPLATES } from '../../src/api/index.ts';
import type { AdapterEnv, AdapterInfo, Instance } from '../../src/mixer/index.ts';
import { Registry } from '../../src/common/metrics.ts';

export interface ConformanceCase<P> {
  readonly adapter: AdapterInfo<P>;
  /** Params (beyond the defaults) the adapter must accept. */
  readonly valid: readonly Readonly<Record<string, unknown>>[];
  /** Params it must reject, and the path the first error must name. */
  readonly invalid: readonly { readonly params: Readonly<Record<string, unknown>>; readonly path: string }[];
  /** One instance per template it handles, to exercise the handler. */
  readonly instances: readonly Instance[];
}

function env(lines: string[]): AdapterEnv {
  return { now: () => 1_000_000, metrics: new Registry(), write: (_s, line) => void lines.push(line), handlerName: 'conformance.istio-system' };
}

function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout' || r === 'Immediate').length;
}

/** Lets immediates already queued (socket bookkeeping of a gRPC call that just finished) run before timers are counted. */
async function settled(): Promise<number> {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
  return activeTimers();
}

export function adapterConformance<P>(c: ConformanceCase<P>): void {
  const a = c.adapter;
  describe(`adapter conformance: ${a.name}`, () => {
    test('declares a lower-case name, a description and known templates', () => {
      assert.match(a.name, /^[a-z][a-z0-9]*$/);
      assert.ok(a.description.length > 0);
      assert.ok(a.templates.length > 0);
      for (const t of a.templates) assert.ok(TEMPLATES[t], `template ${t} is not a known template`);
    });

    test('the default config validates to itself', () => {
      const { params, errors } = a.validate({});
      assert.deepEqual(errors, []);
      assert.deepEqual(params, a.defaultConfig);
    });

    test('accepts the valid params', () => {
      for (const p of c.valid) assert.deepEqual(a.validate(p).errors, [], JSON.stringify(p));
    });

    for (const [i, bad] of c.invalid.entries()) {
      test(`rejects invalid params #${i} at ${bad.path}`, () => {
        const { params, errors } = a.validate(bad.params);
        assert.equal(params, undefined);
        assert.ok(errors.length > 0);
        assert.equal(errors[0]!.path, bad.path);
      });
    }

    test('every claimed template has an instance to exercise', () => {
      assert.deepEqual([...new Set(c.instances.map((i) => i.template))].sort(), [...a.templates].sort());
    });

    test('the handler serves each claimed variety without starting timers, then closes', async () => {
      const lines: string[] = [];
      const before = await settled();
      for (const params of [a.defaultConfig, ...c.valid.map((p) => a.validate(p).params!)]) {
        const handler = a.build(params, env(lines));
        for (const inst of c.instances) {
          const variety = TEMPLATES[inst.template]!.variety;
          if (variety === 'check') {
            assert.ok(handler.handleCheck, `${a.name} claims ${inst.template} but has no handleCheck`);
            const r = await handler.handleCheck!(inst);
            assert.ok(Number.isInteger(r.code) && r.code >= 0 && r.code <= 16);
            assert.ok(r.validDurationMs >= 0 && r.validUseCount >= 0);
          } else if (variety === 'quota') {
            assert.ok(handler.handleQuota, `${a.name} claims ${inst.template} but has no handleQuota`);
            const r = await handler.handleQuota!(inst, { amount: 1, bestEffort: false });
            assert.ok(r.granted >= 0 && r.granted <= 1);
          } else {
            assert.ok(handler.handleReport, `${a.name} claims ${inst.template} but has no handleReport`);
            await handler.handleReport!([inst]);
          }
        }
        assert.equal(await settled(), before, 'adapters must not start timers');
        await handler.close();
      }
    });

    test('building twice and closing both leaves nothing behind', async () => {
      const registry = new Registry();
      const e = { ...env([]), metrics: registry };
      const params = c.valid.length > 0 ? a.validate(c.valid[0]!).params! : a.defaultConfig;
      const h1 = a.build(params, e);
      const h2 = a.build(params, e);
      await h1.close();
      await h2.close();
      assert.equal((await registry.getMetricsAsJSON()).length, 0);
    });
  });
}
