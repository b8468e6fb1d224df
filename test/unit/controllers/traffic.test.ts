/**
 * Traffic control's logic (src/controllers/shared/traffic.ts) against an in-memory load balancer
 * double: the capacity guard, originals recorded once, drain by weight or removal, ALB's
 * asynchronous apply, restore and the health wait. The wire behaviour of the real CLB/ALB clients
 * is covered by test/contract/loadbalancers.contract.test.ts; the whole start path by the
 * controller tier (test/controller/traffic.test.ts).
 */
import { beforeEach, describe, expect, it } from 'vitest';
import type { DrainedBackend, TrafficControlSpec } from '../../../src/api/traffic.js';
import type {
  BackendHealthState,
  LoadBalancerApi,
  LoadBalancerType,
  ServerGroupBackend,
  ServerGroupView,
} from '../../../src/cloud/types.js';
import { maxDrainedOf, TrafficControl, type TrafficScope } from '../../../src/controllers/shared/traffic.js';
import type { FinishedWork, StartReporting, WorkItem } from '../../../src/controllers/shared/work.js';
import { StalledError } from '../../../src/runtime/errors.js';
import { CloudError } from '../../../src/cloud/errors.js';
import type { Resource } from '../../../src/controllers/shared/deps.js';

/** One group; ALB changes wait for `settle()` (ListServerGroupServers shows them Configuring). */
class FakeGroup implements LoadBalancerApi {
  readonly regionId = 'cn-hangzhou';
  backends: ServerGroupBackend[];
  health = new Map<string, BackendHealthState>();
  tags: Record<string, string> = {};
  writes: string[] = [];
  /** The group was deleted: describeGroup answers not found. */
  deleted = false;
  /** Re-adds are refused as for a released instance. */
  refuseAdd = false;
  healthCheck: boolean | undefined;
  private queued: Array<() => void> = [];
  constructor(
    readonly type: LoadBalancerType,
    readonly id: string,
    ids: string[],
    readonly scheduler = 'wrr',
  ) {
    this.backends = ids.map((instanceId, i) => ({
      instanceId,
      port: 8080,
      weight: 50 + i,
      status: 'Available',
    }));
    for (const i of ids) this.health.set(`${i}:8080`, 'Healthy');
  }
  private change(list: ServerGroupBackend[], fn: () => void): void {
    if (this.type === 'CLB') return fn();
    for (const b of list) b.status = 'Configuring';
    this.queued.push(() => {
      fn();
      for (const b of list) b.status = 'Available';
    });
  }
  settle(): void {
    for (const f of this.queued.splice(0)) f();
  }
  async describeGroup(id: string): Promise<ServerGroupView> {
    expect(id).toBe(this.id);
    if (this.deleted)
      throw new CloudError({
        code: 'ResourceNotFound.ServerGroup',
        message: 'gone',
        action: 'ListServerGroups',
        product: 'alb',
        kind: 'permanent',
        category: 'notFound',
      });
    return {
      ...(this.healthCheck !== undefined ? { healthCheck: this.healthCheck } : {}),
      type: this.type,
      regionId: this.regionId,
      serverGroupId: this.id,
      loadBalancerIds: ['lb-1'],
      listenerIds: ['80'],
      scheduler: this.scheduler,
      loadBalancerTags: { ...this.tags },
      backends: this.backends.map((b) => ({ ...b })),
    };
  }
  async setWeights(_id: string, list: ReadonlyArray<{ instanceId: string; port: number; weight: number }>) {
    this.writes.push(`weights ${list.map((b) => `${b.instanceId}=${b.weight}`).join(',')}`);
    const hit = this.backends.filter((b) => list.some((l) => l.instanceId === b.instanceId));
    this.change(hit, () => {
      for (const l of list) {
        const b = this.backends.find((x) => x.instanceId === l.instanceId && x.port === l.port);
        if (b) b.weight = l.weight;
      }
    });
  }
  async addBackends(_id: string, list: ReadonlyArray<{ instanceId: string; port: number; weight: number }>) {
    this.writes.push(`add ${list.map((b) => `${b.instanceId}=${b.weight}`).join(',')}`);
    if (this.refuseAdd)
      throw new CloudError({
        code: 'InvalidParameter',
        message: 'The specified ServerId does not exist',
        action: 'AddVServerGroupBackendServers',
        product: 'slb',
        kind: 'permanent',
        category: 'invalidParameter',
      });
    this.backends.push(...list.map((l) => ({ ...l, status: this.type === 'ALB' ? 'Adding' : 'Available' })));
    this.change([], () => {
      for (const b of this.backends) if (b.status === 'Adding') b.status = 'Available';
    });
  }
  async removeBackends(_id: string, list: ReadonlyArray<{ instanceId: string; port: number }>) {
    this.writes.push(`remove ${list.map((b) => b.instanceId).join(',')}`);
    const gone = this.backends.filter((b) => list.some((l) => l.instanceId === b.instanceId));
    this.change(gone, () => {
      this.backends = this.backends.filter((b) => !gone.includes(b));
    });
  }
  async backendHealth(): Promise<Map<string, BackendHealthState>> {
    return new Map(this.health);
  }
}

