/** Table tests of the reconcile kit's pure parts (src/controllers/shared). */
import { describe, expect, it } from 'vitest';
import { ClaimRegistry, type Claim } from '../../../src/controllers/shared/claims.js';
import { toReconcileError } from '../../../src/controllers/shared/cloud-errors.js';
import {
  setReadyCondition,
  setReconcilingCondition,
  setStalledCondition,
  summarizeConditions,
} from '../../../src/controllers/shared/conditions.js';
import { intervalMs } from '../../../src/controllers/shared/driver.js';
import {
  cleanSuccess,
  executionBatch,
  executionOutcomes,
} from '../../../src/controllers/shared/oos-tracker.js';
import { invocationOutcome } from '../../../src/controllers/shared/invocation-tracker.js';
import { FailureLedger, retryDelayMs } from '../../../src/controllers/shared/retry.js';
import { boundedRows, countStates, summaryKey, type RowSpec } from '../../../src/controllers/shared/rows.js';
import { fromTracked, toTracked } from '../../../src/controllers/shared/work.js';
import { encodeLockKeys } from '../../../src/controllers/shared/lock.js';
import { CloudError } from '../../../src/cloud/errors.js';
import type { Execution } from '../../../src/cloud/types.js';
import type { Condition } from '../../../src/runtime/conditions.js';
import { StalledError, TransientError } from '../../../src/runtime/errors.js';

const T0 = new Date('2026-06-01T00:00:00Z');
const T1 = new Date('2026-06-01T00:05:00Z');
const shape = (c: Condition[]) => c.map((x) => `${x.type}=${x.status}/${x.reason}`);

describe('setReadyCondition', () => {
  const cases: Array<{
    name: string;
    prev?: Condition[];
    ready?: Parameters<typeof setReadyCondition>[2];
    want: string[];
  }> = [
    { name: 'first visit without a verdict → Unknown Progressing', want: ['Ready=Unknown/Progressing'] },
    {
      name: 'no verdict keeps an existing Ready',
      prev: setReadyCondition(undefined, 1, { status: 'True', reason: 'Installed', message: 'ok' }, T0),
      want: ['Ready=True/Installed'],
    },
    {
      name: 'True',
      ready: { status: 'True', reason: 'Installed', message: 'ok' },
      want: ['Ready=True/Installed'],
    },
    {
      name: 'False',
      ready: { status: 'False', reason: 'InstallFailed', message: 'x' },
      want: ['Ready=False/InstallFailed'],
    },
    {
      name: 'Unknown',
      ready: { status: 'Unknown', reason: 'Progressing', message: '' },
      want: ['Ready=Unknown/Progressing'],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const out = setReadyCondition(c.prev, 2, c.ready, T1);
      expect(shape(out)).toEqual(c.want);
      if (c.ready) expect(out[0]?.observedGeneration).toBe(2);
    });
  }
  it('keeps lastTransitionTime when nothing changed', () => {
    const a = setReadyCondition(undefined, 1, { status: 'True', reason: 'Installed', message: 'ok' }, T0);
    const b = setReadyCondition(a, 2, { status: 'True', reason: 'Installed', message: 'ok' }, T1);
    expect(b[0]?.lastTransitionTime).toBe('2026-06-01T00:00:00Z');
  });
});

describe('setReconcilingCondition', () => {
  const stalled = setStalledCondition(undefined, 1, { reason: 'PermissionDenied', message: 'x' }, T0);
  const cases: Array<{
    name: string;
    prev?: Condition[];
    r?: { reason: string; message: string };
    want: string[];
  }> = [
    {
      name: 'set',
      r: { reason: 'InstallInProgress', message: '3 in progress' },
      want: ['Reconciling=True/InstallInProgress'],
    },
    {
      name: 'set removes Stalled',
      prev: stalled,
      r: { reason: 'Throttled', message: 'x' },
      want: ['Reconciling=True/Throttled'],
    },
    {
      name: 'clear',
      prev: setReconcilingCondition(undefined, 1, { reason: 'A', message: '' }, T0),
      want: [],
    },
    { name: 'clear keeps Stalled', prev: stalled, want: ['Stalled=True/PermissionDenied'] },
  ];
  for (const c of cases)
    it(c.name, () => expect(shape(setReconcilingCondition(c.prev, 1, c.r, T1))).toEqual(c.want));
});

