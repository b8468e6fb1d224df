/**
 * Drift-detection cost benchmark (issue 25), fast tier:
 * `npx tsx test/bench/drift.bench.ts [--resources N] [--instances N] [--intervals N]
 *   [--only steady,foreign,direct,tagged,per-instance,direct-no-trail] [--real-gap-ms MS] [--out DIR]`.
 *
 * The REAL EcsExtension reconciler and cloud layer against the in-process emulator over HTTP
 * (test/harness/fast.ts), with the harness's fake wall clock as the clock of the controller and of
 * the fleet view's data ages. `--resources` EcsExtensions (default 100), each targeting the
 * `--instances` instances (default 100) tagged `group=gNNN` (tag targets), default `spec.interval`
 * (10 m) and default full-resync period (`DEFAULT_FULL_RESYNC_MS`, 10 h); the package is already
 * installed through the emulator seed, so the fleet converges without executions.
 *
 * A scheduler stands in for the work queue: every resource is reconciled again when its
 * `requeueAfterMs` has passed on the fake clock (no jitter; 16 at a time, like
 * `--ecsextension-workers`), so each resource is reconciled once per interval in steady state and
 * at its poll delay while an execution runs. Before the fake clock jumps less than a minute
 * ahead the bench sleeps a little real time (the emulator runs modelled durations on real timers
 * at timeScale 0.001), and between intervals it sleeps `--real-gap-ms` (default 1,100 ms) so the
 * emulator's timestamps (real time, whole seconds) and the fleet's change-feed date filters
 * (`cloudNow`, default `Date.now`) move on between two feed reads.
 *
 * Phases (each bounded in intervals, reconciles and wall time):
 * - `steady`: from the first interval boundary after convergence, `--intervals` intervals
 *   (default full-resync period ÷ interval + 2 = 62, so every instance's per-instance re-read of
 *   the full resync falls inside the window): OOS calls by action (emulator request counters),
 *   OOS calls per instance per interval (the full sweep amortised inside), the busiest interval,
 *   ActionTrail and ECS calls, status writes (MemoryStore.writes: changed statuses only), peak RSS.
 * - `foreign`: an OOS StartExecution of the package template with `action: uninstall` by another
 *   caller (the demo key, no ecsops tags) on 10 instances of 10 different resources, right after
 *   an interval's reconciles; lag until the controller started an execution on each (detected) and
 *   until every one is installed again (repaired), fake-clock seconds and intervals.
 * - `direct`: a direct `UpdateInstancePackageState` (uninstall) on 1 instance (no execution
 *   record; ActionTrail `LookupEvents` is its only region-wide trace): the same lags.
 * - `tagged`: an instance not targeted by anything gets tag `group=g000` (control API, as another
 *   tool would tag it): lag until it is installed (enrolled).
 * - `per-instance`: every resource switched to `spec.driftDetection: PerInstance` (today's
 *   behaviour: every instance re-read each interval); after one interval to settle, the steady
 *   figures over 3 intervals — the comparison for the `steady` ratio.
 * - `direct-no-trail`: a second stack with `actionTrail: false` and `fullResyncMs` 1 h: the direct
 *   uninstall's lags, bounded by the full-resync period.
 *
 * Results: bench/results/drift.md and .json at the default size; `drift-<R>x<I>.*` otherwise.
 * The process's peak RSS includes the in-process emulator and its fleet state.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { format, resolveConfig } from 'prettier';
import type { EcsExtensionSpec } from '../../src/api/ecsextension.js';
import { ACTIONTRAIL_ACTIONS } from '../../src/cloud/actiontrail.js';
import { ECS_ACTIONS } from '../../src/cloud/ecs.js';
import { DEFAULT_FULL_RESYNC_MS } from '../../src/cloud/fleet.js';
import { OOS_ACTIONS } from '../../src/cloud/oos.js';
import type { CloudOptions } from '../../src/cloud/factory.js';
import { intervalMs } from '../../src/controllers/shared/driver.js';
import { CONFIGURE_PACKAGE_TEMPLATE, DEMO_ACCESS_KEY, type Seed } from '../../src/emulator/index.js';
import { sanitizeText } from '../../src/runtime/sanitize.js';
import { fleetSeed, isReady, NODE_PACKAGE, REGION, startFastStack, type FastStack } from '../harness/fast.js';
import { REPO_ROOT } from '../harness/paths.js';
import { call, sdkClient } from '../unit/emulator/helpers.js';

const INTERVAL_MS = intervalMs(undefined);
const WORKERS = 16;
const OWNER_TAG = 'ecsops.io/owner';
const MB = 1024 * 1024;
/** Wall-clock cap of the whole run; phases stop (reported as cut) once it has passed. */
const WALL_CAP_MS = 45 * 60_000;
/** Full-resync period of the `direct-no-trail` stack. */
const SHORT_RESYNC_MS = 3_600_000;
const PHASES = ['steady', 'foreign', 'direct', 'tagged', 'per-instance', 'direct-no-trail'] as const;
/** Intervals counted in the `per-instance` phase (after one to settle). */
const PER_INSTANCE_INTERVALS = 3;
type Phase = (typeof PHASES)[number];

