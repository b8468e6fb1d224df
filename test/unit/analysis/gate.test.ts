/**
 * The analysis gate's state machine (src/controllers/shared/analysis/gate.ts), as tables driven
 * with an injected clock and a scripted query function: success, failure, inconclusive,
 * failureLimit, inconclusiveLimit, bake time, count/interval pacing, restart from a persisted
 * (JSON round-tripped) status, terminal statuses, spec edits mid-analysis, and sanitized errors.
 */
import { describe, expect, it } from 'vitest';
import type { AnalysisMetric, AnalysisSpec, AnalysisStatus } from '../../../src/api/analysis.js';
import {
  analysisSpecProblem,
  failureMessage,
  startAnalysis,
  stepAnalysis,
  type AnalysisContext,
  type AnalysisStep,
  type QueryFn,
} from '../../../src/controllers/shared/analysis/gate.js';
import type { QueryResult } from '../../../src/controllers/shared/analysis/prometheus.js';

const T0 = Date.parse('2026-12-07T10:00:00Z');
const S = 1000;
const ctx: AnalysisContext = {
  instanceIds: ['i-a1', 'i-a2'],
  ips: ['127.10.0.1', '127.10.0.2'],
  zones: ['cn-hangzhou-h'],
  batch: 1,
};

/** A reading: a number (scalar), a list (vector), or an Error (thrown). */
type Reading = number | number[] | Error;

/** A query function answering each metric from its script, in order; records every call. */
function scripted(scripts: Record<string, Reading[]>) {
  const calls: Array<{ metric: string; query: string }> = [];
  const fn: QueryFn = async (metric, query) => {
    calls.push({ metric: metric.name, query });
    const next = scripts[metric.name]?.shift();
    if (next === undefined) throw new Error(`script of ${metric.name} exhausted`);
    if (next instanceof Error) throw next;
    return (
      typeof next === 'number'
        ? { resultType: 'scalar', values: [next] }
        : { resultType: 'vector', values: next }
    ) satisfies QueryResult;
  };
  return { fn, calls };
}

function metric(over: Partial<AnalysisMetric> = {}): AnalysisMetric {
  return {
    name: 'error-rate',
    query: 'sum(rate(web_request_errors_total{instance_id=~"{{instanceIdsRegex}}"}[1m]))',
    interval: '10s',
    count: 3,
    successCondition: 'result < 0.05',
    ...over,
  };
}

function spec(metrics: AnalysisMetric[], bakeTime?: string): AnalysisSpec {
  return { prometheus: { url: 'http://127.0.0.1:9090' }, ...(bakeTime ? { bakeTime } : {}), metrics };
}

/**
 * Steps the analysis at each of `times` (seconds after T0), round-tripping the status through JSON
 * between steps (what the API server stores), and returns every step.
 */
async function run(
  s: AnalysisSpec,
  fn: QueryFn,
  times: number[],
  bake?: AnalysisStatus,
): Promise<AnalysisStep[]> {
  let status: AnalysisStatus = bake ?? startAnalysis(s, 'rev1/batch-1', T0);
  const steps: AnalysisStep[] = [];
  for (const t of times) {
    const step = await stepAnalysis(
      s,
      JSON.parse(JSON.stringify(status)) as AnalysisStatus,
      T0 + t * S,
      () => fn,
      ctx,
    );
    steps.push(step);
    status = step.status;
  }
  return steps;
}

describe('startAnalysis', () => {
  it('records the run, every metric due at once, and no bakeUntil without bakeTime', () => {
    const st = startAnalysis(spec([metric(), metric({ name: 'latency' })]), 'rev1/batch-0', T0);
    expect(st).toMatchObject({
      runId: 'rev1/batch-0',
      phase: 'Running',
      startedAt: '2026-12-07T10:00:00.000Z',
    });
    expect(st.bakeUntil).toBeUndefined();
    expect(st.metrics.map((m) => [m.name, m.measurements, m.nextAt])).toEqual([
      ['error-rate', 0, '2026-12-07T10:00:00.000Z'],
      ['latency', 0, '2026-12-07T10:00:00.000Z'],
    ]);
  });

  it('with bakeTime, sets bakeUntil and makes the first measurement due then', () => {
    const st = startAnalysis(spec([metric()], '1m30s'), 'r', T0);
    expect(st.bakeUntil).toBe('2026-12-07T10:01:30.000Z');
    expect(st.metrics[0]?.nextAt).toBe('2026-12-07T10:01:30.000Z');
  });
});

