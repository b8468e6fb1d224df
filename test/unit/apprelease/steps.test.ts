/**
 * The AppRelease rollout steps, one table per step (rollout.ts gives their order): each case builds
 * a scope, runs the one step, and checks what it returned and recorded. No cloud: the kit's start
 * and the tracker's cancel are recorded fakes.
 */
import { readFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { describe, expect, it, vi } from 'vitest';
import {
  PROMOTE_REQUESTED_ANNOTATION,
  type AppRelease,
  type AppReleaseSpec,
  type RolloutStatus,
} from '../../../src/api/apprelease.js';
import type { AnalysisSpec, AnalysisStatus } from '../../../src/api/analysis.js';
import { analysisGate, gateRunId } from '../../../src/controllers/apprelease/analysis.js';
import { AppReleaseMetrics } from '../../../src/controllers/apprelease/metrics.js';
import { canaryPause, pauseBetweenBatches, specPause } from '../../../src/controllers/apprelease/pauses.js';
import {
  awaitBatch,
  complete,
  deadline,
  enrol,
  errorBudget,
  nextBatch,
  recordStable,
  retryDownloads,
  settled,
  startRollout,
  supersede,
  type StepOutcome,
} from '../../../src/controllers/apprelease/progress.js';
import { rollBack, rollbackTargets } from '../../../src/controllers/apprelease/rollback.js';
import { ROLLOUT_STEPS } from '../../../src/controllers/apprelease/rollout.js';
import type { AppContext, AppScope } from '../../../src/controllers/apprelease/scope.js';
import { ClaimRegistry } from '../../../src/controllers/shared/claims.js';
import { FailureLedger } from '../../../src/controllers/shared/retry.js';
import type { WorkItem } from '../../../src/controllers/shared/work.js';

const NOW = new Date('2026-06-01T12:00:00Z');
/** What the fake Prometheus of the analysis gate answers (analysisGate cases set it). */
let promAnswer: number | Error = 0;
const ago = (ms: number): string => new Date(NOW.getTime() - ms).toISOString().replace('.000Z', 'Z');
const IDS = ['i-1', 'i-2', 'i-3', 'i-4'];

interface Recorded {
  starts: Array<{
    action: string;
    instanceIds: readonly string[];
    round: number;
    tokenScope?: string;
    limit?: number;
    allOrNothing?: boolean;
  }>;
  cancels: string[];
  events: string[];
}

function context(rec: Recorded): AppContext {
  return {
    claims: new ClaimRegistry(),
    appDirClaims: new ClaimRegistry(),
    events: {
      event: (_o, _t, reason) => {
        rec.events.push(reason);
        return Promise.resolve();
      },
    },
    metrics: new AppReleaseMetrics(new Registry()),
    backoff: { baseMs: 30_000, maxMs: 30 * 60_000 },
    adoptionChecked: new Set(),
    analysis: {
      // One Prometheus answer for every query (a number, or an Error: unreachable).
      queryFn: () =>
        Promise.resolve(() =>
          promAnswer instanceof Error
            ? Promise.reject(promAnswer)
            : Promise.resolve({ resultType: 'scalar' as const, values: [promAnswer] }),
        ),
      metrics: { analysisFinished: (_kind, result) => void rec.events.push(`runs_total:${result}`) },
    },
    work: {
      start: vi.fn(
        (
          _s: unknown,
          req: { action: string; instanceIds: readonly string[]; round: number; tokenScope?: string },
          opts: { limit?: number; allOrNothing?: boolean; onIntent?: (i: WorkItem[]) => void } = {},
        ) => {
          rec.starts.push({
            ...req,
            ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
            ...(opts.allOrNothing ? { allOrNothing: true } : {}),
          });
          opts.onIntent?.([]);
          return Promise.resolve({ started: [], held: [] });
        },
      ),
    } as unknown as AppContext['work'],
  };
}

const spec = (over: Partial<AppReleaseSpec> = {}): AppReleaseSpec => ({
  regionId: 'cn-hangzhou',
  targets: { instanceIds: IDS },
  application: 'web',
  version: '2.0.0',
  artifact: { url: 'https://example.com/web-2.tar.gz', sha256: 'a'.repeat(64) },
  hooks: { start: { script: './start.sh' } },
  strategy: { batchSize: 2, maxErrors: 0 },
  ...over,
});

const rollout = (over: Partial<RolloutStatus> = {}): RolloutStatus => ({
  revision: 'r2',
  version: '2.0.0',
  sequence: 2,
  startTime: ago(60_000),
  lastProgressTime: ago(10_000),
  nextBatch: 0,
  failed: 0,
  batches: [],
  ...over,
});

const deploy = (round: number, ids: string[], pending = false): WorkItem => ({
  executionId: pending ? '' : `t-${round}`,
  action: 'deploy',
  round,
  instanceIds: ids,
  clientToken: 'tok',
  startTime: ago(5_000),
  ...(pending ? { pending: true } : {}),
});

interface Setup {
  spec?: Partial<AppReleaseSpec>;
  annotations?: Record<string, string>;
  phase?: AppScope['phase'];
  stable?: string;
  rollout?: RolloutStatus;
  tags?: Record<string, string>;
  unreachable?: string[];
  inFlight?: WorkItem[];
  failed?: Record<string, string>;
  analysis?: AnalysisStatus;
}

function scope(o: Setup = {}): AppScope {
  const obj: AppRelease = {
    apiVersion: 'ecsops.io/v1alpha1',
    kind: 'AppRelease',
    metadata: {
      name: 'web',
      namespace: 'default',
      uid: 'u-1',
      generation: 1,
      annotations: o.annotations ?? {},
    },
    spec: spec(o.spec),
  };
  const ledger = new FailureLedger(undefined);
  for (const [id, message] of Object.entries(o.failed ?? {}))
    ledger.fail(id, { message, executionId: 't-x', since: ago(0) });
  const s = {
    obj,
    ctx: {} as AppScope['ctx'],
    now: NOW,
    writesAllowed: true,
    view: {} as AppScope['view'],
    ecs: {} as AppScope['ecs'],
    fleet: { recordTags: vi.fn() } as unknown as AppScope['fleet'],
    oos: () => ({}) as ReturnType<AppScope['oos']>,
    tracker: { cancel: vi.fn((w: WorkItem) => Promise.resolve(void w)) } as unknown as AppScope['tracker'],
    revision: 'r2',
    targets: IDS.map((id) => ({
      instanceId: id,
      instance: {} as never,
      reachable: !(o.unreachable ?? []).includes(id),
    })),
    resolved: true,
    tags: new Map(Object.entries(o.tags ?? {})),
    inFlight: o.inFlight ?? [],
    ledger,
    sequence: 2,
    history: [],
    results: new Map(),
    rolledBack: new Set(),
  } as AppScope;
  if (o.phase) s.phase = o.phase;
  if (o.stable) s.stable = o.stable;
  if (o.rollout) s.rollout = o.rollout;
  if (o.analysis) s.analysis = o.analysis;
  return s;
}

type Step = (k: AppContext, s: AppScope) => StepOutcome | Promise<StepOutcome>;

interface Case {
  name: string;
  setup: Setup;
  want: StepOutcome;
  check?: (s: AppScope, rec: Recorded) => void;
}

function table(step: Step, cases: Case[]): void {
  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_n, c) => {
    const rec: Recorded = { starts: [], cancels: [], events: [] };
    const s = scope(c.setup);
    expect(await step(context(rec), s)).toBe(c.want);
    c.check?.(s, rec);
  });
}