const owner = {
  kind: 'AppRelease',
  metadata: { name: 'web', namespace: 'default', uid: 'u1' },
} as unknown as Resource;
const events: string[] = [];
const reporting = {
  events: {
    event: async (_o: unknown, type: string, reason: string, _a: string, msg: string) =>
      void events.push(`${type} ${reason}: ${msg}`),
  },
} as unknown as StartReporting;
const T0 = new Date('2026-12-07T10:00:00Z');
const at = (s: number) => new Date(T0.getTime() + s * 1000);

function scope(
  g: FakeGroup,
  spec: Partial<TrafficControlSpec> = {},
  backends: DrainedBackend[] = [],
): TrafficScope {
  return {
    spec: { serverGroups: [{ type: g.type, serverGroupId: g.id }], drainSeconds: 30, ...spec },
    backends,
    drains: () => true,
    lb: () => g,
  };
}
const item = (ids: string[]): WorkItem => ({
  executionId: '',
  pending: true,
  action: 'deploy',
  instanceIds: ids,
  clientToken: 't',
  startTime: T0.toISOString(),
  trafficPhase: 'Draining',
});
const fin = (w: WorkItem, ok = true): FinishedWork => ({
  work: w,
  status: ok ? 'Success' : 'Failed',
  outcomes: w.instanceIds.map((instanceId) => ({ instanceId, ok })),
});

describe('maxDrainedOf', () => {
  it.each([
    [undefined, 4, 1],
    ['25%', 12, 3],
    ['25%', 3, 1],
    ['50%', 5, 2],
    [2, 10, 2],
  ] as const)('%s of %d → %d', (v, total, want) => expect(maxDrainedOf(v, total)).toBe(want));
});

describe('capacity guard', () => {
  let tc = new TrafficControl();
  beforeEach(() => {
    tc = new TrafficControl(); // its own reservations per test
  });
  it('admits at most maxDrained of a group of 4 (default 25% → 1)', async () => {
    const g = new FakeGroup('CLB', 'rsp-a', ['i-1', 'i-2', 'i-3', 'i-4']);
    const t = scope(g);
    const reads = await tc.read(t, { health: true, scope: 'start' });
    const a = tc.admit(t, reads, ['i-1', 'i-2', 'i-3']);
    expect(a.admitted).toEqual(['i-1']);
    expect(a.waiting).toMatch(/rsp-a: 1 of at most 1 backend/);
  });
  it('counts what is already out (weight 0 or recorded) against maxDrained', async () => {
    const g = new FakeGroup('CLB', 'rsp-a', ['i-1', 'i-2', 'i-3', 'i-4']);
    g.backends[3]!.weight = 0; // out by someone else
    const t = scope(g, { maxDrained: 2 });
    const a = tc.admit(t, await tc.read(t, { health: true, scope: 'start' }), ['i-1', 'i-2']);
    expect(a.admitted).toEqual(['i-1']);
  });
  it('keeps minHealthyBackends healthy in rotation', async () => {
    const g = new FakeGroup('CLB', 'rsp-a', ['i-1', 'i-2', 'i-3', 'i-4']);
    g.health.set('i-2:8080', 'Unhealthy');
    g.health.set('i-3:8080', 'Unhealthy');
    const t = scope(g, { maxDrained: 4, minHealthyBackends: 1 });
    // 2 healthy (i-1, i-4): only one of them may leave.
    expect(
      tc.admit(t, await tc.read(t, { health: true, scope: 'start' }), ['i-1', 'i-4', 'i-2']).admitted,
    ).toEqual(['i-1', 'i-2']);
  });
  it('instances in no group are always admitted', async () => {
    const g = new FakeGroup('CLB', 'rsp-a', ['i-1', 'i-2']);
    const t = scope(g);
    expect(
      tc.admit(t, await tc.read(t, { health: true, scope: 'start' }), ['i-9', 'i-1', 'i-2']).admitted,
    ).toEqual(['i-9', 'i-1']);
  });
  it('is Stalled when nothing is out and nothing can ever be admitted', async () => {
    const g = new FakeGroup('CLB', 'rsp-a', ['i-1']);
    const t = scope(g, { minHealthyBackends: 1 });
    const reads = await tc.read(t, { health: true, scope: 'start' });
    expect(() => tc.admit(t, reads, ['i-1'])).toThrow(StalledError);
  });
  it('refuses an ACK-managed load balancer', async () => {
    const g = new FakeGroup('ALB', 'sgp-a', ['i-1', 'i-2']);
    g.tags = { 'ack.aliyun.com': 'c0ffee' };
    await expect(tc.read(scope(g), { health: false, scope: 'start' })).rejects.toThrow(
      /LoadBalancerManagedByACK|ack\.aliyun\.com/,
    );
  });
});