describe('stepAnalysis verdicts (table)', () => {
  const table: Array<{
    name: string;
    metric: Partial<AnalysisMetric>;
    readings: Reading[];
    times: number[];
    verdicts: string[];
    phases: string[];
  }> = [
    {
      name: 'success: count 3 good measurements, one per interval',
      metric: {},
      readings: [0.01, 0.02, 0.0],
      times: [0, 10, 20],
      verdicts: ['Pending', 'Pending', 'Successful'],
      phases: ['Running', 'Running', 'Successful'],
    },
    {
      name: 'failure: the second measurement is bad (failureLimit 0)',
      metric: {},
      readings: [0.01, 0.3],
      times: [0, 10],
      verdicts: ['Pending', 'Failed'],
      phases: ['Running', 'Failed'],
    },
    {
      name: 'failureLimit 1 tolerates one bad measurement',
      metric: { failureLimit: 1 },
      readings: [0.3, 0.01, 0.01],
      times: [0, 10, 20],
      verdicts: ['Pending', 'Pending', 'Successful'],
      phases: ['Running', 'Running', 'Successful'],
    },
    {
      name: 'failureLimit 1: the second bad measurement fails',
      metric: { failureLimit: 1 },
      readings: [0.3, 0.01, 0.4],
      times: [0, 10, 20],
      verdicts: ['Pending', 'Pending', 'Failed'],
      phases: ['Running', 'Running', 'Failed'],
    },
    {
      name: 'failureCondition only: met fails, not met succeeds',
      metric: { successCondition: undefined, failureCondition: 'result > 0.05', count: 2 },
      readings: [0.01, 0.5],
      times: [0, 10],
      verdicts: ['Pending', 'Failed'],
      phases: ['Running', 'Failed'],
    },
    {
      name: 'inconclusive (Prometheus down) never passes; past inconclusiveLimit 2 it fails',
      metric: { count: 1, inconclusiveLimit: 2 },
      readings: [new Error('connect ECONNREFUSED'), new Error('503'), new Error('timeout')],
      times: [0, 10, 20],
      verdicts: ['Pending', 'Pending', 'Failed'],
      phases: ['Inconclusive', 'Inconclusive', 'Failed'],
    },
    {
      name: 'inconclusive measurements do not count towards count',
      metric: { count: 2, inconclusiveLimit: 1 },
      readings: [0.01, new Error('503'), 0.02],
      times: [0, 10, 20],
      verdicts: ['Pending', 'Pending', 'Successful'],
      phases: ['Running', 'Inconclusive', 'Successful'],
    },
    {
      name: 'both conditions set and neither met: inconclusive (inconclusiveLimit 0 fails)',
      metric: { count: 1, successCondition: 'result < 0.05', failureCondition: 'result > 0.5' },
      readings: [0.2],
      times: [0],
      verdicts: ['Failed'],
      phases: ['Failed'],
    },
    {
      name: 'an empty vector is inconclusive',
      metric: { count: 1, inconclusiveLimit: 1 },
      readings: [[], 0.01],
      times: [0, 10],
      verdicts: ['Pending', 'Successful'],
      phases: ['Inconclusive', 'Successful'],
    },
    {
      name: 'a vector condition: result.all over several samples',
      metric: { count: 1, successCondition: 'result.all(r, r < 0.05)' },
      readings: [[0.01, 0.2]],
      times: [0],
      verdicts: ['Failed'],
      phases: ['Failed'],
    },
    {
      name: 'a condition that cannot be evaluated (number compared on a list) is inconclusive',
      metric: { count: 1, inconclusiveLimit: 1 },
      readings: [[0.01, 0.02], [0.01]],
      times: [0, 10],
      verdicts: ['Pending', 'Successful'],
      phases: ['Inconclusive', 'Successful'],
    },
  ];

  for (const row of table) {
    it(row.name, async () => {
      const m = metric(row.metric);
      const { fn } = scripted({ [m.name]: [...row.readings] });
      const steps = await run(spec([m]), fn, row.times);
      expect(steps.map((s) => s.verdict)).toEqual(row.verdicts);
      expect(steps.map((s) => s.status.phase)).toEqual(row.phases);
    });
  }
});

