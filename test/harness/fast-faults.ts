/**
 * The fault matrix's stack (test/controller/faults-*.test.ts): ONE emulator, ONE fake clock (shared
 * with the emulator's timestamps), and the real EcsExtension, PatchPolicy and MaintenanceWindow
 * reconcilers on in-memory stores that share one cross-kind {@link InstanceLock}, so two kinds'
 * work on one instance can really collide. Built from the fast tier's parts (test/harness/fast.ts
 * `startCloudStack`, `MemoryStore`, `reconcileStep`); faults are the emulator's own scripted rules
 * (`failNext`: error / reset / responseLoss), its instance controls (stop, release, agent offline)
 * and `MemoryStore.patchFaults` — no second copy of any of them.
 *
 * What is added here: a request log (the emulator's `logger` option) that tells which injected
 * fault a request really got; "the status patch right after a successful start fails", armed from
 * that log; "the controller restarts right after a lost answer"; and the invariant checks run
 * against the emulator's own records after every schedule.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { OWNER_UID_TAG } from '../../src/api/common.js';
import {
  CONFIGURE_PACKAGE_TEMPLATE,
  type EcsExtension,
  type EcsExtensionSpec,
} from '../../src/api/ecsextension.js';
import type { AppRelease, AppReleaseSpec } from '../../src/api/apprelease.js';
import type { MaintenanceWindow } from '../../src/api/maintenancewindow.js';
import {
  APPLY_PATCH_BASELINE_TEMPLATE,
  type PatchPolicy,
  type PatchPolicySpec,
} from '../../src/api/patchpolicy.js';
import { AppReleaseMetrics } from '../../src/controllers/apprelease/metrics.js';
import {
  APP_RELEASE_METRIC_LABEL,
  AppReleaseReconciler,
} from '../../src/controllers/apprelease/reconciler.js';
import { EcsExtensionReconciler } from '../../src/controllers/ecsextension/reconciler.js';
import { PatchMetrics } from '../../src/controllers/patchpolicy/metrics.js';
import { PatchPolicyReconciler } from '../../src/controllers/patchpolicy/reconciler.js';
import type { Resource } from '../../src/controllers/shared/deps.js';
import { InstanceLock } from '../../src/controllers/shared/lock.js';
import type { ExecutionRecord, InvocationRecord, Seed } from '../../src/emulator/index.js';
import { setEmulatorClock } from '../../src/emulator/state.js';
import { CLOUD_DEFAULTS } from '../../src/cloud/index.js';
import {
  MemoryStore,
  NODE_PACKAGE,
  REGION,
  reconcileStep,
  startCloudStack,
  type CloudStack,
  type Step,
} from './fast.js';

export { REGION };

/** The fault classes a schedule draws from (issue: "Prove it under any fault"). */
export const FAULT_CLASSES = [
  'throttledPastRetries',
  'serverError5xx',
  'resetBefore',
  'answerLostAfter',
  'instanceStopped',
  'instanceReleased',
  'agentOffline',
  'statusPatchAfterStartFails',
  'restartAfterLostAnswer',
] as const;
export type FaultClass = (typeof FAULT_CLASSES)[number];

/** One drawn fault: its class and the small numbers that parameterise it. */
export interface FaultDraw {
  fault: FaultClass | 'none';
  /** Extra repeats (5xx count 1..3; throttling beyond the retry budget by 0..2). */
  extra: number;
  /** Which target instance an instance fault hits (index modulo the live targets). */
  pick: number;
  /** statusPatchAfterStartFails: 409 Conflict (true) or 500 (false); serverError5xx: 500 (true) or 503. */
  variant: boolean;
}

/** The cloud layer's re-sends per call (src/cloud/factory.ts default `maxRetries`). */
export const CLOUD_MAX_RETRIES = CLOUD_DEFAULTS.maxRetries;

/** One line of the emulator's request log. */
export interface RequestLine {
  requestId: string;
  action: string;
  status: number;
  code?: string;
  instanceIds?: string[];
  executionId?: string;
  /** RunCommand: the invocation started or returned. */
  invokeId?: string;
  clientGone?: boolean;
  receivedAtMs: number;
  durationMs?: number;
}

