/**
 * Metric-gated PatchPolicy installs (issue 22) on the fast tier (fake clock shared with the
 * emulator): with spec.analysis, a window's install executions (≤ 50 instances each) run one at a
 * time, and the analysis gate between them — the controller's real Prometheus client querying a
 * tiny Prometheus HTTP API on 127.0.0.1 (test/harness/fake-prometheus.ts) — decides whether the
 * next one starts. 60 non-compliant instances per policy: two executions (50 + 10).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnalysisSpec } from '../../src/api/analysis.js';
import type { PatchPolicy, PatchPolicySpec } from '../../src/api/patchpolicy.js';
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
 * window of week `week` (0: the one opening 2026-06-05T17:00Z); `beforeOpen` runs just before the
 * reconcile that starts the first install execution.
 */
async function gatedWindow(name: string, fleet: string, week = 0, beforeOpen?: () => void): Promise<string> {
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
  s.advanceTo(at('2026-06-01T12:00:00Z')); // created on Monday, outside any window
  const created = s.apply(name, spec);
  await s.reconcile(name);
  s.advanceTo(at('2026-06-01T16:30:00.500Z')); // Monday's scan
  await s.reconcile(name);
  await s.settle(name);
  s.advanceTo(at('2026-06-05T16:59:00Z')); // Friday's scan, before the window opens
  await s.reconcile(name);
  await s.settle(name);
  s.advanceTo(at('2026-06-05T17:01:00Z')); // inside the window (01:00-05:00 Asia/Shanghai)
  beforeOpen?.();
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
            ...(patchSeed('pi', 0, 60).regions?.[REGION]?.generate as object[]),
            ...(patchSeed('pj', 0, 60).regions?.[REGION]?.generate as object[]),
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

  /**
   * The reconcile that starts the first execution writes its intent (status write 1), sends
   * StartExecution, and its status write after the send fails (a crash there); a new controller
   * process takes over. The status it finds must already say which execution ran last, or the gate
   * of execution 1 is skipped.
   * @returns the policy's UID.
   */
  async function crashAfterFirstStart(name: string, fleet: string, week: number): Promise<string> {
    const uid = await gatedWindow(name, fleet, week, () => {
      s.store.patchFaults.push(undefined, new Error('injected: the status write after the send failed'));
    });
    expect(s.store.patchFaults).toHaveLength(0); // both writes were attempted
    expect((await s.executions(uid, 'install')).map((e) => e.items.length)).toEqual([50]);
    // What the restarted controller reads: the intent only (no execution ID yet).
    expect(s.get(name)?.status?.executions?.map((e) => [e.action, e.executionId])).toEqual([['install', '']]);
    s.restart();
    return uid;
  }

  it('a restart right after the first StartExecution: a bad gate still stops the second execution', async () => {
    ratio.set('pi', 0.4);
    const uid = await crashAfterFirstStart('crash-bad', 'pi', 2);
    await s.settle('crash-bad');
    for (let i = 0; i < 30; i++) {
      s.advanceTo(new Date(s.clock.now().getTime() + 10 * 60_000));
      await s.reconcile('crash-bad');
    }
    const installs = await s.executions(uid, 'install');
    expect(installs).toHaveLength(1); // re-sent with its ClientToken: still one
    const obj = s.get('crash-bad');
    expect(obj?.status?.analysis).toMatchObject({
      runId: '2026-06-19T17:00:00Z/execution-1',
      phase: 'Failed',
      failure: { metric: 'error-rate', value: '0.4' },
    });
    expect(obj?.status?.lastInstall).toMatchObject({ result: 'Failed', executionCount: 1 });
    const first = installs[0]?.items.map((i) => i.instanceId).sort() ?? [];
    expect(obj?.status?.lastInstall?.lastExecutionInstanceIds).toEqual(first);
  });

  it('a restart right after the first StartExecution: the second execution waits for the gate of the first', async () => {
    ratio.set('pj', 0.01);
    const uid = await crashAfterFirstStart('crash-good', 'pj', 3);
    const first = (await s.executions(uid, 'install'))[0]?.items.map((i) => i.instanceId).sort() ?? [];
    const gatedFirst = () => prom.queries.some((q) => matchedInstanceIds(q).join(',') === first.join(','));
    // Stop at the reconcile that starts the second execution: the gate measured the first's
    // instances by then.
    const token = s.get('crash-good')?.status?.executions?.[0]?.clientToken;
    const second = (o: PatchPolicy | undefined) =>
      (o?.status?.executions ?? []).some((e) => e.action === 'install' && e.clientToken !== token);
    await s.until('crash-good', (o) => second(o) || o?.status?.lastInstall?.result === 'Succeeded', {
      maxStepMs: 60_000,
    });
    expect(second(s.get('crash-good'))).toBe(true);
    expect(gatedFirst()).toBe(true);
    expect(s.get('crash-good')?.status?.analysis).toMatchObject({
      runId: '2026-06-26T17:00:00Z/execution-1',
      phase: 'Successful',
    });
    await s.until('crash-good', (o) => o?.status?.lastInstall?.result === 'Succeeded', { maxStepMs: 60_000 });
    const installs = await s.executions(uid, 'install');
    expect(installs.map((e) => e.items.length)).toEqual([50, 10]);
    expect(s.get('crash-good')?.status?.lastInstall).toMatchObject({ executionCount: 2 });
  });
});