describe('setStalledCondition', () => {
  const reconciling = setReconcilingCondition(undefined, 1, { reason: 'A', message: '' }, T0);
  const cases: Array<{
    name: string;
    prev?: Condition[];
    s?: { reason: string; message: string };
    want: string[];
  }> = [
    { name: 'set', s: { reason: 'TemplateNotFound', message: 'x' }, want: ['Stalled=True/TemplateNotFound'] },
    {
      name: 'set removes Reconciling',
      prev: reconciling,
      s: { reason: 'X', message: '' },
      want: ['Stalled=True/X'],
    },
    { name: 'clear', prev: setStalledCondition(undefined, 1, { reason: 'X', message: '' }, T0), want: [] },
    { name: 'clear keeps Reconciling', prev: reconciling, want: ['Reconciling=True/A'] },
  ];
  for (const c of cases)
    it(c.name, () => expect(shape(setStalledCondition(c.prev, 1, c.s, T1))).toEqual(c.want));
});

describe('summarizeConditions', () => {
  const ready = setReadyCondition(undefined, 1, { status: 'True', reason: 'Installed', message: 'ok' }, T0);
  const cases: Array<{
    name: string;
    prev?: Condition[];
    o: Parameters<typeof summarizeConditions>[2];
    want: string[];
  }> = [
    {
      name: 'started',
      prev: ready,
      o: { kind: 'started' },
      want: ['Ready=Unknown/Progressing', 'Reconciling=True/Progressing'],
    },
    {
      name: 'retrying keeps Ready',
      prev: ready,
      o: { kind: 'retrying', error: { reason: 'Throttled', message: 'x' } },
      want: ['Ready=True/Installed', 'Reconciling=True/Throttled'],
    },
    {
      name: 'stalled',
      prev: ready,
      o: { kind: 'stalled', error: { reason: 'PermissionDenied', message: 'x' } },
      want: ['Ready=False/PermissionDenied', 'Stalled=True/PermissionDenied'],
    },
    {
      name: 'verdict with work in flight',
      o: {
        kind: 'verdict',
        verdict: {
          ready: { status: 'False', reason: 'InstallInProgress', message: 'x' },
          reconciling: { reason: 'InstallInProgress', message: 'x' },
        },
      },
      want: ['Ready=False/InstallInProgress', 'Reconciling=True/InstallInProgress'],
    },
    {
      name: 'verdict clears Stalled and Reconciling',
      prev: summarizeConditions(ready, 1, { kind: 'stalled', error: { reason: 'X', message: '' } }, T0),
      o: { kind: 'verdict', verdict: { ready: { status: 'True', reason: 'Installed', message: 'ok' } } },
      want: ['Ready=True/Installed'],
    },
  ];
  for (const c of cases)
    it(c.name, () => expect(shape(summarizeConditions(c.prev, 2, c.o, T1))).toEqual(c.want));
});

describe('boundedRows and countStates', () => {
  type S = 'Failed' | 'InProgress' | 'Ok';
  interface F {
    id: string;
    s: S;
  }
  const spec: RowSpec<S, F, { instanceId: string; state: S; lastTransitionTime?: string; message?: string }> =
    {
      order: { Failed: 0, InProgress: 1, Ok: 2 },
      stateOf: (f) => f.s,
      idOf: (f) => f.id,
      build: (f, state) => ({ instanceId: f.id, state, message: 'm'.repeat(2000) }),
    };
  const facts: F[] = [
    { id: 'i-c', s: 'Ok' },
    { id: 'i-b', s: 'Failed' },
    { id: 'i-a', s: 'InProgress' },
    { id: 'i-d', s: 'Failed' },
  ];
  it('sorts by precedence then ID, bounds, truncates messages', () => {
    const rows = boundedRows(facts, undefined, spec, 3, T0);
    expect(rows.map((r) => `${r.state}:${r.instanceId}`)).toEqual([
      'Failed:i-b',
      'Failed:i-d',
      'InProgress:i-a',
    ]);
    expect(rows[0]?.message).toHaveLength(1024);
  });
  it('carries lastTransitionTime over while the state is unchanged', () => {
    const before = boundedRows(facts, undefined, spec, 10, T0);
    const after = boundedRows(
      facts.map((f) => (f.id === 'i-a' ? { ...f, s: 'Ok' as const } : f)),
      before,
      spec,
      10,
      T1,
    );
    const t = Object.fromEntries(after.map((r) => [r.instanceId, r.lastTransitionTime]));
    expect(t).toEqual({
      'i-a': '2026-06-01T00:05:00Z',
      'i-b': '2026-06-01T00:00:00Z',
      'i-c': '2026-06-01T00:00:00Z',
      'i-d': '2026-06-01T00:00:00Z',
    });
  });
  it('counts every fact, every state present', () => {
    expect(countStates(facts, (f) => f.s, ['Failed', 'InProgress', 'Ok'] as const)).toEqual({
      targeted: 4,
      failed: 2,
      inProgress: 1,
      ok: 1,
    });
    expect(summaryKey('InProgress')).toBe('inProgress');
  });
});