const allTagged = (rev: string): Record<string, string> => Object.fromEntries(IDS.map((id) => [id, rev]));

describe('ROLLOUT_STEPS', () => {
  it('runs in the documented order', () => {
    expect(ROLLOUT_STEPS.map((x) => x.name)).toEqual([
      'recordStable',
      'supersede',
      'startRollout',
      'settled',
      'deadline',
      'awaitBatch',
      'errorBudget',
      'analysisGate',
      'rollBack',
      'retryDownloads',
      'refreshSecrets',
      'complete',
      'enrol',
      'canaryPause',
      'specPause',
      'pauseBetweenBatches',
      'nextBatch',
    ]);
  });

  it('no step function is longer than 40 lines', () => {
    const files = ['progress', 'pauses', 'rollback', 'fold', 'lifecycle', 'analysis'].map(
      (f) => `src/controllers/apprelease/${f}.ts`,
    );
    const long: string[] = [];
    for (const f of files) {
      const lines = readFileSync(f, 'utf8').split('\n');
      lines.forEach((l, i) => {
        const m = /^(?:export )?(?:async )?function (\w+)/.exec(l);
        if (!m) return;
        const end = lines.findIndex((x, j) => j > i && x === '}');
        if (end - i + 1 > 40) long.push(`${f}:${m[1]} (${end - i + 1} lines)`);
      });
    }
    expect(long).toEqual([]);
  });
});

