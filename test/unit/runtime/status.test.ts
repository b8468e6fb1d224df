import { describe, expect, it } from 'vitest';
import { generationChangedPredicate } from '../../../src/runtime/manager.js';
import { jsonEqual, statusMergePatch } from '../../../src/runtime/status.js';

describe('jsonEqual', () => {
  it.each([
    ['key order', { a: 1, b: { c: [1, 2], d: 'x' } }, { b: { d: 'x', c: [1, 2] }, a: 1 }, true],
    ['undefined keys count as absent', { a: 1, b: undefined }, { a: 1 }, true],
    ['array order matters', { a: [1, 2] }, { a: [2, 1] }, false],
    ['nested difference', { a: { b: 1 } }, { a: { b: 2 } }, false],
    ['undefined vs empty object', undefined, {}, false],
  ])('%s', (_name, a, b, want) => {
    expect(jsonEqual(a, b)).toBe(want);
  });
});

describe('statusMergePatch', () => {
  it.each([
    ['no previous status', undefined, { a: 1 }, { a: 1 }],
    ['changed scalar', { a: 1, b: 2 }, { a: 1, b: 3 }, { b: 3 }],
    ['removed key becomes null', { a: 1, b: 2 }, { a: 1 }, { b: null }],
    ['undefined key becomes null', { a: 1, b: 2 }, { a: 1, b: undefined }, { b: null }],
    [
      'nested objects diff recursively',
      { s: { x: 1, y: 2 } },
      { s: { x: 1, z: 3 } },
      { s: { y: null, z: 3 } },
    ],
    [
      'arrays are sent whole',
      { c: [{ type: 'Ready' }, { type: 'Stalled' }] },
      { c: [{ type: 'Ready' }] },
      { c: [{ type: 'Ready' }] },
    ],
    ['object replaced by scalar', { a: { b: 1 } }, { a: 'x' }, { a: 'x' }],
    ['nothing changed', { a: 1 }, { a: 1 }, {}],
  ])('%s', (_name, from, to, want) => {
    expect(statusMergePatch(from, to)).toEqual(want);
  });
});

describe('generationChangedPredicate', () => {
  const base = {
    metadata: { name: 'a', generation: 1, annotations: { 'x/requested-at': '1' }, finalizers: ['f'] },
  };
  const pred = generationChangedPredicate(['x/requested-at']);
  it.each([
    ['first sight', undefined, base, true],
    ['status-only change', base, { ...base, metadata: { ...base.metadata, resourceVersion: '9' } }, false],
    ['generation bump', base, { ...base, metadata: { ...base.metadata, generation: 2 } }, true],
    [
      'requested-at annotation',
      base,
      { ...base, metadata: { ...base.metadata, annotations: { 'x/requested-at': '2' } } },
      true,
    ],
    [
      'other annotation',
      base,
      { ...base, metadata: { ...base.metadata, annotations: { 'x/requested-at': '1', o: 'x' } } },
      false,
    ],
    ['finalizers changed', base, { ...base, metadata: { ...base.metadata, finalizers: [] } }, true],
    [
      'deletion started',
      base,
      { ...base, metadata: { ...base.metadata, deletionTimestamp: new Date(0) } },
      true,
    ],
  ])('%s', (_name, prev, next, want) => {
    expect(pred(prev, next)).toBe(want);
  });
});