describe('FailureLedger', () => {
  const b = { baseMs: 30_000, maxMs: 1_800_000 };
  it('round-trips through status grouped by execution and message, and forgets untargeted instances', () => {
    const l = new FailureLedger(undefined);
    l.fail('i-2', { message: 'x', executionId: 'exec-1', since: '2026-06-01T00:00:00Z', round: 1 });
    l.fail('i-1', { message: 'x', executionId: 'exec-1', since: '2026-06-01T00:00:00Z', round: 1 });
    l.fail('i-3', { message: 'y', executionId: 'exec-2', since: '2026-06-01T00:00:00Z', round: 1 });
    l.completeRound(1, T0, b);
    const st = l.toStatus();
    expect(st?.failed?.map((g) => g.instanceIds)).toEqual([['i-1', 'i-2'], ['i-3']]);
    const back = new FailureLedger(st);
    expect(back.ids()).toEqual(['i-1', 'i-2', 'i-3']);
    expect(back.inBackoff(T0)).toBe(true);
    expect(back.inBackoff(new Date(T0.getTime() + 30_001))).toBe(false);
    back.retain(new Set(['i-3']));
    expect(back.ids()).toEqual(['i-3']);
  });
  it('grows the backoff per failed round and resets after a clean round', () => {
    const l = new FailureLedger(undefined);
    l.fail('i-1', { message: 'x', since: 's', round: 1 });
    l.completeRound(1, T0, b);
    l.fail('i-1', { message: 'x', since: 's', round: 2 });
    l.completeRound(2, T0, b);
    expect(l.toStatus()).toMatchObject({ failures: 2, nextRetryTime: '2026-06-01T00:01:00Z' });
    l.clear('i-1');
    l.completeRound(3, T0, b);
    expect(l.toStatus()).toBeUndefined();
  });
  it('reads failed rows of 0.1.0 objects when retry.failed is absent', () => {
    const l = new FailureLedger({ failures: 2, nextRetryTime: '2026-06-01T00:01:00Z' }, [
      { instanceId: 'i-x', message: 'old' },
    ]);
    expect(l.get('i-x')?.message).toBe('old');
    expect(retryDelayMs(3, 10, 1000)).toBe(40);
  });
});