describe('recordStable', () => {
  table(recordStable, [
    {
      name: 'stable before the release was kept, spec still stable: recorded',
      setup: { stable: 'r2' },
      want: 'next',
      check: (s) => expect(s.stableRelease?.revision).toBe('r2'),
    },
    {
      name: 'the spec moved on: nothing to record it from',
      setup: { stable: 'r1' },
      want: 'next',
      check: (s) => expect(s.stableRelease).toBeUndefined(),
    },
  ]);
});

describe('supersede', () => {
  table(supersede, [
    { name: 'no rollout: next', setup: {}, want: 'next' },
    {
      name: 'same revision: next',
      setup: { rollout: rollout() },
      want: 'next',
      check: (s) => expect(s.rollout).toBeDefined(),
    },
    {
      name: 'a new revision waits for the old batch',
      setup: { rollout: rollout({ revision: 'r1' }), phase: 'Progressing', inFlight: [deploy(0, ['i-1'])] },
      want: 'stop',
      check: (s) => expect(s.rollout?.revision).toBe('r1'),
    },
    {
      name: 'a new revision supersedes a progressing rollout (history, Event)',
      setup: { rollout: rollout({ revision: 'r1' }), phase: 'Progressing' },
      want: 'next',
      check: (s, rec) => {
        expect(s.rollout).toBeUndefined();
        expect(s.history[0]).toMatchObject({ revision: 'r1', result: 'Superseded' });
        expect(rec.events).toEqual(['RolloutSuperseded']);
      },
    },
    {
      name: 'a new revision after RolledBack: no second history entry',
      setup: { rollout: rollout({ revision: 'r1' }), phase: 'RolledBack' },
      want: 'next',
      check: (s) => expect(s.history).toEqual([]),
    },
  ]);
});

describe('startRollout', () => {
  table(startRollout, [
    { name: 'a rollout exists: next', setup: { rollout: rollout() }, want: 'next' },
    { name: 'work in flight: stop', setup: { inFlight: [deploy(0, ['i-1'])] }, want: 'stop' },
    {
      name: 'every target runs the stable revision: Succeeded',
      setup: { tags: allTagged('r2'), stable: 'r2' },
      want: 'stop',
      check: (s) => {
        expect(s.phase).toBe('Succeeded');
        expect(s.rollout).toBeUndefined();
      },
    },
    {
      name: 'otherwise a new rollout (sequence + 1, ledger cleared)',
      setup: { stable: 'r1', tags: allTagged('r1'), failed: { 'i-1': 'deploy failed at step start' } },
      want: 'next',
      check: (s, rec) => {
        expect(s.rollout).toMatchObject({ revision: 'r2', sequence: 3, nextBatch: 0, failed: 0 });
        expect(s.phase).toBe('Progressing');
        expect(s.ledger.size).toBe(0);
        expect(rec.events).toEqual(['RolloutStarted']);
      },
    },
  ]);
});

describe('settled', () => {
  table(settled, [
    { name: 'RolledBack holds', setup: { phase: 'RolledBack' }, want: 'stop' },
    { name: 'Failed holds', setup: { phase: 'Failed' }, want: 'stop' },
    { name: 'Progressing goes on', setup: { phase: 'Progressing' }, want: 'next' },
  ]);
});

describe('deadline', () => {
  const late = rollout({ lastProgressTime: ago(1_801_000) });
  table(deadline, [
    {
      name: 'within the deadline',
      setup: { rollout: rollout(), phase: 'Progressing' },
      want: 'next',
      check: (s) => expect(s.phase).toBe('Progressing'),
    },
    {
      name: 'past it: started deploys cancelled (not pending ones), rollout fails',
      setup: {
        rollout: late,
        phase: 'Progressing',
        inFlight: [deploy(1, ['i-3']), deploy(1, ['i-4'], true)],
      },
      want: 'next',
      check: (s) => {
        expect(s.phase).toBe('RollingBack');
        expect(s.rollout?.failure?.message).toContain('no progress for 1800s');
        expect(vi.mocked(s.tracker.cancel).mock.calls.map((c) => c[0].executionId)).toEqual(['t-1']);
      },
    },
    {
      name: 'paused time does not count',
      setup: { rollout: { ...late, pausedAt: ago(1_000) }, phase: 'Paused' },
      want: 'next',
      check: (s) => expect(s.rollout?.failure).toBeUndefined(),
    },
    {
      name: 'an enrolment has no deadline',
      setup: { rollout: { ...late, enrol: true } },
      want: 'next',
      check: (s) => expect(s.rollout?.failure).toBeUndefined(),
    },
  ]);
});

