/**
 * InstanceDisruptionBudget on the fast controller tier (real reconcilers, real cloud layer, the
 * emulator over HTTP): a PatchPolicy whose instances a budget selects waits with
 * `WaitingForDisruptionBudget` while another kind holds the budget's instances, then patches in
 * executions sized to the headroom; `maxUnavailable: 0` makes it Stalled `BudgetUnsatisfiable`
 * until the budget changes; the budget's status shows selected, allowed, unavailable and holders.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  InstanceDisruptionBudget,
  InstanceDisruptionBudgetSpec,
} from '../../src/api/instancedisruptionbudget.js';
import { InstanceDisruptionBudgetReconciler } from '../../src/controllers/instancedisruptionbudget/reconciler.js';
import { DisruptionBudgets } from '../../src/controllers/shared/budget.js';
import type { Resource } from '../../src/controllers/shared/deps.js';
import { encodeLockKeys, InstanceLock } from '../../src/controllers/shared/lock.js';
import { Registry } from 'prom-client';
import { FINALIZER, OWNER_UID_TAG } from '../../src/api/common.js';
import { DomainMetrics } from '../../src/controllers/shared/metrics.js';
import { fleetIds, fleetSeed, isReady, MemoryStore, reconcileStep, startFastStack } from '../harness/fast.js';
import { cond, reachInstallWindow, startPatchStack, type PatchStack } from '../harness/fast-patchpolicy.js';

/** The PatchPolicy fast stack with a lock, budgets, a budget reconciler and an AppRelease store as another holder. */
function budgetStack() {
  const t = {} as {
    s: PatchStack;
    lock: InstanceLock;
    budgets: DisruptionBudgets;
    others: MemoryStore<Resource>;
    budgetStore: MemoryStore<InstanceDisruptionBudget>;
    budgetReconciler: InstanceDisruptionBudgetReconciler;
  };
  t.lock = new InstanceLock();
  t.budgets = new DisruptionBudgets();
  t.lock.budgets = t.budgets;
  t.others = new MemoryStore<Resource>();
  t.budgetStore = new MemoryStore<InstanceDisruptionBudget>();
  beforeAll(async () => {
    t.s = await startPatchStack({
      seed: {
        regions: {
          'cn-hangzhou': {
            generate: [
              { count: 6, idPrefix: 'i-bp', tags: [{ key: 'fleet', value: 'bp' }], patches: 3 },
              { count: 3, idPrefix: 'i-bz', tags: [{ key: 'fleet', value: 'bz' }], patches: 3 },
            ],
          },
        },
      },
      lock: t.lock,
    });
    t.lock.addSource('AppRelease', t.others);
    t.lock.addSource('PatchPolicy', t.s.store as unknown as MemoryStore<Resource>);
    t.budgets.setSource(t.budgetStore);
    t.budgetReconciler = new InstanceDisruptionBudgetReconciler({
      objects: t.budgetStore,
      kube: t.budgetStore,
      events: t.s.events,
      metrics: t.s.metrics,
      cloud: t.s.cloud,
      lock: t.lock,
      now: t.s.clock.now,
    });
  });
  afterAll(() => t.s.stop());
  const applyBudget = (name: string, spec: InstanceDisruptionBudgetSpec) =>
    t.budgetStore.apply({
      apiVersion: 'ecsops.io/v1alpha1',
      kind: 'InstanceDisruptionBudget',
      metadata: { name },
      spec,
    });
  const reconcileBudget = async (name: string) => {
    const step = await reconcileStep(t.budgetReconciler, '', name);
    if (step.error) throw step.error;
    return t.budgetStore.get('', name) as InstanceDisruptionBudget;
  };
  const hold = async (name: string, ids: string[]) => {
    const obj =
      t.others.get('team-a', name) ??
      t.others.apply({
        apiVersion: 'ecsops.io/v1alpha1',
        kind: 'AppRelease',
        metadata: { name, namespace: 'team-a' },
        spec: {},
      });
    await t.others.patchStatus(
      obj,
      ids.length === 0
        ? {}
        : {
            executions: [
              {
                executionId: `t-${name}`,
                action: 'deploy',
                clientToken: 'x',
                startTime: '2026-06-01T00:00:00Z',
                lockKeys: encodeLockKeys(ids),
              },
            ],
          },
    );
  };
  return { t, applyBudget, reconcileBudget, hold };
}

