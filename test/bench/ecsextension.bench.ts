/**
 * EcsExtension controller scale benchmark: `npx tsx test/bench/ecsextension.bench.ts`.
 *
 * Drives the REAL `EcsExtensionReconciler` with the REAL cloud layer (`createCloudClients`: the
 * openapi-core SDK, ACS3 signatures, p-queue rate limiter, retries) against the built-in OOS/ECS
 * emulator, WITHOUT Kubernetes: an in-memory `KubeWriter` stores each patched status back into
 * the object (and, like the real `StatusPatcher`, skips writes that change nothing), events go to
 * a no-op sink, and `DomainMetrics` sits on a private prom-client Registry.
 *
 * For fleets of 100 (baseline), 1,000 and 5,000 instances targeted by `spec.targets.instanceIds`:
 *  - cold converge: from an empty fleet until Ready=True, calling reconcile() in a loop and
 *    honouring `requeueAfterMs` by sleeping min(requeueAfterMs, 50) milliseconds;
 *  - steady-state drift check: one reconcile with everything installed (3 repetitions, median).
 * Each is measured for wall time, reconciles, cloud requests per action (emulator
 * `requestCounts()`), executions started (`ecsops_executions_started_total`), status writes, and
 * heap / RSS, with ratios against the 100-instance baseline. One more run at the default cloud
 * qps (20) on the largest fleet shows the rate limiter's effect; it is cut at a time cap and
 * reported as requests per second achieved plus a projection.
 *
 * Process layout: the parent starts the emulator in-process (timeScale 0.001) and runs each
 * scenario's controller side in a child Node.js process, so that peak RSS and heap are the
 * controller's alone (not the emulator's fleet state) and a capped run can be ended by killing
 * that one child by its PID. Every loop is bounded by count and by time; all traffic stays on
 * 127.0.0.1. Results: bench/results/ecsextension.md and .json.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, platform, totalmem } from 'node:os';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { format } from 'prettier';
import type { Registry } from 'prom-client';
import {
  CONFIGURE_PACKAGE_TEMPLATE,
  type EcsExtension,
  type EcsExtensionStatus,
} from '../../src/api/ecsextension.js';
import { createCloudClients } from '../../src/cloud/index.js';
import { EcsExtensionReconciler, type EventSink } from '../../src/controllers/ecsextension/reconciler.js';
import { fleetSeed, MemoryStore } from '../harness/fast.js';
import { DomainMetrics } from '../../src/controllers/shared/metrics.js';
import { DEMO_ACCESS_KEY, EmulatorControl, startEmulator, type Seed } from '../../src/emulator/index.js';
import { createRegistry } from '../../src/metrics/index.js';
import type { ReconcileContext } from '../../src/runtime/controller.js';
import { createLogger } from '../../src/runtime/logger.js';
import { sanitizeText } from '../../src/runtime/sanitize.js';

const REGION = 'cn-hangzhou';
const NODE_PACKAGE = 'ACS-Extension-node-1853370294850618';
const TIME_SCALE = 0.001;
/** Cloud qps of the main runs; `ECSOPS_BENCH_FAST_QPS` overrides it (to check it does not dominate). */
const FAST_QPS = Number(process.env.ECSOPS_BENCH_FAST_QPS ?? 1000);
const DEFAULT_QPS = 20;
/** Cap on the sleep between reconciles, milliseconds (requeueAfterMs is honoured up to this). */
const MAX_REQUEUE_SLEEP_MS = 50;
const DRIFT_REPEATS = 3;
/** Wall-clock cap of the default-qps run, milliseconds (it would need minutes to converge). */
const SLOW_CAP_MS = 60_000;
const MAX_RECONCILES = 5_000;
const MB = 1024 * 1024;

/** One measured scenario: fleet size, cloud qps, and the time caps that bound it. */
interface ScenarioConfig {
  name: string;
  instances: number;
  qps: number;
  /** Bound on the cold-converge loop, milliseconds (checked between reconciles). */
  coldCapMs: number;
  /** The parent kills the child after this many milliseconds, whatever it is doing. */
  hardCapMs: number;
  endpoint: string;
  controlUrl: string;
}