describe('drain → act → restore', () => {
  let tc = new TrafficControl();
  beforeEach(() => {
    tc = new TrafficControl(); // its own reservations per test
  });
  it('CLB: records originals once, drains to 0, waits drainSeconds, restores the original weights', async () => {
    const g = new FakeGroup('CLB', 'rsp-a', ['i-1', 'i-2', 'i-3', 'i-4']);
    const t = scope(g);
    const reads = await tc.read(t, { health: true, scope: 'start' });
    expect(tc.record(t, reads, ['i-2'], T0)).toBe(true);
    expect(t.backends).toMatchObject([{ instanceId: 'i-2', weight: 51, mode: 'Weight' }]);
    const w = item(['i-2']);
    expect(await tc.drainStep(t, owner, reporting, w, T0)).toBe('wait');
    expect(g.backends[1]!.weight).toBe(0);
    expect(w.phaseSince).toBe('2026-12-07T10:00:00Z');
    // A second record (after a crash) keeps the original, not the 0 now on the group.
    tc.record(t, await tc.read(t, { health: true, scope: 'start' }), ['i-2'], at(5));
    expect(t.backends).toHaveLength(1);
    expect(t.backends[0]!.weight).toBe(51);
    expect(await tc.drainStep(t, owner, reporting, w, at(29))).toBe('wait');
    expect(t.wait?.reason).toBe('Draining');
    expect(await tc.drainStep(t, owner, reporting, w, at(30))).toBe('send');
    // The work ends: held back until healthy.
    w.pending = false;
    w.executionId = 't-1';
    delete w.trafficPhase;
    g.health.set('i-2:8080', 'Unhealthy');
    let out = await tc.afterPoll(t, owner, reporting, [], [fin(w)], at(60));
    expect(out.finished).toEqual([]);
    expect(out.inFlight).toEqual([w]);
    expect(w.trafficPhase).toBe('Restoring');
    expect(g.backends[1]!.weight).toBe(51);
    // Health is judged on the next pass, from a read after the restore.
    out = await tc.afterPoll(t, owner, reporting, out.inFlight, [], at(62));
    expect(out.finished).toEqual([]);
    expect(t.wait?.reason).toBe('WaitingForLoadBalancerHealth');
    g.health.set('i-2:8080', 'Healthy');
    out = await tc.afterPoll(t, owner, reporting, out.inFlight, [], at(70));
    expect(out.finished).toHaveLength(1);
    expect(out.finished[0]!.outcomes[0]!.ok).toBe(true);
    expect(out.inFlight).toEqual([]);
    expect(t.backends).toEqual([]);
  });

  it('ALB: the drain wait starts once the change is applied (Available), not at the write', async () => {
    const g = new FakeGroup('ALB', 'sgp-a', ['i-1', 'i-2', 'i-3', 'i-4']);
    const t = scope(g);
    tc.record(t, await tc.read(t, { health: true, scope: 'start' }), ['i-1'], T0);
    const w = item(['i-1']);
    expect(await tc.drainStep(t, owner, reporting, w, T0)).toBe('wait');
    expect(w.phaseSince).toBeUndefined();
    expect(await tc.drainStep(t, owner, reporting, w, at(40))).toBe('wait'); // still Configuring
    expect(g.writes).toHaveLength(1); // not written again while Configuring
    g.settle();
    expect(await tc.drainStep(t, owner, reporting, w, at(50))).toBe('wait');
    expect(w.phaseSince).toBe('2026-12-07T10:00:50Z');
    expect(await tc.drainStep(t, owner, reporting, w, at(80))).toBe('send');
  });

  it('a scheduler that ignores weights: removed, then re-added with port, weight and description', async () => {
    const g = new FakeGroup('CLB', 'rsp-a', ['i-1', 'i-2', 'i-3', 'i-4'], 'sch');
    g.backends[0]!.description = 'web-a';
    const t = scope(g, { drainSeconds: 0 });
    tc.record(t, await tc.read(t, { health: true, scope: 'start' }), ['i-1'], T0);
    expect(t.backends[0]).toMatchObject({ mode: 'Remove', weight: 50, description: 'web-a' });
    const w = item(['i-1']);
    expect(await tc.drainStep(t, owner, reporting, w, T0)).toBe('send');
    expect(g.backends.map((b) => b.instanceId)).toEqual(['i-2', 'i-3', 'i-4']);
    w.pending = false;
    const out = await tc.afterPoll(t, owner, reporting, [], [fin(w)], at(10));
    expect(g.writes.at(-1)).toBe('add i-1=50');
    expect((await tc.afterPoll(t, owner, reporting, out.inFlight, [], at(12))).finished).toHaveLength(1);
  });

  it('never healthy: after healthyTimeoutSeconds the instance fails its batch, saying why', async () => {
    const g = new FakeGroup('CLB', 'rsp-a', ['i-1', 'i-2', 'i-3', 'i-4']);
    const t = scope(g, { healthyTimeoutSeconds: 60 });
    tc.record(t, await tc.read(t, { health: true, scope: 'start' }), ['i-3'], T0);
    const w = item(['i-3']);
    await tc.drainStep(t, owner, reporting, w, T0);
    g.health.set('i-3:8080', 'Unhealthy');
    w.pending = false;
    let out = await tc.afterPoll(t, owner, reporting, [], [fin(w)], at(40));
    expect(out.finished).toEqual([]);
    out = await tc.afterPoll(t, owner, reporting, out.inFlight, [], at(99));
    expect(out.finished).toEqual([]);
    out = await tc.afterPoll(t, owner, reporting, out.inFlight, [], at(101));
    expect(out.finished[0]!.outcomes[0]).toMatchObject({
      instanceId: 'i-3',
      ok: false,
      message: expect.stringMatching(
        /did not report the instance healthy within 60s.*rsp-a i-3:8080 Unhealthy/,
      ),
    });
    expect(g.backends[2]!.weight).toBe(52); // back at its original weight all the same
    expect(events.some((e) => e.startsWith('Warning BackendUnhealthy'))).toBe(true);
  });

  it('restores recorded backends no item holds (a dropped drain, a restart after a kill)', async () => {
    const g = new FakeGroup('ALB', 'sgp-a', ['i-1', 'i-2', 'i-3', 'i-4']);
    g.backends[0]!.weight = 0;
    g.backends[1]!.weight = 0;
    const recorded: DrainedBackend[] = [
      {
        type: 'ALB',
        serverGroupId: 'sgp-a',
        instanceId: 'i-1',
        port: 8080,
        weight: 80,
        mode: 'Weight',
        since: T0.toISOString(),
      },
      {
        type: 'ALB',
        serverGroupId: 'sgp-a',
        instanceId: 'i-2',
        port: 8080,
        weight: 20,
        mode: 'Weight',
        since: T0.toISOString(),
      },
    ];
    const t = { ...scope(g, {}, recorded) };
    delete t.spec; // the spec dropped trafficControl: still restored
    const out = await tc.afterPoll(t, owner, reporting, [], [], at(1));
    expect(t.backends).toHaveLength(2); // written, not yet applied (ALB)
    expect(t.wakeAtMs).toBeDefined();
    g.settle();
    await tc.afterPoll(t, owner, reporting, out.inFlight, [], at(3));
    expect(g.backends.slice(0, 2).map((b) => b.weight)).toEqual([80, 20]);
    expect(t.backends).toEqual([]);
  });

  it('a failed batch is restored and released without waiting for health', async () => {
    const g = new FakeGroup('CLB', 'rsp-a', ['i-1', 'i-2', 'i-3', 'i-4']);
    const t = scope(g);
    tc.record(t, await tc.read(t, { health: true, scope: 'start' }), ['i-4'], T0);
    const w = item(['i-4']);
    await tc.drainStep(t, owner, reporting, w, T0);
    g.health.set('i-4:8080', 'Unhealthy');
    w.pending = false;
    const out = await tc.afterPoll(t, owner, reporting, [], [fin(w, false)], at(31));
    expect(out.finished).toHaveLength(1);
    expect(g.backends[3]!.weight).toBe(53);
  });
});