describe('InstanceDisruptionBudget: a held budget makes a PatchPolicy wait, then size executions to the headroom', () => {
  const { t, applyBudget, reconcileBudget, hold } = budgetStack();

  it('waits with WaitingForDisruptionBudget while another kind holds the budget, then patches in executions sized to the headroom', async () => {
    const s = t.s;
    applyBudget('web', {
      regionId: 'cn-hangzhou',
      selector: { tags: [{ key: 'fleet', value: 'bp' }] },
      maxUnavailable: 2,
    });
    await hold('shop', fleetIds('bp', 1, 2)); // 2 of 2 allowed: full
    let budget = await reconcileBudget('web');
    expect(budget.status).toMatchObject({
      selected: 6,
      allowed: 2,
      unavailable: 2,
      zones: [{ zoneId: 'cn-hangzhou-h', selected: 6, unavailable: 2 }],
      holders: [{ kind: 'AppRelease', namespace: 'team-a', name: 'shop', count: 2 }],
    });
    expect(cond(budget as never, 'Ready')).toMatchObject({ status: 'True', reason: 'BudgetResolved' });

    const created = await reachInstallWindow(s, 'budgeted', 'bp');
    const uid = created.metadata.uid ?? '';
    let obj = await s.settle('budgeted');
    expect(await s.executions(uid, 'install')).toEqual([]);
    expect(cond(obj, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'WaitingForDisruptionBudget',
    });
    expect(cond(obj, 'Ready')?.message).toContain('budget web: 2/2 unavailable');
    expect(cond(obj, 'Reconciling')?.reason).toBe('WaitingForDisruptionBudget');

    // One of the two held instances is released: headroom 1 → one install execution of 1 instance.
    await hold('shop', fleetIds('bp', 1, 1));
    s.advanceTo('2026-06-05T17:05:00Z');
    await s.reconcile('budgeted');
    const first = await s.executions(uid, 'install');
    expect(first).toHaveLength(1);
    expect(first[0]?.items.map((i) => i.instanceId)).toHaveLength(1);
    budget = await reconcileBudget('web');
    expect(budget.status?.unavailable).toBe(2);
    expect(budget.status?.holders?.map((h) => `${h.kind}/${h.name}:${h.count}`).sort()).toEqual([
      'AppRelease/shop:1',
      'PatchPolicy/budgeted:1',
    ]);
    await s.settle('budgeted');

    // Released: the rest is patched, never more than 2 per round (the budget's allowed count).
    await hold('shop', []);
    obj = await s.until('budgeted', (o) => cond(o, 'Compliant')?.status === 'True', { maxStepMs: 60_000 });
    const installs = await s.executions(uid, 'install');
    const patched = installs.flatMap((e) => e.items.map((i) => i.instanceId)).sort();
    expect(patched).toEqual(fleetIds('bp', 1, 6));
    for (const e of installs) expect(e.items.length).toBeLessThanOrEqual(2);
    expect(cond(obj, 'Ready')?.reason).not.toBe('WaitingForDisruptionBudget');
  });
});

