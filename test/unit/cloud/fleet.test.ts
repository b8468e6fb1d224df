/** RegionFleet with a counting OOS fake: single-flight, age bounds, chunks, invalidation. */
import { describe, expect, it } from 'vitest';
import { RegionFleet, TAG_FILTER_LIMIT } from '../../../src/cloud/fleet.js';
import type {
  EcsApi,
  Execution,
  Instance,
  InstancePatchState,
  OosApi,
  PackageState,
} from '../../../src/cloud/types.js';

function fakeOos() {
  const calls = { packages: 0, patches: [] as number[], listings: 0 };
  let listed: Execution[] = [];
  const oos = {
    async listInstancePackageStates(id: string): Promise<PackageState[]> {
      calls.packages++;
      await new Promise((r) => setTimeout(r, 5));
      return [{ templateName: 'pkg', templateVersion: 'v1', parameters: { id } }];
    },
    async listInstancePatchStates(ids: string[]): Promise<InstancePatchState[]> {
      calls.patches.push(ids.length);
      return ids
        .filter((id) => id !== 'i-never')
        .map((instanceId) => ({
          instanceId,
          installedCount: 1,
          installedOtherCount: 0,
          installedPendingRebootCount: 0,
          installedRejectedCount: 0,
          missingCount: 2,
          failedCount: 0,
        }));
    },
    async listAllExecutions(): Promise<Execution[]> {
      calls.listings++;
      return listed;
    },
  } as unknown as OosApi;
  return { oos, calls, setListed: (e: Execution[]) => (listed = e) };
}

describe('RegionFleet', () => {
  it('shares concurrent and recent package-state reads; maxAge 0 forces a read', async () => {
    let now = 1_000;
    const f = fakeOos();
    const fleet = new RegionFleet({ oos: () => f.oos, now: () => now });
    const [a, b] = await Promise.all([
      fleet.packageStates(['i-1', 'i-2'], { maxAgeMs: 60_000, driftDetection: 'PerInstance' }),
      fleet.packageStates(['i-2', 'i-3'], { maxAgeMs: 60_000, driftDetection: 'PerInstance' }),
    ]);
    expect(f.calls.packages).toBe(3);
    expect(a.get('i-2')).toEqual(b.get('i-2'));
    now += 30_000;
    await fleet.packageStates(['i-1', 'i-2', 'i-3'], { maxAgeMs: 60_000, driftDetection: 'PerInstance' });
    expect(f.calls.packages).toBe(3);
    await fleet.packageStates(['i-1'], { maxAgeMs: 10_000, driftDetection: 'PerInstance' }); // older than 10 s: re-read
    await fleet.packageStates(['i-2'], { maxAgeMs: 0, driftDetection: 'PerInstance' });
    expect(f.calls.packages).toBe(5);
  });

  it('execution results update the view instead of a re-read; invalidate forces one', async () => {
    const f = fakeOos();
    const fleet = new RegionFleet({ oos: () => f.oos, now: () => 0 });
    await fleet.packageStates(['i-1'], { maxAgeMs: 1_000 });
    fleet.recordPackageState('i-1', 'pkg', undefined); // uninstalled
    expect((await fleet.packageStates(['i-1'], { maxAgeMs: 1_000 })).get('i-1')).toEqual([]);
    fleet.invalidate('i-1');
    await fleet.packageStates(['i-1'], { maxAgeMs: 1_000 });
    expect(f.calls.packages).toBe(2);
  });

  it('recording one package does not make the instance’s other packages look freshly read', async () => {
    let now = 0;
    const f = fakeOos();
    const fleet = new RegionFleet({ oos: () => f.oos, now: () => now });
    await fleet.packageStates(['i-1'], { maxAgeMs: 60_000, driftDetection: 'PerInstance' });
    now = 50_000;
    fleet.recordPackageState('i-1', 'other', {
      templateName: 'other',
      templateVersion: 'v2',
    } as PackageState);
    now = 70_000; // 70 s after the read, 20 s after the record: a 60 s bound re-reads
    await fleet.packageStates(['i-1'], { maxAgeMs: 60_000, driftDetection: 'PerInstance' });
    expect(f.calls.packages).toBe(2);
  });

  it('reads patch states in chunks of 100, shares them, and re-reads invalidated instances', async () => {
    const f = fakeOos();
    const fleet = new RegionFleet({ oos: () => f.oos, now: () => 0 });
    const ids = [...Array.from({ length: 250 }, (_, i) => `i-${i}`), 'i-never'];
    const got = await fleet.patchStates(ids, { maxAgeMs: 1_000 });
    expect(f.calls.patches).toEqual([100, 100, 51]);
    expect(got.get('i-never')).toBeUndefined();
    expect(got.get('i-7')?.missingCount).toBe(2);
    await fleet.patchStates(ids.slice(0, 100), { maxAgeMs: 1_000 });
    expect(f.calls.patches).toHaveLength(3);
    fleet.invalidatePatchState('i-3');
    await fleet.patchStates(ids.slice(0, 100), { maxAgeMs: 1_000 });
    expect(f.calls.patches).toEqual([100, 100, 51, 1]);
  });

  it('never serves an owner a running-executions listing read before its last start', async () => {
    let now = 0;
    const f = fakeOos();
    const fleet = new RegionFleet({ oos: () => f.oos, now: () => now });
    await fleet.runningExecutions('k', 'v', { maxAgeMs: 2_000, statuses: ['Running'] });
    now += 10;
    await fleet.runningExecutions('k', 'v', { maxAgeMs: 2_000, statuses: ['Running'], notBeforeOwner: 'a' });
    expect(f.calls.listings).toBe(1);
    fleet.noteStarted('a', 'e-a1'); // resource a just started an execution
    now += 10;
    await fleet.runningExecutions('k', 'v', { maxAgeMs: 2_000, statuses: ['Running'], notBeforeOwner: 'b' });
    expect(f.calls.listings).toBe(1); // b shares the cached listing
    await fleet.runningExecutions('k', 'v', { maxAgeMs: 2_000, statuses: ['Running'], notBeforeOwner: 'a' });
    expect(f.calls.listings).toBe(2); // a needs one read after its start
    now += 2_001;
    await fleet.runningExecutions('k', 'v', { maxAgeMs: 2_000, statuses: ['Running'] });
    expect(f.calls.listings).toBe(3);
  });
});

