/**
 * The analysis gate (issue 22): a pure state machine over `status.analysis`, time injected.
 *
 * API (stable; the controllers call only these, all from this module):
 *
 *   startAnalysis(spec, runId, nowMs): AnalysisStatus
 *     A new Running status for the batch/execution `runId`; `bakeUntil` = now + bakeTime (when
 *     > 0); every metric is due at bakeUntil (or now). Persist it before the first step (intent).
 *
 *   stepAnalysis(spec, status, nowMs, connect, context): Promise<AnalysisStep>
 *     Takes the measurements that are due (one per metric per `interval`; none before bakeUntil),
 *     never mutates `status`, and returns { status (persist it), verdict, requeueAfterMs, failure,
 *     result }. verdict: 'Pending' (requeue after requeueAfterMs), 'Successful' (every metric took
 *     `count` conclusive measurements within failureLimit and inconclusiveLimit), 'Failed' (failure
 *     says why); result: how a run this step ended counts in `ecsops_analysis_runs_total`.
 *     `connect` builds the query function (Secret reads) and is called only when a measurement is
 *     due; what it throws propagates. A terminal status is returned as is (no query).
 *     Restart-safe: everything it needs is in the persisted status; a step lost before its status
 *     write is measured again. Query errors (thrown) and results that cannot be judged are
 *     Inconclusive; they never yield Successful and past inconclusiveLimit they fail the analysis.
 *
 *   analysisSpecProblem(spec): string | undefined
 *     Runtime validation of what admission cannot judge (CEL syntax of the conditions, unknown
 *     placeholders in objects stored before the rule): a message for a Stalled condition.
 *
 *   failureMessage(failure): string      the AnalysisFailed condition / Event message.
 *   progressMessage(status): string      a one-line progress summary (AnalysisInconclusive etc.).
 *
 * Re-exported, the types of `stepAnalysis`'s parameters: `AnalysisContext` (template.ts), `QueryFn`
 * (prometheus.ts).
 *
 * Outcome of a measurement (Argo Rollouts' `evaluateResult` rules): failureCondition true →
 * Failed; else successCondition true → Successful; else only failureCondition set → Successful;
 * only successCondition set → Failed; both set → Inconclusive. A query error, a result with no
 * sample, a matrix/string result or a condition that cannot be evaluated → Inconclusive.
 * Inconclusive measurements do not count towards `count` (the metric is measured again next
 * interval). A metric fails when failures > failureLimit or inconclusives > inconclusiveLimit; the
 * first failing metric (spec order) fails the analysis at once.
 */
import parseDuration from 'parse-duration';
import type {
  AnalysisFailure,
  AnalysisMetric,
  AnalysisSpec,
  AnalysisStatus,
  MeasurementOutcome,
  MetricStatus,
} from '../../../api/analysis.js';
import { sanitizeError, sanitizeText, truncate } from '../../../runtime/sanitize.js';
import { conditionProblem, evaluateCondition } from './conditions.js';
import { renderQuery, unknownPlaceholders, type AnalysisContext } from './template.js';
import type { AnalysisResult } from '../metrics.js';
import type { QueryFn, QueryResult } from './prometheus.js';

export type { AnalysisContext } from './template.js';
export type { QueryFn } from './prometheus.js';

/** What a step decided. */
export type AnalysisVerdict = 'Pending' | 'Successful' | 'Failed';

/** The result of {@link stepAnalysis}. */
export interface AnalysisStep {
  /** The new status (a copy; the input is not modified). Persist it. */
  status: AnalysisStatus;
  verdict: AnalysisVerdict;
  /** While Pending: when the next measurement (or the end of bakeTime) is due, ms from now (≥ 0). */
  requeueAfterMs?: number;
  /** When Failed: the metric, rendered query, value and condition (also in status.failure). */
  failure?: AnalysisFailure;
  /**
   * When this step ended the run: its `ecsops_analysis_runs_total` result (Inconclusive: failed by
   * inconclusiveLimit). Absent while Pending and for a status that was already terminal.
   */
  result?: AnalysisResult;
}

/** Default `interval` of a metric, ms. */
const DEFAULT_ANALYSIS_INTERVAL_MS = 30_000;
/** Longest value kept in `lastValue`, characters. */
const MAX_VALUE_LENGTH = 256;
/** Longest error kept in `lastError`, characters. */
const MAX_ERROR_LENGTH = 512;

const iso = (ms: number) => new Date(ms).toISOString();
const msOf = (t: string | undefined): number | undefined => {
  if (!t) return undefined;
  const v = Date.parse(t);
  return Number.isNaN(v) ? undefined : v;
};