describe('ClaimRegistry', () => {
  const claim = (over: Partial<Claim>): Claim => ({
    uid: 'u',
    namespace: 'ns',
    name: 'n',
    createdAt: '2026-01-01T00:00:00Z',
    subject: 'pkg',
    fingerprint: 'v1',
    instanceIds: new Set(['i-1', 'i-2']),
    ...over,
  });
  it('the newer of two disagreeing, overlapping claims sees the older as holder', () => {
    const r = new ClaimRegistry();
    const old = claim({ uid: 'a', name: 'old' });
    const young = claim({
      uid: 'b',
      name: 'young',
      createdAt: '2026-02-01T00:00:00Z',
      fingerprint: 'v2',
      instanceIds: new Set(['i-2', 'i-3']),
    });
    r.set(old);
    r.set(young);
    expect(r.conflictFor(young)).toMatchObject({ holder: { name: 'old' }, overlap: 1 });
    expect(r.conflictFor(old)).toBeUndefined();
  });
  it('no conflict when agreeing, disjoint, or another subject', () => {
    const r = new ClaimRegistry();
    r.set(claim({ uid: 'a' }));
    expect(r.conflictFor(claim({ uid: 'b', createdAt: '2027-01-01T00:00:00Z' }))).toBeUndefined();
    expect(
      r.conflictFor(
        claim({
          uid: 'c',
          createdAt: '2027-01-01T00:00:00Z',
          fingerprint: 'v2',
          instanceIds: new Set(['i-9']),
        }),
      ),
    ).toBeUndefined();
    expect(
      r.conflictFor(
        claim({ uid: 'd', createdAt: '2027-01-01T00:00:00Z', fingerprint: 'v2', subject: 'other' }),
      ),
    ).toBeUndefined();
  });
  it('with subjectsOverlap, claims on overlapping (not only equal) subjects conflict', () => {
    const r = new ClaimRegistry({ subjectsOverlap: (a, b) => a.startsWith(b) || b.startsWith(a) });
    r.set(claim({ uid: 'a', name: 'old', subject: '/opt/app' }));
    const young = { uid: 'b', createdAt: '2027-01-01T00:00:00Z', fingerprint: 'v2' };
    expect(r.conflictFor(claim({ ...young, subject: '/opt/app/web' }))).toMatchObject({
      holder: { name: 'old' },
      overlap: 2,
    });
    expect(r.conflictFor(claim({ ...young, subject: '/srv/app' }))).toBeUndefined();
    expect(new ClaimRegistry().conflictFor(claim({ ...young, subject: '/opt/app/web' }))).toBeUndefined();
  });
});

describe('trackers: pure parts', () => {
  const exec = (over: Partial<Execution>): Execution => ({
    executionId: 'exec-1',
    templateName: 't',
    status: 'Failed',
    parameters: { targets: JSON.stringify({ ResourceIds: ['i-1', 'i-2', 'i-3'] }) },
    outputs: {},
    counters: {},
    resourceStatus: {},
    currentTasks: [],
    isParent: true,
    tags: {},
    ...over,
  });
  it('reads the batch back from the execution parameters (string or object)', () => {
    expect(executionBatch(exec({}))).toEqual(['i-1', 'i-2', 'i-3']);
    expect(executionBatch(exec({ parameters: { targets: { ResourceIds: ['i-9'] } } }))).toEqual(['i-9']);
    expect(executionBatch(exec({ parameters: { targets: 'not json' } }))).toEqual([]);
  });
  it('maps loop children to per-instance outcomes, falling back on the execution status', () => {
    const out = executionOutcomes(
      exec({ statusMessage: 'MaxErrors exceeded' }),
      ['i-1', 'i-2', 'i-3'],
      [
        {
          taskExecutionId: 't1',
          executionId: 'exec-1',
          taskName: 'x',
          status: 'Success',
          properties: {},
          outputs: {},
          loopItem: 'i-1',
        },
        {
          taskExecutionId: 't2',
          executionId: 'exec-1',
          taskName: 'x',
          status: 'Failed',
          statusMessage: 'disk full',
          properties: {},
          outputs: {},
          loopItem: 'i-2',
        },
      ],
    );
    expect(out).toEqual([
      { instanceId: 'i-1', ok: true },
      { instanceId: 'i-2', ok: false, message: 'disk full' },
      { instanceId: 'i-3', ok: false, message: 'MaxErrors exceeded' },
    ]);
  });
  it('maps a Cloud Assistant result: exit code, output tail, message', () => {
    expect(
      invocationOutcome({ instanceId: 'i-1', invocationStatus: 'Success', exitCode: 0, output: 'ok' }),
    ).toEqual({
      instanceId: 'i-1',
      ok: true,
      exitCode: 0,
      output: 'ok',
    });
    const bad = invocationOutcome(
      { instanceId: 'i-1', invocationStatus: 'Failed', exitCode: 3, output: 'x'.repeat(5000) },
      100,
    );
    expect(bad).toMatchObject({ ok: false, exitCode: 3, message: 'Failed: exit code 3' });
    expect(bad.output).toHaveLength(100);
  });
  it('keeps tracked work compact in status and restores it', () => {
    const w = {
      executionId: 'exec-1',
      action: 'install',
      round: 2,
      instanceIds: ['i-1', 'i-2'],
      clientToken: 'tok',
      startTime: 's',
    };
    expect(toTracked(w)).toEqual({
      executionId: 'exec-1',
      action: 'install',
      round: 2,
      instanceCount: 2,
      clientToken: 'tok',
      startTime: 's',
      lockKeys: encodeLockKeys(['i-1', 'i-2']),
    });
    expect(fromTracked(toTracked(w)).instanceIds).toEqual([]);
    // the lock keys survive a restart until a poll reads the batch back
    expect(toTracked(fromTracked(toTracked(w))).lockKeys).toBe(encodeLockKeys(['i-1', 'i-2']));
  });
});