/** A counter of draws per `kind|action|fault` (drawn, and really hit). */
export class DrawTable {
  readonly drawn = new Map<string, number>();
  readonly hit = new Map<string, number>();
  add(kind: string, action: string, fault: string, wasHit: boolean): void {
    const k = `${kind}|${action}|${fault}`;
    this.drawn.set(k, (this.drawn.get(k) ?? 0) + 1);
    if (wasHit) this.hit.set(k, (this.hit.get(k) ?? 0) + 1);
  }
  /** A markdown table: one row per (kind, action), one column per fault class (hit/drawn). */
  markdown(): string {
    const rows = new Map<string, Map<string, string>>();
    for (const [k, n] of this.drawn) {
      const [kind, action, fault] = k.split('|') as [string, string, string];
      const row = rows.get(`${kind} | ${action}`) ?? new Map<string, string>();
      row.set(fault, `${this.hit.get(k) ?? 0}/${n}`);
      rows.set(`${kind} | ${action}`, row);
    }
    const cols = [...FAULT_CLASSES, 'none'];
    const lines = [
      `| kind | action | ${cols.join(' | ')} |`,
      `|---|---|${cols.map(() => '---:').join('|')}|`,
    ];
    for (const [key, row] of [...rows].sort())
      lines.push(`| ${key} | ${cols.map((c) => row.get(c) ?? '0/0').join(' | ')} |`);
    return lines.join('\n');
  }
  /** The smallest hit count over the (action, fault class) cells of `kind` (`none` excluded). */
  minHit(kind: string, actions: readonly string[]): number {
    let min = Number.POSITIVE_INFINITY;
    for (const a of actions)
      for (const f of FAULT_CLASSES) min = Math.min(min, this.hit.get(`${kind}|${a}|${f}`) ?? 0);
    return min;
  }
}

/** The matrix profile: `ci` (what `npm test` runs) or `full` (`ECSOPS_FAULTS_PROFILE=full`). */
export function faultsProfile(): { name: 'ci' | 'full'; seed: number } {
  const name = process.env.ECSOPS_FAULTS_PROFILE === 'full' ? 'full' : 'ci';
  const seed = Number(process.env.ECSOPS_FAULTS_SEED ?? 20261207);
  return { name, seed };
}

/** The combined stack; see the module comment. */
export interface FaultStack extends CloudStack {
  lock: InstanceLock;
  ext: MemoryStore<EcsExtension>;
  patch: MemoryStore<PatchPolicy>;
  app: MemoryStore<AppRelease>;
  windows: MemoryStore<MaintenanceWindow>;
  extReconciler: EcsExtensionReconciler;
  patchReconciler: PatchPolicyReconciler;
  appReconciler: AppReleaseReconciler;
  /** Every API request answered (or reset), in order. */
  requests: RequestLine[];
  /** Every execution / invocation ID any status write ever named, per owner UID. */
  recorded: Map<string, Set<string>>;
  /** When (real ms) each execution / invocation ID first reached the controller; see {@link knownAtOf}. */
  knownAt: (id: string) => number | undefined;
  /** New reconcilers with fresh process memory (a controller restart); same stores, cloud, clock. */
  restart(): void;
  /**
   * The next status patch of any kind after the next successful call of `action` (default
   * `StartExecution`) fails with `err` (a 409 or 500 right after the start); `undefined` disarms.
   */
  failPatchAfterStart(err: Error | undefined, action?: string): void;
  /** Whether {@link failPatchAfterStart}'s fault has fired since it was armed. */
  patchAfterStartFired(): boolean;
  /** After the next reconcile in which rule `ruleId` is consumed, {@link restart}. */
  restartAfterRule(ruleId: string): void;
  applyExt(name: string, spec: Partial<EcsExtensionSpec>): EcsExtension;
  applyPatch(name: string, spec: Partial<PatchPolicySpec>, creation?: string): PatchPolicy;
  applyApp(name: string, spec: AppReleaseSpec): AppRelease;
  /** One reconcile of each live object named in `keys` (`ext/<name>`, `patch/<name>`, `app/<name>`); the steps. */
  round(keys: readonly string[]): Promise<Step[]>;
  /**
   * Rounds over `keys` until `done()`; the clock advances by the lowest requeue (at most
   * `maxStepMs`), with a little real time for the emulator. @returns whether `done` held.
   */
  drive(
    keys: readonly string[],
    done: () => boolean,
    opts?: { maxRounds?: number; maxStepMs?: number },
  ): Promise<boolean>;
  /** Moves the fake clock to `at` (never backwards). */
  advanceTo(at: Date | string): void;
  /** Executions owned by `uid`, oldest first. */
  executions(uid: string): Promise<ExecutionRecord[]>;
  /** Every invocation in the emulator. */
  invocations(): Promise<InvocationRecord[]>;
}