function durationMs(value: string | undefined, fallback: number): number {
  if (!value) return fallback;
  const ms = parseDuration(value);
  return typeof ms === 'number' && Number.isFinite(ms) && ms >= 0 ? ms : fallback;
}

/** `bakeTime` of `spec` in ms (0 when absent). */
function bakeTimeMs(spec: AnalysisSpec): number {
  return durationMs(spec.bakeTime, 0);
}

/** `interval` of `metric` in ms (default 30 s; at least 1 s). */
export function intervalMs(metric: AnalysisMetric): number {
  return Math.max(1000, durationMs(metric.interval, DEFAULT_ANALYSIS_INTERVAL_MS));
}

const countOf = (m: AnalysisMetric) => Math.max(1, m.count ?? 1);
const failureLimitOf = (m: AnalysisMetric) => Math.max(0, m.failureLimit ?? 0);
const inconclusiveLimitOf = (m: AnalysisMetric) => Math.max(0, m.inconclusiveLimit ?? 0);
const metricDone = (m: AnalysisMetric, row: MetricStatus) => row.successes + row.failures >= countOf(m);

function newRow(name: string, dueMs: number): MetricStatus {
  return { name, measurements: 0, successes: 0, failures: 0, inconclusives: 0, nextAt: iso(dueMs) };
}

/**
 * startAnalysis: a Running `status.analysis` for the batch or execution `runId`.
 * @param spec `spec.analysis` (CRD defaults applied or not).
 * @param runId what the analysis gates, e.g. `<revision>/batch-2` or an execution's ClientToken.
 * @param nowMs the current time, ms since the epoch.
 */
export function startAnalysis(spec: AnalysisSpec, runId: string, nowMs: number): AnalysisStatus {
  const bake = bakeTimeMs(spec);
  const due = nowMs + bake;
  return {
    runId,
    phase: 'Running',
    startedAt: iso(nowMs),
    ...(bake > 0 ? { bakeUntil: iso(due) } : {}),
    metrics: spec.metrics.map((m) => newRow(m.name, due)),
    message: bake > 0 ? `baking until ${iso(due)}` : 'waiting for the first measurement',
  };
}

/**
 * Runtime validation of `spec.analysis` (what admission cannot judge, and objects stored before a
 * rule): every condition compiles to a bool CEL expression, every metric has a condition, names
 * are unique, queries use only known placeholders.
 * @returns a readable message naming the metric, or undefined when the spec is usable.
 */
export function analysisSpecProblem(spec: AnalysisSpec): string | undefined {
  const seen = new Set<string>();
  for (const m of spec.metrics) {
    if (seen.has(m.name)) return `analysis metric name ${m.name} is used twice`;
    seen.add(m.name);
    if (!m.successCondition && !m.failureCondition)
      return `analysis metric ${m.name} needs a successCondition or a failureCondition`;
    for (const [field, expr] of [
      ['successCondition', m.successCondition],
      ['failureCondition', m.failureCondition],
    ] as const) {
      const problem = expr === undefined ? undefined : conditionProblem(expr);
      if (problem)
        return `analysis metric ${m.name} ${field} ${JSON.stringify(expr)} is not valid CEL: ${problem}`;
    }
    const unknown = unknownPlaceholders(m.query);
    if (unknown.length > 0)
      return `analysis metric ${m.name} query uses the unknown placeholder {{${unknown[0]}}}`;
  }
  return undefined;
}

/** A number as Prometheus prints it, at most 6 significant digits (`0.0312`, `NaN`, `+Inf`). */
function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(6)));
}

function formatValues(values: readonly number[]): string {
  const text =
    values.length === 1 ? formatValue(values[0] as number) : `[${values.map(formatValue).join(', ')}]`;
  return truncate(text, MAX_VALUE_LENGTH);
}

interface Measurement {
  outcome: MeasurementOutcome;
  value?: string;
  error?: string;
  /** The condition that decided a Successful/Failed outcome, e.g. `failureCondition result > 0.05`. */
  condition?: string;
  query: string;
}

/**
 * The outcome of `values` under the metric's conditions (module comment).
 * @returns the outcome; `error` when Inconclusive.
 */
