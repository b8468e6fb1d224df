/**
 * The fast controller tier (no API server): the REAL reconciler + the REAL cloud layer
 * (`createCloudClients`: openapi-core SDK, signatures, rate limiter, retries) + the emulator over
 * HTTP, with an in-memory object store standing in for the informer cache and the status
 * patcher, a recording event sink, and a fake wall clock for backoff decisions. Scenarios with
 * hundreds of instances, restarts and fault sequences run in seconds. Shared by
 * test/controller/*.test.ts and test/bench/ecsextension.bench.ts.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import type { Registry } from 'prom-client';
import { FINALIZER, OWNER_UID_TAG } from '../../src/api/common.js';
import {
  CONFIGURE_PACKAGE_TEMPLATE,
  type EcsExtension,
  type EcsExtensionSpec,
} from '../../src/api/ecsextension.js';
import { createCloudClients, type CloudLayer, type CloudOptions } from '../../src/cloud/index.js';
import {
  EcsExtensionReconciler,
  type EcsExtensionOptions,
} from '../../src/controllers/ecsextension/reconciler.js';
import type { EventSink, KubeWriter, ObjectReader, Resource } from '../../src/controllers/shared/deps.js';
import type { InstanceLock } from '../../src/controllers/shared/lock.js';
import { DomainMetrics } from '../../src/controllers/shared/metrics.js';
import {
  DEMO_ACCESS_KEY,
  startEmulator,
  type Emulator,
  type EmulatorOptions,
  type Seed,
} from '../../src/emulator/index.js';
import { setEmulatorClock } from '../../src/emulator/state.js';
import { createRegistry } from '../../src/metrics/index.js';
import type { ReconcileContext, ReconcileResult, Reconciler } from '../../src/runtime/controller.js';
import { createLogger } from '../../src/runtime/logger.js';
import { jsonEqual } from '../../src/runtime/status.js';

export const REGION = 'cn-hangzhou';
export const NODE_PACKAGE = 'ACS-Extension-node-1853370294850618';

/**
 * In-memory objects of one kind: the informer cache (reads) and the status/finalizer writer in
 * one, like an API server that answers instantly. Writes that change nothing are skipped and
 * counted, as the real StatusPatcher does. `resourceVersion` rises on every write.
 */
export class MemoryStore<T extends Resource> implements KubeWriter<T>, ObjectReader<T> {
  private readonly objects = new Map<string, T>();
  private rv = 1;
  writes = 0;
  skipped = 0;
  /**
   * Kube-side faults: each status patch first takes the next entry and, when it is an Error,
   * throws it without writing (e.g. a 409 conflict or a 500 right after a start); `undefined`
   * entries let a patch through.
   */
  patchFaults: Array<Error | undefined> = [];

  private key(ns: string | undefined, name: string | undefined): string {
    return `${ns ?? ''}/${name ?? ''}`;
  }

  get(namespace: string, name: string): T | undefined {
    return this.objects.get(this.key(namespace, name));
  }

  list(): T[] {
    return [...this.objects.values()];
  }

  /**
   * Creates the object (new UID, generation 1) or replaces its spec (generation + 1 when it
   * changed). An update keeps the stored annotations unless `obj` brings its own.
   */
  apply(obj: Omit<T, 'status'> & { status?: T['status'] }): T {
    const k = this.key(obj.metadata.namespace, obj.metadata.name);
    const old = this.objects.get(k);
    const next = structuredClone(obj) as T;
    next.metadata.resourceVersion = String(++this.rv);
    if (old) {
      next.metadata.uid = old.metadata.uid;
      next.metadata.creationTimestamp = old.metadata.creationTimestamp;
      next.metadata.finalizers = old.metadata.finalizers;
      next.metadata.annotations ??= old.metadata.annotations;
      const specChanged = !jsonEqual(old.spec, next.spec);
      next.metadata.generation = (old.metadata.generation ?? 1) + (specChanged ? 1 : 0);
      next.status = old.status;
    } else {
      next.metadata.uid ??= randomUUID();
      next.metadata.generation = 1;
      next.metadata.creationTimestamp ??= new Date(
        Date.UTC(2026, 0, 1, 0, 0, this.rv),
      ).toISOString() as unknown as Date;
    }
    this.objects.set(k, next);
    return next;
  }