describe('InstanceDisruptionBudget: maxUnavailable 0', () => {
  const { t, applyBudget, reconcileBudget } = budgetStack();

  it('maxUnavailable 0 makes the waiter Stalled BudgetUnsatisfiable; raising it lets it proceed', async () => {
    const s = t.s;
    applyBudget('frozen', {
      regionId: 'cn-hangzhou',
      selector: { tags: [{ key: 'fleet', value: 'bz' }] },
      maxUnavailable: '0%',
    });
    const budget = await reconcileBudget('frozen');
    expect(budget.status).toMatchObject({ selected: 3, allowed: 0, unavailable: 0 });
    const created = await reachInstallWindow(s, 'frozen-policy', 'bz');
    const uid = created.metadata.uid ?? '';
    const step = await s.reconcile('frozen-policy');
    expect(step.error?.message).toContain('can never start under budget frozen');
    let obj = s.get('frozen-policy');
    expect(await s.executions(uid, 'install')).toEqual([]);
    expect(cond(obj, 'Stalled')).toMatchObject({ status: 'True', reason: 'BudgetUnsatisfiable' });
    expect(cond(obj, 'Stalled')?.message).toContain(
      '3 instance(s) can never start under budget frozen: 0/0 unavailable',
    );

    applyBudget('frozen', {
      regionId: 'cn-hangzhou',
      selector: { tags: [{ key: 'fleet', value: 'bz' }] },
      maxUnavailable: 1,
    });
    await reconcileBudget('frozen');
    obj = await s.until('frozen-policy', (o) => cond(o, 'Compliant')?.status === 'True', {
      maxStepMs: 60_000,
    });
    expect(cond(obj, 'Stalled')).toBeUndefined();
    const installs = await s.executions(uid, 'install');
    for (const e of installs) expect(e.items.length).toBe(1);
    expect(installs).toHaveLength(3);
  });
});

describe('InstanceDisruptionBudget: the deletion path counts', () => {
  it('an EcsExtension uninstall under maxUnavailable 0 keeps its finalizer and says why; raised, it uninstalls 1 at a time', async () => {
    const lock = new InstanceLock();
    const budgets = new DisruptionBudgets();
    lock.budgets = budgets;
    const budgetStore = new MemoryStore<InstanceDisruptionBudget>();
    budgets.setSource(budgetStore);
    const st = await startFastStack({ seed: fleetSeed('bu', 3), lock });
    try {
      const budgetReconciler = new InstanceDisruptionBudgetReconciler({
        objects: budgetStore,
        kube: budgetStore,
        events: st.events,
        metrics: new DomainMetrics(new Registry(), {}),
        cloud: st.cloud,
        lock,
        now: st.clock.now,
      });
      const applyBudget = async (maxUnavailable: number) => {
        budgetStore.apply({
          apiVersion: 'ecsops.io/v1alpha1',
          kind: 'InstanceDisruptionBudget',
          metadata: { name: 'bu' },
          spec: {
            regionId: 'cn-hangzhou',
            selector: { tags: [{ key: 'fleet', value: 'bu' }] },
            maxUnavailable,
          },
        });
        const step = await reconcileStep(budgetReconciler, '', 'bu');
        if (step.error) throw step.error;
      };
      const obj = st.apply('un', {
        targets: { tags: [{ key: 'fleet', value: 'bu' }] },
        deletionPolicy: 'Uninstall',
      });
      await st.until('un', (o) => isReady(o));
      await applyBudget(0);
      st.store.delete('default', 'un');
      const step = await st.reconcile('un');
      expect(step.error?.message).toContain('can never start under budget bu: 0/0 unavailable');
      const uninstalls = async () =>
        (
          await st.emu.control.listExecutions({ tagKey: OWNER_UID_TAG, tagValue: obj.metadata.uid ?? '' })
        ).filter((e) => e.parameters.action === 'uninstall');
      expect(await uninstalls()).toHaveLength(0);
      const stuck = st.get('un');
      expect(stuck?.metadata.finalizers).toContain(FINALIZER);
      expect(cond(stuck as never, 'Reconciling')).toMatchObject({ reason: 'BudgetUnsatisfiable' });

      await applyBudget(1);
      await st.until('un', (o) => o === undefined);
      const done = await uninstalls();
      expect(done.map((e) => e.items.length)).toEqual([1, 1, 1]);
    } finally {
      await st.stop();
    }
  });
});
