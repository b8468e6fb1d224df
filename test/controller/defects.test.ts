import { isDeepStrictEqual } from 'node:util';
/**
 * One case per defect of the reconcile-kit issue, on the fast tier (real reconciler + cloud layer
 * + emulator over HTTP, in-memory objects, fake wall clock).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { OWNER_UID_TAG } from '../../src/api/common.js';
import type { EcsExtension } from '../../src/api/ecsextension.js';
import type { Resource } from '../../src/controllers/shared/deps.js';
import { STATUS_COALESCE_MS } from '../../src/controllers/shared/driver.js';
import { encodeLockKeys, InstanceLock } from '../../src/controllers/shared/lock.js';
import { directPackageWrite } from '../harness/foreign.js';
import { FailureLedger } from '../../src/controllers/shared/retry.js';
import { toTracked } from '../../src/controllers/shared/work.js';
import { StalledError } from '../../src/runtime/errors.js';
import {
  fleetIds,
  fleetSeed,
  isReady,
  MemoryStore,
  ready,
  REGION,
  startFastStack,
  type FastStack,
  type FastStackOptions,
} from '../harness/fast.js';

const cond = (o: EcsExtension | undefined, type: string) =>
  o?.status?.conditions?.find((c) => c.type === type);

let s: FastStack | undefined;
afterEach(async () => {
  await s?.stop();
  s = undefined;
});
async function stack(o: FastStackOptions): Promise<FastStack> {
  s = await startFastStack(o);
  return s;
}

async function ownedExecutions(st: FastStack, name: string) {
  return st.emu.control.listExecutions({ tagKey: OWNER_UID_TAG, tagValue: st.get(name)?.metadata.uid ?? '' });
}

/** Waits (real time) until every execution of `name` is terminal in the emulator. */
async function executionsFinished(st: FastStack, name: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const execs = await ownedExecutions(st, name);
    if (execs.length > 0 && execs.every((e) => ['Success', 'Failed', 'Cancelled'].includes(e.status))) return;
    await sleep(10);
  }
  throw new Error('executions did not finish');
}

describe('defect 1: failure memory is never cut for display; backoff counts rounds', () => {
  it('counts 150 failures, holds all of them through a restart, and retries them after the backoff', async () => {
    const st = await stack({ seed: fleetSeed('fa', 150), options: { retryBaseMs: 60_000 } });
    const ids = fleetIds('fa', 1, 150);
    await st.emu.control.setFaults({
      failInstances: Object.fromEntries(ids.map((id) => [id, 'disk full on /opt'])),
    });
    st.apply('f150', { targets: { instanceIds: ids } });
    let obj = await st.until(
      'f150',
      (o) => o?.status?.retry?.nextRetryTime !== undefined && !o.status.executions,
    );
    expect(obj?.status?.summary).toMatchObject({ targeted: 150, failed: 150, pending: 0 });
    expect(obj?.status?.instances).toHaveLength(100);
    expect(obj?.status?.retry?.failures).toBe(1);
    const started = (await ownedExecutions(st, 'f150')).length;
    expect(started).toBe(3);

    // A controller restart inside the backoff: all 150 still Failed, none restarted.
    st.restart();
    for (let i = 0; i < 3; i++) {
      const step = await st.reconcile('f150');
      expect(step.error).toBeUndefined();
      st.clock.advance(5_000);
    }
    obj = st.get('f150');
    expect(obj?.status?.summary).toMatchObject({ failed: 150, pending: 0 });
    expect(ready(obj)?.reason).toBe('InstallFailed');
    expect((await ownedExecutions(st, 'f150')).length).toBe(started);

    // After the backoff the failed instances are retried, and recover once the fault is gone.
    await st.emu.control.clearFaults();
    st.clock.advance(60_000);
    obj = await st.until('f150', (o) => isReady(o));
    expect(obj?.status?.summary).toMatchObject({ installed: 150, failed: 0 });
    expect(obj?.status?.retry).toBeUndefined();
  });

  it('raises retry.failures by exactly one for a 20-batch round', async () => {
    // Items run one at a time (concurrency 1), so the 20 batches, started a few ms apart, finish
    // over several polls: the round must still count once.
    const st = await stack({
      seed: fleetSeed('tw', 1000),
      timeScale: 0.01,
      options: { retryBaseMs: 60_000 },
    });
    const ids = fleetIds('tw', 1, 1000);
    await st.emu.control.setFaults({
      failInstances: Object.fromEntries(ids.map((id) => [id, 'no space left'])),
    });
    st.apply('twenty', { targets: { instanceIds: ids }, rateControl: { concurrency: 1, maxErrors: '100%' } });
    const failures: number[] = [];
    const obj = await st.until('twenty', (o) => {
      if (o?.status?.retry) failures.push(o.status.retry.failures);
      return o?.status?.retry?.nextRetryTime !== undefined && !o.status.executions;
    });
    expect((await ownedExecutions(st, 'twenty')).length).toBe(20);
    expect(obj?.status?.retry?.failures).toBe(1);
    expect(Math.max(...failures)).toBe(1);
    expect(obj?.status?.summary?.failed).toBe(1000);
  });

  it('FailureLedger counts a round once however often it completes', () => {
    const ledger = new FailureLedger(undefined);
    const now = new Date('2026-06-01T00:00:00Z');
    for (let b = 0; b < 20; b++)
      ledger.fail(`i-a${b}`, { message: 'x', since: '2026-06-01T00:00:00Z', round: 1 });
    for (let i = 0; i < 20; i++) ledger.completeRound(1, now, { baseMs: 30_000, maxMs: 1_800_000 });
    expect(ledger.toStatus()?.failures).toBe(1);
    expect(ledger.toStatus()?.nextRetryTime).toBe('2026-06-01T00:00:30Z');
  });
});