describe('RegionFleet.executionStates', () => {
  const exec = (id: string, status: string, endDate?: string): Execution =>
    ({
      executionId: id,
      status,
      templateName: 't',
      parameters: {},
      tags: { 'ecsops.io/owner-kind': 'EcsExtension' },
      ...(endDate ? { endDate } : {}),
    }) as unknown as Execution;

  it('lists Running plus ended-after-the-newest-end-date, keeps finished ones, and shares one refresh per max age', async () => {
    let now = Date.parse('2026-11-30T10:00:00Z');
    const requests: Array<Record<string, unknown>> = [];
    let running: Execution[] = [exec('e1', 'Running'), exec('e2', 'Running')];
    let ended: Execution[] = [];
    const oos = {
      async listAllExecutions(req: Record<string, unknown>): Promise<Execution[]> {
        requests.push(req);
        return req.status === 'Running' ? running : ended;
      },
    } as unknown as OosApi;
    const fleet = new RegionFleet({ oos: () => oos, now: () => now });
    const read = async () =>
      (await fleet.executionStates('ecsops.io/owner-kind', 'EcsExtension', { maxAgeMs: 2_000 })).byId;

    const [a, b] = await Promise.all([read(), read()]);
    expect(requests).toHaveLength(2); // one refresh for both readers
    expect(requests[1]?.endDateAfter).toBe('2026-11-30T09:45:00Z'); // first: the retention window
    expect([...a.keys()]).toEqual(['e1', 'e2']);
    expect(b).toBe(a);

    now += 1_000;
    await read();
    expect(requests).toHaveLength(2); // fresh enough

    running = [exec('e2', 'Running')];
    ended = [exec('e1', 'Success', '2026-11-30T10:00:02Z')];
    now += 2_000;
    const c = await read();
    expect(c.get('e1')?.status).toBe('Success');
    expect(c.get('e2')?.status).toBe('Running');

    // The next refresh asks only for what ended after the newest end date seen, minus the 2 s slack,
    // and still serves e1 (finished, kept for the retention) without a read by ID.
    running = [];
    ended = [exec('e2', 'Failed', '2026-11-30T10:00:04Z')];
    now += 3_000;
    const d = await read();
    expect(requests.at(-1)?.endDateAfter).toBe('2026-11-30T10:00:00Z');
    expect(d.get('e1')?.status).toBe('Success');
    expect(d.get('e2')?.status).toBe('Failed');

    now += 16 * 60_000; // past the retention: forgotten
    ended = [];
    expect((await read()).has('e1')).toBe(false);
  });
});

