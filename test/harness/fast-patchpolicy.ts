/**
 * The fast controller tier for PatchPolicy and MaintenanceWindow: the REAL reconcilers and cloud
 * layer against the emulator over HTTP (test/harness/fast.ts `startCloudStack`), in-memory object
 * stores, recorded Events and one fake wall clock shared by the controllers AND the emulator's
 * timestamps (patch operation times, snapshot creation), so schedules, windows and "scanned less
 * than interval ago" are all judged on the same clock. Modelled durations still run on real timers
 * scaled by timeScale.
 */
import type { InstanceLock } from '../../src/controllers/shared/lock.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { OWNER_UID_TAG } from '../../src/api/common.js';
import type { MaintenanceWindow, MaintenanceWindowSpec } from '../../src/api/maintenancewindow.js';
import {
  APPLY_PATCH_BASELINE_TEMPLATE,
  type PatchPolicy,
  type PatchPolicySpec,
} from '../../src/api/patchpolicy.js';
import { MaintenanceWindowReconciler } from '../../src/controllers/maintenancewindow/reconciler.js';
import { PatchMetrics } from '../../src/controllers/patchpolicy/metrics.js';
import {
  PatchPolicyReconciler,
  type PatchPolicyOptions,
} from '../../src/controllers/patchpolicy/reconciler.js';
import type { ExecutionRecord, Seed } from '../../src/emulator/index.js';
import { setEmulatorClock } from '../../src/emulator/state.js';
import {
  MemoryStore,
  REGION,
  reconcileStep,
  reconcileUntil,
  startCloudStack,
  type CloudStack,
  type Step,
} from './fast.js';

export { REGION };

/** Options of {@link startPatchStack}. */
export interface PatchStackOptions {
  seed: Seed;
  /** Emulator time scale (default 0.001: a 60 s patch install takes 60 ms). */
  timeScale?: number;
  /** Where the fake clock starts (default 2026-06-01T12:00:00Z, a Monday). */
  start?: Date;
  options?: Partial<PatchPolicyOptions>;
  /** The cross-kind instance lock the PatchPolicy reconciler checks. */
  lock?: InstanceLock;
}

/** The PatchPolicy fast tier; see the module comment. */
export interface PatchStack extends CloudStack {
  store: MemoryStore<PatchPolicy>;
  windows: MemoryStore<MaintenanceWindow>;
  reconciler: PatchPolicyReconciler;
  windowReconciler: MaintenanceWindowReconciler;
  patchMetrics: PatchMetrics;
  /** Policies the MaintenanceWindow controller asked to re-plan (`ns/name`), in order. */
  enqueued: string[];
  /** New reconcilers with fresh process memory (a controller restart); same stores, cloud and clock. */
  restart(): PatchPolicyReconciler;
  /** Creates or updates a PatchPolicy (creationTimestamp = the fake clock on create). */
  apply(name: string, spec: Partial<PatchPolicySpec>, ns?: string): PatchPolicy;
  /** Creates or updates a MaintenanceWindow. */
  applyWindow(name: string, spec: MaintenanceWindowSpec, ns?: string): MaintenanceWindow;
  get(name: string, ns?: string): PatchPolicy | undefined;
  getWindow(name: string, ns?: string): MaintenanceWindow | undefined;
  reconcile(name: string, ns?: string): Promise<Step>;
  reconcileWindow(name: string, ns?: string): Promise<Step>;
  /** Moves the fake clock to `at` (never backwards). */
  advanceTo(at: Date | string): void;
  /**
   * Reconciles `name` until `done`, advancing the fake clock by each requeue (at most `maxStepMs`
   * per step, so a scheduled instant is not jumped over) and sleeping a little real time so the
   * emulator's executions progress.
   */
  until(
    name: string,
    done: (obj: PatchPolicy | undefined, step: Step) => boolean,
    opts?: { maxSteps?: number; maxStepMs?: number; ns?: string },
  ): Promise<PatchPolicy | undefined>;
  /**
   * Reconciles `name` until no execution is tracked in its status, moving the fake clock only by
   * the real time that passes (as the emulator's executions progress in real time): polls read the
   * fleet's shared execution listing, whose age bounds run on this clock, so a clock that stood
   * still would serve one listing forever. @throws after `timeoutMs` (real time).
   */
  settle(name: string, ns?: string, timeoutMs?: number): Promise<PatchPolicy | undefined>;
  /** Every ApplyPatchBaseline execution owned by `uid` (by owner tag), oldest first. */
  executions(uid: string, action?: 'scan' | 'install'): Promise<ExecutionRecord[]>;
}