describe('defect 2: an execution leaves status only in the write that records its outcome', () => {
  it('keeps the failure of a finished execution when the package-state read fails afterwards', async () => {
    const st = await stack({ seed: fleetSeed('lr', 10), options: { retryBaseMs: 60_000 } });
    await st.emu.control.setFaults({ failInstances: { 'i-lr0003': 'script exited 1' } });
    st.apply('lost', { targets: { instanceIds: fleetIds('lr', 1, 10) } });
    await st.until('lost', (o) => (o?.status?.executions?.length ?? 0) > 0);
    await executionsFinished(st, 'lost');
    await st.emu.control.setFaults({
      failInstances: { 'i-lr0003': 'script exited 1' },
      actions: { ListInstancePackageStates: { errorRate: 1 } },
    });
    const step = await st.reconcile('lost');
    expect(step.error).toBeDefined();
    let obj = st.get('lost');
    expect(obj?.status?.executions).toBeUndefined();
    expect(obj?.status?.retry?.failed?.flatMap((g) => g.instanceIds)).toEqual(['i-lr0003']);
    expect(obj?.status?.retry?.failures).toBe(1);

    // Restarted with the fault gone: the failed instance waits for its backoff (no new execution).
    await st.emu.control.clearFaults();
    st.restart();
    const before = (await ownedExecutions(st, 'lost')).length;
    st.clock.advance(1_000);
    expect((await st.reconcile('lost')).error).toBeUndefined();
    obj = st.get('lost');
    expect((await ownedExecutions(st, 'lost')).length).toBe(before);
    expect(obj?.status?.instances?.find((r) => r.instanceId === 'i-lr0003')?.state).toBe('Failed');
    expect(obj?.status?.summary).toMatchObject({ installed: 9, failed: 1 });
  });
});