describe('awaitBatch', () => {
  table(awaitBatch, [
    { name: 'a batch runs', setup: { rollout: rollout(), inFlight: [deploy(0, ['i-1'])] }, want: 'stop' },
    {
      name: 'a batch start awaits an answer',
      setup: { rollout: rollout(), inFlight: [deploy(0, ['i-1'], true)] },
      want: 'stop',
    },
    { name: 'nothing runs', setup: { rollout: rollout() }, want: 'next' },
    {
      name: 'rolling back: the rollback step waits itself',
      setup: { rollout: rollout(), phase: 'RollingBack', inFlight: [deploy(0, ['i-1'])] },
      want: 'next',
    },
  ]);
});

describe('errorBudget', () => {
  table(errorBudget, [
    {
      name: 'failed 1 > maxErrors 0: RollingBack',
      setup: {
        rollout: rollout({ failed: 1 }),
        phase: 'Progressing',
        failed: { 'i-2': 'deploy failed at step health (exit 1): x' },
      },
      want: 'next',
      check: (s) => expect(s.phase).toBe('RollingBack'),
    },
    {
      name: 'failed 1 = maxErrors 1: goes on',
      setup: { rollout: rollout({ failed: 1 }), phase: 'Progressing', spec: { strategy: { maxErrors: 1 } } },
      want: 'next',
      check: (s) => expect(s.phase).toBe('Progressing'),
    },
    {
      name: 'an enrolment keeps its failures',
      setup: { rollout: rollout({ failed: 3, enrol: true }), phase: 'Progressing' },
      want: 'next',
      check: (s) => expect(s.phase).toBe('Progressing'),
    },
    {
      name: 'without automatic rollback: Failed, in history',
      setup: {
        rollout: rollout({ failed: 1 }),
        phase: 'Progressing',
        spec: { rollback: { automatic: false } },
      },
      want: 'next',
      check: (s) => {
        expect(s.phase).toBe('Failed');
        expect(s.history[0]?.result).toBe('Failed');
      },
    },
  ]);
});

