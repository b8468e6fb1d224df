/**
 * The controllers' side of the analysis gate (src/controllers/shared/analysis-run.ts `runGate`):
 * the query function (Secret reads) is built only when a measurement is due, and what building it
 * throws stays a StalledError (not an inconclusive measurement); the run's result in
 * `ecsops_analysis_runs_total` comes from the engine's verdict (Inconclusive: inconclusiveLimit),
 * and the failure message and wake time are computed once for both kinds.
 */
import { describe, expect, it } from 'vitest';
import type { AnalysisMetric, AnalysisSpec, AnalysisStatus } from '../../../src/api/analysis.js';
import { SecretNotFoundReason } from '../../../src/api/conditions.js';
import type { QueryFn } from '../../../src/controllers/shared/analysis/gate.js';
import {
  gateDone,
  runGate,
  type AnalysisRuntime,
  type GateRequest,
} from '../../../src/controllers/shared/analysis-run.js';
import type { Resource } from '../../../src/controllers/shared/deps.js';
import { secretNotFound } from '../../../src/controllers/shared/secrets.js';
import { StalledError } from '../../../src/runtime/errors.js';

const T0 = Date.parse('2026-12-07T10:00:00Z');
const obj: Resource = {
  apiVersion: 'ecsops.io/v1alpha1',
  kind: 'AppRelease',
  metadata: { name: 'shop', namespace: 'team-a' },
  spec: {},
};

function spec(over: Partial<AnalysisMetric> = {}, bakeTime?: string): AnalysisSpec {
  return {
    prometheus: { url: 'http://127.0.0.1:9090', bearerTokenSecretRef: { name: 'prom', key: 'token' } },
    ...(bakeTime ? { bakeTime } : {}),
    metrics: [
      {
        name: 'error-rate',
        query: 'vector(0)',
        interval: '10s',
        count: 1,
        successCondition: 'result < 0.05',
        ...over,
      },
    ],
  };
}

/** A runtime whose query function answers `answer` (an Error: Prometheus failed); counts builds and results. */
function runtime(answer: number | Error, build?: () => Promise<QueryFn>) {
  const rec = { builds: 0, results: [] as string[] };
  const fn: QueryFn = () =>
    answer instanceof Error
      ? Promise.reject(answer)
      : Promise.resolve({ resultType: 'scalar', values: [answer] });
  const rt: AnalysisRuntime = {
    queryFn: () => {
      rec.builds += 1;
      return build ? build() : Promise.resolve(fn);
    },
    metrics: { analysisFinished: (_kind, result) => void rec.results.push(result) },
  };
  return { rt, rec };
}

const request = (s: AnalysisSpec, prev: AnalysisStatus | undefined, atMs: number): GateRequest => ({
  kind: 'AppRelease',
  obj,
  spec: s,
  prev,
  runId: 'rev1/1/batch-0',
  now: new Date(atMs),
  context: { instanceIds: ['i-a1'], ips: ['10.0.0.1'], zones: ['cn-hangzhou-h'], batch: 0 },
});

describe('runGate', () => {
  it('builds the query function (Secret reads) only when a measurement is due, not while baking', async () => {
    const s = spec({}, '1m');
    const { rt, rec } = runtime(0.01);
    const baking = await runGate(rt, request(s, undefined, T0));
    expect(baking).toMatchObject({ verdict: 'Pending', ended: false, wakeAtMs: T0 + 60_000 });
    const still = await runGate(rt, request(s, baking.status, T0 + 30_000));
    expect(still.verdict).toBe('Pending');
    expect(rec.builds).toBe(0);
    const done = await runGate(rt, request(s, still.status, T0 + 60_000));
    expect(done).toMatchObject({ verdict: 'Successful', ended: true });
    expect(rec.builds).toBe(1);
    expect(rec.results).toEqual(['Successful']);
    // A finished run is returned as is: nothing built, nothing counted again.
    expect(await runGate(rt, request(s, done.status, T0 + 90_000))).toMatchObject({ ended: false });
    expect(rec.builds).toBe(1);
    expect(gateDone(done.status, 'rev1/1/batch-0')).toBe('Successful');
    expect(gateDone(still.status, 'rev1/1/batch-0')).toBeUndefined();
    expect(gateDone(done.status, 'rev1/1/batch-1')).toBeUndefined();
  });

  it('a Secret error while building the query function is Stalled, not an inconclusive measurement', async () => {
    const { rt } = runtime(0.01, () => Promise.reject(secretNotFound('team-a', 'prom')));
    const err = await runGate(rt, request(spec(), undefined, T0)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StalledError);
    expect((err as StalledError).reason).toBe(SecretNotFoundReason);
  });

  it('counts a run failed by inconclusiveLimit as Inconclusive, a failed condition as Failed, with the message', async () => {
    const down = runtime(new Error('connect ECONNREFUSED 127.0.0.1:9090'));
    const inconclusive = await runGate(down.rt, request(spec({ inconclusiveLimit: 0 }), undefined, T0));
    expect(inconclusive).toMatchObject({ verdict: 'Failed', ended: true });
    expect(inconclusive.message).toContain('inconclusiveLimit 0 exceeded');
    expect(down.rec.results).toEqual(['Inconclusive']);

    const bad = runtime(0.4);
    const failed = await runGate(bad.rt, request(spec(), undefined, T0));
    expect(failed.message).toBe(
      'analysis metric error-rate failed: vector(0) = 0.4; successCondition result < 0.05 not met (1 failed measurement(s), failureLimit 0)',
    );
    expect(bad.rec.results).toEqual(['Failed']);
  });

  it('while pending: wakes at the next measurement, at least 1 s away', async () => {
    const { rt } = runtime(0.01);
    const first = await runGate(rt, request(spec({ count: 2 }), undefined, T0));
    expect(first).toMatchObject({ verdict: 'Pending', wakeAtMs: T0 + 10_000 });
    expect(first.message).toContain('error-rate 1 measured');
  });
});
