import { describe, expect, it } from 'vitest';
import { CloudError } from '../../../src/cloud/errors.js';
import type {
  CloudAssistantStatus,
  DescribeInstancesRequest,
  EcsApi,
  Instance,
} from '../../../src/cloud/types.js';
import { listIds, resolveTargets } from '../../../src/controllers/shared/targets.js';
import { StalledError, TransientError } from '../../../src/runtime/errors.js';

const REGION = 'cn-hangzhou';

interface FakeInstance {
  id: string;
  status?: string;
  tags?: Record<string, string>;
  /** Cloud Assistant heartbeat; undefined = the agent is absent (not listed). */
  online?: boolean;
}

/**
 * A small in-memory ECS region: DescribeInstances by IDs or tag filters (all must match; a filter
 * without value matches any value) and DescribeCloudAssistantStatus. Records the requests so tests
 * can check what was asked of the cloud (not the order of calls).
 */
class FakeEcs implements EcsApi {
  readonly regionId = REGION;
  readonly describeInstancesRequests: DescribeInstancesRequest[] = [];
  readonly cloudAssistantRequests: string[][] = [];
  failWith?: CloudError;

  constructor(private readonly instances: FakeInstance[]) {}

  private toInstance(f: FakeInstance): Instance {
    return {
      instanceId: f.id,
      regionId: REGION,
      status: f.status ?? 'Running',
      tags: Object.entries(f.tags ?? {}).map(([key, value]) => ({ key, value })),
    };
  }

  async describeInstances(req: DescribeInstancesRequest = {}): Promise<Instance[]> {
    this.describeInstancesRequests.push(structuredClone(req));
    if (this.failWith) throw this.failWith;
    let out = this.instances;
    if (req.instanceIds) {
      const ids = new Set(req.instanceIds);
      out = out.filter((i) => ids.has(i.id));
    }
    for (const t of req.tags ?? []) {
      out = out.filter(
        (i) => i.tags?.[t.key] !== undefined && (t.value === undefined || i.tags[t.key] === t.value),
      );
    }
    // ECS returns instances newest first, not sorted by ID.
    return out.map((i) => this.toInstance(i)).reverse();
  }

  async describeCloudAssistantStatus(instanceIds: string[]): Promise<CloudAssistantStatus[]> {
    this.cloudAssistantRequests.push([...instanceIds]);
    return this.instances
      .filter((i) => instanceIds.includes(i.id) && i.online !== undefined)
      .map((i) => ({ instanceId: i.id, online: i.online === true }));
  }

  runCommand(): never {
    throw new Error('not used');
  }
  describeInvocations(): never {
    throw new Error('not used');
  }
  describeInvocationResults(): never {
    throw new Error('not used');
  }
  stopInvocation(): never {
    throw new Error('not used');
  }
  describeSnapshots(): never {
    throw new Error('not used');
  }
  tagResources(): never {
    throw new Error('not used');
  }
  untagResources(): never {
    throw new Error('not used');
  }
}

function fleet(): FakeEcs {
  return new FakeEcs([
    { id: 'i-c1', tags: { app: 'web', env: 'prod' }, online: true },
    { id: 'i-a1', tags: { app: 'web', env: 'dev' }, online: true },
    { id: 'i-b1', tags: { app: 'web', env: 'prod' }, online: true },
    { id: 'i-d1', tags: { app: 'db', env: 'prod' }, status: 'Stopped' },
    { id: 'i-e1', tags: { app: 'web', env: 'prod' }, online: false },
    { id: 'i-f1', tags: { app: 'web' } },
  ]);
}