describe('review fixes: what must never strand a backend or overrun the guard', () => {
  const rec = (
    g: FakeGroup,
    instanceId: string,
    weight: number,
    mode: 'Weight' | 'Remove' = 'Weight',
  ): DrainedBackend => ({
    type: g.type,
    serverGroupId: g.id,
    instanceId,
    port: 8080,
    weight,
    mode,
    since: T0.toISOString(),
  });

  it('a recorded group that no longer exists is dropped (Warning), the other group is still restored', async () => {
    const gone = new FakeGroup('ALB', 'sgp-gone', ['i-1', 'i-2']);
    gone.deleted = true;
    const live = new FakeGroup('CLB', 'rsp-live', ['i-1', 'i-2']);
    live.backends[0]!.weight = 0;
    const t: TrafficScope = {
      backends: [rec(gone, 'i-1', 100), rec(live, 'i-1', 70)],
      drains: () => true,
      lb: (type) => (type === 'ALB' ? gone : live),
    };
    await new TrafficControl().afterPoll(t, owner, reporting, [], [], at(1));
    expect(live.backends[0]!.weight).toBe(70);
    expect(t.backends).toEqual([]);
    expect(events.some((e) => e.includes('nothing to put back for 1 backend(s)'))).toBe(true);
  });

  it('a backend whose re-add is refused (instance released) is dropped; the others are restored', async () => {
    const g = new FakeGroup('CLB', 'rsp-r', ['i-2', 'i-3'], 'sch');
    g.refuseAdd = true;
    const t: TrafficScope = { backends: [rec(g, 'i-1', 40, 'Remove')], drains: () => true, lb: () => g };
    await new TrafficControl().afterPoll(t, owner, reporting, [], [], at(1));
    expect(t.backends).toEqual([]);
  });

  it('ALB: a server whose change is still Configuring counts as out of rotation', async () => {
    const g = new FakeGroup('ALB', 'sgp-c', ['i-1', 'i-2', 'i-3', 'i-4']);
    await g.setWeights(g.id, [{ instanceId: 'i-4', port: 8080, weight: 0 }]); // someone else's drain, not applied yet
    const tc = new TrafficControl();
    const t = scope(g);
    expect(tc.admit(t, await tc.read(t, { health: true, scope: 'start' }), ['i-1']).admitted).toEqual([]);
  });

  it("two resources of one process share the guard: the second sees the first one's admission at once", async () => {
    const g = new FakeGroup('CLB', 'rsp-two', ['i-1', 'i-2', 'i-3', 'i-4']);
    const shared = new Map<string, Set<string>>();
    const a = new TrafficControl(shared);
    const b = new TrafficControl(shared);
    const ta = scope(g);
    const tb = scope(g);
    const ra = await a.read(ta, { health: true, scope: 'start' });
    const rb = await b.read(tb, { health: true, scope: 'start' }); // read before either drained
    expect(a.admit(ta, ra, ['i-1']).admitted).toEqual(['i-1']);
    expect(b.admit(tb, rb, ['i-2']).admitted).toEqual([]);
    a.unreserve(['i-1']);
    expect(b.admit(tb, rb, ['i-2']).admitted).toEqual(['i-2']);
  });

  it('every port counts: an instance with two backends in a group takes two of maxDrained', async () => {
    const g = new FakeGroup('CLB', 'rsp-ports', ['i-1', 'i-2', 'i-3', 'i-4']);
    g.backends.push({ instanceId: 'i-1', port: 9090, weight: 10, status: 'Available' });
    g.health.set('i-1:9090', 'Healthy');
    const tc = new TrafficControl();
    const t = scope(g, { maxDrained: 1 });
    expect(tc.admit(t, await tc.read(t, { health: true, scope: 'start' }), ['i-1', 'i-2']).admitted).toEqual([
      'i-2',
    ]);
  });

  it('a group without health checks has no health to wait for', async () => {
    const g = new FakeGroup('ALB', 'sgp-nohc', ['i-1', 'i-2', 'i-3', 'i-4']);
    g.healthCheck = false;
    g.health.clear(); // the load balancer reports nothing useful
    const tc = new TrafficControl();
    const t = scope(g, { drainSeconds: 0 });
    tc.record(t, await tc.read(t, { health: true, scope: 'start' }), ['i-1'], T0);
    const w = item(['i-1']);
    await tc.drainStep(t, owner, reporting, w, T0);
    g.settle();
    expect(await tc.drainStep(t, owner, reporting, w, at(1))).toBe('send');
    w.pending = false;
    let out = await tc.afterPoll(t, owner, reporting, [], [fin(w)], at(2));
    g.settle();
    out = await tc.afterPoll(t, owner, reporting, out.inFlight, [], at(3));
    out = await tc.afterPoll(t, owner, reporting, out.inFlight, [], at(4));
    expect(out.finished.map((f) => f.outcomes[0]?.ok)).toEqual([true]);
  });
});
