/**
 * Disruption-budget arithmetic (src/controllers/shared/budget.ts): maxUnavailable as an integer
 * or a percentage rounded up (PodDisruptionBudget's rule), per-zone buckets, usage from holds,
 * and which instances of a start are admitted — table tests plus fast-check properties.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  admissionMessage,
  admitStarts,
  allowedUnavailable,
  BudgetSpecError,
  budgetUsage,
  DisruptionBudgets,
  heldKeysOf,
  type BudgetView,
} from '../../../src/controllers/shared/budget.js';
import { instanceLockKey } from '../../../src/controllers/shared/lock.js';
import type { InstanceDisruptionBudget } from '../../../src/api/instancedisruptionbudget.js';
import { withBudgetWait } from '../../../src/controllers/shared/driver.js';

describe('allowedUnavailable', () => {
  const table: Array<[number | string, number, number]> = [
    [0, 10, 0],
    [3, 10, 3],
    [12, 10, 12], // an integer is taken as is (Kubernetes does not clamp either)
    ['0%', 10, 0],
    ['10%', 10, 1],
    ['10%', 7, 1], // 0.7 rounds up
    ['10%', 11, 2], // 1.1 rounds up
    ['10%', 100, 10],
    ['10%', 101, 11],
    ['33%', 3, 1], // 0.99 → 1
    ['50%', 7, 4],
    ['1%', 1, 1], // any percentage > 0 of a non-empty selection allows at least one
    ['100%', 9, 9],
    ['10%', 0, 0],
    ['7', 10, 7],
  ];
  for (const [m, selected, want] of table) {
    it(`maxUnavailable ${JSON.stringify(m)} of ${selected} allows ${want}`, () => {
      expect(allowedUnavailable(m, selected)).toBe(want);
    });
  }
  for (const bad of [-1, 1.5, '101%', '-5%', 'ten', '10 %', '']) {
    it(`rejects ${JSON.stringify(bad)}`, () => {
      expect(() => allowedUnavailable(bad, 10)).toThrow(BudgetSpecError);
    });
  }
  it('a percentage is ceil(p × n / 100) exactly (no floating-point drift), within [0, n]', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 100_000 }), (p, n) => {
        const got = allowedUnavailable(`${p}%`, n);
        expect(got).toBe(Math.ceil((p * n) / 100));
        expect(got * 100).toBeGreaterThanOrEqual(p * n);
        expect((got - 1) * 100).toBeLessThan(p * n);
        expect(got).toBeLessThanOrEqual(n);
        if (p > 0 && n > 0) expect(got).toBeGreaterThanOrEqual(1);
      }),
    );
  });
});

/** A budget over instances `i-<zone><n>`, `count` per zone. */
function budget(
  name: string,
  m: number | string,
  zones: Record<string, number>,
  perZone = false,
): BudgetView {
  const instances = new Map<string, string>();
  for (const [zone, count] of Object.entries(zones))
    for (let i = 0; i < count; i++) instances.set(`i-${zone.replace(/-/g, '')}${i}`, zone);
  return { name, maxUnavailable: m, perZone, instances };
}
const ids = (zone: string, from: number, to: number) =>
  Array.from({ length: to - from }, (_, k) => `i-${zone.replace(/-/g, '')}${from + k}`);

describe('budgetUsage', () => {
  it('one bucket for the whole selection', () => {
    const b = budget('web', '10%', { 'cn-hangzhou-h': 10, 'cn-hangzhou-i': 5 });
    const held = new Set(ids('cn-hangzhou-h', 0, 2));
    expect(budgetUsage(b, (id) => held.has(id))).toEqual([{ selected: 15, allowed: 2, unavailable: 2 }]);
  });
  it('per zone: one bucket per zone, sorted, percentage of each zone', () => {
    const b = budget('web', '10%', { 'cn-hangzhou-i': 5, 'cn-hangzhou-h': 11 }, true);
    const held = new Set([...ids('cn-hangzhou-i', 0, 1)]);
    expect(budgetUsage(b, (id) => held.has(id))).toEqual([
      { zoneId: 'cn-hangzhou-h', selected: 11, allowed: 2, unavailable: 0 },
      { zoneId: 'cn-hangzhou-i', selected: 5, allowed: 1, unavailable: 1 },
    ]);
  });
  it('an empty selection has one empty bucket (not per zone) or none (per zone)', () => {
    expect(budgetUsage(budget('e', 1, {}), () => false)).toEqual([
      { selected: 0, allowed: 1, unavailable: 0 },
    ]);
    expect(budgetUsage(budget('e', 1, {}, true), () => false)).toEqual([]);
  });
});

