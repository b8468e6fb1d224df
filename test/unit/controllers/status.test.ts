import { describe, expect, it } from 'vitest';
import type { ExtensionInstanceStatus } from '../../../src/api/ecsextension.js';
import {
  instanceRows,
  instanceState,
  setEcsExtensionConditions,
  summarize,
  type ConditionFacts,
  type InstanceFact,
  type Summary,
} from '../../../src/controllers/ecsextension/status.js';
import { getCondition, toMetaTime, type Condition } from '../../../src/runtime/conditions.js';

const T0 = new Date('2026-03-01T10:00:00.000Z');
const T1 = new Date('2026-03-01T10:07:30.250Z');
const T0s = '2026-03-01T10:00:00Z';
const T1s = '2026-03-01T10:07:30Z';

/** A reachable, not-yet-installed instance; override what the case is about. */
function fact(instanceId: string, over: Partial<InstanceFact> = {}): InstanceFact {
  return { instanceId, reachable: true, upToDate: false, ...over };
}

const installed = (id: string) => fact(id, { upToDate: true, installedVersion: 'v3' });
const pending = (id: string) => fact(id);
const inProgress = (id: string) => fact(id, { inFlightExecutionId: 'exec-run1' });
const failed = (id: string) => fact(id, { failure: { message: 'exit code 1', executionId: 'exec-bad1' } });
const unreachable = (id: string) => fact(id, { reachable: false, unreachableReason: 'instance is Stopped' });

describe('instanceState precedence', () => {
  const cases: Array<{ name: string; f: InstanceFact; want: string }> = [
    { name: 'nothing known → Pending', f: fact('i-a'), want: 'Pending' },
    { name: 'up to date → Installed', f: installed('i-a'), want: 'Installed' },
    { name: 'failure → Failed', f: failed('i-a'), want: 'Failed' },
    { name: 'unreachable → Unreachable', f: unreachable('i-a'), want: 'Unreachable' },
    { name: 'in flight → InProgress', f: inProgress('i-a'), want: 'InProgress' },
    {
      name: 'in flight beats unreachable, failure and up to date',
      f: fact('i-a', {
        inFlightExecutionId: 'exec-1',
        reachable: false,
        upToDate: true,
        failure: { message: 'x' },
      }),
      want: 'InProgress',
    },
    {
      name: 'unreachable beats up to date and failure',
      f: fact('i-a', { reachable: false, upToDate: true, failure: { message: 'x' } }),
      want: 'Unreachable',
    },
    {
      name: 'up to date beats an old failure',
      f: fact('i-a', { upToDate: true, failure: { message: 'x' } }),
      want: 'Installed',
    },
    {
      name: 'failure beats pending with an old version installed',
      f: fact('i-a', { installedVersion: 'v1', failure: { message: 'x' } }),
      want: 'Failed',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(instanceState(c.f)).toBe(c.want);
    });
  }
});

