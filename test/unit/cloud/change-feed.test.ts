/**
 * ChangeFeed logic (src/cloud/change-feed.ts) over a scripted listing: which instances an execution
 * touched, own work skipped (children through their parent), each (execution, phase) once, names
 * nobody can know → everything stale, ActionTrail access errors turn it off.
 */
import { describe, expect, it } from 'vitest';
import { ChangeFeed, PACKAGE_FEED, instancesOf } from '../../../src/cloud/change-feed.js';
import { CloudError } from '../../../src/cloud/errors.js';
import { RegionFleet } from '../../../src/cloud/fleet.js';
import type {
  ActionTrailApi,
  Execution,
  ListAllExecutionsRequest,
  OosApi,
  TrailEvent,
} from '../../../src/cloud/types.js';

function exec(id: string, o: Partial<Execution> = {}): Execution {
  return {
    executionId: id,
    templateName: 'ACS-ECS-BulkyConfigureOOSPackageWithTemporaryURL',
    status: 'Success',
    parameters: {},
    outputs: {},
    counters: {},
    resourceStatus: {},
    currentTasks: [],
    isParent: false,
    tags: {},
    startDate: '2026-12-07T10:00:00Z',
    endDate: '2026-12-07T10:01:00Z',
    ...o,
  };
}

/** A feed whose listings answer `started` / `ended`, recording what it touched. */
function feedOf(
  started: () => Execution[],
  ended: () => Execution[],
  o: { own?: Set<string>; trail?: () => Promise<TrailEvent[]> } = {},
) {
  const touched: string[] = [];
  let all = 0;
  const reads = { changeFeedListings: 0, actionTrailLookups: 0 };
  let now = 1_000_000;
  const oos = {
    listAllExecutions: (req: ListAllExecutionsRequest) =>
      Promise.resolve(req.startDateAfter ? started() : ended()),
  } as unknown as OosApi;
  const trail = o.trail;
  const feed = new ChangeFeed({
    source: PACKAGE_FEED,
    oos: () => oos,
    ...(trail
      ? { actionTrail: () => ({ regionId: 'cn-hangzhou', lookupEvents: trail }) as ActionTrailApi }
      : {}),
    now: () => now,
    cloudNow: () => now,
    isOwn: (e) => o.own?.has(e.executionId) ?? false,
    touched: (ids) => touched.push(...ids),
    touchedAll: () => all++,
    reads,
  });
  return {
    feed,
    touched,
    all: () => all,
    reads,
    tick: () => (now += 600_000),
  };
}

describe('instancesOf', () => {
  it('reads instanceId, targets.ResourceIds (object or JSON string), nothing from tag targets', () => {
    expect(instancesOf(exec('a', { parameters: { instanceId: 'i-1' } }))).toEqual(['i-1']);
    expect(
      instancesOf(
        exec('b', { parameters: { targets: { Type: 'ResourceIds', ResourceIds: ['i-2', 'i-3'] } } }),
      ),
    ).toEqual(['i-2', 'i-3']);
    expect(
      instancesOf(
        exec('c', { parameters: { targets: JSON.stringify({ Type: 'ResourceIds', ResourceIds: ['i-4'] }) } }),
      ),
    ).toEqual(['i-4']);
    expect(
      instancesOf(exec('d', { parameters: { targets: { Type: 'Tags', Tags: [{ Key: 'a' }] } } })),
    ).toBeUndefined();
    expect(instancesOf(exec('e', { parameters: { targets: '{bad' } }))).toBeUndefined();
  });
});