describe('RegionFleet.executionStates newerThanMs', () => {
  it('readers needing newer data than the refresh in flight share one next refresh; the cap is now', async () => {
    let now = 1_000;
    let calls = 0;
    const gates: Array<() => void> = [];
    const oos = {
      async listAllExecutions(req: { status?: string }): Promise<Execution[]> {
        if (req.status !== 'Running') return [];
        calls++;
        await new Promise<void>((r) => gates.push(r));
        return [];
      },
    } as unknown as OosApi;
    const fleet = new RegionFleet({ oos: () => oos, now: () => now });
    const read = (newerThanMs?: number) =>
      fleet.executionStates('k', 'v', {
        maxAgeMs: 2_000,
        ...(newerThanMs !== undefined ? { newerThanMs } : {}),
      });
    const waitGate = async () => {
      while (gates.length < 1) await new Promise((r) => setTimeout(r, 1));
    };
    const first = read(); // refresh 1 starts at t=1000
    await waitGate();
    now = 1_500;
    const a = read(1_400); // needs a read started at/after 1400: waits for the next refresh
    const b = read(1_450);
    const c = read(900); // the refresh in flight is new enough: joins it
    await new Promise((r) => setTimeout(r, 5));
    expect(calls).toBe(1);
    gates.shift()?.();
    expect((await first).readAtMs).toBe(1_000);
    expect((await c).readAtMs).toBe(1_000);
    await waitGate();
    expect(calls).toBe(2); // exactly one next refresh for a and b
    gates.shift()?.();
    expect((await a).readAtMs).toBe(1_500);
    expect((await b).readAtMs).toBe(1_500);
    // Newer than now is capped at now: served by a refresh starting now, not a loop.
    now = 4_000;
    const d = read(10_000);
    await waitGate();
    gates.shift()?.();
    expect((await d).readAtMs).toBe(4_000);
    expect(calls).toBe(3);
  });

  it('lists ended executions only when one listed running is gone or a reader asks, and announces new finishes', async () => {
    let now = Date.parse('2026-11-30T10:00:00Z');
    const exec = (id: string, status: string, endDate?: string) =>
      ({
        executionId: id,
        status,
        parameters: {},
        tags: {},
        ...(endDate ? { endDate } : {}),
      }) as unknown as Execution;
    let running = [exec('e1', 'Running'), exec('e2', 'Running')];
    let ended: Execution[] = [];
    const requests: string[] = [];
    const oos = {
      async listAllExecutions(req: { status?: string }): Promise<Execution[]> {
        requests.push(req.status ?? 'ended');
        return req.status === 'Running' ? running : ended;
      },
    } as unknown as OosApi;
    const fleet = new RegionFleet({ oos: () => oos, now: () => now });
    const announced: string[] = [];
    fleet.onExecutionsFinished((f) => announced.push(...f.map((e) => e.executionId)));
    const read = (o: { ended?: boolean } = {}) => fleet.executionStates('k', 'v', { maxAgeMs: 2_000, ...o });
    await read(); // first refresh: the retention window of ended ones too (nothing announced)
    expect(requests).toEqual(['Running', 'ended']);
    now += 3_000;
    await read(); // both still running: one call
    expect(requests).toHaveLength(3);
    now += 3_000;
    running = [exec('e2', 'Running')];
    ended = [exec('e1', 'Success', '2026-11-30T10:00:05Z')];
    const st = await read(); // e1 is gone from Running: ended listed, e1 announced
    expect(requests.slice(3)).toEqual(['Running', 'ended']);
    expect(st.byId.get('e1')?.status).toBe('Success');
    expect(announced).toEqual(['e1']);
    now += 3_000;
    await read(); // nothing gone: Running only
    expect(requests.slice(5)).toEqual(['Running']);
    await read({ ended: true }); // fresh, but without ended ones: one refresh listing them
    expect(requests.slice(6)).toEqual(['Running', 'ended']);
    expect(announced).toEqual(['e1']); // not announced twice
  });
});