describe('resolveTargets', () => {
  it('resolves explicit instance IDs, sorted by ID', async () => {
    const ecs = fleet();
    const out = await resolveTargets(ecs, REGION, { instanceIds: ['i-c1', 'i-a1', 'i-b1'] });
    expect(out.map((t) => [t.instanceId, t.reachable])).toEqual([
      ['i-a1', true],
      ['i-b1', true],
      ['i-c1', true],
    ]);
    expect(out.every((t) => t.instance.instanceId === t.instanceId)).toBe(true);
  });

  it('does not ask for excluded explicit IDs and leaves them out', async () => {
    const ecs = fleet();
    const out = await resolveTargets(ecs, REGION, {
      instanceIds: ['i-a1', 'i-b1', 'i-c1'],
      excludeInstanceIds: ['i-b1'],
    });
    expect(out.map((t) => t.instanceId)).toEqual(['i-a1', 'i-c1']);
    expect(ecs.describeInstancesRequests.flatMap((r) => r.instanceIds ?? [])).not.toContain('i-b1');
  });

  it('makes no cloud call when every explicit ID is excluded', async () => {
    const ecs = fleet();
    expect(
      await resolveTargets(ecs, REGION, { instanceIds: ['i-a1'], excludeInstanceIds: ['i-a1'] }),
    ).toEqual([]);
    expect(ecs.describeInstancesRequests).toEqual([]);
    expect(ecs.cloudAssistantRequests).toEqual([]);
  });

  it('passes tag filters through (value omitted = any value) and applies exclusions', async () => {
    const ecs = fleet();
    const out = await resolveTargets(ecs, REGION, {
      tags: [{ key: 'app', value: 'web' }, { key: 'env' }],
      excludeInstanceIds: ['i-c1'],
    });
    expect(ecs.describeInstancesRequests).toEqual([{ tags: [{ key: 'app', value: 'web' }, { key: 'env' }] }]);
    expect(out.map((t) => t.instanceId)).toEqual(['i-a1', 'i-b1', 'i-e1']);
  });

  it('enrols whatever carries the tags now (re-resolved on every call)', async () => {
    const instances: FakeInstance[] = [{ id: 'i-a1', tags: { app: 'web' }, online: true }];
    const ecs = new FakeEcs(instances);
    expect((await resolveTargets(ecs, REGION, { tags: [{ key: 'app', value: 'web' }] })).length).toBe(1);
    instances.push({ id: 'i-new', tags: { app: 'web' }, online: true });
    const again = await resolveTargets(ecs, REGION, { tags: [{ key: 'app', value: 'web' }] });
    expect(again.map((t) => t.instanceId)).toEqual(['i-a1', 'i-new']);
  });

  it('marks a stopped instance and a Cloud-Assistant-offline one unreachable, with reasons', async () => {
    const ecs = fleet();
    const out = await resolveTargets(ecs, REGION, { instanceIds: ['i-a1', 'i-d1', 'i-e1', 'i-f1'] });
    expect(out.map((t) => ({ id: t.instanceId, reachable: t.reachable, why: t.unreachableReason }))).toEqual([
      { id: 'i-a1', reachable: true, why: undefined },
      { id: 'i-d1', reachable: false, why: 'instance is Stopped' },
      { id: 'i-e1', reachable: false, why: 'Cloud Assistant agent is offline' },
      // Running but absent from DescribeCloudAssistantStatus: no agent → offline.
      { id: 'i-f1', reachable: false, why: 'Cloud Assistant agent is offline' },
    ]);
    // Cloud Assistant status is read only for Running instances.
    expect(ecs.cloudAssistantRequests.flat().sort()).toEqual(['i-a1', 'i-e1', 'i-f1']);
  });

  it('does not call DescribeCloudAssistantStatus when nothing is running', async () => {
    const ecs = fleet();
    const out = await resolveTargets(ecs, REGION, { instanceIds: ['i-d1'] });
    expect(out.map((t) => t.reachable)).toEqual([false]);
    expect(ecs.cloudAssistantRequests).toEqual([]);
  });

  it('returns no targets when no instance carries the tags', async () => {
    const ecs = fleet();
    expect(await resolveTargets(ecs, REGION, { tags: [{ key: 'team', value: 'none' }] })).toEqual([]);
    expect(ecs.cloudAssistantRequests).toEqual([]);
  });

  it('throws StalledError InstanceNotFound naming the missing IDs', async () => {
    const ecs = fleet();
    const err = await resolveTargets(ecs, REGION, { instanceIds: ['i-a1', 'i-zz2', 'i-zz1'] }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StalledError);
    expect((err as StalledError).reason).toBe('InstanceNotFound');
    expect((err as StalledError).message).toBe('2 instance(s) not found in region cn-hangzhou: i-zz1, i-zz2');
  });

  it('names only the first 5 missing IDs, then (and N more)', async () => {
    const ecs = fleet();
    const missing = ['i-m7', 'i-m1', 'i-m2', 'i-m3', 'i-m4', 'i-m5', 'i-m6'];
    const err = (await resolveTargets(ecs, REGION, { instanceIds: ['i-a1', ...missing] }).catch(
      (e: unknown) => e,
    )) as StalledError;
    expect(err).toBeInstanceOf(StalledError);
    expect(err.message).toBe(
      '7 instance(s) not found in region cn-hangzhou: i-m1, i-m2, i-m3, i-m4, i-m5 (and 2 more)',
    );
  });

  it('does not report an excluded ID as missing', async () => {
    const ecs = fleet();
    const out = await resolveTargets(ecs, REGION, {
      instanceIds: ['i-a1', 'i-gone'],
      excludeInstanceIds: ['i-gone'],
    });
    expect(out.map((t) => t.instanceId)).toEqual(['i-a1']);
  });

  // BUG (defence in depth, src/controllers/shared/targets.ts resolveTargets, the `else` branch):
  // Admission's CEL rule normally blocks this; a stored object from before the rule must never
  // mean "the whole region".
  it('never targets the whole region when spec.targets names neither IDs nor tags', async () => {
    const ecs = fleet();
    const out = await resolveTargets(ecs, REGION, {}).catch((e: unknown) => e);
    expect(out).toBeInstanceOf(StalledError);
    expect((out as StalledError).reason).toBe('InvalidSpec');
  });

  it('maps cloud failures to reconcile errors', async () => {
    const ecs = fleet();
    ecs.failWith = new CloudError({
      code: 'Throttling.User',
      message: 'Request was denied due to user flow control.',
      action: 'DescribeInstances',
      product: 'ecs',
      kind: 'transient',
      category: 'throttling',
    });
    const err = (await resolveTargets(ecs, REGION, { tags: [{ key: 'app' }] }).catch(
      (e: unknown) => e,
    )) as TransientError;
    expect(err).toBeInstanceOf(TransientError);
    expect(err.reason).toBe('Throttled');
    expect(err.message).toContain('ECS DescribeInstances');
  });
});

describe('listIds', () => {
  const cases: Array<{ ids: string[]; max?: number; want: string }> = [
    { ids: [], want: '' },
    { ids: ['i-1'], want: 'i-1' },
    { ids: ['i-1', 'i-2', 'i-3', 'i-4', 'i-5'], want: 'i-1, i-2, i-3, i-4, i-5' },
    { ids: ['i-1', 'i-2', 'i-3', 'i-4', 'i-5', 'i-6'], want: 'i-1, i-2, i-3, i-4, i-5 (and 1 more)' },
    { ids: ['i-1', 'i-2', 'i-3'], max: 2, want: 'i-1, i-2 (and 1 more)' },
  ];
  for (const c of cases) {
    it(`${c.ids.length} IDs, max ${c.max ?? 5} → "${c.want}"`, () => {
      expect(listIds(c.ids, c.max)).toBe(c.want);
    });
  }
});
