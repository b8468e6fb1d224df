/**
 * The fault matrix, AppRelease (issue: "Prove it under any fault"): generated schedules (fast-check,
 * seeded, shrunk) of one fault per acting RunCommand of canary → pause → promote → batches → health
 * failure → rollback; invariants checked against the emulator's invocation records
 * (test/harness/faults-apprelease.ts). Two tiers: 120 instances on scripted invocations (the
 * emulator models the wrapper and each host's revision), and a sandbox subset of 12 instances
 * whose wrapper really runs with bash (the hosts' files are checked).
 * `ECSOPS_FAULTS_PROFILE=full`: 500 scripted + 30 sandbox schedules; default (CI): 12 + 2.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  APP_ACTIONS,
  runAppSandboxSchedule,
  runAppScriptedSchedule,
  type AppSchedule,
} from '../harness/faults-apprelease.js';
import { DrawTable, faultsProfile } from '../harness/fast-faults.js';
import { drawArb } from '../harness/faults-scenarios.js';

const profile = faultsProfile();
const full = profile.name === 'full';
const SCRIPTED_RUNS = full ? 500 : 12;
const SANDBOX_RUNS = full ? 30 : 2;
const table = new DrawTable();
const walls: string[] = [];

const scheduleArb: fc.Arbitrary<AppSchedule> = fc.record({
  'RunCommand:canary': drawArb,
  'RunCommand:batch': drawArb,
  'RunCommand:rollback': drawArb,
});

afterAll(() => {
  console.log(
    `\n[faults] AppRelease profile=${profile.name} seed=${profile.seed} ${walls.join(' ')}\n${table.markdown()}\n`,
  );
});

describe('fault matrix: AppRelease canary → pause → promote → batches → health failure → rollback', () => {
  it(`${SCRIPTED_RUNS} generated schedules over 120 scripted instances hold every invariant`, async () => {
    const t = Date.now();
    await fc.assert(
      fc.asyncProperty(scheduleArb, async (sched) => {
        const v = await runAppScriptedSchedule(sched, { table });
        if (v.length > 0) throw new Error(`${JSON.stringify(sched)}\n${JSON.stringify(v, null, 1)}`);
      }),
      { numRuns: SCRIPTED_RUNS, seed: profile.seed },
    );
    walls.push(`scripted=${SCRIPTED_RUNS} in ${((Date.now() - t) / 1000).toFixed(1)}s`);
    if (full) expect(table.minHit('AppRelease(scripted)', APP_ACTIONS)).toBeGreaterThanOrEqual(5);
  }, 3_600_000);

  it(`${SANDBOX_RUNS} generated schedules over 12 sandboxed instances (the real wrapper) hold every invariant`, async () => {
    const t = Date.now();
    await fc.assert(
      fc.asyncProperty(scheduleArb, async (sched) => {
        const v = await runAppSandboxSchedule(sched, { table });
        if (v.length > 0) throw new Error(`${JSON.stringify(sched)}\n${JSON.stringify(v, null, 1)}`);
      }),
      { numRuns: SANDBOX_RUNS, seed: profile.seed },
    );
    walls.push(`sandbox=${SANDBOX_RUNS} in ${((Date.now() - t) / 1000).toFixed(1)}s`);
  }, 3_600_000);
});