/**
 * A status-writing store that remembers every execution ID its statuses ever named (tracked work,
 * instance rows, last scan / install), per owner UID.
 */
class RecordingStore<T extends Resource> extends MemoryStore<T> {
  constructor(
    private readonly recorded: Map<string, Set<string>>,
    private readonly gate: () => Error | undefined,
    private readonly firstNamed: Map<string, number>,
  ) {
    super();
  }
  override async patchStatus(obj: T, status: NonNullable<T['status']>): Promise<unknown> {
    const err = this.gate();
    if (err) throw err;
    const out = await super.patchStatus(obj, status);
    const uid = obj.metadata.uid ?? '';
    const set = this.recorded.get(uid) ?? new Set<string>();
    const st = status as {
      executions?: Array<{ executionId?: string }>;
      instances?: Array<{ executionId?: string }>;
      lastScan?: { executionIds?: string[] };
      lastInstall?: { executionIds?: string[] };
      rollout?: { batches?: Array<{ invokeIds: string[] }>; rollback?: { invokeIds: string[] } };
    };
    for (const e of [...(st.executions ?? []), ...(st.instances ?? [])])
      if (e.executionId && /^(exec|t)-/.test(e.executionId)) set.add(e.executionId);
    for (const id of [
      ...(st.lastScan?.executionIds ?? []),
      ...(st.lastInstall?.executionIds ?? []),
      ...(st.rollout?.batches ?? []).flatMap((b) => b.invokeIds),
      ...(st.rollout?.rollback?.invokeIds ?? []),
    ])
      set.add(id);
    this.recorded.set(uid, set);
    const now = Date.now();
    for (const id of set) if (!this.firstNamed.has(id)) this.firstNamed.set(id, now);
    return out;
  }
}

