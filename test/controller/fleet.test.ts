/**
 * The region's fleet view and rate gate on the fast tier: many resources over the same instances
 * share reads and work; polls share one listing; templates are cached.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  REGION,
  convergeAll,
  fleetIds,
  fleetSeed,
  isReady,
  startFastStack,
  type FastStack,
} from '../harness/fast.js';

let s: FastStack | undefined;
afterEach(async () => {
  await s?.stop();
  s = undefined;
});

describe('fleet view', () => {
  it('20 resources over the same 500 instances: ≤ 1.1 × 500 state reads and ≤ 10 executions', async () => {
    const st = (s = await startFastStack({ seed: fleetSeed('sh', 500) }));
    const names = Array.from({ length: 20 }, (_, i) => `same-${i}`);
    for (const n of names)
      st.apply(n, { targets: { tags: [{ key: 'fleet', value: 'sh' }] }, interval: '10m' });
    await convergeAll(st, names);
    let counts = await st.emu.control.requestCounts();
    expect(counts.ListInstancePackageStates ?? 0).toBeLessThanOrEqual(550);
    expect(counts.StartExecution ?? 0).toBeLessThanOrEqual(10);
    expect(counts.GetTemplate ?? 0).toBeLessThanOrEqual(2);
    for (const n of names)
      expect(st.get(n)?.status?.summary).toMatchObject({ targeted: 500, installed: 500 });

    // One interval later every resource runs its drift check: still about one read per instance.
    await st.emu.control.resetRequestCounts();
    st.clock.advance(10 * 60_000);
    for (const n of names) expect((await st.reconcile(n)).error).toBeUndefined();
    counts = await st.emu.control.requestCounts();
    expect(counts.ListInstancePackageStates ?? 0).toBeLessThanOrEqual(550);
    expect(counts.StartExecution ?? 0).toBe(0);
  });

  it('a forced re-read (reconcile annotation) bypasses the view', async () => {
    const st = (s = await startFastStack({ seed: fleetSeed('fr', 20) }));
    st.apply('a', { targets: { instanceIds: fleetIds('fr', 1, 20) } });
    st.apply('b', { targets: { instanceIds: fleetIds('fr', 1, 20) } });
    await convergeAll(st, ['a', 'b']);
    await st.emu.control.resetRequestCounts();
    await st.reconcile('b'); // served from the view
    expect((await st.emu.control.requestCounts()).ListInstancePackageStates ?? 0).toBe(0);
    st.store.annotate('default', 'b', { 'ecsops.io/reconcile-requested-at': 'now' });
    await st.reconcile('b');
    expect((await st.emu.control.requestCounts()).ListInstancePackageStates ?? 0).toBe(20);
  });

  it('polls 100 running executions with at most 2 ListExecutions calls per poll round', async () => {
    // timeScale 1: an install takes ~20 s, so every execution is still running when polled (100
    // sequential first reconciles take several seconds on a loaded machine).
    const st = (s = await startFastStack({ seed: fleetSeed('pl', 1000), timeScale: 1 }));
    const names = Array.from({ length: 100 }, (_, i) => `poll-${i}`);
    names.forEach((n, i) =>
      st.apply(n, { targets: { instanceIds: fleetIds('pl', i * 10 + 1, i * 10 + 10) } }),
    );
    for (const n of names) expect((await st.reconcile(n)).error).toBeUndefined();
    expect((await st.emu.control.requestCounts()).StartExecution).toBe(100);
    for (
      let i = 0;
      i < 100 && (await st.emu.control.listExecutions({ status: 'Running' })).length < 100;
      i++
    ) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect((await st.emu.control.listExecutions({ status: 'Running' })).length).toBe(100);
    await st.emu.control.resetRequestCounts();
    st.clock.advance(1_000);
    for (const n of names) expect((await st.reconcile(n)).error).toBeUndefined();
    const counts = await st.emu.control.requestCounts();
    expect(counts.ListExecutions ?? 0).toBeLessThanOrEqual(2);
    for (const n of names) expect(st.get(n)?.status?.summary?.inProgress).toBe(10);
  });
});

describe('fair use of the region quota', () => {
  it('a small resource reaches StartExecution after a few of a 5,000-instance drift check’s reads, not after all', async () => {
    const st = (s = await startFastStack({ seed: fleetSeed('fq', 5010), cloud: { qps: 100 } }));
    st.apply('big', { targets: { instanceIds: fleetIds('fq', 1, 5000) } });
    st.apply('small', { targets: { instanceIds: fleetIds('fq', 5001, 5010) } });
    const ac = new AbortController();
    const big = st.reconcile('big', { signal: ac.signal }); // 5,000 state reads at 100/s
    const reads = async () => (await st.emu.control.requestCounts()).ListInstancePackageStates ?? 0;
    for (let i = 0; i < 200 && (await reads()) < 20; i++) await new Promise((r) => setTimeout(r, 20));
    const before = await reads();
    let started = false;
    for (let i = 0; i < 50 && !started; i++) {
      await st.reconcile('small');
      started =
        (await st.emu.control.listExecutions({ tagKey: 'ecsops.io/owner', tagValue: 'default.small' }))
          .length > 0;
    }
    const bigReadsMeanwhile = (await reads()) - before - 10; // minus small's own 10 reads
    ac.abort(new Error('test done'));
    await big;
    expect(started).toBe(true);
    // Owners take turns within a priority: the big drift check got about as many reads as the
    // small resource needed (a FIFO queue would have served all ~5,000 first).
    expect(bigReadsMeanwhile).toBeLessThan(200);
  });
});

describe('instances that disappear (issue: windows, released instances, fresh targets)', () => {
  it('an instance released while still in the tag view fails no reader of the batch; it leaves the tag targets', async () => {
    const st = (s = await startFastStack({ seed: fleetSeed('rl', 20) }));
    // `tagged` reads the tag view (which keeps the instance for up to a minute); `listed` names
    // other instances by ID; both reconcile together, so their reads share one batch.
    st.apply('tagged', { targets: { tags: [{ key: 'fleet', value: 'rl' }] }, interval: '10m' });
    st.apply('listed', { targets: { instanceIds: fleetIds('rl', 1, 5) }, interval: '10m' });
    await convergeAll(st, ['tagged', 'listed']);
    st.clock.advance(61_000); // records and tag listings are re-read
    // Auto scaling releases rl-20 after the tag listing and before the batched Cloud Assistant
    // read: the emulator holds that read while the instance goes.
    const hold = await st.emu.control.addFaultRule({
      action: 'DescribeCloudAssistantStatus',
      kind: 'hold',
      count: 1,
    });
    const both = Promise.all([st.reconcile('tagged'), st.reconcile('listed')]);
    await st.emu.control.waitForHold(hold);
    await st.emu.control.releaseInstance('cn-hangzhou', fleetIds('rl', 20, 20)[0] as string);
    await st.emu.control.releaseHolds(hold);
    const [a, b] = await both;
    expect(b.error).toBeUndefined();
    expect(a.error).toBeUndefined();
    expect(st.get('listed')?.status?.conditions?.find((c) => c.type === 'Stalled')?.status).not.toBe('True');
    expect(isReady(st.get('listed'))).toBe(true);
    expect(st.get('tagged')?.status?.summary?.targeted).toBe(19);
  });
});

describe('tag targets shared per tag key (issue 25)', () => {
  /** 3 × 20 instances tagged fleet=g0..g2 and 10 tagged team=x only. */
  const seed = fleetSeed('tk', 0, {
    regions: {
      [REGION]: {
        generate: [
          ...[0, 1, 2].map((g) => ({
            count: 20,
            idPrefix: `i-g${g}x`,
            tags: [{ key: 'fleet', value: `g${g}` }],
          })),
          { count: 10, idPrefix: 'i-team', tags: [{ key: 'team', value: 'x' }] },
        ],
      },
    },
  });
  const names = ['g0', 'g1', 'g2'];

  it('3 resources with selectors of one tag key cost one DescribeInstances listing per age bound', async () => {
    const st = (s = await startFastStack({ seed }));
    for (const n of names) st.apply(n, { targets: { tags: [{ key: 'fleet', value: n }] }, interval: '10m' });
    await convergeAll(st, names);
    for (const n of names) expect(st.get(n)?.status?.summary).toMatchObject({ targeted: 20, installed: 20 });
    // Steady state: the listing is older than the target age bound (60 s); every resource re-reads.
    await st.emu.control.resetRequestCounts();
    const fleet = st.cloud.fleet(REGION);
    const listings = fleet.reads.tagListings;
    st.clock.advance(10 * 60_000);
    for (const n of names) expect((await st.reconcile(n)).error).toBeUndefined();
    const counts = await st.emu.control.requestCounts();
    // One listing of key `fleet` (60 instances: one page) serves the three selectors; their
    // records are not read again by ID (only their Cloud Assistant state is).
    expect(counts.DescribeInstances ?? 0).toBe(1);
    expect(fleet.reads.tagListings - listings).toBe(1);
    for (const n of names) expect(st.get(n)?.status?.summary).toMatchObject({ targeted: 20, installed: 20 });
  });

  it('a newly tagged instance is enrolled within one interval', async () => {
    const st = (s = await startFastStack({ seed }));
    for (const n of names) st.apply(n, { targets: { tags: [{ key: 'fleet', value: n }] }, interval: '10m' });
    await convergeAll(st, names);
    await st.emu.control.addInstances(REGION, [
      { instanceId: 'i-new0001', tags: [{ key: 'fleet', value: 'g1' }] },
    ]);
    st.clock.advance(10 * 60_000); // one interval
    for (const n of names) expect((await st.reconcile(n)).error).toBeUndefined();
    expect(st.get('g1')?.status?.summary?.targeted).toBe(21);
    expect(st.get('g0')?.status?.summary?.targeted).toBe(20);
    await convergeAll(st, ['g1']);
    expect(st.get('g1')?.status?.summary).toMatchObject({ targeted: 21, installed: 21 });
  });
});