  /** Sets metadata fields (annotations) without a generation bump. */
  annotate(namespace: string, name: string, annotations: Record<string, string>): void {
    const obj = this.get(namespace, name);
    if (!obj) throw new Error(`no ${namespace}/${name}`);
    obj.metadata.annotations = { ...obj.metadata.annotations, ...annotations };
    obj.metadata.resourceVersion = String(++this.rv);
  }

  /** Kubernetes deletion: with finalizers, sets deletionTimestamp; without, removes the object. */
  delete(namespace: string, name: string): void {
    const obj = this.get(namespace, name);
    if (!obj) return;
    if ((obj.metadata.finalizers ?? []).length > 0) {
      obj.metadata.deletionTimestamp = new Date() as unknown as Date;
      obj.metadata.resourceVersion = String(++this.rv);
    } else this.objects.delete(this.key(namespace, name));
  }

  /** Removes the object at once, finalizers or not (e.g. a namespace force-deleted). */
  purge(namespace: string, name: string): void {
    this.objects.delete(this.key(namespace, name));
  }

  async patchStatus(obj: T, status: NonNullable<T['status']>): Promise<unknown> {
    const fault = this.patchFaults.shift();
    if (fault) throw fault;
    const stored = this.get(obj.metadata.namespace ?? '', obj.metadata.name ?? '');
    if (!stored) return { changed: false, object: undefined };
    if (jsonEqual(stored.status ?? {}, status)) {
      this.skipped++;
      return { changed: false, object: stored };
    }
    stored.status = structuredClone(status);
    stored.metadata.resourceVersion = String(++this.rv);
    this.writes++;
    return { changed: true, object: stored };
  }

  async addFinalizer(obj: T, finalizer: string): Promise<unknown> {
    const stored = this.get(obj.metadata.namespace ?? '', obj.metadata.name ?? '');
    if (stored && !(stored.metadata.finalizers ?? []).includes(finalizer)) {
      stored.metadata.finalizers = [...(stored.metadata.finalizers ?? []), finalizer];
      stored.metadata.resourceVersion = String(++this.rv);
    }
    return stored;
  }

  async removeFinalizer(obj: T, finalizer: string): Promise<unknown> {
    const stored = this.get(obj.metadata.namespace ?? '', obj.metadata.name ?? '');
    if (!stored) return undefined;
    stored.metadata.finalizers = (stored.metadata.finalizers ?? []).filter((f) => f !== finalizer);
    stored.metadata.resourceVersion = String(++this.rv);
    if (stored.metadata.deletionTimestamp && stored.metadata.finalizers.length === 0) {
      this.objects.delete(this.key(stored.metadata.namespace, stored.metadata.name));
      return undefined;
    }
    return stored;
  }
}

/** A recorded Event. */
export interface RecordedEvent {
  name: string;
  type: 'Normal' | 'Warning';
  reason: string;
  action: string;
  note: string;
}

/** Records Events in memory. */
export class RecordingEvents implements EventSink {
  readonly events: RecordedEvent[] = [];
  async event(
    regarding: Resource,
    type: 'Normal' | 'Warning',
    reason: string,
    action: string,
    note: string,
  ): Promise<void> {
    this.events.push({ name: regarding.metadata?.name ?? '', type, reason, action, note });
  }
}

/** A wall clock the test moves. */
export class FakeWallClock {
  private ms: number;
  constructor(start = Date.UTC(2026, 5, 1, 12, 0, 0)) {
    this.ms = start;
  }
  now = (): Date => new Date(this.ms);
  advance(ms: number): void {
    this.ms += ms;
  }
}