/** Starts the emulator and builds the PatchPolicy stack (see {@link PatchStack}). */
export async function startPatchStack(o: PatchStackOptions): Promise<PatchStack> {
  const base = await startCloudStack({
    seed: o.seed,
    timeScale: o.timeScale ?? 0.001,
    templates: { [APPLY_PATCH_BASELINE_TEMPLATE]: ['scan', 'install'] },
    cloudOnFakeClock: true,
  });
  const clock = base.clock;
  if (o.start) clock.advance(o.start.getTime() - clock.now().getTime());
  const store = new MemoryStore<PatchPolicy>();
  const windows = new MemoryStore<MaintenanceWindow>();
  const patchMetrics = new PatchMetrics(base.registry);
  const enqueued: string[] = [];
  const build = () =>
    new PatchPolicyReconciler({
      objects: store,
      kube: store,
      windows,
      cloud: base.cloud,
      events: base.events,
      metrics: base.metrics,
      patchMetrics,
      now: clock.now,
      // Status coalescing off: see test/harness/fast.ts.
      options: { pollMinMs: 1_000, pollMaxMs: 5_000, statusCoalesceMs: 0, ...o.options },
      ...(o.lock ? { lock: o.lock } : {}),
    });
  const buildWindows = () =>
    new MaintenanceWindowReconciler({
      objects: windows,
      kube: windows,
      events: base.events,
      metrics: base.metrics,
      now: clock.now,
      onChange: (ns, name) => {
        for (const ref of stack.reconciler.referencing(ns, name))
          enqueued.push(`${ref.namespace}/${ref.name}`);
      },
    });
  const stack: PatchStack = {
    ...base,
    store,
    windows,
    patchMetrics,
    enqueued,
    reconciler: build(),
    windowReconciler: buildWindows(),
    restart() {
      stack.reconciler = build();
      stack.windowReconciler = buildWindows();
      return stack.reconciler;
    },
    apply(name, spec, ns = 'default') {
      const existing = store.get(ns, name);
      return store.apply({
        apiVersion: 'ecsops.io/v1alpha1',
        kind: 'PatchPolicy',
        metadata: {
          name,
          namespace: ns,
          creationTimestamp: (existing?.metadata.creationTimestamp ??
            clock
              .now()
              .toISOString()
              .replace(/\.\d{3}Z$/, 'Z')) as unknown as Date,
        },
        spec: { regionId: REGION, targets: { instanceIds: ['i-none'] }, ...spec } as PatchPolicySpec,
      });
    },
    applyWindow(name, spec, ns = 'default') {
      return windows.apply({
        apiVersion: 'ecsops.io/v1alpha1',
        kind: 'MaintenanceWindow',
        metadata: { name, namespace: ns },
        spec,
      });
    },
    get: (name, ns = 'default') => store.get(ns, name),
    getWindow: (name, ns = 'default') => windows.get(ns, name),
    reconcile: (name, ns = 'default') => reconcileStep(stack.reconciler, ns, name),
    reconcileWindow: (name, ns = 'default') => reconcileStep(stack.windowReconciler, ns, name),
    advanceTo(at) {
      const ms = new Date(at).getTime() - clock.now().getTime();
      if (ms > 0) clock.advance(ms);
    },
    until(name, done, opts = {}) {
      const ns = opts.ns ?? 'default';
      const maxStepMs = opts.maxStepMs ?? Number.POSITIVE_INFINITY;
      const capped = {
        now: clock.now,
        advance: (ms: number) => clock.advance(Math.min(ms, maxStepMs)),
      } as typeof clock;
      return reconcileUntil(
        store,
        capped,
        () => stack.reconcile(name, ns),
        ns,
        name,
        done,
        opts.maxSteps ?? 400,
      );
    },
    async settle(name, ns = 'default', timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      let last = Date.now();
      for (;;) {
        const real = Date.now();
        clock.advance(real - last);
        last = real;
        const step = await stack.reconcile(name, ns);
        const obj = store.get(ns, name);
        if (!step.error && (obj?.status?.executions ?? []).length === 0) return obj;
        if (Date.now() > deadline)
          throw new Error(
            `${name}: executions still tracked after ${timeoutMs} ms: ${JSON.stringify(obj?.status?.executions)}; ${step.error?.message ?? ''}`,
          );
        await sleep(20);
      }
    },
    async executions(uid, action) {
      const list = await base.emu.control.listExecutions({
        tagKey: OWNER_UID_TAG,
        tagValue: uid,
        templateName: APPLY_PATCH_BASELINE_TEMPLATE,
      });
      return list
        .filter((e) => action === undefined || e.parameters.action === action)
        .sort((a, b) => (a.createDate < b.createDate ? -1 : a.createDate > b.createDate ? 1 : 0));
    },
    async stop() {
      setEmulatorClock();
      await base.stop();
    },
  };
  return stack;
}