export function judge(
  metric: AnalysisMetric,
  values: readonly number[],
): { outcome: MeasurementOutcome; condition?: string; error?: string } {
  const { successCondition: ok, failureCondition: bad } = metric;
  try {
    if (bad !== undefined && evaluateCondition(bad, values))
      return { outcome: 'Failed', condition: `failureCondition ${bad}` };
    if (ok !== undefined && evaluateCondition(ok, values))
      return { outcome: 'Successful', condition: `successCondition ${ok}` };
  } catch (err) {
    return { outcome: 'Inconclusive', error: `condition could not be evaluated: ${sanitizeError(err, 300)}` };
  }
  if (ok === undefined) return { outcome: 'Successful', condition: `failureCondition ${bad} not met` };
  if (bad === undefined) return { outcome: 'Failed', condition: `successCondition ${ok} not met` };
  return { outcome: 'Inconclusive', error: 'neither successCondition nor failureCondition was met' };
}

async function measure(
  metric: AnalysisMetric,
  context: AnalysisContext,
  query: QueryFn,
): Promise<Measurement> {
  let rendered: string;
  try {
    rendered = renderQuery(metric.query, context);
  } catch (err) {
    return { outcome: 'Inconclusive', error: sanitizeError(err, MAX_ERROR_LENGTH), query: metric.query };
  }
  let result: QueryResult;
  try {
    result = await query(metric, rendered);
  } catch (err) {
    return { outcome: 'Inconclusive', error: sanitizeError(err, MAX_ERROR_LENGTH), query: rendered };
  }
  if (result.values.length === 0)
    return {
      outcome: 'Inconclusive',
      error: 'the query returned no sample (write it so it always returns one, e.g. "sum(...) or vector(0)")',
      query: rendered,
    };
  const value = formatValues(result.values);
  const verdict = judge(metric, result.values);
  return { ...verdict, value, query: rendered };
}

function applyMeasurement(
  row: MetricStatus,
  m: Measurement,
  metric: AnalysisMetric,
  nowMs: number,
): MetricStatus {
  const next: MetricStatus = {
    ...row,
    measurements: row.measurements + 1,
    successes: row.successes + (m.outcome === 'Successful' ? 1 : 0),
    failures: row.failures + (m.outcome === 'Failed' ? 1 : 0),
    inconclusives: row.inconclusives + (m.outcome === 'Inconclusive' ? 1 : 0),
    lastOutcome: m.outcome,
  };
  if (m.value !== undefined) next.lastValue = m.value;
  else delete next.lastValue;
  if (m.error !== undefined) next.lastError = truncate(sanitizeText(m.error), MAX_ERROR_LENGTH);
  else delete next.lastError;
  if (metricDone(metric, next)) delete next.nextAt;
  else next.nextAt = iso(nowMs + intervalMs(metric));
  return next;
}

/** Why `metric` fails the analysis, if it does, and how the run counts (Failed or Inconclusive). */
function failureOf(
  metric: AnalysisMetric,
  row: MetricStatus,
  m: Measurement | undefined,
): { failure: AnalysisFailure; result: 'Failed' | 'Inconclusive' } | undefined {
  const query = truncate(sanitizeText(m?.query ?? metric.query), 2048);
  if (row.failures > failureLimitOf(metric))
    return {
      result: 'Failed',
      failure: {
        metric: metric.name,
        query,
        value: row.lastValue ?? '',
        condition: truncate(
          `${m?.condition ?? 'a condition'} (${row.failures} failed measurement(s), failureLimit ${failureLimitOf(metric)})`,
          1100,
        ),
      },
    };
  if (row.inconclusives > inconclusiveLimitOf(metric))
    return {
      result: 'Inconclusive',
      failure: {
        metric: metric.name,
        query,
        value: row.lastError ?? row.lastValue ?? '',
        condition: `inconclusiveLimit ${inconclusiveLimitOf(metric)} exceeded (${row.inconclusives} inconclusive measurement(s))`,
      },
    };
  return undefined;
}

/** The AnalysisFailed condition / Event message: metric, query, measured value and condition. */
export function failureMessage(f: AnalysisFailure): string {
  return truncate(`analysis metric ${f.metric} failed: ${f.query} = ${f.value}; ${f.condition}`, 1024);
}

/** One line on the progress of a running (or finished) analysis, for conditions and `ecsops get`. */
export function progressMessage(status: AnalysisStatus): string {
  if (status.phase === 'Failed' && status.failure) return failureMessage(status.failure);
  const parts = status.metrics.map((r) => {
    const last =
      r.lastOutcome === 'Inconclusive'
        ? `inconclusive: ${r.lastError ?? ''}`
        : r.lastValue !== undefined
          ? `last ${r.lastValue}`
          : 'not measured yet';
    return `${r.name} ${r.successes + r.failures} measured, ${r.failures} failed, ${r.inconclusives} inconclusive (${last})`;
  });
  return truncate(`analysis ${status.phase}: ${parts.join('; ')}`, 1024);
}