interface PhaseResult {
  wallMs: number;
  reconciles: number;
  errors: number;
  errorSamples: string[];
  /** Authenticated emulator requests per action during the phase. */
  requests: Record<string, number>;
  requestTotal: number;
  executionsStarted: number;
  statusWrites: number;
  statusWritesSkipped: number;
  /** heapUsed after a forced GC at the start of the phase, MB. */
  heapStartMb: number;
  /** Highest sampled heapUsed during the phase, MB. */
  heapPeakMb: number;
  /** heapUsed after a forced GC at the end of the phase, MB (retained growth = end − start). */
  heapEndMb: number;
  ready: boolean;
  timedOut: boolean;
}

interface DriftResult extends PhaseResult {
  /** Wall time of each repetition, milliseconds. */
  runsMs: number[];
  medianMs: number;
  /** Requests of one drift-check reconcile (total / repetitions). */
  requestsPerReconcile: Record<string, number>;
}

interface ScenarioResult {
  config: Omit<ScenarioConfig, 'endpoint' | 'controlUrl'>;
  completed: boolean;
  /** Set when the parent had to kill the child at `hardCapMs`. */
  killedAtMs?: number;
  cold?: PhaseResult;
  drift?: DriftResult;
  /** Requests served while the run was cut short (killed runs only). */
  partial?: { elapsedMs: number; requests: Record<string, number>; requestTotal: number; reconciles: number };
  rssStartMb?: number;
  rssPeakMb?: number;
  /** Size of the final status as JSON, bytes (what a status patch / watch event carries). */
  statusBytes?: number;
  summary?: EcsExtensionStatus['summary'];
  statusInstanceRows?: number;
}

// ---------------------------------------------------------------------------------------------
// Child: one scenario's controller side.
// ---------------------------------------------------------------------------------------------

const noEvents: EventSink = { event: async () => undefined };

function gcNow(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function heapMb(): number {
  return process.memoryUsage().heapUsed / MB;
}

function emit(kind: 'PROGRESS' | 'RESULT', payload: unknown): void {
  process.stdout.write(`${kind} ${JSON.stringify(payload)}\n`);
}

function total(counts: Record<string, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

async function executionsStarted(registry: Registry): Promise<number> {
  const metric = registry.getSingleMetric('ecsops_executions_started_total');
  const value = metric ? await metric.get() : undefined;
  return (value?.values ?? []).reduce((a, v) => a + v.value, 0);
}

function isReady(obj: EcsExtension): boolean {
  const ready = obj.status?.conditions?.find((c) => c.type === 'Ready');
  return ready?.status === 'True' && obj.status?.observedGeneration === obj.metadata.generation;
}

/** Samples heapUsed every 20 ms while running; `stop()` returns the peak in MB. */
function heapSampler(): { stop(): number } {
  let peak = heapMb();
  const timer = setInterval(() => {
    peak = Math.max(peak, heapMb());
  }, 20);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, heapMb());
    },
  };
}