/** `count` running, Cloud Assistant online instances `i-<prefix>NNNN` tagged `fleet=<prefix>`, plus the node package (v1, v2). */
export function fleetSeed(prefix: string, count: number, extra: Partial<Seed> = {}): Seed {
  return {
    regions: {
      [REGION]: { generate: [{ count, idPrefix: `i-${prefix}`, tags: [{ key: 'fleet', value: prefix }] }] },
    },
    packageTemplates: [
      {
        name: NODE_PACKAGE,
        versions: [
          {
            version: 'v1',
            parameters: { version: { Type: 'String', Default: '16', AllowedValues: ['16', '18'] } },
          },
          {
            version: 'v2',
            parameters: { version: { Type: 'String', Default: '18', AllowedValues: ['16', '18', '20'] } },
          },
        ],
      },
    ],
    ...extra,
  };
}

/** The emulator's generated IDs `i-<prefix>NNNN` for `from..to` (width max(4, digits)). */
export function fleetIds(prefix: string, from: number, to: number, width = 4): string[] {
  return Array.from(
    { length: to - from + 1 },
    (_, i) => `i-${prefix}${String(from + i).padStart(width, '0')}`,
  );
}

/** Options of {@link startFastStack}. */
export interface FastStackOptions {
  seed: Seed;
  /** Emulator time scale (default 0.001: a 30 s execution takes 30 ms). */
  timeScale?: number;
  cloud?: Partial<CloudOptions>;
  options?: Partial<EcsExtensionOptions>;
  /** The cross-kind instance lock the EcsExtension reconciler checks (its store is added as a source). */
  lock?: InstanceLock;
  /** See `startCloudStack`'s `cloudOnFakeClock`. */
  cloudOnFakeClock?: boolean;
}

/** A reconcile's result or error. */
export type Step = { result?: ReconcileResult; error?: Error };

/** The fast tier's whole stack; see the module comment. */
export interface FastStack {
  emu: Emulator;
  cloud: CloudLayer;
  registry: Registry;
  store: MemoryStore<EcsExtension>;
  events: RecordingEvents;
  clock: FakeWallClock;
  reconciler: EcsExtensionReconciler;
  /** A new reconciler with fresh process memory (a controller restart), same store and cloud. */
  restart(): EcsExtensionReconciler;
  /** Creates or updates an EcsExtension in namespace `ns` (default `default`). */
  apply(name: string, spec: Partial<EcsExtensionSpec>, ns?: string): EcsExtension;
  get(name: string, ns?: string): EcsExtension | undefined;
  /** One reconcile; errors are returned, not thrown. */
  reconcile(name: string, opts?: { ns?: string; signal?: AbortSignal }): Promise<Step>;
  /**
   * Reconciles `name` until `done(obj)` (checked after each reconcile), honouring requeues by
   * advancing the fake clock by the requested delay and sleeping a little real time so the
   * emulator's executions progress. @throws when `maxSteps` pass first.
   */
  until(
    name: string,
    done: (obj: EcsExtension | undefined, step: Step) => boolean,
    maxSteps?: number,
    ns?: string,
  ): Promise<EcsExtension | undefined>;
  stop(): Promise<void>;
}

const silent = createLogger({ level: 'silent', destination: pino.destination({ dest: 2, sync: true }) });

/** One reconcile of `namespace/name`; errors are returned, not thrown. */
export async function reconcileStep(
  reconciler: Reconciler,
  namespace: string,
  name: string,
  signal?: AbortSignal,
): Promise<Step> {
  try {
    return { result: await reconciler.reconcile({ namespace, name }, reconcileContext(name, signal)) };
  } catch (err) {
    return { error: err as Error };
  }
}