describe('stepAnalysis details', () => {
  it('a failure names the metric, the rendered query, the value and the condition', async () => {
    const m = metric({ count: 1 });
    const { fn } = scripted({ 'error-rate': [0.31234567] });
    const [step] = await run(spec([m]), fn, [0]);
    expect(step?.failure).toEqual({
      metric: 'error-rate',
      query: 'sum(rate(web_request_errors_total{instance_id=~"i-a1|i-a2"}[1m]))',
      value: '0.312346',
      condition: 'successCondition result < 0.05 not met (1 failed measurement(s), failureLimit 0)',
    });
    expect(step?.status.failure).toEqual(step?.failure);
    expect(failureMessage(step!.failure!)).toBe(
      'analysis metric error-rate failed: sum(rate(web_request_errors_total{instance_id=~"i-a1|i-a2"}[1m])) = 0.312346; successCondition result < 0.05 not met (1 failed measurement(s), failureLimit 0)',
    );
    expect(step?.status.finishedAt).toBe('2026-12-07T10:00:00.000Z');
  });

  it('an inconclusiveLimit failure carries the last error as the value', async () => {
    const m = metric({ count: 1 });
    const { fn } = scripted({
      'error-rate': [new Error('Prometheus http://p:9090/api/v1/query unreachable')],
    });
    const [step] = await run(spec([m]), fn, [0]);
    expect(step?.failure).toMatchObject({
      value: 'Prometheus http://p:9090/api/v1/query unreachable',
      condition: 'inconclusiveLimit 0 exceeded (1 inconclusive measurement(s))',
    });
  });

  it('paces measurements: none before the interval elapsed, requeueAfter says when', async () => {
    const { fn, calls } = scripted({ 'error-rate': [0.01, 0.01, 0.01] });
    const steps = await run(spec([metric()]), fn, [0, 4, 9.999, 10, 15, 20]);
    expect(calls).toHaveLength(3);
    expect(steps.map((s) => s.requeueAfterMs)).toEqual([10_000, 6_000, 1, 10_000, 5_000, undefined]);
    expect(steps.map((s) => s.status.metrics[0]?.measurements)).toEqual([1, 1, 1, 2, 2, 3]);
    expect(steps.at(-1)?.verdict).toBe('Successful');
    expect(steps.at(-1)?.status.metrics[0]?.nextAt).toBeUndefined();
  });

  it('bake time: no query before bakeUntil, then measures', async () => {
    const s = spec([metric({ count: 1 })], '2m');
    const { fn, calls } = scripted({ 'error-rate': [0.01] });
    const steps = await run(s, fn, [0, 60, 119, 120], startAnalysis(s, 'r', T0));
    expect(steps.map((x) => x.requeueAfterMs)).toEqual([120_000, 60_000, 1_000, undefined]);
    expect(steps.map((x) => x.verdict)).toEqual(['Pending', 'Pending', 'Pending', 'Successful']);
    expect(calls).toHaveLength(1);
    expect(steps[0]?.status.message).toBe('baking until 2026-12-07T10:02:00.000Z');
  });

  it('several metrics: each on its own interval; requeue at the soonest; success needs all', async () => {
    const fast = metric({ name: 'fast', interval: '5s', count: 2 });
    const slow = metric({ name: 'slow', interval: '30s', count: 2 });
    const { fn, calls } = scripted({ fast: [0.01, 0.01], slow: [0.01, 0.01] });
    const steps = await run(spec([fast, slow]), fn, [0, 5, 30]);
    expect(steps.map((s) => s.requeueAfterMs)).toEqual([5_000, 25_000, undefined]);
    expect(steps.map((s) => s.verdict)).toEqual(['Pending', 'Pending', 'Successful']);
    expect(calls.map((c) => c.metric)).toEqual(['fast', 'slow', 'fast', 'slow']);
  });

  it('one failing metric fails the analysis while another is still running', async () => {
    const ok = metric({ name: 'ok', count: 5 });
    const bad = metric({
      name: 'bad',
      count: 5,
      failureCondition: 'result > 1',
      successCondition: undefined,
    });
    const { fn } = scripted({ ok: [0.01], bad: [2] });
    const [step] = await run(spec([ok, bad]), fn, [0]);
    expect(step?.verdict).toBe('Failed');
    expect(step?.failure?.metric).toBe('bad');
  });

  it('restart from the persisted status gives the same steps as one uninterrupted run', async () => {
    const readings = [0.01, new Error('503'), 0.02, 0.3];
    const m = metric({ count: 3, inconclusiveLimit: 1, failureLimit: 0 });
    const times = [0, 10, 20, 30];
    const a = await run(spec([m]), scripted({ [m.name]: [...readings] }).fn, times);
    // a "restarted" controller: every step begins from the stored JSON with a fresh query function
    let status: AnalysisStatus = startAnalysis(spec([m]), 'rev1/batch-1', T0);
    const script = [...readings];
    const b: AnalysisStep[] = [];
    for (const t of times) {
      const fresh = scripted({ [m.name]: [script.shift()!] }).fn;
      const step = await stepAnalysis(
        spec([m]),
        JSON.parse(JSON.stringify(status)),
        T0 + t * S,
        () => fresh,
        ctx,
      );
      b.push(step);
      status = step.status;
    }
    expect(b).toEqual(a);
    expect(a.map((s) => s.verdict)).toEqual(['Pending', 'Pending', 'Pending', 'Failed']);
  });

  it('a step whose status write was lost is measured again (at-least-once)', async () => {
    const s = spec([metric({ count: 2 })]);
    const st = startAnalysis(s, 'r', T0);
    const { fn, calls } = scripted({ 'error-rate': [0.01, 0.01, 0.01] });
    await stepAnalysis(s, st, T0, () => fn, ctx); // result lost (controller died before the status write)
    const again = await stepAnalysis(s, st, T0 + 1 * S, () => fn, ctx);
    expect(calls).toHaveLength(2);
    expect(again.status.metrics[0]?.measurements).toBe(1);
  });

  it('a terminal status is returned as is, without a query', async () => {
    const s = spec([metric({ count: 1 })]);
    const { fn, calls } = scripted({ 'error-rate': [0.9] });
    const [failed] = await run(s, fn, [0]);
    const again = await stepAnalysis(s, failed!.status, T0 + 100 * S, () => fn, ctx);
    expect(again).toEqual({ status: failed!.status, verdict: 'Failed', failure: failed!.failure });
    expect(calls).toHaveLength(1);
  });

  it('does not modify the status it is given', async () => {
    const s = spec([metric()]);
    const st = startAnalysis(s, 'r', T0);
    const copy = structuredClone(st);
    await stepAnalysis(s, st, T0, () => scripted({ 'error-rate': [0.01] }).fn, ctx);
    expect(st).toEqual(copy);
  });

  it('a metric added mid-analysis is measured from now; a removed one is dropped', async () => {
    const a = metric({ name: 'a', count: 2 });
    const b = metric({ name: 'b', count: 1 });
    const { fn, calls } = scripted({ a: [0.01, 0.01], b: [0.01] });
    const [first] = await run(spec([a]), fn, [0]);
    const second = await stepAnalysis(spec([b, a]), first!.status, T0 + 10 * S, () => fn, ctx);
    expect(second.status.metrics.map((m) => m.name)).toEqual(['b', 'a']);
    expect(second.verdict).toBe('Successful');
    const third = await stepAnalysis(spec([b]), first!.status, T0 + 10 * S, () => fn, ctx);
    expect(third.status.metrics.map((m) => m.name)).toEqual(['b']);
    expect(calls.map((c) => c.metric)).toEqual(['a', 'b', 'a', 'b']);
  });

  it('records the last value and a sanitized last error without the credentials', async () => {
    const secret = 'LTAI' + 'FAKE'.repeat(4);
    const m = metric({ count: 2, inconclusiveLimit: 5 });
    const { fn } = scripted({
      'error-rate': [
        new Error(`GET https://prom.example.com/api/v1/query?query=up&AccessKeyId=${secret} failed`),
        [0.5, 0.25],
      ],
    });
    const [first, second] = await run(spec([m]), fn, [0, 10]);
    const row = first!.status.metrics[0]!;
    expect(row.lastOutcome).toBe('Inconclusive');
    expect(row.lastError).toContain('https://prom.example.com/api/v1/query');
    expect(JSON.stringify(first!.status)).not.toContain(secret);
    expect(second!.status.metrics[0]).toMatchObject({
      lastValue: '[0.5, 0.25]',
      lastOutcome: 'Inconclusive',
    });
    expect(second!.status.metrics[0]?.lastError).toMatch(
      /^condition could not be evaluated: the query returned 2 samples, so result is a list/,
    );
  });

  it('a query function that throws synchronously is inconclusive, not a crash', async () => {
    const bad: QueryFn = () => {
      throw new Error('boom');
    };
    const [step] = await run(spec([metric({ count: 1, inconclusiveLimit: 1 })]), bad, [0]);
    expect(step?.status.phase).toBe('Inconclusive');
    expect(step?.status.metrics[0]?.lastError).toBe('boom');
  });
});

describe('analysisSpecProblem', () => {
  it('accepts a valid spec', () => {
    expect(analysisSpecProblem(spec([metric(), metric({ name: 'b', failureCondition: 'result > 1' })]))).toBe(
      undefined,
    );
  });
  it.each([
    [
      [metric({ successCondition: 'result <' })],
      /^analysis metric error-rate successCondition "result <" is not valid CEL: /,
    ],
    [[metric({ successCondition: 'foo < 1' })], /is not valid CEL: .*Unknown variable: foo/],
    [[metric({ successCondition: 'result + 1' })], /is not valid CEL/],
    [[metric({ successCondition: undefined })], /needs a successCondition or a failureCondition/],
    [[metric(), metric()], /name error-rate is used twice/],
    [[metric({ query: 'up{id="{{instanceId}}"}' })], /unknown placeholder \{\{instanceId\}\}/],
  ])('refuses %#', (metrics, message) => {
    expect(analysisSpecProblem(spec(metrics))).toMatch(message);
  });
});