describe('RegionFleet.instances', () => {
  /** A fleet whose first `DescribeInstances` blocks until `release()`; `batches` records the IDs of each. */
  async function blockedFirstRead() {
    const batches: string[][] = [];
    let release: (() => void) | undefined;
    const ecs = {
      async describeInstances(req: { instanceIds: string[] }) {
        batches.push([...req.instanceIds]);
        if (batches.length === 1) await new Promise<void>((r) => (release = r));
        return req.instanceIds.map((instanceId) => ({ instanceId, status: 'Running' }));
      },
      async describeCloudAssistantStatus(ids: string[]) {
        return ids.map((instanceId) => ({ instanceId, online: true }));
      },
    } as unknown as EcsApi;
    const fleet = new RegionFleet({ oos: () => ({}) as OosApi, ecs: () => ecs });
    const first = fleet.instances(['i-1'], { maxAgeMs: 60_000 });
    while (!release) await new Promise((r) => setTimeout(r, 1));
    return { fleet, batches, first, release };
  }

  it('collects requests arriving while a batch read is in flight into one next batch', async () => {
    const { fleet, batches, first, release } = await blockedFirstRead();
    const later = [2, 3, 4].map((n) => fleet.instances([`i-${n}`], { maxAgeMs: 60_000 }));
    await new Promise((r) => setTimeout(r, 20)); // longer than the batch window
    expect(batches).toHaveLength(1);
    release();
    await first;
    const views = await Promise.all(later);
    expect(batches).toEqual([['i-1'], ['i-2', 'i-3', 'i-4']]);
    expect(views[2]?.get('i-4')?.online).toBe(true);
  });

  it('reads the next batch once its own window has passed, not as soon as the read in flight ends', async () => {
    const { fleet, batches, first, release } = await blockedFirstRead();
    const second = fleet.instances(['i-2'], { maxAgeMs: 60_000 });
    release(); // ends well within the next batch's 100 ms window
    await first;
    await new Promise((r) => setTimeout(r, 30));
    const third = fleet.instances(['i-3'], { maxAgeMs: 60_000 }); // still collected
    await Promise.all([second, third]);
    expect(batches).toEqual([['i-1'], ['i-2', 'i-3']]);
  });
});

