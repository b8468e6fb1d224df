/**
 * Instance holds across shards (ADR 0008): two controller processes with different
 * `--watch-label-selector`s reconcile disjoint resources, but each reads EVERY resource's holds, so
 * two resources of different shards over the same instances take turns. What remains is the race
 * of two acquisitions closer together than one status write and its watch event; this test
 * measures how often that happens when both resources are created at the same instant.
 */
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OWNER_UID_TAG } from '../../../src/api/common.js';
import type { EcsExtension } from '../../../src/api/ecsextension.js';
import type { ExecutionRecord } from '../../../src/emulator/engine.js';
import { fleetSeed } from '../../harness/fast.js';
import {
  createEcsExtension,
  emulatorEnv,
  instanceIds as ids,
  spawnController,
  startStack,
  testControllerArgs,
  waitFor,
  waitForReady,
  type Stack,
} from '../../harness/stack.js';

const OTHER_PACKAGE = 'ACS-Extension-other-1853370294850618';
const PAIRS_STAGGERED = 4;
const PAIRS_SIMULTANEOUS = 8;
const PER_PAIR = 3;

/** [start, end] in ms of the one execution a resource started (end = +∞ while it runs). */
async function window(stack: Stack, obj: EcsExtension): Promise<[number, number]> {
  const execs: ExecutionRecord[] = await stack.emu.control.listExecutions({
    tagKey: OWNER_UID_TAG,
    tagValue: obj.metadata.uid,
  });
  expect(execs).toHaveLength(1);
  const e = execs[0] as ExecutionRecord;
  return [Date.parse(e.startDate || e.createDate), e.endDate ? Date.parse(e.endDate) : Infinity];
}

const overlaps = (a: [number, number], b: [number, number]) => a[0] < b[1] && b[0] < a[1];

describe('instance holds are visible across shards', () => {
  let stack: Stack;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    const pairs = PAIRS_STAGGERED + PAIRS_SIMULTANEOUS;
    const seed = fleetSeed('holds', pairs * PER_PAIR);
    seed.packageTemplates = [
      ...(seed.packageTemplates ?? []),
      {
        ...(seed.packageTemplates?.[0] as NonNullable<typeof seed.packageTemplates>[number]),
        name: OTHER_PACKAGE,
      },
    ];
    // 0.1: an install takes ~2 s, long enough to create the second resource while the first runs.
    stack = await startStack({ seed, prefix: 'holds', controller: false, timeScale: 0.1 });
    const shard = (n: string) => [
      ...testControllerArgs(stack.namespace, stack.emu),
      '--leader-elect',
      'true',
      '--leader-election-id',
      `ecsops-${n}`,
      '--leader-election-namespace',
      stack.namespace,
      '--watch-label-selector',
      `sharding.ecsops.io/key in (${n})`,
    ];
    children.push(
      spawnController(shard('shard1'), { ...emulatorEnv(), POD_NAME: 'holds-1' }),
      spawnController(shard('shard2'), { ...emulatorEnv(), POD_NAME: 'holds-2' }),
    );
  });
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await stack?.stop();
  });

  /** Creates pair `i`: one EcsExtension per shard, different packages, the same instances. */
  async function pair(i: number, staggered: boolean): Promise<[EcsExtension, EcsExtension]> {
    const targets = { instanceIds: ids('holds', i * PER_PAIR + 1, (i + 1) * PER_PAIR) };
    const first = createEcsExtension(stack, `p${i}-a`, { targets }, { 'sharding.ecsops.io/key': 'shard1' });
    if (staggered) {
      const a = await first;
      // The second shard's resource arrives while the first one's execution runs.
      await waitFor(`p${i}-a started`, async () => {
        const execs = await stack.emu.control.listExecutions({
          tagKey: OWNER_UID_TAG,
          tagValue: a.metadata.uid,
        });
        return execs.length > 0 ? true : undefined;
      });
    }
    const second = createEcsExtension(
      stack,
      `p${i}-b`,
      { targets, packageName: OTHER_PACKAGE },
      { 'sharding.ecsops.io/key': 'shard2' },
    );
    return Promise.all([first, second]);
  }

  it('serialises resources of two shards over the same instances; counts same-instant races', async () => {
    const staggered = await Promise.all(Array.from({ length: PAIRS_STAGGERED }, (_, i) => pair(i, true)));
    const simultaneous = await Promise.all(
      Array.from({ length: PAIRS_SIMULTANEOUS }, (_, i) => pair(PAIRS_STAGGERED + i, false)),
    );
    for (const [a, b] of [...staggered, ...simultaneous]) {
      await waitForReady(stack, a.metadata.name as string, 'True', 120_000);
      await waitForReady(stack, b.metadata.name as string, 'True', 120_000);
    }
    // A shard that saw the other shard's hold waited for it: no two executions overlap.
    for (const [a, b] of staggered)
      expect(overlaps(await window(stack, a), await window(stack, b))).toBe(false);
    let races = 0;
    for (const [a, b] of simultaneous) if (overlaps(await window(stack, a), await window(stack, b))) races++;
    // The residual race (ADR 0008): both shards checked before either's intent write reached the
    // other's cache. Measured, not asserted: the figure goes to the ADR.
    console.log(`cross-shard same-instant acquisitions that overlapped: ${races}/${PAIRS_SIMULTANEOUS}`);
  });
});
