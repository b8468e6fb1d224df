/**
 * Metric-gated PatchPolicy installs (issue 22) on the fast tier (fake clock shared with the
 * emulator): with spec.analysis, a window's install executions (≤ 50 instances each) run one at a
 * time, and the analysis gate between them — the controller's real Prometheus client querying a
 * tiny Prometheus HTTP API on 127.0.0.1 (test/harness/fake-prometheus.ts) — decides whether the
 * next one starts. 60 non-compliant instances per policy: two executions (50 + 10).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnalysisSpec } from '../../src/api/analysis.js';
import type { PatchPolicySpec } from '../../src/api/patchpolicy.js';
import { FakePrometheus, matchedInstanceIds } from '../harness/fake-prometheus.js';
import { cond, patchSeed, REGION, startPatchStack, type PatchStack } from '../harness/fast-patchpolicy.js';

let s: PatchStack;
/** The error ratio the fake Prometheus answers, per policy fleet (instance ID prefix). */
const ratio = new Map<string, number>();
let prom: FakePrometheus;

const gate = (): AnalysisSpec => ({
  prometheus: { url: prom.url, timeoutSeconds: 2 },
  metrics: [
    {
      name: 'error-rate',
      query: 'sum(node_error_ratio{instance_id=~"{{instanceIdsRegex}}"}) or vector(0)',
      interval: '10s',
      count: 1,
      successCondition: 'result < 0.05',
    },
  ],
});

/**
 * Policy `name` over fleet `fleet` with the gate; its scans run, and the clock moves into the
 * window of week `week` (0: the one opening 2026-06-05T17:00Z).
 */
async function gatedWindow(name: string, fleet: string, week = 0): Promise<string> {
  const at = (iso: string) => new Date(Date.parse(iso) + week * 7 * 86_400_000);
  const spec: Partial<PatchPolicySpec> = {
    targets: { tags: [{ key: 'fleet', value: fleet }] },
    interval: '1h',
    scan: { schedule: '30 0 * * *', timeZone: 'Asia/Shanghai' },
    install: {
      maintenanceWindow: { schedule: '0 1 * * SAT', duration: '4h', timeZone: 'Asia/Shanghai' },
      rebootIfNeeded: true,
      parallelBatches: 2, // not used with spec.analysis: one execution at a time
    },
    analysis: gate(),
  };
  const created = s.apply(name, spec);
  await s.reconcile(name);
  s.advanceTo(at('2026-06-01T16:30:00.500Z')); // Monday's scan
  await s.reconcile(name);
  await s.settle(name);
  s.advanceTo(at('2026-06-05T16:59:00Z')); // Friday's scan, before the window opens
  await s.reconcile(name);
  await s.settle(name);
  s.advanceTo(at('2026-06-05T17:01:00Z')); // inside the window (01:00-05:00 Asia/Shanghai)
  await s.reconcile(name);
  return created.metadata.uid ?? '';
}

async function analysisRuns(result: string): Promise<number> {
  const m = await s.registry.getSingleMetric('ecsops_analysis_runs_total')?.get();
  return m?.values.find((v) => v.labels.kind === 'PatchPolicy' && v.labels.result === result)?.value ?? 0;
}

beforeAll(async () => {
  s = await startPatchStack({
    seed: {
      regions: {
        [REGION]: {
          generate: [
            ...(patchSeed('pg', 0, 60).regions?.[REGION]?.generate as object[]),
            ...(patchSeed('ph', 0, 60).regions?.[REGION]?.generate as object[]),
          ] as never,
        },
      },
    },
  });
  prom = new FakePrometheus((q) => ratio.get(matchedInstanceIds(q)[0]?.slice(2, 4) ?? '') ?? 0);
  await prom.up();
});
afterAll(async () => {
  await prom?.down();
  await s?.stop();
});

describe('PatchPolicy installs with spec.analysis', () => {
  it('the metric turns bad after the first execution: no second execution starts in the window', async () => {
    const failedBefore = await analysisRuns('Failed');
    const uid = await gatedWindow('gated-bad', 'pg');
    let installs = await s.executions(uid, 'install');
    expect(installs.map((e) => e.items.length)).toEqual([50]); // one at a time
    ratio.set('pg', 0.4); // what Prometheus sees once the first 50 are patched
    await s.settle('gated-bad');
    // The rest of the window: reconciles every 10 minutes until it closes.
    for (let i = 0; i < 30; i++) {
      s.advanceTo(new Date(s.clock.now().getTime() + 10 * 60_000));
      await s.reconcile('gated-bad');
    }
    installs = await s.executions(uid, 'install');
    expect(installs).toHaveLength(1);
    const obj = s.get('gated-bad');
    const opensAt = '2026-06-05T17:00:00Z';
    expect(obj?.status?.analysis).toMatchObject({
      runId: `${opensAt}/execution-1`,
      phase: 'Failed',
      failure: { metric: 'error-rate', value: '0.4' },
    });
    expect(obj?.status?.lastInstall).toMatchObject({ result: 'Failed', executionCount: 1 });
    expect(obj?.status?.lastInstall?.message).toContain('stopped by its analysis');
    expect(obj?.status?.lastInstall?.message).toContain('successCondition result < 0.05');
    const ready = cond(obj, 'Ready');
    expect(ready).toMatchObject({ status: 'False', reason: 'AnalysisFailed' });
    expect(ready?.message).toContain(installs[0]?.items[0]?.instanceId ?? '?'); // the rendered query
    expect(ready?.message).toContain(' = 0.4;');
    const warnings = s.events.events.filter((e) => e.name === 'gated-bad' && e.reason === 'AnalysisFailed');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.type).toBe('Warning');
    expect(await analysisRuns('Failed')).toBe(failedBefore + 1);
  });

  it('a good metric: the second execution starts only after the first ended and the gate passed', async () => {
    ratio.set('ph', 0.01);
    const uid = await gatedWindow('gated-good', 'ph', 1);
    expect((await s.executions(uid, 'install')).map((e) => e.items.length)).toEqual([50]);
    await s.until('gated-good', (o) => o?.status?.lastInstall?.result === 'Succeeded', { maxStepMs: 60_000 });
    const installs = await s.executions(uid, 'install');
    expect(installs.map((e) => e.items.length)).toEqual([50, 10]);
    expect(Date.parse(installs[1]?.createDate ?? '')).toBeGreaterThanOrEqual(
      Date.parse(installs[0]?.endDate ?? ''),
    );
    const obj = s.get('gated-good');
    expect(obj?.status?.analysis).toMatchObject({
      runId: '2026-06-12T17:00:00Z/execution-1',
      phase: 'Successful',
    });
    // The gate measured the first execution's instances.
    const first = installs[0]?.items.map((i) => i.instanceId).sort() ?? [];
    expect(prom.queries.some((q) => matchedInstanceIds(q).join(',') === first.join(','))).toBe(true);
    expect(
      s.events.events.filter((e) => e.name === 'gated-good' && e.reason === 'AnalysisSucceeded'),
    ).toHaveLength(1);
  });
});