describe('RegionFleet.taggedInstances', () => {
  const inst = (n: number, tags: Array<{ key: string; value?: string }>) =>
    ({ instanceId: `i-${n}`, regionId: 'r', status: 'Running', tags }) as unknown as Instance;
  // 300 instances: app=a0..a5 (50 each); i-0 to i-9 also carry team=x.
  const region = Array.from({ length: 300 }, (_, n) =>
    inst(n, [
      { key: 'app', value: `a${Math.floor(n / 50)}` },
      ...(n < 10 ? [{ key: 'team', value: 'x' }] : []),
    ]),
  );
  /** A fake ECS over `instances` that, like ECS, returns at most TAG_FILTER_LIMIT for a tag filter. */
  function fake(now: () => number = Date.now, instances: Instance[] = region) {
    const calls: Array<{ action: string; tags?: unknown; ids?: number }> = [];
    let hold: Promise<void> | undefined;
    const ecs = {
      async describeInstances(req: {
        tags?: Array<{ key: string; value?: string }>;
        instanceIds?: string[];
      }) {
        calls.push({
          action: 'DescribeInstances',
          ...(req.tags ? { tags: req.tags } : {}),
          ...(req.instanceIds ? { ids: req.instanceIds.length } : {}),
        });
        const snapshot = instances.map((i) => ({ ...i, tags: [...i.tags] }));
        await hold;
        if (req.instanceIds) return snapshot.filter((i) => req.instanceIds?.includes(i.instanceId));
        const out = snapshot.filter((i) =>
          (req.tags ?? []).every((t) =>
            i.tags.some((x) => x.key === t.key && (t.value === undefined || x.value === t.value)),
          ),
        );
        return req.tags ? out.slice(0, TAG_FILTER_LIMIT) : out;
      },
      async describeCloudAssistantStatus(ids: string[]) {
        calls.push({ action: 'DescribeCloudAssistantStatus', ids: ids.length });
        return ids.map((instanceId) => ({ instanceId, online: true }));
      },
    } as unknown as EcsApi;
    return {
      calls,
      fleet: new RegionFleet({ oos: () => ({}) as OosApi, ecs: () => ecs, now }),
      holdReads: (p: Promise<void> | undefined) => (hold = p),
    };
  }

  it('serves every selector of one tag key from one listing by key; another key is another listing', async () => {
    const { calls, fleet } = fake();
    const [a, b, c] = await Promise.all([
      fleet.taggedInstances([{ key: 'app', value: 'a1' }], { maxAgeMs: 60_000 }),
      fleet.taggedInstances([{ key: 'app', value: 'a2' }], { maxAgeMs: 60_000 }),
      fleet.taggedInstances([{ key: 'app' }, { key: 'team', value: 'x' }], { maxAgeMs: 60_000 }),
    ]);
    expect(a).toHaveLength(50);
    expect(a.every((i) => i.tags.some((t) => t.key === 'app' && t.value === 'a1'))).toBe(true);
    expect(b).toHaveLength(50);
    expect(c.map((i) => i.instanceId)).toEqual(region.slice(0, 10).map((i) => i.instanceId));
    // One call: Tag.1.Key=app with no value.
    expect(calls).toEqual([{ action: 'DescribeInstances', tags: [{ key: 'app' }] }]);
    const team = await fleet.taggedInstances([{ key: 'team' }], { maxAgeMs: 60_000 });
    expect(team).toHaveLength(10);
    expect(calls).toHaveLength(2);
    expect(fleet.reads.tagListings).toBe(2);
    // Within the age bound every selector of the key is served from its listing.
    for (let k = 0; k < 6; k++)
      expect(
        await fleet.taggedInstances([{ key: 'app', value: `a${k}` }], { maxAgeMs: 60_000 }),
      ).toHaveLength(50);
    expect(calls).toHaveLength(2);
  });

  it('a forced read (maxAge 0) reads the key listing now, and that listing then serves the others', async () => {
    let now = 0;
    const { calls, fleet } = fake(() => now);
    await fleet.taggedInstances([{ key: 'app', value: 'a0' }], { maxAgeMs: 60_000 });
    now = 30_000;
    await fleet.taggedInstances([{ key: 'app', value: 'a4' }], { maxAgeMs: 0 });
    expect(calls).toHaveLength(2);
    now = 80_000; // 50 s after the forced read
    await fleet.taggedInstances([{ key: 'app', value: 'a1' }], { maxAgeMs: 60_000 });
    expect(calls).toHaveLength(2);
    now = 91_000; // 61 s after it
    await fleet.taggedInstances([{ key: 'app', value: 'a1' }], { maxAgeMs: 60_000 });
    expect(calls).toHaveLength(3);
  });

  it('forced reads arriving while a listing runs share the next one, not one listing each', async () => {
    let now = 0;
    const { calls, fleet, holdReads } = fake(() => now);
    let release = (): void => undefined;
    holdReads(new Promise<void>((r) => (release = r)));
    const first = fleet.taggedInstances([{ key: 'app', value: 'a0' }], { maxAgeMs: 0 });
    // Five new objects reconcile one ms apart while that listing runs: it may predate their tags.
    const later = Array.from({ length: 5 }, (_, k) => {
      now = 5 + k;
      return fleet.taggedInstances([{ key: 'app', value: `a${k}` }], { maxAgeMs: 0 });
    });
    await new Promise((r) => setTimeout(r, 10));
    expect(calls).toHaveLength(1);
    holdReads(undefined);
    release();
    await first;
    expect((await Promise.all(later)).map((l) => l.length)).toEqual([50, 50, 50, 50, 50]);
    expect(calls).toHaveLength(2); // one more listing, started after all five asked
    // A reader within its age bound is served from the last listing meanwhile.
    now = 10;
    holdReads(new Promise<void>((r) => (release = r)));
    const forced = fleet.taggedInstances([{ key: 'app', value: 'a1' }], { maxAgeMs: 0 });
    now = 11;
    const aged = fleet.taggedInstances([{ key: 'app', value: 'a2' }], { maxAgeMs: 60_000 });
    holdReads(undefined);
    release();
    await Promise.all([forced, aged]);
    expect(calls).toHaveLength(3);
  });

  it('a key whose listing reaches the tag filter limit is served from the region listing', async () => {
    // 1,200 instances tagged app (a0: the last 100 of them), 10 with other tags only.
    const big = [
      ...Array.from({ length: 1200 }, (_, n) => inst(n, [{ key: 'app', value: n >= 1100 ? 'a0' : 'b' }])),
      ...Array.from({ length: 10 }, (_, n) => inst(2000 + n, [{ key: 'other', value: 'x' }])),
    ];
    const { calls, fleet } = fake(Date.now, big);
    // The key listing is cut at 1,000: a0's instances are all past the cut.
    expect(await fleet.taggedInstances([{ key: 'app', value: 'a0' }], { maxAgeMs: 60_000 })).toHaveLength(
      100,
    );
    expect(calls.map((c) => c.tags)).toEqual([[{ key: 'app' }], undefined]);
    // Later reads of the key go to the region listing directly.
    expect(await fleet.taggedInstances([{ key: 'app', value: 'b' }], { maxAgeMs: 60_000 })).toHaveLength(
      1100,
    );
    expect(await fleet.taggedInstances([{ key: 'app', value: 'a0' }], { maxAgeMs: 0 })).toHaveLength(100);
    expect(calls.map((c) => c.tags)).toEqual([[{ key: 'app' }], undefined, undefined]);
  });

  it('readers see the tags this process wrote, also from a read that started before the write', async () => {
    const { fleet, holdReads } = fake();
    const list = await fleet.taggedInstances([{ key: 'app', value: 'a0' }], { maxAgeMs: 60_000 });
    const known = new Map(list.map((i) => [i.instanceId, i]));
    await fleet.instances(['i-1', 'i-2'], { maxAgeMs: 60_000 }, known);
    fleet.recordTags(['i-1'], { rev: 'r1', app: 'a0' });
    const tagOf = (i: Instance | undefined, key: string) => i?.tags.find((t) => t.key === key)?.value;
    // The instance record and the key listing (served within its age) carry the write.
    expect(tagOf((await fleet.instances(['i-1'], { maxAgeMs: 60_000 })).get('i-1')?.instance, 'rev')).toBe(
      'r1',
    );
    const again = await fleet.taggedInstances([{ key: 'app', value: 'a0' }], { maxAgeMs: 60_000 });
    expect(
      tagOf(
        again.find((i) => i.instanceId === 'i-1'),
        'rev',
      ),
    ).toBe('r1');
    // A record supplied from a listing read before the write carries it too.
    await fleet.instances(['i-1'], { maxAgeMs: 0 }, known);
    expect(tagOf((await fleet.instances(['i-1'], { maxAgeMs: 60_000 })).get('i-1')?.instance, 'rev')).toBe(
      'r1',
    );
    // A by-ID read that started before an untag and lands after it does not bring the tag back.
    let release = (): void => undefined;
    holdReads(new Promise<void>((r) => (release = r)));
    const pending = fleet.instances(['i-2'], { maxAgeMs: 0 });
    await new Promise((r) => setTimeout(r, 150)); // the batch window passed: the read is in flight
    fleet.recordTags(['i-2'], { rev: 'r2' });
    release();
    holdReads(undefined);
    expect(tagOf((await pending).get('i-2')?.instance, 'rev')).toBe('r2');
    fleet.recordTags(['i-1'], { rev: undefined });
    expect(
      tagOf((await fleet.instances(['i-1'], { maxAgeMs: 60_000 })).get('i-1')?.instance, 'rev'),
    ).toBeUndefined();
  });

  it('records one write on many instances: their records and every listing entry carry it', async () => {
    const { fleet } = fake();
    const ids = Array.from({ length: 60 }, (_, n) => `i-${n + 20}`); // a0's last 30, a1's first 30
    await fleet.taggedInstances([{ key: 'app', value: 'a0' }], { maxAgeMs: 60_000 });
    await fleet.instances(['i-20', 'i-70'], { maxAgeMs: 60_000 });
    fleet.recordTags([...ids, 'i-20'], { rev: 'r1' });
    const rev = (i: Instance | undefined) => i?.tags.find((t) => t.key === 'rev')?.value;
    const a0 = await fleet.taggedInstances([{ key: 'app', value: 'a0' }], { maxAgeMs: 60_000 });
    expect(a0.filter((i) => rev(i) === 'r1').map((i) => i.instanceId)).toEqual(ids.slice(0, 30));
    const views = await fleet.instances(['i-20', 'i-70'], { maxAgeMs: 60_000 });
    expect([rev(views.get('i-20')?.instance), rev(views.get('i-70')?.instance)]).toEqual(['r1', 'r1']);
  });

  it('a tag written long ago does not override a later retag by another tool', async () => {
    let now = 1_000_000;
    const mine = [inst(1, [{ key: 'app', value: 'a0' }])];
    const { fleet } = fake(() => now, mine);
    fleet.recordTags(['i-1'], { rev: 'r1' });
    mine[0] = inst(1, [
      { key: 'app', value: 'a0' },
      { key: 'rev', value: 'r1' },
    ]);
    now += 60 * 60_000; // an hour later, another tool retags; this process writes nothing more
    mine[0] = inst(1, [
      { key: 'app', value: 'a0' },
      { key: 'rev', value: 'r9' },
    ]);
    const rev = (i: Instance | undefined) => i?.tags.find((t) => t.key === 'rev')?.value;
    const listed = await fleet.taggedInstances([{ key: 'app', value: 'a0' }], { maxAgeMs: 0 });
    expect(listed.map(rev)).toEqual(['r9']);
    // The listing's record, supplied to a by-ID read, keeps the foreign tag.
    const known = new Map(listed.map((i) => [i.instanceId, i]));
    const views = await fleet.instances(['i-1'], { maxAgeMs: 0 }, known);
    expect(rev(views.get('i-1')?.instance)).toBe('r9');
  });

  it('reads only the Cloud Assistant state of records a tag read just supplied', async () => {
    const { calls, fleet } = fake();
    const tagged = await fleet.taggedInstances([{ key: 'app', value: 'a0' }], { maxAgeMs: 60_000 });
    const known = new Map(tagged.map((i) => [i.instanceId, i]));
    const views = await fleet.instances([...known.keys()], { maxAgeMs: 60_000 }, known);
    expect(views.get('i-3')?.online).toBe(true);
    expect(calls.map((c) => c.action)).toEqual(['DescribeInstances', 'DescribeCloudAssistantStatus']);
  });
});