describe('defect 3: unknown and credential-refresh errors are transient; permission Stalled heals', () => {
  for (const [code, httpStatus] of [
    ['UnknownError', 400],
    ['InvalidSecurityToken.Expired', 400],
  ] as const) {
    it(`${code} ×3 ends Ready, never Stalled`, async () => {
      const st = await stack({ seed: fleetSeed('un', 3) });
      await st.emu.control.setFaults({ failNext: [{ action: 'GetTemplate', code, httpStatus, count: 3 }] });
      st.apply('unk', { targets: { instanceIds: fleetIds('un', 1, 3) } });
      const reasons: string[] = [];
      const obj = await st.until('unk', (o, step) => {
        expect(step.error).not.toBeInstanceOf(StalledError);
        expect(cond(o, 'Stalled')).toBeUndefined();
        const r = cond(o, 'Reconciling')?.reason;
        if (r) reasons.push(r);
        return isReady(o);
      });
      expect(obj?.status?.summary?.installed).toBe(3);
      expect(reasons).toContain(code === 'UnknownError' ? 'UnknownCloudError' : 'CredentialsUnavailable');
    });
  }

  it('PermissionDenied stalls, is re-checked on the slow period, and heals once RAM is fixed', async () => {
    const st = await stack({ seed: fleetSeed('pd', 3), options: { stalledRecheckMs: 600_000 } });
    await st.emu.control.setFaults({
      failNext: [{ action: 'DescribeInstances', code: 'Forbidden.RAM', httpStatus: 403, count: 1000 }],
    });
    st.apply('perm', { targets: { instanceIds: fleetIds('pd', 1, 3) } });
    const step = await st.reconcile('perm');
    expect(step.error).toBeInstanceOf(StalledError);
    expect((step.error as StalledError).recheckAfterMs).toBe(600_000);
    expect(cond(st.get('perm'), 'Stalled')?.reason).toBe('PermissionDenied');

    await st.emu.control.clearFaults(); // the admin fixes the RAM policy; the spec is unchanged
    st.clock.advance(600_000);
    const obj = await st.until('perm', (o) => isReady(o));
    expect(cond(obj, 'Stalled')).toBeUndefined();
  });

  it('a spec-caused Stalled state is not retried until the spec changes', async () => {
    const st = await stack({ seed: fleetSeed('tn', 2) });
    st.apply('tnf', {
      targets: { instanceIds: fleetIds('tn', 1, 2) },
      packageName: 'ACS-Extension-missing-1',
    });
    const step = await st.reconcile('tnf');
    expect((step.error as StalledError).recheckAfterMs).toBeUndefined();
    await st.emu.control.resetRequestCounts();
    await st.reconcile('tnf');
    expect(await st.emu.control.requestCounts()).toEqual({});
  });
});

describe('defect 4: suspend is honoured on deletion', () => {
  it('removes the finalizer of a suspended Uninstall resource without uninstalling, with an Event', async () => {
    const st = await stack({ seed: fleetSeed('su', 4) });
    const spec = { targets: { instanceIds: fleetIds('su', 1, 4) }, deletionPolicy: 'Uninstall' as const };
    st.apply('susp', spec);
    await st.until('susp', (o) => isReady(o));
    st.apply('susp', { ...spec, suspend: true });
    await st.reconcile('susp');
    const before = (await ownedExecutions(st, 'susp')).length;
    st.store.delete('default', 'susp');
    expect((await st.reconcile('susp')).error).toBeUndefined();
    expect(st.get('susp')).toBeUndefined();
    expect((await st.emu.control.listExecutions({})).length).toBe(before);
    const states = await Promise.all(
      fleetIds('su', 1, 4).map((id) => st.emu.control.getPackageStates(REGION, id)),
    );
    expect(states.every((x) => x.length === 1)).toBe(true);
    expect(st.events.events.some((e) => e.reason === 'DeletedWhileSuspended')).toBe(true);
  });
});

describe('defect 5: a huge interval does not spin the requeue', () => {
  it('clamps spec.interval to 24h', async () => {
    const st = await stack({ seed: fleetSeed('iv', 1) });
    st.apply('huge', { targets: { instanceIds: fleetIds('iv', 1, 1) }, interval: '999999h' });
    const obj = await st.until('huge', (o) => isReady(o));
    expect(isReady(obj)).toBe(true);
    const step = await st.reconcile('huge');
    expect(step.result?.requeueAfterMs).toBe(24 * 3_600_000);
  });
});

describe('defect 6: the reconcile abort signal stops cloud work', () => {
  it('stops a 2,000-instance drift check: nothing new is sent and nothing written after the abort', async () => {
    const st = await stack({ seed: fleetSeed('ab', 2000), cloud: { qps: 200 } });
    st.apply('abort', { targets: { instanceIds: fleetIds('ab', 1, 2000) } });
    const ac = new AbortController();
    const writesBefore = st.store.writes;
    const running = st.reconcile('abort', { signal: ac.signal });
    await sleep(500);
    ac.abort(new Error('shutdown'));
    const step = await running;
    expect(step.error).toBeDefined();
    await sleep(300); // attempts already on the wire land; nothing new may start after this
    const c1 = await st.emu.control.requestCounts();
    await sleep(400);
    const c2 = await st.emu.control.requestCounts();
    expect(c2).toEqual(c1);
    expect(c1.ListInstancePackageStates ?? 0).toBeLessThan(2000);
    // Only the first-generation status (written before any cloud call) exists.
    expect(st.store.writes - writesBefore).toBeLessThanOrEqual(1);
  });
});