/** The condition `type` of `obj`. */
export function cond(obj: { status?: { conditions?: Array<{ type: string }> } } | undefined, type: string) {
  return obj?.status?.conditions?.find((c) => c.type === type) as
    | { type: string; status: string; reason: string; message: string; observedGeneration?: number }
    | undefined;
}

/**
 * A seed: `plain` running instances without patches and `patched` with `patches` synthesised
 * patches each (kernel needs a reboot), IDs `i-<prefix>NNNN`, all tagged `fleet=<prefix>`.
 */
export function patchSeed(prefix: string, plain: number, patched: number, patches = 3): Seed {
  const tags = [{ key: 'fleet', value: prefix }];
  return {
    regions: {
      [REGION]: {
        generate: [
          ...(patched > 0 ? [{ count: patched, idPrefix: `i-${prefix}`, tags, patches }] : []),
          ...(plain > 0 ? [{ count: plain, idPrefix: `i-${prefix}`, startIndex: patched + 1, tags }] : []),
        ],
      },
    },
  };
}

/**
 * Creates policy `name` over the instances tagged `fleet=<fleet>` (scan 00:30 Asia/Shanghai,
 * install window Saturdays 01:00–05:00 Asia/Shanghai, rebootIfNeeded), runs its first scan, then
 * moves the clock (which starts on Monday 2026-06-01) into the window of Saturday 2026-06-06 and
 * reconciles once, which starts the install on the free non-compliant instances. `extra` adds spec
 * fields (e.g. trafficControl).
 * @returns the created policy.
 */
export async function reachInstallWindow(
  s: PatchStack,
  name: string,
  fleet: string,
  install: Partial<NonNullable<PatchPolicySpec['install']>> = {},
  extra: Partial<PatchPolicySpec> = {},
): Promise<PatchPolicy> {
  const created = s.apply(name, {
    ...extra,
    targets: { tags: [{ key: 'fleet', value: fleet }] },
    interval: '1h',
    scan: { schedule: '30 0 * * *', timeZone: 'Asia/Shanghai' },
    install: {
      maintenanceWindow: { schedule: '0 1 * * SAT', duration: '4h', timeZone: 'Asia/Shanghai' },
      rebootIfNeeded: true,
      ...install,
    },
  });
  await s.reconcile(name);
  s.advanceTo('2026-06-01T16:30:00.500Z'); // the scan
  await s.reconcile(name);
  await s.settle(name);
  s.advanceTo('2026-06-05T16:59:00Z'); // that day's scan, before the window opens
  await s.reconcile(name);
  await s.settle(name);
  s.advanceTo('2026-06-05T17:01:00Z'); // inside the window
  await s.reconcile(name);
  return created;
}