describe('intervalMs', () => {
  const cases: Array<[string | undefined, number]> = [
    [undefined, 600_000],
    ['10m', 600_000],
    ['1ms', 10_000],
    ['999999h', 86_400_000],
    ['nonsense', 600_000],
  ];
  for (const [v, want] of cases) it(`${v} → ${want}`, () => expect(intervalMs(v)).toBe(want));
});

describe('toReconcileError: transient vs stalled (kit rules)', () => {
  const mk = (code: string, kind: 'transient' | 'permanent', category: CloudError['category']) =>
    new CloudError({ code, message: 'm', action: 'A', product: 'oos', kind, category });
  const cases: Array<[CloudError, typeof TransientError | typeof StalledError, string]> = [
    [
      mk('InvalidSecurityToken.Expired', 'transient', 'credentials'),
      TransientError,
      'CredentialsUnavailable',
    ],
    [mk('UnknownError', 'permanent', 'other'), TransientError, 'UnknownCloudError'],
    [mk('Weird.Code', 'permanent', 'other'), TransientError, 'CloudRequestRejected'],
    [mk('Aborted', 'transient', 'aborted' as CloudError['category']), TransientError, 'Aborted'],
    [mk('InvalidAccessKeyId.NotFound', 'permanent', 'credentials'), StalledError, 'InvalidCredentials'],
    [mk('Forbidden.RAM', 'permanent', 'permission'), StalledError, 'PermissionDenied'],
  ];
  for (const [err, cls, reason] of cases) {
    it(`${err.code} → ${cls.name} ${reason}`, () => {
      const out = toReconcileError(err, 'ctx');
      expect(out).toBeInstanceOf(cls);
      expect(out.reason).toBe(reason);
    });
  }
});

describe('cleanSuccess', () => {
  const base = {
    executionId: 'exec-1',
    templateName: 't',
    parameters: {},
    outputs: {},
    counters: {},
    currentTasks: [],
    isParent: true,
    tags: {},
  };
  const cases: Array<[string, Partial<Execution>, number, boolean]> = [
    ['all Success', { status: 'Success', resourceStatus: { Success: 3 } }, 3, true],
    ['one Failed', { status: 'Success', resourceStatus: { Success: 2, Failed: 1 } }, 3, false],
    ['fewer than the batch', { status: 'Success', resourceStatus: { Success: 2 } }, 3, false],
    ['no ResourceStatus', { status: 'Success', resourceStatus: {} }, 3, false],
    ['execution Failed', { status: 'Failed', resourceStatus: { Success: 3 } }, 3, false],
  ];
  for (const [name, e, n, want] of cases)
    it(name, () =>
      expect(cleanSuccess({ ...base, status: 'Success', resourceStatus: {}, ...e }, n)).toBe(want),
    );
});

describe('readPriority (the rate-gate priority of a reconcile’s reads)', () => {
  const cond = (type: string, status: 'True' | 'False') => ({
    type,
    status,
    reason: 'R',
    message: '',
    lastTransitionTime: '2026-12-07T00:00:00Z',
  });
  it('is interactive for a new generation, a requested reconcile and work in flight; background otherwise', async () => {
    const { readPriority } = await import('../../../src/controllers/shared/driver.js');
    const { PRIORITY } = await import('../../../src/cloud/limiter.js');
    expect(readPriority({}, true)).toEqual({ minPriority: PRIORITY.interactive });
    // Work in flight: a poll that folds results re-reads what they leave unknown now.
    expect(readPriority({ conditions: [cond('Reconciling', 'True')] }, false)).toEqual({
      minPriority: PRIORITY.interactive,
    });
    // An idle drift check stays background (no floor).
    expect(
      readPriority({ conditions: [cond('Reconciling', 'False'), cond('Ready', 'True')] }, false),
    ).toEqual({});
    expect(readPriority({}, false)).toEqual({});
  });
});