describe('ChangeFeed', () => {
  it('touches foreign executions’ instances once per phase; skips own work and its children', async () => {
    const foreign = exec('f', {
      parameters: { targets: { Type: 'ResourceIds', ResourceIds: ['i-1', 'i-2'] } },
    });
    const own = exec('o', {
      isParent: true,
      parameters: { targets: { Type: 'ResourceIds', ResourceIds: ['i-9'] } },
    });
    const ownChild = exec('o-c', { parentExecutionId: 'o', parameters: { instanceId: 'i-9' } });
    const f = feedOf(
      () => [foreign, own, ownChild],
      () => [foreign, own, ownChild],
      { own: new Set(['o']) },
    );
    await f.feed.ensure(0);
    expect(f.touched.sort()).toEqual(['i-1', 'i-2']); // its start and end, seen in one refresh
    f.tick();
    await f.feed.ensure(0);
    expect(f.touched).toHaveLength(2); // listed again in the overlap: handled once
    expect(f.reads.changeFeedListings).toBe(4);
  });

  it('an execution running (listed by the end filter without an end date) is not taken as ended', async () => {
    const running = exec('r', { status: 'Running', parameters: { instanceId: 'i-5' } });
    delete running.endDate;
    const f = feedOf(
      () => [],
      () => [running],
    );
    await f.feed.ensure(0);
    expect(f.touched).toEqual([]);
  });

  it('a foreign execution ended without nameable instances or children makes everything stale; a tag-target parent is covered by its children', async () => {
    const opaque = exec('x', { parameters: { targets: { Type: 'Tags' } } });
    const parent = exec('p', { isParent: true, parameters: { targets: { Type: 'Tags' } } });
    const child = exec('p-c', { parentExecutionId: 'p', parameters: { instanceId: 'i-7' } });
    const f = feedOf(
      () => [],
      () => [opaque, parent, child],
    );
    await f.feed.ensure(0);
    expect(f.all()).toBe(2); // the first refresh marks entries read before its window stale, once
    f.tick();
    await f.feed.ensure(0);
    expect(f.all()).toBe(2);
    expect(f.touched).toEqual(['i-7']);
  });

  it('ActionTrail: events touch their instances once; a permission error turns it off, other errors wait for the next lookup', async () => {
    const ev: TrailEvent = {
      eventId: 'E1',
      eventName: 'UpdateInstancePackageState',
      eventTime: '2026-12-07T10:00:00Z',
      resourceNames: ['i-3'],
      requestParameters: { InstanceId: 'i-3' },
    };
    let fail: Error | undefined;
    const f = feedOf(
      () => [],
      () => [],
      { trail: () => (fail ? Promise.reject(fail) : Promise.resolve([ev])) },
    );
    await f.feed.ensure(0);
    f.tick();
    await f.feed.ensure(0);
    expect(f.touched).toEqual(['i-3']);
    fail = new CloudError({
      code: 'ServiceUnavailable',
      message: 'down',
      action: 'LookupEvents',
      product: 'actiontrail' as never,
      kind: 'transient',
      category: 'server',
      rejectedBeforeProcessing: true,
    } as never);
    f.tick();
    await f.feed.ensure(0); // a failed lookup does not fail the listings
    expect(f.feed.trailDisabled).toBeUndefined();
    fail = new CloudError({
      code: 'Forbidden.RAM',
      message: 'denied',
      action: 'LookupEvents',
      product: 'actiontrail' as never,
      kind: 'permanent',
      category: 'permission',
      rejectedBeforeProcessing: true,
    } as never);
    f.tick();
    await f.feed.ensure(0);
    expect(f.feed.trailDisabled).toMatch(/Forbidden\.RAM/);
    const lookups = f.reads.actionTrailLookups;
    f.tick();
    await f.feed.ensure(0);
    expect(f.reads.actionTrailLookups).toBe(lookups);
  });
});

describe('RegionFleet over the change feed', () => {
  it('a reader after a reported change never joins a read that started before it', async () => {
    let now = 1_000_000;
    let listed: Execution[] = [];
    const pending: Array<() => void> = [];
    let reads = 0;
    const oos = {
      listAllExecutions: () => Promise.resolve(listed),
      listInstancePackageStates: async () => {
        reads++;
        await new Promise<void>((r) => pending.push(r));
        return [];
      },
    } as unknown as OosApi;
    const fleet = new RegionFleet({ oos: () => oos, now: () => now, cloudNow: () => now });
    const read = { maxAgeMs: 60_000 };
    await fleet.packageStates([], read); // the first refresh
    const early = fleet.packageStates(['i-1'], read); // a read in flight…
    await new Promise((r) => setImmediate(r));
    expect(reads).toBe(1);
    // …when the feed reports a foreign change on i-1
    listed = [exec('foreign', { parameters: { instanceId: 'i-1' } })];
    now += 120_000;
    const late = fleet.packageStates(['i-1'], read);
    await new Promise((r) => setImmediate(r));
    expect(reads).toBe(2); // its own read, not the one that started before the change
    for (const r of pending) r();
    await Promise.all([early, late]);
  });

  it('entries read before the first refresh (a forced read) are read again by the first ChangeFeed reader', async () => {
    const now = 1_000_000;
    let reads = 0;
    const oos = {
      listAllExecutions: () => Promise.resolve([]),
      listInstancePackageStates: () => {
        reads++;
        return Promise.resolve([]);
      },
    } as unknown as OosApi;
    let t = now;
    const fleet = new RegionFleet({ oos: () => oos, now: () => t, cloudNow: () => t });
    await fleet.packageStates(['i-1'], { maxAgeMs: 0 }); // forced: no feed involved
    t += 5 * 60_000;
    await fleet.packageStates(['i-1'], { maxAgeMs: 600_000 });
    expect(reads).toBe(2);
    t += 60_000;
    await fleet.packageStates(['i-1'], { maxAgeMs: 600_000 });
    expect(reads).toBe(2);
  });
});
