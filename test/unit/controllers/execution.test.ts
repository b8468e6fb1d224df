import { describe, expect, it } from 'vitest';
import {
  clientToken,
  oosRateControl,
  ownerTags,
  retryDelayMs,
} from '../../../src/controllers/shared/execution.js';
import { chunks as chunk } from '../../../src/util/chunks.js';

const base = {
  uid: '0b4f6c3e-5d1a-4a8e-9c1f-7e2d3b4a5c6d',
  generation: 4,
  sequence: 2,
  action: 'install',
  instanceIds: ['i-bp1aaa', 'i-bp1bbb', 'i-bp1ccc'],
};

describe('clientToken', () => {
  it('is deterministic', () => {
    expect(clientToken(base)).toBe(clientToken({ ...base, instanceIds: [...base.instanceIds] }));
  });

  it('is at most 64 printable ASCII characters (OOS / ECS ClientToken limit)', () => {
    const long = {
      ...base,
      uid: 'u'.repeat(500),
      instanceIds: Array.from({ length: 50 }, (_, i) => `i-${i}x`),
    };
    for (const token of [clientToken(base), clientToken(long)]) {
      expect(token.length).toBeLessThanOrEqual(64);
      expect(token).toMatch(/^[\x21-\x7e]+$/);
    }
    expect(clientToken(base)).toMatch(/^ecsops-[0-9a-f]{40}$/);
  });

  it('does not depend on the order of the batch', () => {
    expect(clientToken({ ...base, instanceIds: ['i-bp1ccc', 'i-bp1aaa', 'i-bp1bbb'] })).toBe(
      clientToken(base),
    );
  });

  it('does not reorder the caller array', () => {
    const ids = ['i-z', 'i-a'];
    clientToken({ ...base, instanceIds: ids });
    expect(ids).toEqual(['i-z', 'i-a']);
  });

  const changes: Array<{ name: string; over: Partial<typeof base> }> = [
    { name: 'uid', over: { uid: '1b4f6c3e-5d1a-4a8e-9c1f-7e2d3b4a5c6d' } },
    { name: 'generation', over: { generation: 5 } },
    { name: 'sequence', over: { sequence: 3 } },
    { name: 'action', over: { action: 'uninstall' } },
    { name: 'batch (one more instance)', over: { instanceIds: [...base.instanceIds, 'i-bp1ddd'] } },
    { name: 'batch (one instance swapped)', over: { instanceIds: ['i-bp1aaa', 'i-bp1bbb', 'i-bp1eee'] } },
  ];
  for (const c of changes) {
    it(`changes with the ${c.name}`, () => {
      expect(clientToken({ ...base, ...c.over })).not.toBe(clientToken(base));
    });
  }
});

describe('chunk', () => {
  const cases: Array<{ n: number; size: number; want: number[] }> = [
    { n: 0, size: 50, want: [] },
    { n: 1, size: 50, want: [1] },
    { n: 50, size: 50, want: [50] },
    { n: 51, size: 50, want: [50, 1] },
    { n: 120, size: 50, want: [50, 50, 20] },
  ];
  for (const c of cases) {
    it(`${c.n} items in chunks of ${c.size} → [${c.want.join(', ')}]`, () => {
      const items = Array.from({ length: c.n }, (_, i) => i);
      const out = chunk(items, c.size);
      expect(out.map((x) => x.length)).toEqual(c.want);
      expect(out.flat()).toEqual(items);
    });
  }
});

describe('oosRateControl', () => {
  const cases: Array<{
    name: string;
    rc: Parameters<typeof oosRateControl>[0];
    want: Record<string, unknown>;
  }> = [
    {
      name: 'unset → defaults 10 / 0',
      rc: undefined,
      want: { Mode: 'Concurrency', Concurrency: 10, MaxErrors: 0 },
    },
    { name: 'empty → defaults 10 / 0', rc: {}, want: { Mode: 'Concurrency', Concurrency: 10, MaxErrors: 0 } },
    {
      name: 'integers pass through',
      rc: { concurrency: 3, maxErrors: 1 },
      want: { Mode: 'Concurrency', Concurrency: 3, MaxErrors: 1 },
    },
    {
      name: 'percent strings pass through',
      rc: { concurrency: '25%', maxErrors: '10%' },
      want: { Mode: 'Concurrency', Concurrency: '25%', MaxErrors: '10%' },
    },
    {
      name: 'maxErrors 0 is kept (not replaced by a default)',
      rc: { concurrency: 1, maxErrors: 0 },
      want: { Mode: 'Concurrency', Concurrency: 1, MaxErrors: 0 },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(oosRateControl(c.rc)).toEqual(c.want);
    });
  }
});

describe('retryDelayMs', () => {
  const cases: Array<{ failures: number; want: number }> = [
    { failures: 0, want: 30_000 },
    { failures: 1, want: 30_000 },
    { failures: 2, want: 60_000 },
    { failures: 3, want: 120_000 },
    { failures: 6, want: 960_000 },
    { failures: 7, want: 1_800_000 },
    { failures: 100, want: 1_800_000 },
  ];
  for (const c of cases) {
    it(`${c.failures} failure(s) → ${c.want} ms (base 30 s, cap 30 min)`, () => {
      expect(retryDelayMs(c.failures, 30_000, 1_800_000)).toBe(c.want);
    });
  }
});

describe('ownerTags', () => {
  it('names the owner by UID, kind and namespace.name', () => {
    expect(ownerTags('EcsExtension', 'fleet', 'node-agent', 'uid-1')).toEqual({
      'ecsops.io/owner-uid': 'uid-1',
      'ecsops.io/owner-kind': 'EcsExtension',
      'ecsops.io/owner': 'fleet.node-agent',
    });
  });

  it('bounds the owner tag value to 128 characters (OOS tag value limit)', () => {
    const tags = ownerTags('EcsExtension', 'n'.repeat(63), 'x'.repeat(253), 'uid-1');
    expect(tags['ecsops.io/owner']).toHaveLength(128);
  });
});