describe('RegionFleet adoption bookkeeping', () => {
  it('needs an adoption check until one ran after the last start, and again after every start', () => {
    let now = 1_000;
    const fleet = new RegionFleet({ oos: () => ({}) as OosApi, now: () => now });
    expect(fleet.adoptionNeeded('uid-1')).toBe(true); // never checked in this process
    fleet.noteAdoptionChecked('uid-1', now);
    expect(fleet.adoptionNeeded('uid-1')).toBe(false);
    now += 10;
    fleet.noteStarted('uid-1', 'e-1'); // a start after the check (its status write may fail)
    expect(fleet.adoptionNeeded('uid-1')).toBe(true);
    expect(fleet.adoptionNeeded('uid-1', new Set(['e-0']))).toBe(true); // status tracks another one
    fleet.noteAdoptionChecked('uid-1', now); // a check that began in the same millisecond as the start
    expect(fleet.adoptionNeeded('uid-1')).toBe(true);
    now += 1;
    fleet.noteAdoptionChecked('uid-1', now);
    expect(fleet.adoptionNeeded('uid-1')).toBe(false);
    expect(fleet.adoptionNeeded('uid-2')).toBe(true);
  });

  it('needs no check after a start the status already tracks (the write that recorded it succeeded)', () => {
    const now = 1_000;
    const fleet = new RegionFleet({ oos: () => ({}) as OosApi, now: () => now });
    fleet.noteAdoptionChecked('uid-1', now - 1);
    fleet.noteStarted('uid-1', 'e-1');
    fleet.noteStarted('uid-1', 'e-2');
    expect(fleet.adoptionNeeded('uid-1', new Set(['e-1']))).toBe(true); // e-2 not recorded yet
    expect(fleet.adoptionNeeded('uid-1', new Set(['e-2']))).toBe(false); // both confirmed now
    expect(fleet.adoptionNeeded('uid-1')).toBe(false); // e.g. after both finished
  });
});