/** Starts the combined stack (default timeScale 0.0005). */
export async function startFaultStack(o: { seed: Seed; timeScale?: number }): Promise<FaultStack> {
  const requests: RequestLine[] = [];
  let armed: Error | undefined;
  let armedAction = '';
  let armedLive = false;
  let fired = false;
  const base = await startCloudStack({
    seed: o.seed,
    timeScale: o.timeScale ?? 0.0005,
    templates: {
      [CONFIGURE_PACKAGE_TEMPLATE]: ['install', 'update', 'uninstall'],
      [APPLY_PATCH_BASELINE_TEMPLATE]: ['scan', 'install'],
      [APP_RELEASE_METRIC_LABEL]: ['deploy', 'rollback', 'uninstall'],
    },
    emulator: {
      logger: (line) => {
        const l = line as RequestLine;
        requests.push(l);
        if (armed && l.status === 200 && l.action === armedAction) armedLive = true;
      },
    },
    cloudOnFakeClock: true,
  });
  const clock = base.clock;
  const recorded = new Map<string, Set<string>>();
  const firstNamed = new Map<string, number>();
  const gate = (): Error | undefined => {
    if (!armed || !armedLive) return undefined;
    const e = armed;
    armed = undefined;
    armedLive = false;
    fired = true;
    return e;
  };
  const ext = new RecordingStore<EcsExtension>(recorded, gate, firstNamed);
  const patch = new RecordingStore<PatchPolicy>(recorded, gate, firstNamed);
  const app = new RecordingStore<AppRelease>(recorded, gate, firstNamed);
  const windows = new MemoryStore<MaintenanceWindow>();
  const lock = new InstanceLock();
  lock.addSource('EcsExtension', ext as unknown as MemoryStore<Resource>);
  lock.addSource('PatchPolicy', patch as unknown as MemoryStore<Resource>);
  lock.addSource('AppRelease', app as unknown as MemoryStore<Resource>);
  const patchMetrics = new PatchMetrics(base.registry);
  const appMetrics = new AppReleaseMetrics(base.registry);
  const options = { pollMinMs: 1_000, pollMaxMs: 5_000, statusCoalesceMs: 0 };
  const buildExt = () =>
    new EcsExtensionReconciler({
      objects: ext,
      kube: ext,
      cloud: base.cloud,
      events: base.events,
      metrics: base.metrics,
      now: clock.now,
      options,
      lock,
    });
  const buildPatch = () =>
    new PatchPolicyReconciler({
      objects: patch,
      kube: patch,
      windows,
      cloud: base.cloud,
      events: base.events,
      metrics: base.metrics,
      patchMetrics,
      now: clock.now,
      options,
      lock,
    });
  const buildApp = () =>
    new AppReleaseReconciler({
      objects: app,
      kube: app,
      cloud: base.cloud,
      events: base.events,
      metrics: base.metrics,
      appMetrics,
      lock,
      now: clock.now,
      options: { pollMinMs: 1_000, pollMaxMs: 2_000, statusCoalesceMs: 0 },
    });
  let restartRule: string | undefined;
  const ruleConsumed = async (id: string): Promise<boolean> => {
    const f = await base.emu.control.getFaults();
    const r = (f.failNext ?? []).find((x) => x.id === id);
    return r === undefined || (r.count ?? 1) <= 0;
  };
  const stack: FaultStack = {
    ...base,
    lock,
    ext,
    patch,
    app,
    windows,
    requests,
    recorded,
    knownAt: (id) => knownAtOf(id, firstNamed, requests),
    extReconciler: buildExt(),
    patchReconciler: buildPatch(),
    appReconciler: buildApp(),
    restart() {
      stack.extReconciler = buildExt();
      stack.patchReconciler = buildPatch();
      stack.appReconciler = buildApp();
    },
    failPatchAfterStart(err, action = 'StartExecution') {
      armed = err;
      armedAction = action;
      armedLive = false;
      fired = false;
    },
    patchAfterStartFired: () => fired,
    restartAfterRule(id) {
      restartRule = id;
    },
    applyExt(name, spec) {
      return ext.apply({
        apiVersion: 'ecsops.io/v1alpha1',
        kind: 'EcsExtension',
        metadata: { name, namespace: 'default' },
        spec: {
          regionId: REGION,
          packageName: NODE_PACKAGE,
          targets: { instanceIds: ['i-none'] },
          ...spec,
        } as EcsExtensionSpec,
      });
    },
    applyPatch(name, spec, creation) {
      const existing = patch.get('default', name);
      return patch.apply({
        apiVersion: 'ecsops.io/v1alpha1',
        kind: 'PatchPolicy',
        metadata: {
          name,
          namespace: 'default',
          creationTimestamp: (existing?.metadata.creationTimestamp ??
            creation ??
            clock
              .now()
              .toISOString()
              .replace(/\.\d{3}Z$/, 'Z')) as unknown as Date,
        },
        spec: { regionId: REGION, targets: { instanceIds: ['i-none'] }, ...spec } as PatchPolicySpec,
      });
    },
    applyApp(name, spec) {
      return app.apply({
        apiVersion: 'ecsops.io/v1alpha1',
        kind: 'AppRelease',
        metadata: { name, namespace: 'default' },
        spec,
      });
    },
    async round(keys) {
      const steps: Step[] = [];
      for (const key of keys) {
        const [kind, name] = key.split('/') as [string, string];
        if (kind === 'ext' && ext.get('default', name))
          steps.push(await reconcileStep(stack.extReconciler, 'default', name));
        if (kind === 'patch' && patch.get('default', name))
          steps.push(await reconcileStep(stack.patchReconciler, 'default', name));
        if (kind === 'app' && app.get('default', name))
          steps.push(await reconcileStep(stack.appReconciler, 'default', name));
      }
      if (restartRule && (await ruleConsumed(restartRule))) {
        restartRule = undefined;
        stack.restart();
      }
      return steps;
    },
    async drive(keys, done, opts = {}) {
      const maxRounds = opts.maxRounds ?? 200;
      for (let i = 0; i < maxRounds; i++) {
        const steps = await stack.round(keys);
        if (done()) return true;
        const waits = steps.map((s) => (s.error ? 1_000 : (s.result?.requeueAfterMs ?? 5_000)));
        const wait = Math.min(opts.maxStepMs ?? Number.POSITIVE_INFINITY, ...waits, 60_000);
        clock.advance(wait);
        await sleep(steps.some((s) => s.error) ? 2 : 5);
      }
      return done();
    },
    advanceTo(at) {
      const ms = new Date(at).getTime() - clock.now().getTime();
      if (ms > 0) clock.advance(ms);
    },
    async executions(uid) {
      const list = await base.emu.control.listExecutions({ tagKey: OWNER_UID_TAG, tagValue: uid });
      return list.sort((a, b) => (a.createDate < b.createDate ? -1 : a.createDate > b.createDate ? 1 : 0));
    },
    invocations: () => base.emu.control.listInvocations(),
    async stop() {
      setEmulatorClock();
      await base.stop();
    },
  };
  return stack;
}