describe('analysisGate', () => {
  const GATE: AnalysisSpec = {
    prometheus: { url: 'http://prometheus.monitoring:9090' },
    metrics: [
      {
        name: 'error-rate',
        query: 'sum(rate(web_request_errors_total{instance_id=~"{{instanceIdsRegex}}"}[1m])) or vector(0)',
        interval: '10s',
        count: 1,
        successCondition: 'result < 0.05',
        inconclusiveLimit: 2,
      },
    ],
  };
  const batch = (index: number, phase: 'Running' | 'Succeeded' | 'Failed' = 'Succeeded') => ({
    index,
    size: 2,
    phase,
    invokeIds: [`t-${index}`],
    instanceIds: index === 0 ? ['i-1', 'i-2'] : ['i-3', 'i-4'],
    finishTime: ago(1_000),
  });
  const afterBatch1 = (over: Partial<RolloutStatus> = {}) =>
    rollout({ nextBatch: 2, batches: [batch(0), batch(1)], ...over });
  const running = (runId: string, over: Partial<AnalysisStatus> = {}): AnalysisStatus => ({
    runId,
    phase: 'Inconclusive',
    startedAt: ago(30_000),
    metrics: [
      { name: 'error-rate', measurements: 2, successes: 0, failures: 0, inconclusives: 2, nextAt: ago(0) },
    ],
    ...over,
  });
  const gated = (over: Partial<AnalysisSpec> = {}) => ({ analysis: { ...GATE, ...over } });
  const cases: Array<Case & { prom: number | Error }> = [
    { name: 'no spec.analysis: next', prom: 0.9, setup: { rollout: afterBatch1() }, want: 'next' },
    {
      name: 'the newest batch still runs: not gated yet',
      prom: 0.9,
      setup: { spec: gated(), rollout: rollout({ nextBatch: 2, batches: [batch(0), batch(1, 'Running')] }) },
      want: 'next',
      check: (s) => expect(s.analysis).toBeUndefined(),
    },
    {
      name: 'a good value after batch 1: Successful, progress, AnalysisSucceeded, counted',
      prom: 0.01,
      setup: { spec: gated(), rollout: afterBatch1(), phase: 'Progressing' },
      want: 'next',
      check: (s, rec) => {
        expect(s.analysis).toMatchObject({
          runId: gateRunId(s.rollout as RolloutStatus, 1),
          phase: 'Successful',
        });
        expect(s.rollout?.lastProgressTime).toBe(ago(0));
        expect(rec.events.sort()).toEqual(['AnalysisSucceeded', 'runs_total:Successful']);
      },
    },
    {
      name: 'bakeTime: holds without a query until it passed',
      prom: new Error('must not be queried'),
      setup: { spec: gated({ bakeTime: '30s' }), rollout: afterBatch1(), phase: 'Progressing' },
      want: 'stop',
      check: (s) => {
        expect(s.analysis).toMatchObject({ phase: 'Running', bakeUntil: '2026-06-01T12:00:30.000Z' });
        expect(s.analysis?.metrics[0]?.measurements).toBe(0);
        expect(s.wakeAtMs).toBe(NOW.getTime() + 30_000);
        expect(s.gateWait).toMatchObject({ batch: 1, inconclusive: false });
      },
    },
    {
      name: 'a bad value: the rollout fails with metric, query, value and condition, and rolls back',
      prom: 0.31,
      setup: { spec: gated(), rollout: afterBatch1(), phase: 'Progressing' },
      want: 'next',
      check: (s, rec) => {
        expect(s.phase).toBe('RollingBack');
        expect(s.rollout?.failure?.step).toBe('analysis');
        const m = s.rollout?.failure?.message ?? '';
        expect(m).toContain('analysis after batch 1 failed');
        expect(m).toContain('error-rate');
        expect(m).toContain('instance_id=~"i-3|i-4"');
        expect(m).toContain('0.31');
        expect(m).toContain('successCondition result < 0.05');
        expect(rec.events.sort()).toEqual(['AnalysisFailed', 'RolloutFailed', 'runs_total:Failed']);
      },
    },
    {
      name: 'Prometheus unreachable within inconclusiveLimit: waits (AnalysisInconclusive), no next batch',
      prom: new Error('connect ECONNREFUSED 127.0.0.1:9090'),
      setup: { spec: gated(), rollout: afterBatch1(), phase: 'Progressing' },
      want: 'stop',
      check: (s, rec) => {
        expect(s.analysis?.phase).toBe('Inconclusive');
        expect(s.gateWait?.inconclusive).toBe(true);
        expect(s.wakeAtMs).toBe(NOW.getTime() + 10_000);
        expect(rec.starts).toEqual([]);
      },
    },
    {
      name: 'one inconclusive measurement past inconclusiveLimit: fails the rollout',
      prom: new Error('connect ECONNREFUSED 127.0.0.1:9090'),
      setup: {
        spec: gated(),
        rollout: afterBatch1(),
        phase: 'Progressing',
        analysis: running(gateRunId(afterBatch1(), 1)),
      },
      want: 'next',
      check: (s, rec) => {
        expect(s.phase).toBe('RollingBack');
        expect(s.rollout?.failure?.message).toContain('inconclusiveLimit 2 exceeded');
        expect(rec.events).toContain('runs_total:Inconclusive');
      },
    },
    {
      name: 'the analysis of this batch passed already: next without a query',
      prom: new Error('must not be queried'),
      setup: {
        spec: gated(),
        rollout: afterBatch1(),
        analysis: running(gateRunId(afterBatch1(), 1), { phase: 'Successful' }),
      },
      want: 'next',
      check: (_s, rec) => expect(rec.events).toEqual([]),
    },
    {
      name: "the previous batch's analysis does not gate this one: a new run starts",
      prom: 0.01,
      setup: {
        spec: gated(),
        rollout: afterBatch1(),
        analysis: running(gateRunId(afterBatch1(), 0), { phase: 'Successful' }),
      },
      want: 'next',
      check: (s) => expect(s.analysis?.runId).toBe(gateRunId(afterBatch1(), 1)),
    },
    {
      name: 'after the canary batch: the canary pause begins while the analysis runs',
      prom: 0.01,
      setup: {
        spec: { ...gated({ bakeTime: '1m' }), strategy: { batchSize: 2, canary: { instances: 1 } } },
        rollout: rollout({ nextBatch: 1, batches: [batch(0)] }),
        phase: 'Progressing',
      },
      want: 'stop',
      check: (s, rec) => {
        expect(s.phase).toBe('Paused');
        expect(s.gateWait?.batch).toBe(0);
        expect(rec.events).toEqual(['RolloutPaused']);
      },
    },
    {
      name: 'a rollout that failed already is not gated',
      prom: 0.9,
      setup: { spec: gated(), rollout: afterBatch1({ failure: { message: 'x' } }), phase: 'Progressing' },
      want: 'next',
      check: (s) => expect(s.analysis).toBeUndefined(),
    },
    {
      name: 'an enrolment is not gated',
      prom: 0.9,
      setup: { spec: gated(), rollout: afterBatch1({ enrol: true }), phase: 'Progressing' },
      want: 'next',
      check: (s) => expect(s.analysis).toBeUndefined(),
    },
  ];
  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_n, c) => {
    promAnswer = c.prom;
    const rec: Recorded = { starts: [], cancels: [], events: [] };
    const s = scope(c.setup);
    expect(await analysisGate(context(rec), s)).toBe(c.want);
    c.check?.(s, rec);
  });

  it('deadline does not run while the analysis of the newest batch runs', async () => {
    const r = afterBatch1({ lastProgressTime: ago(3_600_000) });
    const rec: Recorded = { starts: [], cancels: [], events: [] };
    const s = scope({ spec: gated(), rollout: r, phase: 'Progressing', analysis: running(gateRunId(r, 1)) });
    await deadline(context(rec), s);
    expect(s.phase).toBe('Progressing');
  });
});

