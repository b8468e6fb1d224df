/**
 * The region's change feed (issue 25) on the fast tier: steady drift checks cost pages of changes,
 * not a call per instance; foreign changes (an OOS execution by another tool, a direct
 * UpdateInstancePackageState) are seen within one interval; the full resync catches what the feed
 * cannot; `driftDetection: PerInstance` keeps the per-instance reads.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  NODE_PACKAGE,
  REGION,
  convergeAll,
  fleetIds,
  fleetSeed,
  isReady,
  startFastStack,
  type FastStack,
} from '../harness/fast.js';
import { directPackageWrite, foreignExecution as foreignExec } from '../harness/foreign.js';

let s: FastStack | undefined;
afterEach(async () => {
  await s?.stop();
  s = undefined;
});

const MIN = 60_000;
const INTERVAL = 10 * MIN;

/** One drift-check round: advance one interval, reconcile each name once. */
async function interval(st: FastStack, names: string[]): Promise<void> {
  st.clock.advance(INTERVAL);
  for (const n of names) expect((await st.reconcile(n)).error).toBeUndefined();
}

/** A foreign OOS execution of the package on `ids` (finished). */
const foreignExecution = (st: FastStack, action: 'install' | 'uninstall', ids: string[]) =>
  foreignExec(st.emu, REGION, NODE_PACKAGE, action, ids);

/** Whether the emulator's record of `id` has the package (its control API: not an API call). */
async function installedOn(st: FastStack, id: string): Promise<boolean> {
  const res = await fetch(`${st.emu.controlUrl}/regions/${REGION}/package-states?instanceId=${id}`);
  const states = (await res.json()) as Array<{ templateName: string }>;
  return states.some((p) => p.templateName === NODE_PACKAGE);
}