/**
 * Installs one drawn fault in front of the next call of `action` made for owner `uid` (rules
 * match the owner tag unless `anyOwner`; CancelExecution carries no tags). @returns a probe that
 * says, after the phase, whether the fault was really hit, and a heal that undoes instance faults.
 */
export async function injectFault(
  s: FaultStack,
  d: FaultDraw,
  action: string,
  o: {
    uid: string;
    anyOwner?: boolean;
    /** Only calls whose `Parameters` JSON has `action` = this (StartExecution, RunCommand). */
    paramAction?: string;
    targets: () => Promise<string[]>;
  },
): Promise<{ hit: () => Promise<boolean>; heal: () => Promise<void>; cleanup: () => Promise<void> }> {
  const match = {
    ...(o.anyOwner ? {} : { ownerUid: o.uid }),
    ...(o.paramAction ? { parameter: { key: 'action', value: o.paramAction } } : {}),
  };
  const before = s.requests.length;
  const called = () => s.requests.slice(before).some((r) => r.action === action);
  const rules: string[] = [];
  const addRule = async (r: Parameters<FaultStack['emu']['control']['addFaultRule']>[0]) => {
    const id = await s.emu.control.addFaultRule({
      ...r,
      ...(Object.keys(match).length > 0 ? { match } : {}),
    });
    rules.push(id);
    counts.set(id, r.count ?? 1);
    return id;
  };
  /** Whether at least `need` matching requests got the rules' faults (`need` default: all). */
  const consumed = async (need?: number) => {
    const f = await s.emu.control.getFaults();
    return rules.every((id) => {
      const r = (f.failNext ?? []).find((x) => x.id === id);
      if (r === undefined) return true;
      return need === undefined ? (r.count ?? 1) <= 0 : (counts.get(id) ?? 0) - (r.count ?? 1) >= need;
    });
  };
  const counts = new Map<string, number>();
  const cleanup = async () => {
    for (const id of rules) await s.emu.control.removeFaultRule(id);
  };
  let heal = async (): Promise<void> => {};
  let hit: () => Promise<boolean> = async () => called();
  // (reset / lost answer rules have count 1: hit = consumed)
  const pickTarget = async (): Promise<string | undefined> => {
    const t = (await o.targets()).sort();
    return t.length === 0 ? undefined : t[d.pick % t.length];
  };
  switch (d.fault) {
    case 'none':
      break;
    case 'throttledPastRetries':
      await addRule({
        action,
        kind: 'error',
        code: 'Throttling.User',
        httpStatus: 400,
        count: CLOUD_MAX_RETRIES + 1 + (d.extra % 3),
      });
      // hit: one call's whole retry budget was throttled
      hit = () => consumed(CLOUD_MAX_RETRIES + 1);
      break;
    case 'serverError5xx':
      await addRule({
        action,
        kind: 'error',
        code: d.variant ? 'InternalError' : 'ServiceUnavailable',
        httpStatus: d.variant ? 500 : 503,
        count: 1 + (d.extra % 3),
      });
      hit = () => consumed(1);
      break;
    case 'resetBefore':
      await addRule({ action, kind: 'reset' });
      hit = consumed;
      break;
    case 'answerLostAfter':
      await addRule({ action, kind: 'responseLoss' });
      hit = consumed;
      break;
    case 'restartAfterLostAnswer':
      s.restartAfterRule(await addRule({ action, kind: 'responseLoss' }));
      hit = consumed;
      break;
    case 'statusPatchAfterStartFails':
      s.failPatchAfterStart(
        new Error(d.variant ? '409 Conflict: the object has been modified' : '500 Internal Server Error'),
        action,
      );
      hit = async () => s.patchAfterStartFired();
      break;
    case 'instanceStopped':
    case 'agentOffline': {
      const id = await pickTarget();
      if (!id) break;
      await s.emu.control.updateInstance(
        REGION,
        id,
        d.fault === 'instanceStopped' ? { status: 'Stopped' } : { cloudAssistantOnline: false },
      );
      heal = async () => {
        await s.emu.control.updateInstance(REGION, id, { status: 'Running', cloudAssistantOnline: true });
      };
      break;
    }
    case 'instanceReleased': {
      const id = await pickTarget();
      if (id) await s.emu.control.releaseInstance(REGION, id);
      break;
    }
  }
  return {
    hit,
    heal,
    cleanup: async () => {
      await cleanup();
      if (d.fault === 'statusPatchAfterStartFails') s.failPatchAfterStart(undefined);
    },
  };
}