interface Args {
  resources: number;
  instances: number;
  intervals: number;
  realGapMs: number;
  only: Set<Phase>;
  out: string;
  /** Whether this is the issue's size (results go to drift.md). */
  full: boolean;
}

function parseArgs(argv: string[]): Args {
  const arg = (name: string): string | undefined =>
    argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined;
  const num = (name: string, dflt: number): number => {
    const v = arg(name);
    const n = v === undefined ? dflt : Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got ${v}`);
    return n;
  };
  const only = arg('--only')?.split(',') ?? [...PHASES];
  const unknown = only.filter((p) => !(PHASES as readonly string[]).includes(p));
  if (unknown.length > 0)
    throw new Error(`unknown phase(s) ${unknown.join(', ')}; known: ${PHASES.join(', ')}`);
  const resources = num('--resources', 100);
  const instances = num('--instances', 100);
  return {
    resources,
    instances,
    intervals: num('--intervals', Math.ceil(DEFAULT_FULL_RESYNC_MS / INTERVAL_MS) + 2),
    realGapMs: Number(arg('--real-gap-ms') ?? 1_100),
    only: new Set(only as Phase[]),
    out: resolve(arg('--out') ?? join(REPO_ROOT, 'bench/results')),
    full: resources === 100 && instances === 100 && !argv.includes('--intervals') && !argv.includes('--only'),
  };
}

const group = (r: number): string => `g${String(r).padStart(3, '0')}`;
/** Instance `i` (1-based) of resource `r`, as the seed generates it. */
const instanceId = (r: number, i: number, width: number): string =>
  `i-${group(r)}x${String(i).padStart(width, '0')}`;
const NEW_INSTANCE = 'i-newx0001';

/**
 * `resources` groups of `instances` running, Cloud Assistant online instances tagged `group=gNNN`,
 * each with the node package (latest version, `version: 18`) installed, plus one untargeted
 * instance {@link NEW_INSTANCE} without the package (the `tagged` phase tags it).
 */
function driftSeed(resources: number, instances: number): Seed {
  const base = fleetSeed('unused', 0);
  const latest = base.packageTemplates?.[0]?.versions.at(-1)?.version;
  const installed = [
    { name: NODE_PACKAGE, ...(latest ? { version: latest } : {}), parameters: { version: '18' } },
  ];
  return {
    ...base,
    regions: {
      [REGION]: {
        generate: [
          ...Array.from({ length: resources }, (_, r) => ({
            count: instances,
            idPrefix: `i-${group(r)}x`,
            tags: [{ key: 'group', value: group(r) }],
            installed,
          })),
          { count: 1, idPrefix: 'i-newx', tags: [{ key: 'group', value: 'none' }] },
        ],
      },
    },
  };
}

/** Emulator request counters split by product. */
function byProduct(counts: Record<string, number>): {
  oos: Record<string, number>;
  ecs: Record<string, number>;
  actiontrail: Record<string, number>;
  other: Record<string, number>;
} {
  const out = { oos: {}, ecs: {}, actiontrail: {}, other: {} } as ReturnType<typeof byProduct>;
  for (const [action, n] of Object.entries(counts)) {
    const p =
      action in OOS_ACTIONS
        ? 'oos'
        : action in ECS_ACTIONS
          ? 'ecs'
          : action in ACTIONTRAIL_ACTIONS
            ? 'actiontrail'
            : 'other';
    out[p][action] = n;
  }
  return out;
}

const sum = (o: Record<string, number>): number => Object.values(o).reduce((a, b) => a + b, 0);
const minus = (a: Record<string, number>, b: Record<string, number>): Record<string, number> =>
  Object.fromEntries(
    Object.entries(a)
      .map(([k, v]) => [k, v - (b[k] ?? 0)] as const)
      .filter(([, v]) => v !== 0),
  );
const r2 = (n: number): number => Math.round(n * 100) / 100;
const r4 = (n: number): number => Math.round(n * 10_000) / 10_000;

/** Runs `fn` over `items`, at most `n` at a time. */
async function pool<T>(items: T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

/**
 * The resources of one stack and their requeue times on the fake clock: the work queue of the
 * controller, without jitter. Bounded by a reconcile budget and the run's wall-clock cap.
 */
class Scheduler {
  private readonly due = new Map<string, number>();
  reconciles = 0;
  errors = 0;
  readonly errorSamples: string[] = [];

  constructor(
    private readonly stack: FastStack,
    readonly names: string[],
    private readonly deadline: number,
    private readonly maxReconciles: number,
  ) {
    for (const n of names) this.due.set(n, stack.clock.now().getTime());
  }

  now(): number {
    return this.stack.clock.now().getTime();
  }

  /** Marks `name` due now (as a watch event would). */
  wake(name: string): void {
    this.due.set(name, this.now());
  }

  /**
   * Reconciles every resource whose requeue time is ≤ `tEnd` in time order, then moves the clock
   * to `tEnd`. After each batch `probe` runs (e.g. a lag check). @throws when the reconcile
   * budget or the wall-clock cap is exhausted.
   */
  async runUntil(tEnd: number, probe?: () => Promise<void>): Promise<void> {
    for (;;) {
      const next = Math.min(...this.due.values());
      if (next > tEnd) break;
      const now = this.now();
      if (next > now) {
        // A short requeue is a poll of running cloud work: let the emulator's timers run.
        if (next - now < 60_000) await sleep(Math.min(20, Math.max(2, (next - now) / 100)));
        this.stack.clock.advance(next - now);
      }
      const at = this.now();
      const batch = this.names.filter((n) => (this.due.get(n) ?? Infinity) <= at);
      await pool(batch, WORKERS, async (name) => {
        const step = await this.stack.reconcile(name);
        this.reconciles++;
        if (step.error) {
          this.errors++;
          if (this.errorSamples.length < 5)
            this.errorSamples.push(`${name}: ${sanitizeText(String(step.error)).slice(0, 300)}`);
        }
        const after = step.error ? 5_000 : (step.result?.requeueAfterMs ?? INTERVAL_MS);
        this.due.set(name, this.now() + Math.max(1, after));
      });
      await probe?.();
      if (this.reconciles > this.maxReconciles)
        throw new Error(`reconcile budget (${this.maxReconciles}) exhausted`);
      if (Date.now() > this.deadline) throw new Error('wall-clock cap reached');
    }
    if (tEnd > this.now()) this.stack.clock.advance(tEnd - this.now());
  }
}

/** A started stack, its resources and scheduler. */
interface Rig {
  stack: FastStack;
  sched: Scheduler;
  ids: (r: number, i: number) => string;
  width: number;
}

async function startRig(a: Args, cloud: Partial<CloudOptions>, deadline: number): Promise<Rig> {
  const stack = await startFastStack({ seed: driftSeed(a.resources, a.instances), cloud });
  const names: string[] = [];
  for (let r = 0; r < a.resources; r++) {
    const name = `r${String(r).padStart(3, '0')}`;
    stack.apply(name, { targets: { tags: [{ key: 'group', value: group(r) }] } });
    names.push(name);
  }
  const width = Math.max(4, String(a.instances).length);
  const sched = new Scheduler(stack, names, deadline, a.resources * 400 + 200_000);
  return { stack, sched, width, ids: (r, i) => instanceId(r, i, width) };
}

/** Reconciles until every resource is Ready (bounded by 60 fake-clock intervals). */
async function converge(rig: Rig): Promise<{ fakeS: number; wallS: number; calls: Record<string, number> }> {
  const t0 = rig.sched.now();
  const w0 = performance.now();
  const allReady = () => rig.sched.names.every((n) => isReady(rig.stack.get(n)));
  for (let k = 1; k <= 60 && !allReady(); k++) await rig.sched.runUntil(t0 + k * 10_000);
  if (!allReady()) {
    const notReady = rig.sched.names.filter((n) => !isReady(rig.stack.get(n)));
    throw new Error(
      `not all Ready after convergence: ${notReady.slice(0, 5).join(', ')} (${notReady.length})`,
    );
  }
  return {
    fakeS: (rig.sched.now() - t0) / 1000,
    wallS: (performance.now() - w0) / 1000,
    calls: await rig.stack.emu.control.requestCounts(),
  };
}

interface SteadyResult {
  intervals: number;
  intervalS: number;
  instances: number;
  resources: number;
  oos: Record<string, number>;
  oosTotal: number;
  oosPerInstancePerInterval: number;
  /** OOS calls of the busiest interval ÷ instances. */
  oosPerInstanceBusiestInterval: number;
  busiestInterval: number;
  /** OOS calls per interval, in order. */
  oosPerInterval: number[];
  ecs: Record<string, number>;
  actiontrail: Record<string, number>;
  ecsPerInstancePerInterval: number;
  statusWrites: number;
  statusWritesPerResourcePerInterval: number;
  /** Status fields that changed over the window (dotted paths, two levels), with how many resources' writes changed each. */
  statusFieldsChanged: Record<string, number>;
  intervalsWithStatusWrites: number;
  startExecutions: number;
  reconciles: number;
  errors: number;
  wallS: number;
}

/** Dotted paths (at most two levels) whose JSON differs between two statuses. */
function changedFields(a: unknown, b: unknown, prefix = '', depth = 2): string[] {
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  const isObj = (x: unknown): x is Record<string, unknown> =>
    typeof x === 'object' && x !== null && !Array.isArray(x);
  if (depth === 0 || !isObj(a) || !isObj(b)) return [prefix || '(status)'];
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].flatMap((k) =>
    changedFields(a[k], b[k], prefix ? `${prefix}.${k}` : k, depth - 1),
  );
}

/** `steady`: `intervals` intervals with nothing changing. */
async function steady(rig: Rig, a: Args, intervals: number, label: string): Promise<SteadyResult> {
  const { stack, sched } = rig;
  const control = stack.emu.control;
  const t0 = sched.now();
  const w0 = performance.now();
  const reconciles0 = sched.reconciles;
  const errors0 = sched.errors;
  const writes0 = stack.store.writes;
  await control.resetRequestCounts();
  const perInterval: number[] = [];
  let prev: Record<string, number> = {};
  let intervalsWithWrites = 0;
  const fieldsChanged: Record<string, number> = {};
  for (let k = 1; k <= intervals; k++) {
    const w = stack.store.writes;
    const before = new Map(sched.names.map((n) => [n, stack.get(n)?.status] as const));
    await sched.runUntil(t0 + k * INTERVAL_MS);
    if (stack.store.writes > w) {
      intervalsWithWrites++;
      for (const n of sched.names)
        for (const f of changedFields(before.get(n), stack.get(n)?.status))
          fieldsChanged[f] = (fieldsChanged[f] ?? 0) + 1;
    }
    const counts = await control.requestCounts();
    perInterval.push(sum(byProduct(minus(counts, prev)).oos));
    prev = counts;
    if (k % 10 === 0 || k === intervals)
      process.stderr.write(
        `  ${label}: interval ${k}/${intervals}, OOS calls so far ${sum(byProduct(counts).oos)}, ${r2((performance.now() - w0) / 1000)} s\n`,
      );
    if (a.realGapMs > 0) await sleep(a.realGapMs);
  }
  const counts = byProduct(await control.requestCounts());
  const n = a.resources * a.instances;
  const oosTotal = sum(counts.oos);
  const busiest = Math.max(...perInterval);
  const writes = stack.store.writes - writes0;
  return {
    intervals,
    intervalS: INTERVAL_MS / 1000,
    instances: n,
    resources: a.resources,
    oos: counts.oos,
    oosTotal,
    oosPerInstancePerInterval: r4(oosTotal / (n * intervals)),
    oosPerInstanceBusiestInterval: r4(busiest / n),
    busiestInterval: perInterval.indexOf(busiest) + 1,
    oosPerInterval: perInterval,
    ecs: counts.ecs,
    actiontrail: counts.actiontrail,
    ecsPerInstancePerInterval: r4(sum(counts.ecs) / (n * intervals)),
    statusWrites: writes,
    statusWritesPerResourcePerInterval: r4(writes / (a.resources * intervals)),
    statusFieldsChanged: fieldsChanged,
    intervalsWithStatusWrites: intervalsWithWrites,
    startExecutions: counts.oos['StartExecution'] ?? 0,
    reconciles: sched.reconciles - reconciles0,
    errors: sched.errors - errors0,
    wallS: r2((performance.now() - w0) / 1000),
  };
}

interface LagResult {
  phase: Phase;
  what: string;
  instances: string[];
  /** Fake-clock seconds from the change to the first ecsops execution on every instance; null: not within the bound. */
  detectedS: number | null;
  /** Fake-clock seconds from the change until every instance has the package again. */
  repairedS: number | null;
  detectedIntervals: number | null;
  repairedIntervals: number | null;
  boundIntervals: number;
  /** OOS calls by action from the change to the end of the phase (the injected call excluded). */
  oos: Record<string, number>;
  actiontrail: Record<string, number>;
  intervalsRun: number;
  wallS: number;
}

/**
 * Makes a change right after an interval's reconciles (`inject`), then runs interval by interval
 * (at most `bound`) until every one of `ids` is installed again; the lags are fake-clock time.
 */
async function lag(
  rig: Rig,
  a: Args,
  phase: Phase,
  what: string,
  ids: string[],
  bound: number,
  inject: () => Promise<Record<string, number>>,
): Promise<LagResult> {
  const { stack, sched } = rig;
  const control = stack.emu.control;
  const w0 = performance.now();
  // Start on an interval boundary of the steady schedule: the resources were just reconciled.
  const base = sched.now();
  await sched.runUntil(base);
  if (a.realGapMs > 0) await sleep(a.realGapMs);
  await control.resetRequestCounts();
  const injected = await inject();
  if (a.realGapMs > 0) await sleep(a.realGapMs);
  const t0 = sched.now();
  const detected = new Map<string, number>();
  const repaired = new Map<string, number>();
  const probe = async (): Promise<void> => {
    if (detected.size < ids.length) {
      for (const e of await control.listExecutions({ tagKey: OWNER_TAG })) {
        const targets = JSON.stringify(e.parameters['targets'] ?? '');
        for (const id of ids)
          if (!detected.has(id) && (targets.includes(id) || e.items.some((x) => x.instanceId === id)))
            detected.set(id, sched.now());
      }
    }
    for (const id of ids) {
      if (repaired.has(id)) continue;
      const states = await control.getPackageStates(REGION, id);
      if (states.some((s) => s.templateName === NODE_PACKAGE)) repaired.set(id, sched.now());
    }
  };
  let k = 0;
  while (k < bound && repaired.size < ids.length) {
    k++;
    await sched.runUntil(t0 + k * INTERVAL_MS, probe);
    if (a.realGapMs > 0 && repaired.size < ids.length) await sleep(a.realGapMs);
  }
  const counts = byProduct(minus(await control.requestCounts(), injected));
  const lagOf = (m: Map<string, number>): number | null =>
    m.size < ids.length ? null : (Math.max(...m.values()) - t0) / 1000;
  const detectedS = lagOf(detected);
  const repairedS = lagOf(repaired);
  return {
    phase,
    what,
    instances: ids,
    detectedS,
    repairedS,
    detectedIntervals: detectedS === null ? null : r2((detectedS * 1000) / INTERVAL_MS),
    repairedIntervals: repairedS === null ? null : r2((repairedS * 1000) / INTERVAL_MS),
    boundIntervals: bound,
    oos: counts.oos,
    actiontrail: counts.actiontrail,
    intervalsRun: k,
    wallS: r2((performance.now() - w0) / 1000),
  };
}

type Client = ReturnType<typeof sdkClient>;

/** Another tool's OOS execution: the package template with `action: uninstall`, no ecsops tags. */
async function foreignUninstall(rig: Rig, client: Client, ids: string[]): Promise<Record<string, number>> {
  const r = (await call(client, 'oos', 'StartExecution', {
    RegionId: REGION,
    TemplateName: CONFIGURE_PACKAGE_TEMPLATE,
    Parameters: JSON.stringify({
      action: 'uninstall',
      packageName: NODE_PACKAGE,
      targets: { Type: 'ResourceIds', RegionId: REGION, ResourceIds: ids },
      rateControl: { Mode: 'Concurrency', MaxErrors: 0, Concurrency: 10 },
    }),
  })) as { Execution: { ExecutionId: string } };
  const id = r.Execution.ExecutionId;
  const end = Date.now() + 60_000;
  for (;;) {
    const e = await rig.stack.emu.control.getExecution(id);
    if (e && ['Success', 'Failed', 'Cancelled'].includes(e.status)) {
      if (e.status !== 'Success')
        throw new Error(`foreign uninstall ${id} ended ${e.status}: ${e.statusMessage}`);
      break;
    }
    if (Date.now() > end) throw new Error(`foreign uninstall ${id} did not end within 60 s`);
    await sleep(20);
  }
  for (const i of ids)
    if (
      (await rig.stack.emu.control.getPackageStates(REGION, i)).some((s) => s.templateName === NODE_PACKAGE)
    )
      throw new Error(`foreign uninstall left ${NODE_PACKAGE} on ${i}`);
  return { StartExecution: 1 };
}

/** A direct UpdateInstancePackageState (uninstall): no execution record. */
async function directUninstall(rig: Rig, client: Client, id: string): Promise<Record<string, number>> {
  await call(client, 'oos', 'UpdateInstancePackageState', {
    RegionId: REGION,
    InstanceId: id,
    TemplateName: NODE_PACKAGE,
    ConfigureAction: 'uninstall',
  });
  if ((await rig.stack.emu.control.getPackageStates(REGION, id)).some((s) => s.templateName === NODE_PACKAGE))
    throw new Error(`UpdateInstancePackageState left ${NODE_PACKAGE} on ${id}`);
  return { UpdateInstancePackageState: 1 };
}

function peakRssMb(): number {
  return r2((process.resourceUsage().maxRSS * 1024) / MB);
}

function describeTree(): string {
  const git = (args: string[]) => spawnSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8' }).stdout.trim();
  const head = git(['rev-parse', '--short', 'HEAD']);
  const dirty = git(['status', '--porcelain', '--', 'src']);
  return `the working tree at ${head}${dirty ? ' with uncommitted changes under src/' : ''}`;
}

interface Report {
  date: string;
  tree: string;
  command: string;
  args: Omit<Args, 'only' | 'out'> & { only: Phase[] };
  cores: number;
  convergence?: { fakeS: number; wallS: number; oos: Record<string, number>; ecs: Record<string, number> };
  steady?: SteadyResult;
  /** The same fleet with `spec.driftDetection: PerInstance` (today's behaviour). */
  perInstance?: SteadyResult;
  lags: LagResult[];
  noTrailConvergence?: { fakeS: number; wallS: number };
  peakRssMb: number;
  reconciles: number;
  errors: number;
  errorSamples: string[];
  cut?: string;
  wallS: number;
}

function markdown(r: Report): string {
  const s = r.steady;
  const L: string[] = [
    '# Drift-detection cost (issue 25, fast tier)',
    '',
    `Generated by \`${r.command}\` on ${r.date} against ${r.tree} (${r.cores} cores, shared with other work). The real EcsExtension reconciler and cloud layer (qps 1000) against the in-process emulator (timeScale 0.001) over HTTP, the fast harness's fake clock for the controller and the fleet view's data ages; real time for the emulator's timestamps and the change feed's date filters (\`cloudNow\`). ${r.args.resources} EcsExtensions × ${r.args.instances} instances (tag targets \`group=gNNN\`), default \`spec.interval\` (${INTERVAL_MS / 60_000} m) and full-resync period (${DEFAULT_FULL_RESYNC_MS / 3_600_000} h), package already installed (emulator seed). Each resource is reconciled again when its \`requeueAfterMs\` has passed on the fake clock (16 at a time, no jitter). Calls are the emulator's request counters. Peak RSS (${r.peakRssMb} MiB) is the bench process's, emulator and its fleet included.`,
    '',
  ];
  if (r.cut) L.push(`**Run cut short:** ${r.cut}`, '');
  if (r.convergence)
    L.push(
      `Convergence (first reconciles, every instance read once): ${r.convergence.fakeS} s on the fake clock, ${r.convergence.wallS} s wall; OOS ${JSON.stringify(r.convergence.oos)}; ECS ${JSON.stringify(r.convergence.ecs)}.`,
      '',
    );
  const rows = [
    ...(s ? [['ChangeFeed (default)', s] as const] : []),
    ...(r.perInstance ? [['PerInstance (today)', r.perInstance] as const] : []),
  ];
  const actions = (o: Record<string, number>): string =>
    Object.entries(o)
      .sort()
      .map(([k, v]) => `${k} ${v}`)
      .join(', ') || 'none';
  if (rows.length > 0) {
    const n = (s ?? r.perInstance)?.instances ?? 0;
    L.push(
      `## steady-${n}`,
      '',
      `ChangeFeed window: ${s ? `${s.intervals} intervals × ${s.intervalS} s` : '—'} (full-resync period ${DEFAULT_FULL_RESYNC_MS / 3_600_000} h = ${DEFAULT_FULL_RESYNC_MS / INTERVAL_MS} intervals, each instance re-read one by one once in [0.75, 1] × that period, so every instance's full-resync read falls inside), nothing changing. PerInstance: the same resources switched to \`spec.driftDetection: PerInstance\` afterwards, one interval to settle, then ${PER_INSTANCE_INTERVALS} intervals. Target (issue 25): ≤ 0.05 OOS calls per instance per interval with the full sweep amortised inside (today 1.02–1.03 in daemon.md's steady-100x100), 0 status writes when nothing changed. Status writes: statuses that changed (MemoryStore, like the StatusPatcher, skips equal ones).`,
      '',
      '| drift detection | instances | intervals | OOS calls | OOS calls per instance per interval (target ≤ 0.05) | busiest interval: OOS calls per instance (interval #) | share of a qps-20 OOS budget (12,000 calls per 10 m) | status writes (per resource per interval; intervals with a write) | StartExecution | ECS calls per instance per interval | ActionTrail calls | reconciles (errors) | wall (s) |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
      ...rows.map(
        ([label, x]) =>
          `| ${label} | ${x.instances} | ${x.intervals} | ${x.oosTotal} | **${x.oosPerInstancePerInterval}** | ${x.oosPerInstanceBusiestInterval} (${x.busiestInterval}) | ${r2((x.oosTotal / x.intervals / ((INTERVAL_MS / 1000) * 20)) * 100)} % | ${x.statusWrites} (${x.statusWritesPerResourcePerInterval}; ${x.intervalsWithStatusWrites}) | ${x.startExecutions} | ${x.ecsPerInstancePerInterval} | ${sum(x.actiontrail)} | ${x.reconciles} (${x.errors}) | ${x.wallS} |`,
      ),
      '',
    );
    if (s && r.perInstance && r.perInstance.oosPerInstancePerInterval > 0)
      L.push(
        `Ratio ChangeFeed ÷ PerInstance, OOS calls per instance per interval: **${r4(s.oosPerInstancePerInterval / r.perInstance.oosPerInstancePerInterval)}** (${s.oosPerInstancePerInterval} ÷ ${r.perInstance.oosPerInstancePerInterval}).`,
        '',
      );
    for (const [label, x] of rows)
      L.push(
        `${label}: OOS calls by action: ${actions(x.oos)}. ECS: ${actions(x.ecs)}. ActionTrail: ${actions(x.actiontrail)}. Status fields changed by the writes (resources): ${actions(x.statusFieldsChanged)}. OOS calls per interval: ${x.oosPerInterval.join(', ')}.`,
        '',
      );
  }
  if (r.lags.length > 0) {
    L.push(
      '## Lags',
      '',
      'Each change is made right after an interval’s reconciles (the worst phase). Lag = fake-clock time from the change to the first ecsops execution that includes every changed instance (detected), and until every one has the package again (repaired); in intervals of 10 m. Target (issue 25): foreign execution and direct write with ActionTrail within one interval; direct write without ActionTrail within the full-resync period; a newly tagged instance enrolled within one interval.',
      '',
      '| phase | change | instances | detected (s; intervals) | repaired (s; intervals) | bound (intervals) | OOS calls after the change | ActionTrail calls | wall (s) |',
      '|---|---|---|---|---|---|---|---|---|',
      ...r.lags.map(
        (l) =>
          `| ${l.phase} | ${l.what} | ${l.instances.length} | ${l.detectedS === null ? 'not within bound' : `${l.detectedS}; ${l.detectedIntervals}`} | ${l.repairedS === null ? 'not within bound' : `${l.repairedS}; ${l.repairedIntervals}`} | ${l.boundIntervals} | ${Object.entries(
            l.oos,
          )
            .sort()
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')} | ${sum(l.actiontrail)} | ${l.wallS} |`,
      ),
      '',
    );
  }
  L.push(
    `Reconciles ${r.reconciles}, errors ${r.errors}${r.errorSamples.length > 0 ? ` (e.g. ${r.errorSamples.join(' | ')})` : ''}. Wall ${r.wallS} s.`,
    '',
  );
  return `${L.join('\n')}\n`;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const a = parseArgs(argv);
  const w0 = performance.now();
  const deadline = Date.now() + WALL_CAP_MS;
  const report: Report = {
    date: new Date().toISOString(),
    tree: describeTree(),
    command: `npx tsx test/bench/drift.bench.ts${argv.length > 0 ? ` ${argv.join(' ')}` : ''}`,
    args: { ...a, only: [...a.only] },
    cores: cpus().length,
    lags: [],
    peakRssMb: 0,
    reconciles: 0,
    errors: 0,
    errorSamples: [],
    wallS: 0,
  };
  const rigs: Rig[] = [];
  const finish = (rig: Rig) => {
    report.reconciles += rig.sched.reconciles;
    report.errors += rig.sched.errors;
    report.errorSamples.push(...rig.sched.errorSamples.slice(0, 5 - report.errorSamples.length));
  };
  try {
    const main = PHASES.some((p) => p !== 'direct-no-trail' && a.only.has(p));
    if (main) {
      process.stderr.write(`drift bench: ${a.resources} × ${a.instances}, converging …\n`);
      const rig = await startRig(a, {}, deadline);
      rigs.push(rig);
      const client = sdkClient(rig.stack.emu.endpoint, DEMO_ACCESS_KEY);
      const c = await converge(rig);
      const cc = byProduct(c.calls);
      report.convergence = { fakeS: c.fakeS, wallS: r2(c.wallS), oos: cc.oos, ecs: cc.ecs };
      // The first steady interval starts one interval after convergence began.
      await rig.sched.runUntil(rig.sched.now());
      if (a.only.has('steady')) {
        process.stderr.write(`drift bench: steady, ${a.intervals} intervals …\n`);
        report.steady = await steady(rig, a, a.intervals, 'steady');
      }
      if (a.only.has('foreign')) {
        process.stderr.write('drift bench: foreign uninstall …\n');
        const n = Math.min(10, a.resources * a.instances);
        const ids = Array.from({ length: n }, (_, k) =>
          rig.ids(k % a.resources, 1 + (Math.floor(k / a.resources) % a.instances)),
        );
        report.lags.push(
          await lag(rig, a, 'foreign', `OOS StartExecution (uninstall, no ecsops tags) on ${n}`, ids, 6, () =>
            foreignUninstall(rig, client, ids),
          ),
        );
      }
      if (a.only.has('direct')) {
        process.stderr.write('drift bench: direct UpdateInstancePackageState, ActionTrail on …\n');
        const id = rig.ids(a.resources - 1, a.instances);
        report.lags.push(
          await lag(rig, a, 'direct', 'UpdateInstancePackageState (uninstall), ActionTrail on', [id], 6, () =>
            directUninstall(rig, client, id),
          ),
        );
      }
      if (a.only.has('tagged')) {
        process.stderr.write('drift bench: newly tagged instance …\n');
        report.lags.push(
          await lag(
            rig,
            a,
            'tagged',
            `tag group=${group(0)} added to an untargeted instance`,
            [NEW_INSTANCE],
            6,
            async () => {
              await rig.stack.emu.control.updateInstance(REGION, NEW_INSTANCE, { tags: { group: group(0) } });
              return {};
            },
          ),
        );
      }
      if (a.only.has('per-instance')) {
        process.stderr.write('drift bench: driftDetection PerInstance …\n');
        for (const name of rig.sched.names) {
          const spec = rig.stack.get(name)?.spec;
          rig.stack.apply(name, { ...spec, driftDetection: 'PerInstance' } as Partial<EcsExtensionSpec>);
          rig.sched.wake(name);
        }
        await rig.sched.runUntil(rig.sched.now() + INTERVAL_MS);
        report.perInstance = await steady(rig, a, PER_INSTANCE_INTERVALS, 'per-instance');
      }
      finish(rig);
      await rig.stack.stop();
      rigs.pop();
    }
    if (a.only.has('direct-no-trail')) {
      process.stderr.write(
        'drift bench: direct UpdateInstancePackageState, ActionTrail off, full resync 1 h …\n',
      );
      const rig = await startRig(a, { actionTrail: false, fullResyncMs: SHORT_RESYNC_MS }, deadline);
      rigs.push(rig);
      const client = sdkClient(rig.stack.emu.endpoint, DEMO_ACCESS_KEY);
      const c = await converge(rig);
      report.noTrailConvergence = { fakeS: c.fakeS, wallS: r2(c.wallS) };
      // Two quiet intervals, then the change at a random point of the instances' resync phase.
      await rig.sched.runUntil(rig.sched.now() + 2 * INTERVAL_MS);
      const id = rig.ids(a.resources - 1, a.instances);
      report.lags.push(
        await lag(
          rig,
          a,
          'direct-no-trail',
          `UpdateInstancePackageState (uninstall), ActionTrail off, full-resync period ${SHORT_RESYNC_MS / 3_600_000} h`,
          [id],
          SHORT_RESYNC_MS / INTERVAL_MS + 3,
          () => directUninstall(rig, client, id),
        ),
      );
      finish(rig);
      await rig.stack.stop();
      rigs.pop();
    }
  } catch (e) {
    report.cut = sanitizeText(String(e)).slice(0, 500);
    for (const rig of rigs) finish(rig);
  } finally {
    for (const rig of rigs) await rig.stack.stop().catch(() => undefined);
  }
  report.peakRssMb = peakRssMb();
  report.wallS = r2((performance.now() - w0) / 1000);
  const name = a.full ? 'drift' : `drift-${a.resources}x${a.instances}`;
  mkdirSync(a.out, { recursive: true });
  writeFileSync(join(a.out, `${name}.md`), markdown(report));
  writeFileSync(
    join(a.out, `${name}.json`),
    await format(JSON.stringify(report), {
      ...(await resolveConfig(join(a.out, `${name}.json`))),
      parser: 'json',
    }),
  );
  process.stdout.write(markdown(report));
  process.stdout.write(`\nwritten: ${join(a.out, `${name}.md`)}\n`);
  // Keep-alive sockets and limiter timers would keep the process alive; the results are written.
  process.exit(report.cut ? 1 : 0);
}

await main();