describe('rollbackTargets', () => {
  it('instances tagged with the failed revision, and failures past the download, from the ledger (no batch rows needed)', () => {
    const s = scope({
      tags: { 'i-1': 'r2', 'i-2': 'r1', 'i-3': 'r1', 'i-4': 'r1' },
      failed: {
        'i-2': 'deploy failed at step health (exit 1): x',
        'i-3': 'deploy failed at step download (exit 7): x',
      },
    });
    expect(rollbackTargets(s, rollout({ batches: [] }))).toEqual(['i-1', 'i-2']);
  });
});

describe('rollBack', () => {
  const failing = rollout({ failed: 1, failure: { message: 'i-2 failed' } });
  table(rollBack, [
    { name: 'not rolling back', setup: { rollout: rollout(), phase: 'Progressing' }, want: 'next' },
    {
      name: 'work in flight',
      setup: { rollout: failing, phase: 'RollingBack', inFlight: [deploy(1, ['i-2'])] },
      want: 'stop',
      check: (s) => expect(s.rollout?.rollback).toBeUndefined(),
    },
    {
      name: 'begins: targets recorded, reachable ones sent all-or-nothing (attempt 0)',
      setup: {
        rollout: failing,
        phase: 'RollingBack',
        stable: 'r1',
        tags: { 'i-1': 'r2', 'i-2': 'r2' },
        unreachable: ['i-2'],
      },
      want: 'stop',
      check: (s, rec) => {
        expect(s.rollout?.rollback).toMatchObject({
          to: 'r1',
          remaining: ['i-1', 'i-2'],
          total: 2,
          attempt: 1,
        });
        expect(rec.starts).toEqual([
          {
            action: 'rollback',
            instanceIds: ['i-1'],
            round: 0,
            tokenScope: 'r2/2/rollback',
            describe: 'rollback to r1',
            allOrNothing: true,
          },
        ]);
        expect(rec.events).toEqual(['RollbackStarted']);
      },
    },
    {
      name: 'only unreachable ones left: waits, not RolledBack',
      setup: {
        rollout: {
          ...failing,
          rollback: { to: 'r1', remaining: ['i-2'], total: 2, attempt: 1, invokeIds: ['t-r'] },
        },
        phase: 'RollingBack',
        unreachable: ['i-2'],
      },
      want: 'stop',
      check: (s, rec) => {
        expect(s.phase).toBe('RollingBack');
        expect(rec.starts).toEqual([]);
      },
    },
    {
      name: 'a failed host waits for its retry time',
      setup: {
        rollout: {
          ...failing,
          rollback: {
            to: 'r1',
            remaining: ['i-2'],
            total: 2,
            attempt: 1,
            invokeIds: [],
            retryAt: new Date(NOW.getTime() + 30_000).toISOString(),
          },
        },
        phase: 'RollingBack',
      },
      want: 'stop',
      check: (s, rec) => {
        expect(s.wakeAtMs).toBe(NOW.getTime() + 30_000);
        expect(rec.starts).toEqual([]);
      },
    },
    {
      name: 'a released instance leaves the list; none left: RolledBack',
      setup: {
        rollout: {
          ...failing,
          rollback: { to: 'r1', remaining: ['i-9'], total: 3, attempt: 1, invokeIds: [] },
        },
        phase: 'RollingBack',
      },
      want: 'stop',
      check: (s, rec) => {
        expect(s.phase).toBe('RolledBack');
        expect(s.history[0]).toMatchObject({ result: 'RolledBack' });
        expect(rec.events).toEqual(['RolledBack']);
      },
    },
  ]);
});