describe('instanceRows', () => {
  it('orders Failed, InProgress, Unreachable, Pending, Installed, then by instance ID', () => {
    const facts = [
      installed('i-b'),
      pending('i-d'),
      unreachable('i-f'),
      inProgress('i-h'),
      failed('i-j'),
      installed('i-a'),
      pending('i-c'),
      unreachable('i-e'),
      inProgress('i-g'),
      failed('i-i'),
    ];
    const rows = instanceRows(facts, undefined, 'v3', 100, T0);
    expect(rows.map((r) => `${r.state}:${r.instanceId}`)).toEqual([
      'Failed:i-i',
      'Failed:i-j',
      'InProgress:i-g',
      'InProgress:i-h',
      'Unreachable:i-e',
      'Unreachable:i-f',
      'Pending:i-c',
      'Pending:i-d',
      'Installed:i-a',
      'Installed:i-b',
    ]);
  });

  it('keeps at most `limit` rows, the most important ones', () => {
    const facts = [installed('i-1'), installed('i-2'), failed('i-3'), pending('i-4'), inProgress('i-5')];
    const rows = instanceRows(facts, undefined, 'v3', 3, T0);
    expect(rows.map((r) => r.instanceId)).toEqual(['i-3', 'i-5', 'i-4']);
    expect(instanceRows(facts, undefined, 'v3', 100, T0)).toHaveLength(5);
  });

  it('does not mutate the facts array order', () => {
    const facts = [installed('i-b'), failed('i-a')];
    instanceRows(facts, undefined, undefined, 10, T0);
    expect(facts.map((f) => f.instanceId)).toEqual(['i-b', 'i-a']);
  });

  it('carries lastTransitionTime over while the state is unchanged and moves it when it changes', () => {
    const previous: ExtensionInstanceStatus[] = [
      { instanceId: 'i-same', state: 'Installed', version: 'v3', lastTransitionTime: T0s },
      { instanceId: 'i-moved', state: 'InProgress', executionId: 'exec-1', lastTransitionTime: T0s },
    ];
    const rows = instanceRows(
      [installed('i-same'), installed('i-moved'), pending('i-new')],
      previous,
      'v3',
      100,
      T1,
    );
    const byId = new Map(rows.map((r) => [r.instanceId, r]));
    expect(byId.get('i-same')?.lastTransitionTime).toBe(T0s);
    expect(byId.get('i-moved')?.lastTransitionTime).toBe(T1s);
    expect(byId.get('i-new')?.lastTransitionTime).toBe(T1s);
  });

  it('formats lastTransitionTime as RFC 3339 with whole seconds', () => {
    const [row] = instanceRows([pending('i-a')], undefined, undefined, 10, T1);
    expect(row?.lastTransitionTime).toBe(T1s);
  });

  it('gives an identical status for identical facts (no churn)', () => {
    const facts = [failed('i-1'), installed('i-2'), inProgress('i-3'), unreachable('i-4'), pending('i-5')];
    const first = instanceRows(facts, undefined, 'v3', 100, T0);
    const second = instanceRows(facts, first, 'v3', 100, T1);
    expect(second).toEqual(first);
  });

  const messages: Array<{
    name: string;
    f: InstanceFact;
    desired?: string;
    want: Partial<ExtensionInstanceStatus>;
  }> = [
    {
      name: 'Unreachable: the unreachable reason',
      f: unreachable('i-a'),
      want: { state: 'Unreachable', message: 'instance is Stopped' },
    },
    {
      name: 'Failed: the failure message and its execution',
      f: failed('i-a'),
      want: { state: 'Failed', message: 'exit code 1', executionId: 'exec-bad1' },
    },
    {
      name: 'Pending, nothing installed',
      f: pending('i-a'),
      desired: 'v3',
      want: { state: 'Pending', message: 'package not installed' },
    },
    {
      name: 'Pending, other version installed',
      f: fact('i-a', { installedVersion: 'v1' }),
      desired: 'v3',
      want: { state: 'Pending', version: 'v1', message: 'installed v1, want v3' },
    },
    {
      name: 'Pending, other version installed, no desired version → latest',
      f: fact('i-a', { installedVersion: 'v1' }),
      want: { state: 'Pending', version: 'v1', message: 'installed v1, want latest' },
    },
    {
      name: 'InProgress: no message, the in-flight execution',
      f: inProgress('i-a'),
      want: { state: 'InProgress', executionId: 'exec-run1' },
    },
    {
      name: 'Installed: version, no message',
      f: installed('i-a'),
      want: { state: 'Installed', version: 'v3' },
    },
  ];
  for (const c of messages) {
    it(`row for ${c.name}`, () => {
      const [row] = instanceRows([c.f], undefined, c.desired, 10, T0);
      expect(row).toEqual({ instanceId: 'i-a', lastTransitionTime: T0s, ...c.want });
    });
  }

  it('keeps the previous executionId when the fact has none', () => {
    const [row] = instanceRows(
      [installed('i-a')],
      [{ instanceId: 'i-a', state: 'InProgress', executionId: 'exec-old', lastTransitionTime: T0s }],
      'v3',
      10,
      T1,
    );
    expect(row?.executionId).toBe('exec-old');
  });

  it('truncates long messages to 1024 characters', () => {
    const [row] = instanceRows(
      [fact('i-a', { failure: { message: 'x'.repeat(5000) } })],
      undefined,
      undefined,
      10,
      T0,
    );
    expect(row?.message).toHaveLength(1024);
  });
});

