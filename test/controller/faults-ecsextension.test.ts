/**
 * The fault matrix, EcsExtension (issue: "Prove it under any fault"): generated schedules (fast-check,
 * seeded, shrunk) of one fault per acting call of install → update → uninstall over 120 instances,
 * invariants checked against the emulator's records after each (test/harness/faults-scenarios.ts).
 * `ECSOPS_FAULTS_PROFILE=full` runs 500 schedules; the default (CI) profile 40.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { DrawTable, faultsProfile } from '../harness/fast-faults.js';
import { EXT_ACTIONS, extScheduleArb, runExtSchedule } from '../harness/faults-scenarios.js';

const profile = faultsProfile();
const RUNS = profile.name === 'full' ? 500 : 40;
const table = new DrawTable();
const started = Date.now();

afterAll(() => {
  console.log(
    `\n[faults] EcsExtension profile=${profile.name} seed=${profile.seed} schedules=${RUNS} wall=${((Date.now() - started) / 1000).toFixed(1)}s\n${table.markdown()}\n`,
  );
});

describe('fault matrix: EcsExtension install + update + uninstall', () => {
  it(`${RUNS} generated schedules hold every invariant`, async () => {
    await fc.assert(
      fc.asyncProperty(extScheduleArb, async (sched) => {
        const v = await runExtSchedule(sched, { table });
        if (v.length > 0) throw new Error(`${JSON.stringify(sched)}\n${JSON.stringify(v, null, 1)}`);
      }),
      { numRuns: RUNS, seed: profile.seed },
    );
    if (profile.name === 'full') expect(table.minHit('EcsExtension', EXT_ACTIONS)).toBeGreaterThanOrEqual(5);
  }, 3_600_000);
});