async function runChild(cfg: ScenarioConfig): Promise<void> {
  const rssStartMb = process.memoryUsage().rss / MB;
  const control = new EmulatorControl(cfg.controlUrl);
  const registry = createRegistry({ defaultMetrics: false });
  const metrics = new DomainMetrics(registry, {
    [CONFIGURE_PACKAGE_TEMPLATE]: ['install', 'update', 'uninstall'],
  });
  const cloud = createCloudClients(
    {
      endpointOverride: { oos: cfg.endpoint, ecs: cfg.endpoint },
      protocol: 'HTTP',
      qps: cfg.qps,
      credential: { accessKeyId: DEMO_ACCESS_KEY.id, accessKeySecret: DEMO_ACCESS_KEY.secret },
      retryBaseDelayMs: 20,
      retryMaxDelayMs: 200,
    },
    { registry },
  );
  const kube = new MemoryStore<EcsExtension>();
  let obj: EcsExtension = kube.apply({
    apiVersion: 'ecsops.io/v1alpha1',
    kind: 'EcsExtension',
    metadata: { name: 'bench', namespace: 'bench', uid: randomUUID(), generation: 1 },
    spec: {
      regionId: REGION,
      packageName: NODE_PACKAGE,
      parameters: { version: '18' },
      targets: { instanceIds: fleetIds(cfg.instances) },
    },
  });
  const current = (): EcsExtension => (obj = kube.get('bench', 'bench') ?? obj);
  const reconciler = new EcsExtensionReconciler({
    objects: kube,
    kube,
    cloud,
    events: noEvents,
    metrics,
  });
  // Warnings (e.g. a dropped execution) go to stderr; stdout carries only PROGRESS/RESULT lines.
  const log = createLogger({ level: 'warn', destination: pino.destination({ dest: 2, sync: true }) });
  const ctx = (): ReconcileContext => {
    const reconcileID = randomUUID();
    return {
      log: log.child({ controller: 'ecsextension', namespace: 'bench', name: 'bench', reconcileID }),
      reconcileID,
      signal: new AbortController().signal,
    };
  };
  const req = { namespace: 'bench', name: 'bench' };

  const startPhase = async () => {
    await control.resetRequestCounts();
    gcNow();
    return {
      heapStartMb: heapMb(),
      started: await executionsStarted(registry),
      writes: kube.writes,
      skipped: kube.skipped,
      sampler: heapSampler(),
      t0: performance.now(),
    };
  };
  const endPhase = async (
    p: Awaited<ReturnType<typeof startPhase>>,
    extra: { reconciles: number; errors: number; errorSamples: string[]; timedOut: boolean },
  ): Promise<PhaseResult> => {
    const wallMs = performance.now() - p.t0;
    const heapPeakMb = p.sampler.stop();
    const requests = await control.requestCounts();
    gcNow();
    return {
      wallMs,
      ...extra,
      requests,
      requestTotal: total(requests),
      executionsStarted: (await executionsStarted(registry)) - p.started,
      statusWrites: kube.writes - p.writes,
      statusWritesSkipped: kube.skipped - p.skipped,
      heapStartMb: p.heapStartMb,
      heapPeakMb,
      heapEndMb: heapMb(),
      ready: isReady(current()),
    };
  };

  // Cold converge: reconcile until Ready=True, bounded by MAX_RECONCILES and coldCapMs.
  const cold = await startPhase();
  const deadline = Date.now() + cfg.coldCapMs;
  let reconciles = 0;
  let errors = 0;
  const errorSamples: string[] = [];
  const progress = setInterval(
    () => emit('PROGRESS', { phase: 'cold', elapsedMs: performance.now() - cold.t0, reconciles }),
    1000,
  );
  progress.unref();
  emit('PROGRESS', { phase: 'cold', elapsedMs: 0, reconciles });
  while (reconciles < MAX_RECONCILES && Date.now() < deadline) {
    let requeueAfterMs = MAX_REQUEUE_SLEEP_MS;
    try {
      const result = await reconciler.reconcile(req, ctx());
      requeueAfterMs = result.requeueAfterMs ?? MAX_REQUEUE_SLEEP_MS;
    } catch (err) {
      errors++;
      if (errorSamples.length < 3) errorSamples.push(sanitizeText(String(err)).slice(0, 300));
    }
    reconciles++;
    if (isReady(current())) break;
    await sleep(Math.min(requeueAfterMs, MAX_REQUEUE_SLEEP_MS));
  }
  clearInterval(progress);
  const coldResult = await endPhase(cold, {
    reconciles,
    errors,
    errorSamples,
    timedOut: !isReady(current()),
  });
  emit('PROGRESS', { phase: 'cold-done', elapsedMs: coldResult.wallMs, reconciles });

  let driftResult: DriftResult | undefined;
  if (coldResult.ready) {
    const drift = await startPhase();
    const runsMs: number[] = [];
    let driftErrors = 0;
    const driftSamples: string[] = [];
    for (let i = 0; i < DRIFT_REPEATS; i++) {
      // A drift check re-reads everything: the controller does that once `spec.interval` has
      // passed since the last full read, or on a reconcile request. Use the latter so the
      // measured reconcile is the periodic drift check, not a cached poll.
      kube.annotate('bench', 'bench', { 'ecsops.io/reconcile-requested-at': `bench-drift-${i}` });
      const t = performance.now();
      try {
        await reconciler.reconcile(req, ctx());
      } catch (err) {
        driftErrors++;
        if (driftSamples.length < 3) driftSamples.push(sanitizeText(String(err)).slice(0, 300));
      }
      runsMs.push(performance.now() - t);
    }
    const phase = await endPhase(drift, {
      reconciles: DRIFT_REPEATS,
      errors: driftErrors,
      errorSamples: driftSamples,
      timedOut: false,
    });
    const sorted = [...runsMs].sort((a, b) => a - b);
    driftResult = {
      ...phase,
      runsMs,
      medianMs: sorted[Math.floor(sorted.length / 2)] ?? 0,
      requestsPerReconcile: Object.fromEntries(
        Object.entries(phase.requests).map(([k, v]) => [k, v / DRIFT_REPEATS]),
      ),
    };
  }

  const result: ScenarioResult = {
    config: scenarioPublic(cfg),
    completed: coldResult.ready,
    cold: coldResult,
    ...(driftResult ? { drift: driftResult } : {}),
    rssStartMb,
    rssPeakMb: (process.resourceUsage().maxRSS * 1024) / MB,
    statusBytes: Buffer.byteLength(JSON.stringify(current().status ?? {})),
    summary: obj.status?.summary,
    statusInstanceRows: obj.status?.instances?.length ?? 0,
  };
  emit('RESULT', result);
}