describe('defect 7: bounded object, no leaked metric series', () => {
  it('keeps the status of a 20,000-instance target far below etcd’s 1.5 MiB', () => {
    const ledger = new FailureLedger(undefined);
    const ids = Array.from({ length: 20_000 }, (_, i) => `i-bp1${String(i).padStart(17, '0')}`);
    for (const id of ids)
      ledger.fail(id, {
        message: 'disk full on /opt',
        since: '2026-06-01T00:00:00Z',
        round: 1,
        executionId: `exec-${id.slice(-3)}`,
      });
    const executions = Array.from({ length: 400 }, (_, i) =>
      toTracked({
        executionId: `exec-${i}`,
        action: 'install',
        round: 1,
        instanceIds: ids.slice(i * 50, i * 50 + 50),
        clientToken: `ecsops-${'a'.repeat(40)}`,
        startTime: '2026-06-01T00:00:00Z',
      }),
    );
    const bytes = Buffer.byteLength(JSON.stringify({ retry: ledger.toStatus(), executions }));
    expect(bytes).toBeLessThan(512 * 1024);
    expect(ledger.toStatus()?.omitted).toBe(15_000);
  });

  it('removes per-resource metric series when an object disappears without the finalizer path', async () => {
    const st = await stack({ seed: fleetSeed('mt', 2) });
    st.apply('gone', { targets: { instanceIds: fleetIds('mt', 1, 2) } });
    await st.until('gone', (o) => isReady(o));
    const series = async () =>
      ((await st.registry.getSingleMetric('ecsops_resource_instances')?.get())?.values ?? []).filter(
        (v) => v.labels.name === 'gone',
      ).length;
    expect(await series()).toBeGreaterThan(0);
    st.store.purge('default', 'gone');
    await st.reconcile('gone');
    expect(await series()).toBe(0);
  });
});