/** A reconcile context (silent logger unless ECSOPS_TEST_LOG_LEVEL is set). */
export function reconcileContext(name: string, signal = new AbortController().signal): ReconcileContext {
  const reconcileID = randomUUID();
  const level = process.env.ECSOPS_TEST_LOG_LEVEL;
  const log = level ? createLogger({ level: level as 'debug' }) : silent;
  return { log: log.child({ controller: 'ecsextension', name, reconcileID }), reconcileID, signal };
}

/** The kind-independent part of the fast tier: emulator, real cloud layer, metrics, events, clock. */
export interface CloudStack {
  emu: Emulator;
  cloud: CloudLayer;
  registry: Registry;
  metrics: DomainMetrics;
  events: RecordingEvents;
  clock: FakeWallClock;
  stop(): Promise<void>;
}

/**
 * Starts the emulator (default timeScale 0.001) and the real cloud layer against it (qps 1000,
 * fast in-layer retries). Every kind's fast-tier harness builds on this.
 */
export async function startCloudStack(o: {
  seed: Seed;
  timeScale?: number;
  cloud?: Partial<CloudOptions>;
  /** Action labels to pre-initialise per template (DomainMetrics). */
  templates?: Record<string, readonly string[]>;
  /** Further emulator options (e.g. `sandbox`). */
  emulator?: Partial<EmulatorOptions>;
  /**
   * The emulator's dates (execution start/end, ActionTrail event times) follow the fake clock, and
   * the change feed's date bounds use it too: the cloud lives in the test's time (hours of drift
   * checks in seconds). Off by default: the emulator stamps real time.
   */
  cloudOnFakeClock?: boolean;
}): Promise<CloudStack> {
  const clock = new FakeWallClock();
  if (o.cloudOnFakeClock) setEmulatorClock(() => clock.now());
  const emu = await startEmulator({ timeScale: o.timeScale ?? 0.001, seed: o.seed, ...o.emulator });
  const registry = createRegistry({ defaultMetrics: false });
  const metrics = new DomainMetrics(registry, o.templates ?? {});
  const cloud = createCloudClients(
    {
      endpointOverride: { oos: emu.endpoint, ecs: emu.endpoint },
      protocol: 'HTTP',
      qps: 1000,
      concurrency: 20,
      credential: { accessKeyId: DEMO_ACCESS_KEY.id, accessKeySecret: DEMO_ACCESS_KEY.secret },
      retryBaseDelayMs: 5,
      retryMaxDelayMs: 50,
      ownerTagKey: OWNER_UID_TAG,
      ...o.cloud,
    },
    {
      registry,
      now: () => clock.now().getTime(),
      ...(o.cloudOnFakeClock ? { cloudNow: () => clock.now().getTime() } : {}),
    },
  );
  return {
    emu,
    cloud,
    registry,
    metrics,
    events: new RecordingEvents(),
    clock,
    stop: async () => {
      await emu.stop();
      if (o.cloudOnFakeClock) setEmulatorClock();
    },
  };
}

/**
 * Reconciles `name` with `reconcile` until `done(obj)` (checked after each reconcile), honouring
 * requeues by advancing the fake clock by the requested delay and sleeping a little real time so
 * the emulator's work progresses. @throws when `maxSteps` pass first.
 */
export async function reconcileUntil<T extends Resource>(
  store: MemoryStore<T>,
  clock: FakeWallClock,
  reconcile: () => Promise<Step>,
  ns: string,
  name: string,
  done: (obj: T | undefined, step: Step) => boolean,
  maxSteps = 400,
): Promise<T | undefined> {
  for (let i = 0; i < maxSteps; i++) {
    const step = await reconcile();
    const obj = store.get(ns, name);
    if (done(obj, step)) return obj;
    const wait = step.result?.requeueAfterMs ?? 1_000;
    clock.advance(wait);
    await sleep(step.error ? 2 : Math.min(20, Math.max(2, wait / 100)));
  }
  const conds = (store.get(ns, name)?.status as { conditions?: unknown } | undefined)?.conditions;
  throw new Error(
    `${name}: condition not reached after ${maxSteps} reconciles; conditions: ${JSON.stringify(conds)}`,
  );
}