// ---------------------------------------------------------------------------------------------
// Parent: emulator, one child per scenario, report.
// ---------------------------------------------------------------------------------------------

/** The emulator's generated fleet IDs `i-bench0001…` (width max(4, digits of the last index)). */
function fleetIds(count: number): string[] {
  const width = Math.max(4, String(count).length);
  return Array.from({ length: count }, (_, i) => `i-bench${String(i + 1).padStart(width, '0')}`);
}

/** `count` running, Cloud Assistant online instances `i-bench…` plus the node package template (v1, v2). */
function benchSeed(count: number): Seed {
  return fleetSeed('bench', count);
}

function scenarioPublic(cfg: ScenarioConfig): ScenarioResult['config'] {
  const { endpoint: _e, controlUrl: _c, ...rest } = cfg;
  return rest;
}

/** Runs one scenario: emulator here, controller in a child process killed at `hardCapMs`. */
async function runScenario(base: Omit<ScenarioConfig, 'endpoint' | 'controlUrl'>): Promise<ScenarioResult> {
  const emu = await startEmulator({ timeScale: TIME_SCALE, seed: benchSeed(base.instances) });
  const cfg: ScenarioConfig = { ...base, endpoint: emu.endpoint, controlUrl: emu.controlUrl };
  try {
    const child = spawn(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), '--scenario', JSON.stringify(cfg)],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    let result: ScenarioResult | undefined;
    let last: { phase: string; elapsedMs: number; reconciles: number } | undefined;
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      if (line.startsWith('RESULT ')) result = JSON.parse(line.slice(7)) as ScenarioResult;
      else if (line.startsWith('PROGRESS ')) {
        last = JSON.parse(line.slice(9)) as typeof last;
        process.stderr.write(`  ${cfg.name}: ${line.slice(9)}\n`);
      }
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let killedAtMs: number | undefined;
    const t0 = performance.now();
    const timer = setTimeout(() => {
      killedAtMs = performance.now() - t0;
      child.kill('SIGKILL');
    }, cfg.hardCapMs);
    const code = await exited;
    clearTimeout(timer);
    lines.close();
    if (result) return result;
    if (killedAtMs === undefined) {
      throw new Error(`scenario ${cfg.name} child exited with code ${code}: ${sanitizeText(stderr)}`);
    }
    const requests = await emu.control.requestCounts();
    return {
      config: base,
      completed: false,
      killedAtMs,
      partial: {
        elapsedMs: last?.elapsedMs ?? killedAtMs,
        requests,
        requestTotal: total(requests),
        reconciles: last?.reconciles ?? 0,
      },
    };
  } finally {
    await emu.stop();
  }
}