describe('admitStarts', () => {
  const none = () => false;
  it('admits up to the headroom, in candidate order, and says who waits on what', () => {
    const b = budget('web', 3, { z: 10 });
    const held = new Set(ids('z', 0, 1));
    const a = admitStarts(ids('z', 1, 10), [b], (id) => held.has(id));
    expect(a.admitted).toEqual(ids('z', 1, 3));
    expect(a.waiting).toBe(7);
    expect(a.waitingOn).toMatchObject({ budget: 'web', unavailable: 1, allowed: 3 });
    expect(admissionMessage(a)).toBe('7 instance(s) wait for budget web: 1/3 unavailable');
  });
  it('per zone: each zone has its own headroom', () => {
    const b = budget('web-zone', '10%', { 'cn-hangzhou-h': 30, 'cn-hangzhou-i': 30 }, true);
    const cands = [...ids('cn-hangzhou-h', 0, 10), ...ids('cn-hangzhou-i', 0, 10)];
    const a = admitStarts(cands, [b], none);
    expect(a.admitted).toEqual([...ids('cn-hangzhou-h', 0, 3), ...ids('cn-hangzhou-i', 0, 3)]);
    expect(admissionMessage(a)).toBe(
      '14 instance(s) wait for budget web-zone: 0/3 unavailable in cn-hangzhou-h',
    );
  });
  it('instances no budget selects, and instances already held, are always admitted', () => {
    const b = budget('web', 1, { z: 2 });
    const held = new Set(ids('z', 0, 2)); // full: 2/1 (started before the budget)
    const a = admitStarts(['i-other', ...ids('z', 0, 2)], [b], (id) => held.has(id));
    expect(a.admitted).toEqual(['i-other', ...ids('z', 0, 2)]);
    expect(a.waiting).toBe(0);
  });
  it('every budget selecting an instance must have room (two overlapping budgets)', () => {
    const wide = budget('wide', 2, { z: 10 });
    const narrow: BudgetView = {
      ...budget('narrow', 1, {}),
      instances: new Map(ids('z', 0, 3).map((i) => [i, 'z'])),
    };
    const a = admitStarts(ids('z', 0, 10), [wide, narrow], none);
    expect(a.admitted).toEqual([ids('z', 0, 1)[0], ids('z', 3, 4)[0]]);
    expect(a.waitingOn?.budget).toBe('narrow');
  });
  it('maxUnavailable 0 (or 0%) is unsatisfiable, not a wait', () => {
    for (const m of [0, '0%'] as const) {
      const b = budget('frozen', m, { z: 5 });
      const a = admitStarts(ids('z', 0, 2), [b], none);
      expect(a.admitted).toEqual([]);
      expect(a.waiting).toBe(0);
      expect(a.unsatisfiable).toBe(2);
      expect(admissionMessage(a)).toContain('can never start under budget frozen: 0/0 unavailable');
    }
  });
  it('with limit, stops after the limit (later candidates are not judged)', () => {
    const b = budget('web', 5, { z: 10 });
    const a = admitStarts(ids('z', 0, 10), [b], none, { limit: 2 });
    expect(a.admitted).toEqual(ids('z', 0, 2));
    expect(a.waiting).toBe(0);
  });
  it('all or nothing: waits when the headroom is short, unsatisfiable when the budget is smaller than the start', () => {
    const b = budget('web', 3, { z: 10 });
    const held = new Set(ids('z', 0, 2));
    const wait = admitStarts(ids('z', 2, 5), [b], (id) => held.has(id), { allOrNothing: true });
    expect(wait.admitted).toEqual([]);
    expect(wait.waiting).toBe(3);
    expect(wait.unsatisfiable).toBe(0);
    const never = admitStarts(ids('z', 2, 6), [b], none, { allOrNothing: true });
    expect(never.admitted).toEqual([]);
    expect(never.unsatisfiable).toBe(4);
    expect(admissionMessage(never)).toContain('fewer than must start at once');
    const fits = admitStarts(ids('z', 2, 5), [b], none, { allOrNothing: true });
    expect(fits.admitted).toEqual(ids('z', 2, 5));
  });
  it('property: admitting never takes any bucket above its allowed count (unless it already was)', () => {
    const zones = ['za', 'zb', 'zc'];
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 8 }), { minLength: 3, maxLength: 3 }),
        fc.oneof(
          fc.integer({ min: 0, max: 6 }),
          fc.integer({ min: 0, max: 100 }).map((p) => `${p}%`),
        ),
        fc.boolean(),
        fc.array(fc.integer({ min: 0, max: 23 }), { maxLength: 24 }),
        fc.array(fc.integer({ min: 0, max: 23 }), { maxLength: 24 }),
        (sizes, m, perZone, heldIdx, candIdx) => {
          const b = budget('p', m, Object.fromEntries(zones.map((z, i) => [z, sizes[i] ?? 0])), perZone);
          const all = [...b.instances.keys()];
          const held = new Set(heldIdx.map((i) => all[i]).filter((x): x is string => !!x));
          const cands = [...new Set(candIdx.map((i) => all[i] ?? `i-free${i}`))];
          const before = budgetUsage(b, (id) => held.has(id));
          const a = admitStarts(cands, [b], (id) => held.has(id));
          const after = budgetUsage(b, (id) => held.has(id) || a.admitted.includes(id));
          for (const [k, u] of after.entries()) {
            const was = before[k] as (typeof before)[number];
            expect(u.unavailable).toBeLessThanOrEqual(Math.max(u.allowed, was.unavailable));
          }
          // Nothing is lost: every candidate is admitted, waits or is unsatisfiable.
          expect(a.admitted.length + a.waiting + a.unsatisfiable).toBe(cands.length);
          // Greedy is maximal: a waiting instance's bucket is full after admission.
          if (a.waitingOn) {
            const full = after.find((u) => (u.zoneId ?? '') === (a.waitingOn?.zoneId ?? ''));
            expect(full && full.unavailable >= full.allowed).toBe(true);
          }
        },
      ),
    );
  });
});