/** Starts the emulator and builds the EcsExtension stack (see {@link FastStack}). */
export async function startFastStack(o: FastStackOptions): Promise<FastStack> {
  const base = await startCloudStack({
    seed: o.seed,
    ...(o.timeScale !== undefined ? { timeScale: o.timeScale } : {}),
    ...(o.cloud ? { cloud: o.cloud } : {}),
    templates: { [CONFIGURE_PACKAGE_TEMPLATE]: ['install', 'update', 'uninstall'] },
    ...(o.cloudOnFakeClock ? { cloudOnFakeClock: true } : {}),
  });
  const { emu, cloud, registry, metrics, events, clock } = base;
  const store = new MemoryStore<EcsExtension>();
  const build = (): EcsExtensionReconciler =>
    new EcsExtensionReconciler({
      objects: store,
      kube: store,
      cloud,
      events,
      metrics,
      now: clock.now,
      // Reconciles run back to back and tests read the status after each one, so status
      // coalescing is off unless a test asks for it (the integration tier runs the default).
      options: { pollMinMs: 1_000, pollMaxMs: 5_000, statusCoalesceMs: 0, ...o.options },
      ...(o.lock ? { lock: o.lock } : {}),
    });
  o.lock?.addSource('EcsExtension', store as unknown as ObjectReader<Resource>);
  const stack: FastStack = {
    emu,
    cloud,
    registry,
    store,
    events,
    clock,
    reconciler: build(),
    restart() {
      stack.reconciler = build();
      return stack.reconciler;
    },
    apply(name, spec, ns = 'default') {
      return store.apply({
        apiVersion: 'ecsops.io/v1alpha1',
        kind: 'EcsExtension',
        metadata: { name, namespace: ns },
        spec: {
          regionId: REGION,
          packageName: NODE_PACKAGE,
          parameters: { version: '18' },
          targets: { instanceIds: ['i-none'] },
          ...spec,
        } as EcsExtensionSpec,
      });
    },
    get: (name, ns = 'default') => store.get(ns, name),
    async reconcile(name, opts = {}) {
      const ns = opts.ns ?? 'default';
      try {
        return {
          result: await stack.reconciler.reconcile(
            { namespace: ns, name },
            reconcileContext(name, opts.signal),
          ),
        };
      } catch (err) {
        return { error: err as Error };
      }
    },
    until(name, done, maxSteps = 400, ns = 'default') {
      return reconcileUntil(store, clock, () => stack.reconcile(name, { ns }), ns, name, done, maxSteps);
    },
    stop: () => base.stop(),
  };
  return stack;
}

/** The Ready condition of `obj`. */
export function ready(obj: EcsExtension | undefined) {
  return obj?.status?.conditions?.find((c) => c.type === 'Ready');
}

/** True when Ready=True for the current generation. */
export function isReady(obj: EcsExtension | undefined): boolean {
  return ready(obj)?.status === 'True' && ready(obj)?.observedGeneration === obj?.metadata.generation;
}

export { FINALIZER };

/**
 * Reconciles every name round-robin (advancing the fake clock by the shortest requeue, at most 5 s)
 * until all are Ready. @throws after `maxRounds` rounds.
 */
export async function convergeAll(st: FastStack, names: string[], maxRounds = 200): Promise<void> {
  for (let round = 0; round < maxRounds; round++) {
    let minWait = Infinity;
    for (const n of names) {
      const step = await st.reconcile(n);
      minWait = Math.min(minWait, step.result?.requeueAfterMs ?? 1_000);
    }
    if (names.every((n) => isReady(st.get(n)))) return;
    st.clock.advance(Math.min(minWait, 5_000));
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`not all Ready: ${names.filter((n) => !isReady(st.get(n))).join(', ')}`);
}