describe('defect 8: a new generation reads InProgress while its first reads run', () => {
  it('writes observedGeneration, Ready=Unknown and Reconciling=True within the grace, before any cloud write', async () => {
    const st = await stack({ seed: fleetSeed('fs', 2) });
    // The first read outlasts the driver's 1 s grace for the first status write.
    await st.emu.control.setFaults({ actions: { DescribeInstances: { latencyMs: 1_500 } } });
    const first: Array<{ status: unknown; requests: Record<string, number> }> = [];
    const patch = st.store.patchStatus.bind(st.store);
    st.store.patchStatus = async (obj, status) => {
      if (first.length === 0)
        first.push({ status: structuredClone(status), requests: await st.emu.control.requestCounts() });
      return patch(obj, status);
    };
    st.apply('first', { targets: { instanceIds: fleetIds('fs', 1, 2) } });
    await st.reconcile('first');
    const w = first[0]?.status as EcsExtension['status'];
    expect(first[0]?.requests).not.toHaveProperty('StartExecution');
    expect(first[0]?.requests).not.toHaveProperty('ListInstancePackageStates');
    expect(w?.observedGeneration).toBe(1);
    expect(w?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('Unknown');
    expect(w?.conditions?.find((c) => c.type === 'Reconciling')?.status).toBe('True');
  });

  it('a first reconcile that ends within the grace writes once: a small resource converges in two status writes', async () => {
    const st = await stack({ seed: fleetSeed('fw', 2), options: { statusCoalesceMs: STATUS_COALESCE_MS } });
    const writes: Array<EcsExtension['status']> = [];
    const patch = st.store.patchStatus.bind(st.store);
    st.store.patchStatus = async (obj, status) => {
      // As the API writer (StatusPatcher) does, an unchanged status is not a write.
      if (!isDeepStrictEqual(writes.at(-1), status))
        writes.push(structuredClone(status) as EcsExtension['status']);
      return patch(obj, status);
    };
    st.apply('small', { targets: { instanceIds: fleetIds('fw', 1, 2) } });
    await st.until('small', (o) => ready(o)?.status === 'True');
    expect(writes.length).toBe(2);
    expect(writes[0]?.observedGeneration).toBe(1);
    expect(writes[0]?.conditions?.find((c) => c.type === 'Reconciling')?.status).toBe('True');
    expect(writes[0]?.executions?.length).toBe(1);
    expect(writes[1]?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
  });

  it('progress of running work is coalesced: a converge whose first reconcile started the work writes twice', async () => {
    // Two items one after the other, ≈ 1 s each: the poll in between sees 1 of 2 installed.
    const st = await stack({
      seed: fleetSeed('fz', 2),
      timeScale: 0.05,
      options: { statusCoalesceMs: STATUS_COALESCE_MS },
    });
    const writes = recordWrites(st);
    st.apply('slow', { targets: { instanceIds: fleetIds('fz', 1, 2) }, rateControl: { concurrency: 1 } });
    let polls = 0;
    await st.until('slow', (o) => (polls++, ready(o)?.status === 'True'));
    expect(polls).toBeGreaterThan(2);
    expect(writes.map((w) => w?.summary?.installed ?? null)).toEqual([0, 2]);
    expect(writes[0]?.executions?.length).toBe(1); // the lock acquisition is written at once
  });

  it('a lock acquisition is never coalesced: a first reconcile that outlasts the grace writes started, executions, done', async () => {
    const st = await stack({ seed: fleetSeed('fa', 2), options: { statusCoalesceMs: STATUS_COALESCE_MS } });
    // The first read outlasts the 1 s grace: `started` is written mid-reconcile.
    await st.emu.control.setFaults({ actions: { DescribeInstances: { latencyMs: 1_500 } } });
    const writes = recordWrites(st);
    st.apply('slow', { targets: { instanceIds: fleetIds('fa', 1, 2) } });
    await st.reconcile('slow');
    expect(writes.map((w) => w?.executions?.length ?? 0)).toEqual([0, 1]);
    await st.until('slow', (o) => ready(o)?.status === 'True');
    expect(writes.length).toBe(3);
  });
});

/** Every status write of `st`'s objects that changes something (as the API writer skips no-ops). */
function recordWrites(st: Awaited<ReturnType<typeof stack>>): Array<EcsExtension['status']> {
  const writes: Array<EcsExtension['status']> = [];
  const patch = st.store.patchStatus.bind(st.store);
  st.store.patchStatus = async (obj, status) => {
    if (!isDeepStrictEqual(obj.status, status))
      writes.push(structuredClone(status) as EcsExtension['status']);
    return patch(obj, status);
  };
  return writes;
}

describe('defect 9: instances that become unreachable during an execution', () => {
  it('are Unreachable, not Failed, and do not enter the backoff', async () => {
    const st = await stack({ seed: fleetSeed('ur', 4), timeScale: 0.05 });
    st.apply('unreach', {
      targets: { instanceIds: fleetIds('ur', 1, 4) },
      rateControl: { concurrency: 1, maxErrors: '100%' },
    });
    await st.until('unreach', (o) => (o?.status?.executions?.length ?? 0) > 0);
    await st.emu.control.updateInstance(REGION, 'i-ur0004', { status: 'Stopped' });
    const obj = await st.until(
      'unreach',
      (o) => !o?.status?.executions && (o?.status?.summary?.inProgress ?? 1) === 0,
    );
    const row = obj?.status?.instances?.find((r) => r.instanceId === 'i-ur0004');
    expect(row?.state).toBe('Unreachable');
    expect(obj?.status?.summary).toMatchObject({ installed: 3, failed: 0, unreachable: 1 });
    expect(obj?.status?.retry).toBeUndefined();
    expect(ready(obj)?.status).toBe('True');
  });
});

describe('defect 10: two resources fighting over instances', () => {
  it('stalls the newer one with ConflictingResource naming the older one; agreeing specs share', async () => {
    const st = await stack({ seed: fleetSeed('cf', 6) });
    st.apply('older', {
      targets: { instanceIds: fleetIds('cf', 1, 4) },
      packageVersion: 'v1',
      parameters: { version: '16' },
    });
    await st.until('older', (o) => isReady(o));
    st.apply('newer', {
      targets: { instanceIds: fleetIds('cf', 3, 6) },
      packageVersion: 'v2',
      parameters: { version: '18' },
    });
    const step = await st.reconcile('newer');
    expect(step.error).toBeInstanceOf(StalledError);
    const stalled = cond(st.get('newer'), 'Stalled');
    expect(stalled?.reason).toBe('ConflictingResource');
    expect(stalled?.message).toContain('default/older');
    expect(stalled?.message).toContain('2 of the same instance');
    expect(await ownedExecutions(st, 'newer')).toHaveLength(0);
    // The older one is unaffected.
    expect(isReady(st.get('older'))).toBe(true);
    expect((await st.reconcile('older')).error).toBeUndefined();

    // Aligning the newer spec with the older one resolves the conflict.
    st.apply('newer', {
      targets: { instanceIds: fleetIds('cf', 3, 6) },
      packageVersion: 'v1',
      parameters: { version: '16' },
    });
    const obj = await st.until('newer', (o) => isReady(o));
    expect(cond(obj, 'Stalled')).toBeUndefined();
  });
});

describe('drift and observers', () => {
  it('repairs a package another tool removed (direct UpdateInstancePackageState) within one interval (fake clock)', async () => {
    const st = await stack({ seed: fleetSeed('dr', 3) });
    st.apply('drift', { targets: { instanceIds: fleetIds('dr', 1, 3) }, interval: '10m' });
    await st.until('drift', (o) => isReady(o));
    // A direct write leaves no execution; the change feed sees it through ActionTrail.
    await directPackageWrite(st.emu.endpoint, REGION, 'i-dr0002', 'ACS-Extension-node-1853370294850618');
    st.clock.advance(10 * 60_000);
    await st.until('drift', (o) => (o?.status?.summary?.installed ?? 0) < 3 || !isReady(o), 5);
    const obj = await st.until('drift', (o) => isReady(o));
    expect(obj?.status?.summary?.installed).toBe(3);
    expect((await st.emu.control.getPackageStates(REGION, 'i-dr0002')).length).toBe(1);
  });

  it('an Observe-mode resource over the same instances is no conflict', async () => {
    const st = await stack({ seed: fleetSeed('ob', 2) });
    st.apply('enforcer', {
      targets: { instanceIds: fleetIds('ob', 1, 2) },
      packageVersion: 'v1',
      parameters: { version: '16' },
    });
    await st.until('enforcer', (o) => isReady(o));
    st.apply('observer', {
      targets: { instanceIds: fleetIds('ob', 1, 2) },
      packageVersion: 'v2',
      mode: 'Observe',
    });
    const obj = await st.until('observer', (o) => ready(o)?.reason === 'DriftDetected');
    expect(cond(obj, 'Stalled')).toBeUndefined();
  });
});

describe('cross-kind instance lock', () => {
  it('waits while another kind holds the instances, says who, and starts once they are free', async () => {
    const lock = new InstanceLock();
    const st = await stack({ seed: fleetSeed('lk', 4), lock });
    const others = new MemoryStore<Resource>();
    lock.addSource('AppRelease', others);
    const holder = others.apply({
      apiVersion: 'ecsops.io/v1alpha1',
      kind: 'AppRelease',
      metadata: { name: 'shop', namespace: 'team-a' },
      spec: {},
    });
    await others.patchStatus(holder, {
      executions: [
        {
          executionId: 't-1',
          action: 'deploy',
          clientToken: 'x',
          startTime: '2026-06-01T00:00:00Z',
          lockKeys: encodeLockKeys(fleetIds('lk', 1, 2)),
        },
      ],
    });
    st.apply('locked', { targets: { instanceIds: fleetIds('lk', 1, 4) } });
    const waiting = await st.until(
      'locked',
      (o) => !!o?.status?.executions || ready(o)?.reason === 'WaitingForInstanceLock',
    );
    // The two free instances started; the two held ones wait.
    const first = await ownedExecutions(st, 'locked');
    expect(first.flatMap((e) => (e.parameters.targets as { ResourceIds: string[] }).ResourceIds)).toEqual(
      fleetIds('lk', 3, 4),
    );
    expect(waiting).toBeDefined();
    const w = await st.until('locked', (o) => ready(o)?.reason === 'WaitingForInstanceLock');
    expect(ready(w)?.message).toContain('AppRelease team-a/shop');
    await others.patchStatus(others.get('team-a', 'shop') as Resource, {});
    const done = await st.until('locked', (o) => isReady(o));
    expect(done?.status?.summary?.installed).toBe(4);
  });
});