const fmt = (n: number | undefined, digits = 0): string =>
  n === undefined || !Number.isFinite(n)
    ? '—'
    : n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

function ratio(a: number | undefined, b: number | undefined): number | undefined {
  return a !== undefined && b !== undefined && b > 0 ? a / b : undefined;
}

async function runParent(): Promise<void> {
  const started = new Date();
  const plan: Array<Omit<ScenarioConfig, 'endpoint' | 'controlUrl'>> = [
    {
      name: `100 @ qps ${FAST_QPS} (baseline)`,
      instances: 100,
      qps: FAST_QPS,
      coldCapMs: 60_000,
      hardCapMs: 90_000,
    },
    {
      name: `1,000 @ qps ${FAST_QPS}`,
      instances: 1_000,
      qps: FAST_QPS,
      coldCapMs: 60_000,
      hardCapMs: 90_000,
    },
    {
      name: `5,000 @ qps ${FAST_QPS}`,
      instances: 5_000,
      qps: FAST_QPS,
      coldCapMs: 90_000,
      hardCapMs: 120_000,
    },
    {
      name: `5,000 @ qps ${DEFAULT_QPS} (default)`,
      instances: 5_000,
      qps: DEFAULT_QPS,
      coldCapMs: SLOW_CAP_MS,
      hardCapMs: SLOW_CAP_MS,
    },
  ];
  const results: ScenarioResult[] = [];
  for (const s of plan) {
    process.stderr.write(`running ${s.name}\n`);
    results.push(await runScenario(s));
  }

  const [base] = results;
  const rows = results.map((r) => {
    const n = r.config.instances;
    return {
      name: r.config.name,
      instances: n,
      qps: r.config.qps,
      completed: r.completed,
      instanceRatio: ratio(n, base?.config.instances),
      coldTimeRatio: ratio(r.cold?.wallMs, base?.cold?.wallMs),
      coldRequestRatio: ratio(r.cold?.requestTotal, base?.cold?.requestTotal),
      driftTimeRatio: ratio(r.drift?.medianMs, base?.drift?.medianMs),
      driftRequestRatio: ratio(
        r.drift ? r.drift.requestTotal / DRIFT_REPEATS : undefined,
        base?.drift ? base.drift.requestTotal / DRIFT_REPEATS : undefined,
      ),
    };
  });

  // Projection for the capped default-qps run: the same request count (from the fast run of the
  // same size) spread over the measured request rate.
  const fastLargest = results.find((r) => r.config.instances === 5_000 && r.config.qps === FAST_QPS);
  const slow = results.find((r) => r.config.qps === DEFAULT_QPS);
  const slowRate = slow?.partial ? (slow.partial.requestTotal * 1000) / slow.partial.elapsedMs : undefined;
  const projection =
    slow?.partial && fastLargest?.cold && slowRate
      ? {
          measuredRequestsPerSecond: slowRate,
          elapsedMs: slow.partial.elapsedMs,
          requestsServed: slow.partial.requestTotal,
          projectedColdConvergeS: fastLargest.cold.requestTotal / slowRate,
          projectedDriftCheckS: fastLargest.drift
            ? fastLargest.drift.requestTotal / DRIFT_REPEATS / slowRate
            : undefined,
        }
      : undefined;

  const actions = [
    ...new Set(
      results.flatMap((r) => [
        ...Object.keys(r.cold?.requests ?? {}),
        ...Object.keys(r.drift?.requests ?? {}),
      ]),
    ),
  ].sort();
  const done = results.filter((r) => r.cold);
  const cpu = cpus();
  const md: string[] = [
    '# EcsExtension controller scale benchmark',
    '',
    `Run: ${started.toISOString()} · Node ${process.version} · ${platform()} · ${cpu.length} cores (${cpu[0]?.model ?? 'unknown'}) · ${fmt(totalmem() / 1024 ** 3, 1)} GiB RAM.`,
    `Real \`EcsExtensionReconciler\` + real cloud layer (openapi-core SDK, ACS3 signing, p-queue limiter, concurrency 10 per product/region) against the in-repo emulator (timeScale ${TIME_SCALE}: a package install takes 20 ms per instance, OOS rateControl concurrency 10, 50 instances per execution). No Kubernetes: in-memory status writer, no-op events, real DomainMetrics. The emulator runs in the benchmark process; each scenario's controller side runs in its own child process, so memory figures are the controller's alone. Reconcile loop sleeps min(requeueAfterMs, ${MAX_REQUEUE_SLEEP_MS} ms). Spec: \`targets.instanceIds\` = the whole fleet, \`parameters.version: "18"\`, latest package version.`,
    '',
    '## Cold converge (empty fleet → Ready=True)',
    '',
    '| scenario | instances | wall s | reconciles | cloud requests | executions started | status writes (skipped) | peak heap Δ MB | retained heap Δ MB | peak RSS MB (start) | × instances | × time | × requests |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...results.map((r, i) => {
      const c = r.cold;
      const row = rows[i];
      if (!c) {
        return `| ${r.config.name} | ${fmt(r.config.instances)} | cut at ${fmt((r.killedAtMs ?? 0) / 1000, 0)} s, not converged | ${fmt(r.partial?.reconciles)} | ${fmt(r.partial?.requestTotal)} served | — | — | — | — | — | ${fmt(row?.instanceRatio)} | — | — |`;
      }
      return `| ${r.config.name} | ${fmt(r.config.instances)} | ${fmt(c.wallMs / 1000, 2)}${c.ready ? '' : ' (not Ready)'} | ${c.reconciles} | ${fmt(c.requestTotal)} | ${c.executionsStarted} | ${c.statusWrites} (${c.statusWritesSkipped}) | ${fmt(c.heapPeakMb - c.heapStartMb, 1)} | ${fmt(c.heapEndMb - c.heapStartMb, 1)} | ${fmt(r.rssPeakMb, 0)} (${fmt(r.rssStartMb, 0)}) | ${fmt(row?.instanceRatio)} | ${fmt(row?.coldTimeRatio, 2)} | ${fmt(row?.coldRequestRatio, 2)} |`;
    }),
    '',
    `## Steady-state drift check (everything installed; one reconcile, median of ${DRIFT_REPEATS})`,
    '',
    '| scenario | instances | median ms | runs ms | cloud requests / reconcile | executions started | peak heap Δ MB | × instances | × time | × requests |',
    '|---|---:|---:|---|---:|---:|---:|---:|---:|---:|',
    ...results
      .filter((r) => r.drift)
      .map((r) => {
        const d = r.drift as DriftResult;
        const row = rows[results.indexOf(r)];
        return `| ${r.config.name} | ${fmt(r.config.instances)} | ${fmt(d.medianMs, 1)} | ${d.runsMs.map((x) => fmt(x, 0)).join(', ')} | ${fmt(d.requestTotal / DRIFT_REPEATS)} | ${d.executionsStarted} | ${fmt(d.heapPeakMb - d.heapStartMb, 1)} | ${fmt(row?.instanceRatio)} | ${fmt(row?.driftTimeRatio, 2)} | ${fmt(row?.driftRequestRatio, 2)} |`;
      }),
    '',
    '## Cloud requests per action',
    '',
    `| action | ${done.map((r) => `${r.config.name}: cold`).join(' | ')} | ${done
      .filter((r) => r.drift)
      .map((r) => `${r.config.name}: drift / reconcile`)
      .join(' | ')} |`,
    `|---|${done.map(() => '---:').join('|')}|${done
      .filter((r) => r.drift)
      .map(() => '---:')
      .join('|')}|`,
    ...actions.map(
      (a) =>
        `| ${a} | ${done.map((r) => fmt(r.cold?.requests[a] ?? 0)).join(' | ')} | ${done
          .filter((r) => r.drift)
          .map((r) => fmt(r.drift?.requestsPerReconcile[a] ?? 0))
          .join(' | ')} |`,
    ),
    '',
  ];
  if (projection) {
    md.push(
      '## Default cloud qps (20) on 5,000 instances',
      '',
      `The run was cut after ${fmt(projection.elapsedMs / 1000, 0)} s having had ${fmt(projection.requestsServed)} requests served (≈${fmt(projection.measuredRequestsPerSecond, 0)} requests/s; the limiter allows 20/s per product and region, and the phases call ECS and OOS one after the other). At that rate the cold converge's ${fmt(fastLargest?.cold?.requestTotal)} requests take about **${fmt(projection.projectedColdConvergeS, 0)} s**, and one steady-state drift check about **${fmt(projection.projectedDriftCheckS, 0)} s** — every ${'`spec.interval`'} (default 10 m) per 5,000-instance resource. The reads enter the per-region FIFO limiter queue all at once (Promise.all), so any other resource's OOS call in that region waits behind them (the cap is per process, per product and region, shared by all resources and workers).`,
      '',
    );
  }
  md.push(...whatThisShows(results, rows, projection), '');
  const json = {
    date: started.toISOString(),
    node: process.version,
    platform: platform(),
    cores: cpu.length,
    cpuModel: cpu[0]?.model,
    totalMemBytes: totalmem(),
    settings: {
      timeScale: TIME_SCALE,
      fastQps: FAST_QPS,
      defaultQps: DEFAULT_QPS,
      maxRequeueSleepMs: MAX_REQUEUE_SLEEP_MS,
      driftRepeats: DRIFT_REPEATS,
    },
    scenarios: results,
    ratios: rows,
    defaultQpsProjection: projection,
  };
  const dir = fileURLToPath(new URL('../../bench/results/', import.meta.url));
  await mkdir(dir, { recursive: true });
  await writeFile(`${dir}ecsextension.md`, `${md.join('\n')}\n`);
  // Formatted by Prettier so `npm run lint` (prettier --check .) accepts the file as written.
  await writeFile(`${dir}ecsextension.json`, await format(JSON.stringify(json), { parser: 'json' }));
  process.stdout.write(`${md.join('\n')}\n`);
}