describe('change feed (fleet view)', () => {
  it('steady drift checks of 200 instances cost listings, not a read per instance; the full resync re-reads each once', async () => {
    const st = (s = await startFastStack({
      seed: fleetSeed('cf', 200),
      cloudOnFakeClock: true,
      cloud: { fullResyncMs: 2 * 3_600_000 },
    }));
    const names = ['a', 'b'];
    st.apply('a', { targets: { instanceIds: fleetIds('cf', 1, 100) }, interval: '10m' });
    st.apply('b', { targets: { instanceIds: fleetIds('cf', 101, 200) }, interval: '10m' });
    await convergeAll(st, names);
    await interval(st, names); // the first refresh after convergence lists its own executions
    await st.emu.control.resetRequestCounts();
    for (let i = 0; i < 6; i++) await interval(st, names);
    const counts = await st.emu.control.requestCounts();
    expect(counts.ListInstancePackageStates ?? 0).toBe(0);
    expect(counts.StartExecution ?? 0).toBe(0);
    // Per interval: one feed refresh (both resources share it) of 2 one-page listings.
    expect(counts.ListExecutions ?? 0).toBeLessThanOrEqual(6 * 2);

    // Past the full-resync period (2 h here) every instance is read again, once.
    await st.emu.control.resetRequestCounts();
    for (let i = 0; i < 12; i++) await interval(st, names);
    const after = await st.emu.control.requestCounts();
    expect(after.ListInstancePackageStates ?? 0).toBeGreaterThanOrEqual(200);
    expect(after.ListInstancePackageStates ?? 0).toBeLessThanOrEqual(400);
  });

  it('a foreign uninstall through an OOS execution is repaired within one interval; own executions cost no re-read', async () => {
    const st = (s = await startFastStack({ seed: fleetSeed('fu', 50), cloudOnFakeClock: true }));
    st.apply('a', { targets: { instanceIds: fleetIds('fu', 1, 50) }, interval: '10m' });
    await convergeAll(st, ['a']);
    await interval(st, ['a']); // the feed has read once: own executions are behind it
    const victims = fleetIds('fu', 3, 7);
    await foreignExecution(st, 'uninstall', victims);
    for (const id of victims) expect(await installedOn(st, id)).toBe(false);
    await st.emu.control.resetRequestCounts();
    await interval(st, ['a']);
    // The five touched instances are re-read (not the other 45) and an install starts for them.
    expect((await st.emu.control.requestCounts()).ListInstancePackageStates ?? 0).toBe(5);
    await st.until('a', (o) => isReady(o) && (o?.status?.executions ?? []).length === 0, 100);
    for (const id of victims) expect(await installedOn(st, id)).toBe(true);
    // The repair was the controller's own execution: the next intervals re-read nothing.
    await st.emu.control.resetRequestCounts();
    await interval(st, ['a']);
    await interval(st, ['a']);
    expect((await st.emu.control.requestCounts()).ListInstancePackageStates ?? 0).toBe(0);
  });

  it('driftDetection: PerInstance reads every instance each interval, as before', async () => {
    const st = (s = await startFastStack({ seed: fleetSeed('pi', 30), cloudOnFakeClock: true }));
    st.apply('a', {
      targets: { instanceIds: fleetIds('pi', 1, 30) },
      interval: '10m',
      driftDetection: 'PerInstance',
    } as never);
    await convergeAll(st, ['a']);
    await st.emu.control.resetRequestCounts();
    await interval(st, ['a']);
    expect((await st.emu.control.requestCounts()).ListInstancePackageStates ?? 0).toBe(30);
  });

  /** A direct UpdateInstancePackageState (no execution) by another tool. */
  const directUninstall = (st: FastStack, id: string) =>
    directPackageWrite(st.emu.endpoint, REGION, id, NODE_PACKAGE);

  it('a direct UpdateInstancePackageState is seen within one interval through ActionTrail', async () => {
    const st = (s = await startFastStack({ seed: fleetSeed('dt', 20), cloudOnFakeClock: true }));
    st.apply('a', { targets: { instanceIds: fleetIds('dt', 1, 20) }, interval: '10m' });
    await convergeAll(st, ['a']);
    await interval(st, ['a']);
    await directUninstall(st, 'i-dt0004');
    await st.emu.control.resetRequestCounts();
    await interval(st, ['a']);
    const counts = await st.emu.control.requestCounts();
    expect(counts.LookupEvents ?? 0).toBe(1);
    expect(counts.ListInstancePackageStates ?? 0).toBe(1);
    expect(counts.StartExecution ?? 0).toBe(1);
  });

  it('without ActionTrail a direct write is seen by the full resync, not before', async () => {
    const st = (s = await startFastStack({
      seed: fleetSeed('dn', 20),
      cloudOnFakeClock: true,
      cloud: { actionTrail: false, fullResyncMs: 3_600_000 },
    }));
    st.apply('a', { targets: { instanceIds: fleetIds('dn', 1, 20) }, interval: '10m' });
    await convergeAll(st, ['a']);
    await interval(st, ['a']);
    await directUninstall(st, 'i-dn0004');
    await st.emu.control.resetRequestCounts();
    await interval(st, ['a']);
    let counts = await st.emu.control.requestCounts();
    expect(counts.LookupEvents ?? 0).toBe(0);
    expect(counts.ListInstancePackageStates ?? 0).toBe(0);
    // Within the 1 h period (each instance re-read after 45–60 min), the uninstall is repaired.
    for (let i = 0; i < 6; i++) await interval(st, ['a']);
    counts = await st.emu.control.requestCounts();
    expect(counts.ListInstancePackageStates ?? 0).toBe(20);
    expect(counts.StartExecution ?? 0).toBe(1);
  });

  it('an ActionTrail access error turns it off (the full resync covers); a failed feed listing fails the check, claims nothing', async () => {
    const st = (s = await startFastStack({ seed: fleetSeed('fe', 10), cloudOnFakeClock: true }));
    st.apply('a', { targets: { instanceIds: fleetIds('fe', 1, 10) }, interval: '10m' });
    await st.emu.control.patchFaults({
      failNext: [{ action: 'LookupEvents', code: 'Forbidden.RAM', httpStatus: 403, message: 'denied' }],
    });
    await convergeAll(st, ['a']);
    expect(st.cloud.fleet(REGION).actionTrailDisabled).toMatch(/Forbidden\.RAM/);
    await st.emu.control.clearFaults();
    await st.emu.control.resetRequestCounts();
    await interval(st, ['a']);
    expect((await st.emu.control.requestCounts()).LookupEvents ?? 0).toBe(0);

    // Every ListExecutions answered 503 (past the layer's retries): the drift check fails
    // transiently; nothing is read per instance instead and the status keeps what it knew.
    await st.emu.control.patchFaults({
      failNext: [
        {
          action: 'ListExecutions',
          code: 'ServiceUnavailable',
          httpStatus: 503,
          message: 'down',
          count: 100,
        },
      ],
    });
    await st.emu.control.resetRequestCounts();
    st.clock.advance(INTERVAL);
    const step = await st.reconcile('a');
    expect(step.error?.message ?? '').toMatch(/ListExecutions/);
    expect((await st.emu.control.requestCounts()).ListInstancePackageStates ?? 0).toBe(0);
    expect(st.get('a')?.status?.summary).toMatchObject({ installed: 10 });
  });
});