describe('retryDownloads', () => {
  const retrying = (o: Partial<NonNullable<RolloutStatus['retrying']>>) =>
    rollout({ retrying: { batch: 1, instanceIds: ['i-3'], attempt: 2, notBefore: ago(1_000), ...o } });
  table(retryDownloads, [
    { name: 'nothing to retry', setup: { rollout: rollout() }, want: 'next' },
    { name: 'already sent', setup: { rollout: retrying({ sent: true }) }, want: 'next' },
    {
      name: 'backoff not over',
      setup: { rollout: retrying({ notBefore: new Date(NOW.getTime() + 5_000).toISOString() }) },
      want: 'stop',
      check: (s) => expect(s.wakeAtMs).toBe(NOW.getTime() + 5_000),
    },
    {
      name: 'due: re-sent as part of its batch with its own token',
      setup: { rollout: retrying({}) },
      want: 'stop',
      check: (s, rec) => {
        expect(rec.starts).toMatchObject([
          { action: 'deploy', instanceIds: ['i-3'], round: 1, tokenScope: 'r2/2/retry2' },
        ]);
        expect(s.rollout?.retrying?.sent).toBe(true);
      },
    },
    {
      name: 'unreachable by now: dropped',
      setup: { rollout: retrying({}), unreachable: ['i-3'] },
      want: 'next',
      check: (s) => expect(s.rollout?.retrying).toBeUndefined(),
    },
  ]);
});

describe('complete', () => {
  table(complete, [
    { name: 'instances pending', setup: { rollout: rollout(), tags: { 'i-1': 'r2' } }, want: 'next' },
    {
      name: 'a download retry waits',
      setup: {
        rollout: rollout({ retrying: { batch: 0, instanceIds: ['i-1'], attempt: 2, notBefore: ago(0) } }),
        tags: allTagged('r2'),
      },
      want: 'next',
    },
    {
      name: 'nothing pending: Succeeded, the revision is stable and kept redeployable',
      setup: { rollout: rollout(), tags: allTagged('r2'), stable: 'r1', phase: 'Progressing' },
      want: 'stop',
      check: (s, rec) => {
        expect(s.phase).toBe('Succeeded');
        expect(s.stable).toBe('r2');
        expect(s.stableRelease).toMatchObject({
          revision: 'r2',
          artifact: { url: 'https://example.com/web-2.tar.gz' },
        });
        expect(s.history[0]?.result).toBe('Succeeded');
        expect(rec.events).toEqual(['RolloutSucceeded']);
      },
    },
    {
      name: 'an enrolment does not touch the stable revision',
      setup: { rollout: rollout({ enrol: true }), tags: allTagged('r2'), stable: 'r1' },
      want: 'stop',
      check: (s) => expect(s.stable).toBe('r1'),
    },
  ]);
});

describe('enrol', () => {
  table(enrol, [
    { name: 'not Succeeded', setup: { rollout: rollout(), phase: 'Progressing' }, want: 'next' },
    {
      name: 'Succeeded with a new instance: an enrolment (keeps the batch rows)',
      setup: {
        rollout: rollout({
          nextBatch: 3,
          batches: [{ index: 2, size: 2, phase: 'Succeeded', invokeIds: ['t-2'] }],
        }),
        phase: 'Succeeded',
        stable: 'r2',
      },
      want: 'next',
      check: (s) => {
        expect(s.rollout).toMatchObject({ enrol: true, nextBatch: 3, sequence: 3 });
        expect(s.phase).toBe('Progressing');
      },
    },
  ]);
});