describe('summarize', () => {
  it('counts every fact, not only the bounded rows', () => {
    const facts: InstanceFact[] = [];
    for (let i = 0; i < 150; i++) facts.push(installed(`i-in${i}`));
    for (let i = 0; i < 7; i++) facts.push(pending(`i-pe${i}`));
    for (let i = 0; i < 5; i++) facts.push(inProgress(`i-ip${i}`));
    for (let i = 0; i < 3; i++) facts.push(failed(`i-fa${i}`));
    for (let i = 0; i < 2; i++) facts.push(unreachable(`i-un${i}`));
    expect(instanceRows(facts, undefined, 'v3', 100, T0)).toHaveLength(100);
    expect(summarize(facts)).toEqual({
      targeted: 167,
      installed: 150,
      pending: 7,
      inProgress: 5,
      failed: 3,
      unreachable: 2,
    });
  });

  it('is all zeros for no facts', () => {
    expect(summarize([])).toEqual({
      targeted: 0,
      installed: 0,
      pending: 0,
      inProgress: 0,
      failed: 0,
      unreachable: 0,
    });
  });
});

// ---------------------------------------------------------------------------------------------
// setEcsExtensionConditions
// ---------------------------------------------------------------------------------------------

function summary(over: Partial<Summary>): Summary {
  const s = { installed: 0, pending: 0, inProgress: 0, failed: 0, unreachable: 0, ...over };
  return { targeted: s.installed + s.pending + s.inProgress + s.failed + s.unreachable, ...s };
}

function facts(over: Partial<ConditionFacts>): ConditionFacts {
  return {
    generation: 3,
    packageName: 'ACS-Extension-node-1853370294850618',
    desiredVersion: 'v3',
    summary: summary({ installed: 2 }),
    failed: [],
    deleting: false,
    observe: false,
    suspended: false,
    ...over,
  };
}

/** The conditions as `type=status/reason` for compact comparisons. */
function shape(conds: readonly Condition[]): string[] {
  return conds.map((c) => `${c.type}=${c.status}/${c.reason}`);
}

const readyTrue: Condition = {
  type: 'Ready',
  status: 'True',
  reason: 'Installed',
  message: '2/2 reachable instance(s) have ACS-Extension-node-1853370294850618 v3',
  observedGeneration: 2,
  lastTransitionTime: T0s,
};
const stalledPrev: Condition[] = [
  {
    type: 'Ready',
    status: 'False',
    reason: 'ParameterNotDeclared',
    message: 'parameter(s) foo not declared',
    observedGeneration: 2,
    lastTransitionTime: T0s,
  },
  {
    type: 'Stalled',
    status: 'True',
    reason: 'ParameterNotDeclared',
    message: 'parameter(s) foo not declared',
    observedGeneration: 2,
    lastTransitionTime: T0s,
  },
];
const reconcilingPrev: Condition[] = [
  { ...readyTrue, status: 'False', reason: 'InstallInProgress', message: 'installing' },
  {
    type: 'Reconciling',
    status: 'True',
    reason: 'InstallInProgress',
    message: 'installing',
    observedGeneration: 2,
    lastTransitionTime: T0s,
  },
];