/**
 * stepAnalysis: takes the measurements that are due and decides the verdict (module comment).
 * @param spec `spec.analysis` (metrics added since the start are measured from now; rows of
 *   removed metrics are dropped).
 * @param status the persisted `status.analysis` (from {@link startAnalysis} or a previous step).
 * @param nowMs the current time, ms since the epoch.
 * @param connect builds the function that runs one instant query (e.g. prometheus.ts
 *   `prometheusQueryFn` over the resolved connection); called once, and only when a measurement is
 *   due. The query function may throw (Inconclusive); due metrics are queried concurrently.
 * @param context the gated batch's instance IDs, IPs, zones and index (query placeholders).
 * @throws what `connect` throws (e.g. StalledError for a missing Secret); never for a query
 *   failure (a bug in the query function that throws synchronously is Inconclusive too).
 */
export async function stepAnalysis(
  spec: AnalysisSpec,
  status: AnalysisStatus,
  nowMs: number,
  connect: () => QueryFn | Promise<QueryFn>,
  context: AnalysisContext,
): Promise<AnalysisStep> {
  if (status.phase === 'Successful' || status.phase === 'Failed')
    return {
      status,
      verdict: status.phase,
      ...(status.phase === 'Failed' && status.failure ? { failure: status.failure } : {}),
    };
  const bakeUntil = msOf(status.bakeUntil) ?? 0;
  const firstDue = Math.max(bakeUntil, msOf(status.startedAt) ?? nowMs);
  const byName = new Map(status.metrics.map((r) => [r.name, r]));
  const rows = spec.metrics.map((m) => ({
    ...(byName.get(m.name) ?? newRow(m.name, Math.max(firstDue, nowMs))),
  }));
  if (bakeUntil > nowMs) {
    const next = { ...status, metrics: rows, message: `baking until ${iso(bakeUntil)}` };
    return { status: next, verdict: 'Pending', requeueAfterMs: bakeUntil - nowMs };
  }
  const due = spec.metrics
    .map((m, i) => ({ m, i, row: rows[i] as MetricStatus }))
    .filter(({ m, row }) => !metricDone(m, row) && (msOf(row.nextAt) ?? firstDue) <= nowMs);
  let measured: Measurement[] = [];
  if (due.length > 0) {
    const query = await connect(); // outside the measurements' catch: what it throws propagates
    measured = await Promise.all(
      due.map(({ m }) =>
        measure(m, context, query).catch((err: unknown): Measurement => ({
          outcome: 'Inconclusive',
          error: sanitizeError(err),
          query: m.query,
        })),
      ),
    );
  }
  const taken = new Map<number, Measurement>();
  due.forEach(({ m, i, row }, k) => {
    const result = measured[k] as Measurement;
    taken.set(i, result);
    rows[i] = applyMeasurement(row, result, m, nowMs);
  });

  for (const [i, m] of spec.metrics.entries()) {
    const failed = failureOf(m, rows[i] as MetricStatus, taken.get(i));
    if (!failed) continue;
    const { failure, result } = failed;
    const next: AnalysisStatus = {
      ...status,
      metrics: rows,
      phase: 'Failed',
      finishedAt: iso(nowMs),
      failure,
    };
    next.message = failureMessage(failure);
    return { status: next, verdict: 'Failed', failure, result };
  }
  if (spec.metrics.every((m, i) => metricDone(m, rows[i] as MetricStatus))) {
    const next: AnalysisStatus = { ...status, metrics: rows, phase: 'Successful', finishedAt: iso(nowMs) };
    delete next.failure;
    next.message = progressMessage(next);
    return { status: next, verdict: 'Successful', result: 'Successful' };
  }
  const phase = rows.some((r) => r.lastOutcome === 'Inconclusive') ? 'Inconclusive' : 'Running';
  const next: AnalysisStatus = { ...status, metrics: rows, phase };
  next.message = progressMessage(next);
  const nextDue = Math.min(
    ...rows.filter((r) => r.nextAt !== undefined).map((r) => (msOf(r.nextAt) ?? nowMs) - nowMs),
  );
  return {
    status: next,
    verdict: 'Pending',
    requeueAfterMs: Math.max(0, Number.isFinite(nextDue) ? nextDue : 0),
  };
}
