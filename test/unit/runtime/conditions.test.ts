import { describe, expect, it } from 'vitest';
import type { Condition } from '../../../src/runtime/conditions.js';
import {
  clearReconciling,
  clearStalled,
  getCondition,
  isFalse,
  isTrue,
  markNotReady,
  markReady,
  markReadyUnknown,
  markReconciling,
  markStalled,
  removeCondition,
  setCondition,
  toMetaTime,
} from '../../../src/runtime/conditions.js';

const T0 = new Date('2026-01-01T00:00:00.000Z');
const T1 = new Date('2026-01-01T00:05:00.750Z');

const ready: Condition = {
  type: 'Ready',
  status: 'False',
  reason: 'Progressing',
  message: 'installing',
  observedGeneration: 1,
  lastTransitionTime: toMetaTime(T0),
};

describe('setCondition lastTransitionTime', () => {
  const cases: Array<{ name: string; next: Omit<Condition, 'lastTransitionTime'>; moves: boolean }> = [
    { name: 'nothing changed', next: { ...ready }, moves: false },
    { name: 'only observedGeneration changed', next: { ...ready, observedGeneration: 2 }, moves: false },
    { name: 'status changed', next: { ...ready, status: 'True' }, moves: true },
    { name: 'reason changed', next: { ...ready, reason: 'ExecutionFailed' }, moves: true },
    { name: 'message changed', next: { ...ready, message: 'installing 3/10' }, moves: true },
  ];
  for (const c of cases) {
    it(`${c.moves ? 'moves' : 'keeps'} the time when ${c.name}`, () => {
      const out = setCondition([ready], c.next, T1);
      const got = getCondition(out, 'Ready');
      expect(got?.lastTransitionTime).toBe(c.moves ? '2026-01-01T00:05:00Z' : '2026-01-01T00:00:00Z');
      expect(got?.observedGeneration).toBe(c.next.observedGeneration);
      expect(got?.status).toBe(c.next.status);
    });
  }

  it('adds a missing condition with lastTransitionTime = now (second precision)', () => {
    const out = setCondition(
      [],
      { type: 'Ready', status: 'Unknown', reason: 'Initializing', message: '' },
      T1,
    );
    expect(out).toEqual([
      {
        type: 'Ready',
        status: 'Unknown',
        reason: 'Initializing',
        message: '',
        lastTransitionTime: '2026-01-01T00:05:00Z',
      },
    ]);
  });

  it('does not mutate its input', () => {
    const input = [ready];
    setCondition(input, { ...ready, status: 'True' }, T1);
    expect(input).toEqual([ready]);
  });
});

describe('condition order is stable (Ready first, then alphabetical)', () => {
  const cases: Array<{ name: string; build: () => Condition[] }> = [
    {
      name: 'Ready set last',
      build: () =>
        markReady(
          markReconciling(markStalled([], { reason: 'A' }, T0), { reason: 'B' }, T0),
          { reason: 'C' },
          T0,
        ),
    },
    {
      name: 'custom types interleaved',
      build: () =>
        setCondition(
          markReady(
            setCondition([], { type: 'Zeta', status: 'True', reason: 'Z', message: '' }, T0),
            { reason: 'C' },
            T0,
          ),
          { type: 'Alpha', status: 'True', reason: 'A', message: '' },
          T0,
        ),
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const types = c.build().map((x) => x.type);
      expect(types[0]).toBe('Ready');
      expect(types.slice(1)).toEqual([...types.slice(1)].sort());
    });
  }
});

describe('mark helpers', () => {
  const cases: Array<{
    name: string;
    run: (c: Condition[]) => Condition[];
    want: Record<string, string | undefined>;
  }> = [
    { name: 'markReady', run: (c) => markReady(c, { reason: 'Succeeded' }, T1), want: { Ready: 'True' } },
    { name: 'markNotReady', run: (c) => markNotReady(c, { reason: 'Failed' }, T1), want: { Ready: 'False' } },
    {
      name: 'markReadyUnknown',
      run: (c) => markReadyUnknown(c, { reason: 'Progressing' }, T1),
      want: { Ready: 'Unknown' },
    },
    {
      name: 'markReconciling removes Stalled',
      run: (c) => markReconciling(markStalled(c, { reason: 'Bad' }, T0), { reason: 'Progressing' }, T1),
      want: { Reconciling: 'True', Stalled: undefined },
    },
    {
      name: 'markStalled removes Reconciling',
      run: (c) =>
        markStalled(markReconciling(c, { reason: 'Progressing' }, T0), { reason: 'TemplateNotFound' }, T1),
      want: { Stalled: 'True', Reconciling: undefined },
    },
    {
      name: 'clearReconciling removes the condition',
      run: (c) => clearReconciling(markReconciling(c, { reason: 'Progressing' }, T0)),
      want: { Reconciling: undefined, Ready: 'False' },
    },
    {
      name: 'clearStalled removes the condition',
      run: (c) => clearStalled(markStalled(c, { reason: 'Bad' }, T0)),
      want: { Stalled: undefined, Ready: 'False' },
    },
    {
      name: 'removeCondition of an absent type is a no-op',
      run: (c) => removeCondition(c, 'Nope'),
      want: { Ready: 'False' },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const out = c.run([ready]);
      for (const [type, status] of Object.entries(c.want)) {
        expect(getCondition(out, type)?.status, type).toBe(status);
      }
    });
  }

  it('carries reason, message and observedGeneration', () => {
    const out = markNotReady(
      [],
      { reason: 'ExecutionFailed', message: 'exec-1 failed', observedGeneration: 4 },
      T1,
    );
    expect(out[0]).toMatchObject({
      reason: 'ExecutionFailed',
      message: 'exec-1 failed',
      observedGeneration: 4,
    });
  });

  it('isTrue / isFalse', () => {
    const out = markStalled([ready], { reason: 'Bad' }, T1);
    expect(isTrue(out, 'Stalled')).toBe(true);
    expect(isTrue(out, 'Ready')).toBe(false);
    expect(isFalse(out, 'Ready')).toBe(true);
    expect(isTrue(undefined, 'Ready')).toBe(false);
  });
});