describe('setEcsExtensionConditions', () => {
  interface Case {
    name: string;
    prev?: Condition[];
    f: ConditionFacts;
    /** Expected `type=status/reason` list, Ready first. */
    want: string[];
    /** Substrings the Ready message must contain. */
    readyMessage?: string[];
    check?: (conds: Condition[]) => void;
  }
  const cases: Case[] = [
    {
      name: 'first visit, all installed → Ready computed (True Installed)',
      f: facts({}),
      want: ['Ready=True/Installed'],
      readyMessage: ['2/2 reachable instance(s) have ACS-Extension-node-1853370294850618 v3'],
    },
    {
      name: 'first visit with a transient error → Ready Unknown Progressing, Reconciling with the error',
      f: facts({
        summary: undefined,
        retrying: { reason: 'Throttled', message: 'OOS ListExecutions: Throttling.User' },
      }),
      want: ['Ready=Unknown/Progressing', 'Reconciling=True/Throttled'],
      readyMessage: ['reconciliation in progress'],
      check: (c) =>
        expect(getCondition(c, 'Reconciling')?.message).toBe('OOS ListExecutions: Throttling.User'),
    },
    {
      name: 'stalled → Stalled=True and Ready=False with the same reason, Reconciling removed',
      prev: reconcilingPrev,
      f: facts({ stalled: { reason: 'TemplateNotFound', message: 'template ACS-Extension-x not found' } }),
      want: ['Ready=False/TemplateNotFound', 'Stalled=True/TemplateNotFound'],
      readyMessage: ['template ACS-Extension-x not found'],
      check: (c) => expect(getCondition(c, 'Stalled')?.message).toBe('template ACS-Extension-x not found'),
    },
    {
      name: 'transient retry → Reconciling=True with the error reason, Ready untouched',
      prev: [readyTrue],
      f: facts({ retrying: { reason: 'CloudUnavailable', message: 'OOS 503' } }),
      want: ['Ready=True/Installed', 'Reconciling=True/CloudUnavailable'],
      check: (c) => expect(getCondition(c, 'Ready')).toEqual(readyTrue),
    },
    {
      name: 'deleting → Ready=False UninstallInProgress, Reconciling=True',
      prev: [readyTrue],
      f: facts({ deleting: true, summary: summary({ installed: 1, inProgress: 4 }) }),
      want: ['Ready=False/UninstallInProgress', 'Reconciling=True/UninstallInProgress'],
      readyMessage: ['uninstalling ACS-Extension-node-1853370294850618', '4 instance(s) in progress'],
    },
    {
      name: 'no targets → Ready=True NoTargets',
      prev: reconcilingPrev,
      f: facts({ summary: summary({}) }),
      want: ['Ready=True/NoTargets'],
      readyMessage: ['no instance matches spec.targets'],
    },
    {
      name: 'no summary at all counts as no targets',
      f: facts({ summary: undefined }),
      want: ['Ready=True/NoTargets'],
    },
    {
      name: 'in progress → Ready=False InstallInProgress, Reconciling=True',
      f: facts({ summary: summary({ installed: 1, inProgress: 2, unreachable: 1 }) }),
      want: ['Ready=False/InstallInProgress', 'Reconciling=True/InstallInProgress'],
      readyMessage: ['1/3 reachable instance(s)', '2 in progress', '1 unreachable'],
    },
    {
      name: 'failed → Ready=False InstallFailed naming the first 3 IDs and (and N more)',
      prev: reconcilingPrev,
      f: facts({
        summary: summary({ installed: 1, failed: 5 }),
        failed: ['i-f1', 'i-f2', 'i-f3', 'i-f4', 'i-f5'].map((id) => ({ instanceId: id, message: 'exit 1' })),
      }),
      want: ['Ready=False/InstallFailed'],
      readyMessage: ['5 instance(s) failed', 'i-f1: exit 1', 'i-f2: exit 1', 'i-f3: exit 1', '(and 2 more)'],
      check: (c) => {
        const msg = getCondition(c, 'Ready')?.message ?? '';
        expect(msg).not.toContain('i-f4');
        expect(msg).not.toContain('i-f5');
      },
    },
    {
      name: 'failed with a retry scheduled names the retry time',
      f: facts({
        summary: summary({ failed: 1 }),
        failed: [{ instanceId: 'i-f1', message: 'exit 1' }],
        nextRetryTime: '2026-03-01T10:30:00Z',
      }),
      want: ['Ready=False/InstallFailed'],
      readyMessage: ['retrying after 2026-03-01T10:30:00Z'],
      check: (c) => expect(getCondition(c, 'Ready')?.message).not.toContain('(and'),
    },
    {
      name: 'pending in Observe → DriftDetected, not Reconciling',
      prev: reconcilingPrev,
      f: facts({ observe: true, summary: summary({ installed: 1, pending: 2 }) }),
      want: ['Ready=False/DriftDetected'],
      readyMessage: ['2 instance(s) missing or outdated', 'Observe'],
    },
    {
      name: 'pending while suspended → Suspended',
      prev: reconcilingPrev,
      f: facts({ suspended: true, summary: summary({ pending: 2 }) }),
      want: ['Ready=False/Suspended'],
      readyMessage: ['suspended'],
    },
    {
      name: 'pending in retry backoff → RetryBackoff',
      f: facts({ summary: summary({ pending: 2 }), nextRetryTime: '2026-03-01T10:30:00Z' }),
      want: ['Ready=False/RetryBackoff'],
      readyMessage: ['retrying after 2026-03-01T10:30:00Z'],
    },
    {
      name: 'pending, about to act → Ready=False Pending, Reconciling=True',
      f: facts({ summary: summary({ installed: 1, pending: 2 }) }),
      want: ['Ready=False/Pending', 'Reconciling=True/Pending'],
    },
    {
      name: 'all installed (some unreachable) → Ready=True Installed, Reconciling removed',
      prev: reconcilingPrev,
      f: facts({ summary: summary({ installed: 2, unreachable: 1 }) }),
      want: ['Ready=True/Installed'],
      readyMessage: ['2/2 reachable', '1 unreachable'],
    },
    {
      // Not vacuously Ready: nothing could be verified, which an admin must see.
      name: 'every target unreachable → Ready=False AllTargetsUnreachable',
      f: facts({ summary: summary({ unreachable: 3 }) }),
      want: ['Ready=False/AllTargetsUnreachable'],
      readyMessage: ['all 3 targeted instance(s) are unreachable'],
    },
    {
      name: 'Stalled cleared once facts are healthy',
      prev: stalledPrev,
      f: facts({}),
      want: ['Ready=True/Installed'],
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const conds = setEcsExtensionConditions(c.prev, c.f, T1);
      expect(shape(conds)).toEqual(c.want);
      // Every condition written by this call carries the generation; a Ready left untouched by a
      // transient retry keeps the one it was written with.
      const untouched = c.f.retrying && c.prev ? 'Ready' : undefined;
      for (const cond of conds.filter((x) => x.type !== untouched)) expect(cond.observedGeneration).toBe(3);
      const ready = getCondition(conds, 'Ready');
      for (const part of c.readyMessage ?? []) expect(ready?.message).toContain(part);
      c.check?.(conds);
    });
  }

  it('always returns a Ready condition', () => {
    for (const c of cases) {
      expect(getCondition(setEcsExtensionConditions(c.prev, c.f, T1), 'Ready')).toBeDefined();
    }
  });

  it('does not mutate the previous conditions', () => {
    const prev = structuredClone(reconcilingPrev);
    setEcsExtensionConditions(prev, facts({ summary: summary({ failed: 1 }) }), T1);
    expect(prev).toEqual(reconcilingPrev);
  });

  it('stalled twice with the same facts keeps lastTransitionTime', () => {
    const f = facts({ stalled: { reason: 'TemplateNotFound', message: 'gone' } });
    const first = setEcsExtensionConditions(undefined, f, T0);
    const second = setEcsExtensionConditions(first, f, T1);
    expect(second).toEqual(first);
    expect(getCondition(second, 'Stalled')?.lastTransitionTime).toBe(toMetaTime(T0));
  });

  describe('idempotence: the same facts twice give deep-equal conditions', () => {
    for (const c of cases) {
      it(c.name, () => {
        const first = setEcsExtensionConditions(c.prev, c.f, T0);
        const second = setEcsExtensionConditions(first, c.f, T1);
        expect(second).toEqual(first);
      });
    }
  });

  it('moves Ready lastTransitionTime when the reason changes', () => {
    const first = setEcsExtensionConditions(undefined, facts({ summary: summary({ pending: 1 }) }), T0);
    const second = setEcsExtensionConditions(first, facts({}), T1);
    expect(getCondition(first, 'Ready')?.lastTransitionTime).toBe(T0s);
    expect(getCondition(second, 'Ready')?.lastTransitionTime).toBe(T1s);
  });
});