type Row = {
  instanceRatio?: number;
  coldTimeRatio?: number;
  coldRequestRatio?: number;
  driftTimeRatio?: number;
  driftRequestRatio?: number;
};

/** The "what this shows" section, with its numbers taken from this run. */
function whatThisShows(
  results: ScenarioResult[],
  rows: Row[],
  projection:
    | { projectedColdConvergeS: number; projectedDriftCheckS?: number; measuredRequestsPerSecond: number }
    | undefined,
): string[] {
  const i = results.findIndex((r) => r.config.instances === 5_000 && r.config.qps === FAST_QPS);
  const big = results[i];
  const row = rows[i];
  const base = results[0];
  if (!big?.cold || !big.drift || !row || !base?.cold) return [];
  const pct = (part: number | undefined, whole: number) => fmt(((part ?? 0) * 100) / whole, 0);
  const perPoll = big.drift.requestsPerReconcile;
  return [
    '## What this shows',
    '',
    `- **Cost is linear in the fleet size, and so is cloud traffic.** From 100 to 5,000 instances (×50) the cold converge took ×${fmt(row.coldTimeRatio, 1)} the time for ×${fmt(row.coldRequestRatio, 1)} the requests, and the drift check ×${fmt(row.driftTimeRatio, 1)} the time for ×${fmt(row.driftRequestRatio, 1)} the requests (${fmt(big.drift.medianMs / big.config.instances, 2)} ms per instance here, where the client's signing + HTTP and the emulator share 2 cores). The drift check's time follows its request count (within the ±10 % run-to-run noise seen here); the cold converge's time grows slower than its requests because the baseline carries fixed costs (one more poll reconcile and its sleep, GetTemplate, adoption ListExecutions).`,
    `- **One OOS ListInstancePackageStates per instance dominates.** The API takes a single \`InstanceId\`, so a drift check issues ${fmt(perPoll['ListInstancePackageStates'])} of them (${pct(perPoll['ListInstancePackageStates'], big.drift.requestTotal / DRIFT_REPEATS)} % of its requests), and a cold converge ${fmt(big.cold.requests['ListInstancePackageStates'])} (${pct(big.cold.requests['ListInstancePackageStates'], big.cold.requestTotal)} %): each instance is read once before executions start; afterwards the per-instance results from ListTaskExecutions update the controller's cached state instead of a second read, and polls reuse the cached targets. A full re-read happens once per \`spec.interval\` (the drift check measured here) or on a reconcile request.`,
    `- **Everything else is per batch or per reconcile, not per instance:** ECS DescribeInstances (N/100) and DescribeCloudAssistantStatus (N/50) on every reconcile, issued one batch after another; GetTemplate once per reconcile (${big.cold.requests['GetTemplate'] ?? 0} in a ${big.cold.reconciles}-reconcile converge); 4 ListExecutions (one per active status) for adoption when nothing is tracked; one ListExecutions per tracked execution per poll (N/50, i.e. ${fmt(big.config.instances / 50)} per poll at 5,000, where one ListExecutions filtered by the owner tag would do); one ListTaskExecutions and one StartExecution per 50-instance batch.`,
    ...(projection
      ? [
          `- **At the default qps (20) the rate limiter sets the pace:** about ${fmt(projection.projectedColdConvergeS / 60, 1)} min to converge 5,000 instances and ${fmt((projection.projectedDriftCheckS ?? 0) / 60, 1)} min of the region's OOS budget for every drift check (≈${fmt(projection.measuredRequestsPerSecond, 0)} requests/s measured). With the default 10 m interval one such resource uses ~${fmt(((projection.projectedDriftCheckS ?? 0) / 600) * 100, 0)} % of the OOS request budget on drift checks alone; the controller itself needs ~${fmt(big.drift.medianMs / 1000, 1)} s of wall time for the same work at qps ${FAST_QPS}.`,
        ]
      : []),
    `- **Memory:** status stays bounded (${big.statusInstanceRows} rows, ${fmt(big.statusBytes)} bytes of JSON at 5,000 instances vs ${fmt(base.statusBytes)} at 100). Heap after a full GC was ${fmt(big.cold.heapEndMb - big.cold.heapStartMb, 0)} MB above the start after the cold converge and ${fmt(big.drift.heapEndMb - big.cold.heapStartMb, 0)} MB after the drift checks at 5,000 instances (${fmt(base.drift?.heapEndMb !== undefined ? base.drift.heapEndMb - base.cold.heapStartMb : undefined, 0)} MB at 100); what holds it was not analysed — the reconciler's per-resource package-state cache (one PackageState per instance, kept after convergence) is one holder. Peak heap (and RSS ${fmt(big.rssPeakMb, 0)} MB vs ${fmt(base.rssPeakMb, 0)} MB) is mostly short-lived SDK request/response garbage, proportional to the number of requests.`,
    `- At timeScale ${TIME_SCALE} an execution ends (≈100 ms) before the next poll, so cold converge needs only ${big.cold.reconciles}–${base.cold.reconciles} reconciles. With real install times there are more poll reconciles, and each one repeats target resolution (N/100 + N/50 ECS calls), GetTemplate and N/50 ListExecutions; package states are reused from the cache while executions run.`,
  ];
}

if (process.argv[2] === '--scenario') {
  await runChild(JSON.parse(process.argv[3] ?? '{}') as ScenarioConfig);
  // Keep-alive sockets and limiter timers would keep the child alive; the result is written.
  process.exit(0);
} else {
  await runParent();
}
