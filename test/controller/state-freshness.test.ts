/**
 * `status.stateFreshness` and `ecsops_state_oldest_read_age_seconds` on an EcsExtension (fast
 * tier: real reconciler, cloud layer and emulator, fake clock): the field is set once the package
 * states are known, and a fleet where nothing changes costs no status write per interval — the
 * recorded full-resync time moves only in steps of half the full-resync period (issue 25).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_FULL_RESYNC_MS } from '../../src/cloud/fleet.js';
import { fleetIds, fleetSeed, isReady, startFastStack, type FastStack } from '../harness/fast.js';
import { patchSeed, startPatchStack, type PatchStack } from '../harness/fast-patchpolicy.js';

const INTERVAL_MS = 10 * 60_000;
const GAUGE = 'ecsops_state_oldest_read_age_seconds';

describe('EcsExtension status.stateFreshness (fast tier)', () => {
  let s: FastStack;
  beforeAll(async () => {
    s = await startFastStack({ seed: fleetSeed('sf', 40) });
  });
  afterAll(() => s.stop());

  /** `steps` reconciles of `name`, each one interval after the last; the status writes they made. */
  async function steady(name: string, steps: number): Promise<number> {
    const before = s.store.writes;
    for (let i = 0; i < steps; i++) {
      s.clock.advance(INTERVAL_MS);
      const step = await s.reconcile(name);
      expect(step.error).toBeUndefined();
    }
    return s.store.writes - before;
  }

  async function gauge(name: string): Promise<number | undefined> {
    const values = (await s.registry.getSingleMetric(GAUGE)?.get())?.values ?? [];
    return values.find((v) => v.labels.kind === 'EcsExtension' && v.labels.name === name)?.value;
  }

  it('sets stateFreshness (default ChangeFeed) and the age gauge, then writes no status on steady reconciles', async () => {
    s.apply('feed', { targets: { instanceIds: fleetIds('sf', 1, 20) } });
    const obj = await s.until('feed', (o) => isReady(o) && o?.status?.stateFreshness !== undefined);
    const recorded = obj?.status?.stateFreshness;
    expect(recorded?.driftDetection).toBe('ChangeFeed');
    // Every target's state was read during this test, on the fake clock.
    const t = Date.parse(recorded?.lastFullResyncTime ?? '');
    expect(t).toBeLessThanOrEqual(s.clock.now().getTime());
    expect(t).toBeGreaterThanOrEqual(Date.UTC(2026, 5, 1, 12, 0, 0) - 1_000);
    expect(await gauge('feed')).toBeGreaterThanOrEqual(0);

    expect(await steady('feed', 6)).toBe(0);
    expect(s.get('feed')?.status?.stateFreshness).toEqual(recorded);
    expect(await gauge('feed')).toBeGreaterThanOrEqual(0);
  });

  it('PerInstance: re-reads every interval, yet writes the moved time only once per half full-resync period', async () => {
    s.apply('per', { targets: { instanceIds: fleetIds('sf', 21, 40) }, driftDetection: 'PerInstance' });
    const obj = await s.until('per', (o) => isReady(o) && o?.status?.stateFreshness !== undefined);
    const first = obj?.status?.stateFreshness;
    expect(first?.driftDetection).toBe('PerInstance');
    const reads = s.cloud.fleet('cn-hangzhou').reads.packageStates;

    // 6 intervals (1 h): every state re-read each interval (the view's stamps move), no write.
    expect(await steady('per', 6)).toBe(0);
    expect(s.cloud.fleet('cn-hangzhou').reads.packageStates - reads).toBeGreaterThanOrEqual(6 * 20);
    expect(s.get('per')?.status?.stateFreshness).toEqual(first);
    // The gauge has the exact age: at most one interval (every state was just re-read).
    expect(await gauge('per')).toBeLessThanOrEqual(INTERVAL_MS / 1000);

    // Past half the full-resync period since the recorded time: exactly one write moves it.
    const half = DEFAULT_FULL_RESYNC_MS / 2 / INTERVAL_MS;
    const writes = await steady('per', half);
    expect(writes).toBe(1);
    const moved = s.get('per')?.status?.stateFreshness;
    expect(
      Date.parse(moved?.lastFullResyncTime ?? '') - Date.parse(first?.lastFullResyncTime ?? ''),
    ).toBeGreaterThanOrEqual(DEFAULT_FULL_RESYNC_MS / 2);
  });

  it('records the new mode at once when spec.driftDetection changes, and drops the gauge series on deletion', async () => {
    s.apply('feed', { targets: { instanceIds: fleetIds('sf', 1, 20) }, driftDetection: 'PerInstance' });
    const obj = await s.until(
      'feed',
      (o) => isReady(o) && o?.status?.stateFreshness?.driftDetection === 'PerInstance',
    );
    expect(obj?.status?.stateFreshness?.lastFullResyncTime).toBeDefined();
    s.store.delete('default', 'feed');
    await s.until('feed', (o) => o === undefined || !(o.metadata.finalizers ?? []).length);
    s.store.purge('default', 'feed');
    await s.reconcile('feed');
    expect(await gauge('feed')).toBeUndefined();
  });
});

describe('PatchPolicy status.stateFreshness (fast tier)', () => {
  let p: PatchStack;
  beforeAll(async () => {
    p = await startPatchStack({ seed: patchSeed('pf', 10, 10, 2) });
  });
  afterAll(() => p.stop());

  it('sets stateFreshness and the age gauge from the patch-state reads (through the PatchPolicy metrics wrapper)', async () => {
    p.apply('scan-only', { targets: { tags: [{ key: 'fleet', value: 'pf' }] } });
    const obj = await p.until(
      'scan-only',
      (o) => o?.status?.stateFreshness?.lastFullResyncTime !== undefined,
    );
    expect(obj?.status?.stateFreshness?.driftDetection).toBe('ChangeFeed');
    const values = (await p.registry.getSingleMetric(GAUGE)?.get())?.values ?? [];
    expect(
      values.find((v) => v.labels.kind === 'PatchPolicy' && v.labels.name === 'scan-only')?.value,
    ).toBeGreaterThanOrEqual(0);
  });

  it('steady compliance checks over the change feed read no patch state, no patch details and write no status', async () => {
    p.apply('steady', { targets: { tags: [{ key: 'fleet', value: 'pf' }] } });
    await p.until('steady', (o) => o?.status?.stateFreshness?.lastFullResyncTime !== undefined);
    // Let the scan and its status settle, then count over 6 intervals.
    for (let i = 0; i < 2; i++) {
      p.clock.advance(INTERVAL_MS);
      await p.reconcile('steady');
    }
    await p.emu.control.resetRequestCounts();
    const before = p.store.writes;
    for (let i = 0; i < 6; i++) {
      p.clock.advance(INTERVAL_MS);
      expect((await p.reconcile('steady')).error).toBeUndefined();
    }
    const counts = await p.emu.control.requestCounts();
    expect(counts.ListInstancePatchStates ?? 0).toBe(0);
    expect(counts.ListInstancePatches ?? 0).toBe(0);
    expect(p.store.writes - before).toBe(0);
  });
});
