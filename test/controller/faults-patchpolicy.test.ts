/**
 * The fault matrix, PatchPolicy (issue: "Prove it under any fault"): generated schedules (fast-check,
 * seeded, shrunk) of one fault per acting call of scan → install (snapshots, reboots) → cancel at the window close over
 * 120 instances, with an EcsExtension contending for half of them through the one lock;
 * invariants checked against the emulator's records after each (test/harness/faults-scenarios.ts).
 * `ECSOPS_FAULTS_PROFILE=full` runs 500 schedules; the default (CI) profile 12.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { DrawTable, faultsProfile } from '../harness/fast-faults.js';
import { PATCH_ACTIONS, patchScheduleArb, runPatchSchedule } from '../harness/faults-scenarios.js';

const profile = faultsProfile();
const RUNS = profile.name === 'full' ? 500 : 12;
const table = new DrawTable();
const started = Date.now();

afterAll(() => {
  console.log(
    `\n[faults] PatchPolicy profile=${profile.name} seed=${profile.seed} schedules=${RUNS} wall=${((Date.now() - started) / 1000).toFixed(1)}s\n${table.markdown()}\n`,
  );
});

describe('fault matrix: PatchPolicy scan + install across a window close', () => {
  it(`${RUNS} generated schedules hold every invariant`, async () => {
    await fc.assert(
      fc.asyncProperty(patchScheduleArb, async (sched) => {
        const v = await runPatchSchedule(sched, { table });
        if (v.length > 0) throw new Error(`${JSON.stringify(sched)}\n${JSON.stringify(v, null, 1)}`);
      }),
      { numRuns: RUNS, seed: profile.seed },
    );
    if (profile.name === 'full') expect(table.minHit('PatchPolicy', PATCH_ACTIONS)).toBeGreaterThanOrEqual(5);
  }, 3_600_000);
});