/**
 * When (real ms) the controller first knew of execution / invocation `id`: the first status write
 * naming it, or the answer of a start call that returned it (not lost). Undefined: never.
 */
export function knownAtOf(
  id: string,
  firstNamed: ReadonlyMap<string, number>,
  requests: readonly RequestLine[],
): number | undefined {
  let at = firstNamed.get(id);
  for (const r of requests)
    if (r.status === 200 && (r.executionId === id || r.invokeId === id) && !r.clientGone) {
      const t = r.receivedAtMs + (r.durationMs ?? 0);
      if (at === undefined || t < at) at = t;
      break;
    }
  return at;
}

/** A violated invariant: which one, and the evidence. */
export interface Violation {
  invariant: string;
  detail: string;
}

const TERMINAL = new Set(['Success', 'Failed', 'Cancelled']);

/** Real-time end of an execution (latest item end), or undefined while any started item runs. */
function endedAtMs(e: ExecutionRecord): number | undefined {
  if (!TERMINAL.has(e.status)) return undefined;
  const ends = e.items.map((i) => i.endedAtMs ?? 0);
  return Math.max(0, ...ends);
}

/**
 * Invariant "no second start while an earlier start for the same desired state is running or
 * unrecorded": among one owner's executions with the same desired state (template, action and
 * parameters) on a shared instance, none starts (its StartExecution arrives) before the earlier
 * one has ended in the cloud, nor (with `knownAt`) before the earlier one's ID reached the
 * controller.
 */
