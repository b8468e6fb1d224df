/**
 * Issue 23's bar scenario on the fast controller tier: three kinds acting at once on 300 instances
 * in 3 zones (an EcsExtension install, a PatchPolicy install in its window, an AppRelease rollout
 * on scripted invocations) under one InstanceDisruptionBudget of 10 % per zone. From the
 * emulator's own records (every OOS execution item and Cloud Assistant invocation, with its real
 * start and end), the number of instances of each zone being acted on is computed at every
 * instant any work starts or ends (so at every 1 s sample too): never more than
 * ceil(10 % × 100) = 10. Everything converges.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import type { AppReleaseSpec } from '../../src/api/apprelease.js';
import type { InstanceDisruptionBudget } from '../../src/api/instancedisruptionbudget.js';
import { InstanceDisruptionBudgetReconciler } from '../../src/controllers/instancedisruptionbudget/reconciler.js';
import { DisruptionBudgets } from '../../src/controllers/shared/budget.js';
import { MemoryStore, NODE_PACKAGE, reconcileStep } from '../harness/fast.js';
import { REGION, startFaultStack, type FaultStack } from '../harness/fast-faults.js';

const COUNT = 300;
const ZONES = [`${REGION}-h`, `${REGION}-i`, `${REGION}-j`];
const ALLOWED_PER_ZONE = 10; // ceil(10 % × 100)

describe('three kinds on 300 instances in 3 zones under a 10 %-per-zone budget', () => {
  let s: FaultStack;
  const budgetStore = new MemoryStore<InstanceDisruptionBudget>();
  let budgetReconciler: InstanceDisruptionBudgetReconciler;
  beforeAll(async () => {
    s = await startFaultStack({
      seed: {
        regions: {
          [REGION]: {
            generate: [
              {
                count: COUNT,
                idPrefix: 'i-fz',
                zones: ZONES,
                tags: [{ key: 'fleet', value: 'fz' }],
                patches: 2,
              },
            ],
          },
        },
        packageTemplates: [
          {
            name: NODE_PACKAGE,
            versions: [{ version: 'v1', parameters: { version: { Type: 'String', Default: '16' } } }],
          },
        ],
      },
    });
    const budgets = new DisruptionBudgets();
    s.lock.budgets = budgets;
    budgets.setSource(budgetStore);
    budgetReconciler = new InstanceDisruptionBudgetReconciler({
      objects: budgetStore,
      kube: budgetStore,
      events: s.events,
      metrics: s.metrics,
      cloud: s.cloud,
      lock: s.lock,
      now: s.clock.now,
    });
  });
  afterAll(() => s?.stop());

  it('never disrupts more than ceil(10 %) of a zone at once, and converges', async () => {
    budgetStore.apply({
      apiVersion: 'ecsops.io/v1alpha1',
      kind: 'InstanceDisruptionBudget',
      metadata: { name: 'fz-zones' },
      spec: {
        regionId: REGION,
        selector: { tags: [{ key: 'fleet', value: 'fz' }] },
        maxUnavailable: '10%',
        perZone: true,
      },
    });
    await reconcileStep(budgetReconciler, '', 'fz-zones');
    expect(budgetStore.get('', 'fz-zones')?.status).toMatchObject({ selected: COUNT, allowed: 30 });

    // The PatchPolicy's first scans (no lock, no budget), then its window opens.
    const pp = s.applyPatch('pp', {
      targets: { tags: [{ key: 'fleet', value: 'fz' }] },
      interval: '1h',
      scan: { schedule: '30 0 * * *', timeZone: 'Asia/Shanghai' },
      install: {
        maintenanceWindow: { schedule: '0 1 * * SAT', duration: '4h', timeZone: 'Asia/Shanghai' },
        rebootIfNeeded: true,
      },
    });
    const scanned = () =>
      (s.patch.get('default', 'pp')?.status?.executions ?? []).length === 0 &&
      (s.patch.get('default', 'pp')?.status?.lastScan?.endTime ?? '') !== '';
    await s.round(['patch/pp']);
    s.advanceTo('2026-06-01T16:30:00.500Z');
    expect(await s.drive(['patch/pp'], scanned, { maxRounds: 60, maxStepMs: 60_000 })).toBe(true);
    s.advanceTo('2026-06-05T16:30:00.500Z');
    await s.drive(['patch/pp'], scanned, { maxRounds: 60, maxStepMs: 60_000 });
    s.advanceTo('2026-06-05T17:01:00Z');

    // All three kinds at once.
    const ext = s.applyExt('ext', {
      targets: { tags: [{ key: 'fleet', value: 'fz' }] },
      packageVersion: 'v1',
      parameters: { version: '16' },
      rateControl: { concurrency: '100%', maxErrors: '100%' },
    });
    await s.emu.control.scriptInvocation({ wrapper: true, delayMs: 2_000 });
    const appSpec: AppReleaseSpec = {
      regionId: REGION,
      targets: { tags: [{ key: 'fleet', value: 'fz' }] },
      application: 'shop',
      version: '1.0.0',
      artifact: {
        url: 'http://127.0.0.1:9/shop-1.0.0.tar.gz',
        sha256: createHash('sha256').update('shop-1.0.0').digest('hex'),
      },
      install: { appDir: '/opt/shop', keepReleases: 3 },
      hooks: { start: { script: './app.sh start' } },
      strategy: { batchSize: '25%', maxErrors: 0 },
    } as AppReleaseSpec;
    s.applyApp('app', appSpec);
    const ready = (o: { status?: { conditions?: Array<{ type: string; status: string }> } } | undefined) =>
      o?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
    const converged = () =>
      ready(s.ext.get('default', 'ext')) &&
      s.patch
        .get('default', 'pp')
        ?.status?.conditions?.some((c) => c.type === 'Compliant' && c.status === 'True') === true &&
      ready(s.app.get('default', 'app'));
    let waited = 0;
    const keys = ['ext/ext', 'patch/pp', 'app/app'];
    const done = await s.drive(
      keys,
      () => {
        const msgs = [s.ext, s.patch, s.app].flatMap((st) =>
          (st.list() as Array<{ status?: { conditions?: Array<{ reason?: string }> } }>).flatMap(
            (o) => o.status?.conditions ?? [],
          ),
        );
        if (msgs.some((c) => c.reason === 'WaitingForDisruptionBudget')) waited += 1;
        return converged();
      },
      { maxRounds: 3_000, maxStepMs: 5_000 },
    );
    const state = () =>
      JSON.stringify(
        [s.ext.get('default', 'ext'), s.patch.get('default', 'pp'), s.app.get('default', 'app')].map(
          (o) => o?.status?.conditions,
        ),
      );
    expect(done, state()).toBe(true);

    // Every interval of work on an instance, from the emulator's records (real ms).
    const zoneOf = new Map((await s.emu.control.listInstances(REGION)).map((i) => [i.instanceId, i.zoneId]));
    const intervals: Array<{ zone: string; from: number; to: number; what: string }> = [];
    for (const uid of [ext.metadata.uid ?? '', pp.metadata.uid ?? '']) {
      for (const e of await s.executions(uid)) {
        if (e.parameters['action'] === 'scan') continue;
        for (const i of e.items) {
          if (i.startedAtMs === undefined) continue;
          intervals.push({
            zone: zoneOf.get(i.instanceId) ?? '',
            from: i.startedAtMs,
            to: i.endedAtMs ?? Number.POSITIVE_INFINITY,
            what: `${e.executionId} ${i.instanceId}`,
          });
        }
      }
    }
    for (const inv of await s.invocations()) {
      for (const i of inv.instances) {
        if (i.startedAtMs === undefined) continue;
        intervals.push({
          zone: zoneOf.get(i.instanceId) ?? '',
          from: i.startedAtMs,
          to: i.finishedAtMs ?? Number.POSITIVE_INFINITY,
          what: `${inv.invokeId} ${i.instanceId}`,
        });
      }
    }
    expect(new Set(intervals.map((i) => i.what.split(' ')[1])).size).toBe(COUNT);
    // Sweep: the count of each zone at every start (ends before starts at the same instant).
    const peak = new Map<string, number>();
    for (const zone of ZONES) {
      const events = intervals
        .filter((i) => i.zone === zone)
        .flatMap((i) => [
          { t: i.from, d: 1 },
          { t: i.to, d: -1 },
        ])
        .sort((a, b) => a.t - b.t || a.d - b.d);
      let now = 0;
      let max = 0;
      for (const ev of events) {
        now += ev.d;
        max = Math.max(max, now);
      }
      peak.set(zone, max);
    }
    console.log(
      `peak disrupted per zone: ${JSON.stringify(Object.fromEntries(peak))}; rounds waiting: ${waited}`,
    );
    for (const zone of ZONES) expect(peak.get(zone), zone).toBeLessThanOrEqual(ALLOWED_PER_ZONE);
    expect(waited).toBeGreaterThan(0); // the budget did hold starts back
    // Reported for the session log: how close the fleet came to the budget.
    console.log(
      `peak disrupted per zone: ${JSON.stringify(Object.fromEntries(peak))}; rounds waiting: ${waited}`,
    );
  });
});