describe('heldKeysOf and DisruptionBudgets', () => {
  it('heldKeysOf lists the held keys of the blocking bucket only', () => {
    const b = budget('web', 1, { za: 3, zb: 3 }, true);
    const held = new Map([...ids('za', 0, 1), ...ids('zb', 0, 1)].map((id) => [instanceLockKey(id), true]));
    expect(
      heldKeysOf([b], { budget: 'web', zoneId: 'za', unavailable: 1, allowed: 1, selected: 3 }, held),
    ).toEqual([instanceLockKey(ids('za', 0, 1)[0] as string)]);
  });
  it('views: only budgets with a resolved selection and a usable spec, not being deleted', () => {
    const mk = (
      name: string,
      m: number | string,
      extra: Record<string, unknown> = {},
    ): InstanceDisruptionBudget => ({
      apiVersion: 'ecsops.io/v1alpha1',
      kind: 'InstanceDisruptionBudget',
      metadata: { name, uid: `u-${name}`, ...extra },
      spec: { regionId: 'cn-hangzhou', selector: { tags: [{ key: 'app' }] }, maxUnavailable: m },
    });
    const objs = [mk('a', 1), mk('b', 'x%'), mk('c', 1, { deletionTimestamp: new Date() }), mk('d', 2)];
    const budgets = new DisruptionBudgets();
    budgets.setSource({ get: () => undefined, list: () => objs });
    for (const o of objs) budgets.record(o.metadata.uid ?? '', new Map([['i-1', 'z']]));
    budgets.forget('u-d');
    expect(budgets.views().map((v) => v.name)).toEqual(['a']);
    let calls = 0;
    budgets.onChange(() => (calls += 1));
    budgets.changed();
    expect(calls).toBe(1);
  });
});

describe('withBudgetWait (the driver folds a budget wait into the verdict)', () => {
  const verdict = {
    kind: 'verdict' as const,
    verdict: {
      ready: { status: 'True' as const, reason: 'Installed', message: 'ok' },
      extra: [{ type: 'Compliant', status: 'True' as const, reason: 'AllCompliant', message: '' }],
    },
  };
  it('a verdict becomes Ready=False / Reconciling=True WaitingForDisruptionBudget; extra conditions kept', () => {
    const msg = '3 instance(s) wait for budget web: 3/3 unavailable in cn-hangzhou-h';
    expect(withBudgetWait(verdict, msg)).toEqual({
      kind: 'verdict',
      verdict: {
        ready: { status: 'False', reason: 'WaitingForDisruptionBudget', message: msg },
        reconciling: { reason: 'WaitingForDisruptionBudget', message: msg },
        extra: verdict.verdict.extra,
      },
    });
  });
  it('no wait, or an outcome that is not a verdict (an error, a first visit): unchanged', () => {
    expect(withBudgetWait(verdict, undefined)).toBe(verdict);
    const retrying = { kind: 'retrying' as const, error: { reason: 'Throttled', message: 'x' } };
    expect(withBudgetWait(retrying, 'w')).toBe(retrying);
    expect(withBudgetWait({ kind: 'started' }, 'w')).toEqual({ kind: 'started' });
  });
});