describe('canaryPause', () => {
  const canary = { strategy: { batchSize: 2, canary: { instances: 1, pause: true } } };
  const done = rollout({
    nextBatch: 1,
    batches: [{ index: 0, size: 1, phase: 'Succeeded', invokeIds: ['t-0'] }],
  });
  table(canaryPause, [
    { name: 'no canary', setup: { rollout: done }, want: 'next' },
    {
      name: 'canary still running',
      setup: {
        rollout: rollout({ batches: [{ index: 0, size: 1, phase: 'Running', invokeIds: ['t-0'] }] }),
        spec: canary,
      },
      want: 'next',
    },
    {
      name: 'the pause begins; a promote set before it is taken as handled',
      setup: {
        rollout: structuredClone(done),
        spec: canary,
        annotations: { [PROMOTE_REQUESTED_ANNOTATION]: 'early' },
      },
      want: 'stop',
      check: (s, rec) => {
        expect(s.phase).toBe('Paused');
        expect(s.rollout).toMatchObject({ pauseReason: 'canary', pausedAt: ago(0), promoteHandled: 'early' });
        expect(s.held?.reason).toBe('CanaryPause');
        expect(rec.events).toEqual(['RolloutPaused']);
      },
    },
    {
      name: 'a promote after the pause began continues',
      setup: {
        rollout: {
          ...structuredClone(done),
          pausedAt: ago(60_000),
          pauseReason: 'canary',
          promoteHandled: 'early',
        },
        spec: canary,
        annotations: { [PROMOTE_REQUESTED_ANNOTATION]: 'later' },
      },
      want: 'next',
      check: (s, rec) => {
        expect(s.rollout).toMatchObject({ canaryPromoted: true, promoteHandled: 'later' });
        expect(s.rollout?.pausedAt).toBeUndefined();
        expect(rec.events).toEqual(['RolloutPromoted']);
      },
    },
    {
      name: 'pauseDuration passed continues',
      setup: {
        rollout: { ...structuredClone(done), pausedAt: ago(61_000), pauseReason: 'canary' },
        spec: { strategy: { canary: { instances: 1, pauseDuration: '1m' } } },
      },
      want: 'next',
      check: (s) => expect(s.rollout?.canaryPromoted).toBe(true),
    },
  ]);
});

describe('specPause', () => {
  table(specPause, [
    {
      name: 'spec.paused holds',
      setup: { rollout: rollout(), spec: { paused: true } },
      want: 'stop',
      check: (s) => expect(s.held?.reason).toBe('PausedBySpec'),
    },
    {
      name: 'unpaused: resumes (paused time off the deadline)',
      setup: {
        rollout: rollout({ pausedAt: ago(60_000), pauseReason: 'spec', lastProgressTime: ago(70_000) }),
      },
      want: 'next',
      check: (s) => {
        expect(s.rollout?.pauseReason).toBeUndefined();
        expect(s.rollout?.lastProgressTime).toBe(ago(10_000));
      },
    },
    {
      name: 'an enrolment is never paused',
      setup: { rollout: rollout({ enrol: true }), spec: { paused: true } },
      want: 'next',
    },
  ]);
});

describe('pauseBetweenBatches', () => {
  const finished = rollout({
    batches: [{ index: 0, size: 2, phase: 'Succeeded', invokeIds: ['t-0'], finishTime: ago(10_000) }],
  });
  table(pauseBetweenBatches, [
    { name: 'no pause configured', setup: { rollout: finished }, want: 'next' },
    {
      name: '30s after a batch that finished 10s ago',
      setup: { rollout: finished, spec: { strategy: { pauseBetweenBatches: '30s' } } },
      want: 'stop',
      check: (s) => expect(s.wakeAtMs).toBe(NOW.getTime() + 20_000),
    },
  ]);
});

describe('nextBatch', () => {
  table(nextBatch, [
    {
      name: 'the canary first (its size), pending in target order',
      setup: {
        rollout: rollout(),
        tags: { 'i-1': 'r2' },
        spec: { strategy: { batchSize: 2, canary: { instances: 1 } } },
      },
      want: 'stop',
      check: (s, rec) => {
        expect(rec.starts).toEqual([
          {
            action: 'deploy',
            instanceIds: ['i-2', 'i-3', 'i-4'],
            round: 0,
            tokenScope: 'r2/2',
            describe: 'deploy web 2.0.0',
            limit: 1,
          },
        ]);
        expect(s.rollout?.batches).toEqual([]); // a row appears with the first invocation
      },
    },
    {
      name: 'later batches take batchSize; failed and retrying instances wait',
      setup: {
        rollout: rollout({
          nextBatch: 2,
          retrying: { batch: 1, instanceIds: ['i-4'], attempt: 2, notBefore: ago(0), sent: true },
        }),
        failed: { 'i-3': 'deploy failed at step start' },
      },
      want: 'stop',
      check: (_s, rec) =>
        expect(rec.starts).toMatchObject([{ instanceIds: ['i-1', 'i-2'], round: 2, limit: 2 }]),
    },
  ]);
});