export function checkNoSecondStart(
  execs: ExecutionRecord[],
  requests: RequestLine[],
  knownAt?: (id: string) => number | undefined,
): Violation[] {
  const out: Violation[] = [];
  const arrival = new Map<string, number>();
  for (const r of requests)
    if (r.action === 'StartExecution' && r.status === 200 && r.executionId && !arrival.has(r.executionId))
      arrival.set(r.executionId, r.receivedAtMs);
  const desired = (e: ExecutionRecord) => {
    const { targets: _t, ...rest } = e.parameters;
    return `${e.templateName}|${e.tags[OWNER_UID_TAG] ?? ''}|${JSON.stringify(rest)}`;
  };
  for (let i = 0; i < execs.length; i++)
    for (let j = 0; j < execs.length; j++) {
      const a = execs[i] as ExecutionRecord;
      const b = execs[j] as ExecutionRecord;
      if (i === j || desired(a) !== desired(b)) continue;
      const aStart = arrival.get(a.executionId);
      const bStart = arrival.get(b.executionId);
      if (aStart === undefined || bStart === undefined || bStart < aStart) continue;
      if (bStart === aStart && a.executionId >= b.executionId) continue;
      const shared = a.items.map((x) => x.instanceId).filter((x) => b.items.some((y) => y.instanceId === x));
      if (shared.length === 0) continue;
      const aEnd = endedAtMs(a);
      if (aEnd === undefined || aEnd > bStart)
        out.push({
          invariant: 'no second start while an earlier one runs',
          detail: `${b.executionId} started while ${a.executionId} (${a.status}) ran on ${shared.slice(0, 3).join(',')}`,
        });
      const known = knownAt?.(a.executionId);
      if (knownAt && (known === undefined || known > bStart))
        out.push({
          invariant: 'no second start while an earlier one is unrecorded',
          detail: `${b.executionId} started on ${shared.slice(0, 3).join(',')} before ${a.executionId} reached the controller`,
        });
    }
  return out;
}

/** Invariant: two different owners' locking work never overlaps on one instance (real-time items). */
export function checkNoOverlap(
  work: Array<{ owner: string; id: string; instanceId: string; from?: number; to?: number }>,
): Violation[] {
  const out: Violation[] = [];
  const byInstance = new Map<string, typeof work>();
  for (const w of work) {
    if (w.from === undefined) continue;
    const l = byInstance.get(w.instanceId) ?? [];
    l.push(w);
    byInstance.set(w.instanceId, l);
  }
  for (const [inst, l] of byInstance)
    for (const a of l)
      for (const b of l) {
        if (a.owner >= b.owner) continue;
        const aTo = a.to ?? Number.POSITIVE_INFINITY;
        const bTo = b.to ?? Number.POSITIVE_INFINITY;
        if ((a.from as number) < bTo && (b.from as number) < aTo)
          out.push({
            invariant: 'no two kinds overlapping on one instance',
            detail: `${inst}: ${a.id} [${a.from}..${a.to}] and ${b.id} [${b.from}..${b.to}]`,
          });
      }
  return out;
}

/** The items of `execs` as work intervals (real time), skipping scans (they take no lock). */
export function itemWork(execs: ExecutionRecord[], owner: string) {
  return execs
    .filter((e) => e.parameters['action'] !== 'scan')
    .flatMap((e) =>
      e.items.map((i) => ({
        owner,
        id: e.executionId,
        instanceId: i.instanceId,
        ...(i.startedAtMs !== undefined ? { from: i.startedAtMs } : {}),
        ...(i.endedAtMs !== undefined ? { to: i.endedAtMs } : {}),
      })),
    );
}

/**
 * Invariant "every started execution is eventually recorded": each of the owner's executions is
 * terminal in the cloud; its ID reached the controller (named in a status write, or delivered in a
 * StartExecution answer that was not lost: a re-send with the same ClientToken adopts it) and
 * nothing is still tracked. (Whether the recorded outcome is true is checked against the
 * emulator's package / patch states separately.)
 */
export function checkRecorded(
  execs: ExecutionRecord[],
  recorded: Set<string> | undefined,
  tracked: Array<{ executionId?: string; pending?: boolean }>,
  what: string,
  requests: RequestLine[] = [],
): Violation[] {
  const out: Violation[] = [];
  const delivered = new Set(
    requests
      .filter((r) => r.status === 200 && r.executionId && !(r as { clientGone?: boolean }).clientGone)
      .map((r) => r.executionId as string),
  );
  for (const e of execs) {
    if (!TERMINAL.has(e.status))
      out.push({ invariant: 'every start ends', detail: `${what}: ${e.executionId} still ${e.status}` });
    if (!recorded?.has(e.executionId) && !delivered.has(e.executionId))
      out.push({
        invariant: 'every start recorded',
        detail: `${what}: ${e.executionId} never in status nor delivered to the controller`,
      });
  }
  if (tracked.length > 0)
    out.push({
      invariant: 'every start recorded',
      detail: `${what}: still tracking ${JSON.stringify(tracked)}`,
    });
  return out;
}
