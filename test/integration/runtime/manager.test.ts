/**
 * The runtime against the real API server with a throwaway CRD (`gadgets.runtime-test.ecsops.io`):
 * informer sync and restart, manager result accounting, status writes only on change, finalizers
 * with optimistic locking, events.k8s.io/v1 aggregation, graceful stop.
 */
import { CustomObjectsApi, EventsV1Api } from '@kubernetes/client-node';
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { StalledError, TransientError } from '../../../src/runtime/errors.js';
import { EventRecorder } from '../../../src/runtime/events.js';
import { CustomResourceInformer } from '../../../src/runtime/informer.js';
import { createLogger } from '../../../src/runtime/logger.js';
import { Manager } from '../../../src/runtime/manager.js';
import type {
  ControllerHandle,
  ReconcileContext,
  ReconcileRequest,
  ReconcileResult,
} from '../../../src/runtime/manager.js';
import { StatusPatcher } from '../../../src/runtime/status.js';
import { applyCrd, testCrd, createTestNamespace, getTestKubeConfig } from '../../harness/env.js';
import { TcpProxy, eventually } from './tcp-proxy.js';

const group = 'runtime-test.ecsops.io';
const version = 'v1';
const plural = 'gadgets';

interface Gadget extends KubernetesObject {
  spec: { size: number; mode?: string };
  status?: { observedGeneration?: number; phase?: string; items?: string[]; extra?: string };
}

const crd = testCrd(group, version, 'Gadget', {
  type: 'object',
  properties: {
    spec: {
      type: 'object',
      properties: { size: { type: 'integer' }, mode: { type: 'string' } },
    },
    status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
  },
});

let kc: KubeConfig;
let api: CustomObjectsApi;
const cleanups: Array<() => Promise<void>> = [];
const logger = createLogger({ level: process.env.LOG_LEVEL === 'debug' ? 'debug' : 'silent' });

beforeAll(async () => {
  kc = getTestKubeConfig('admin');
  api = kc.makeApiClient(CustomObjectsApi);
  await applyCrd(kc, crd);
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function create(namespace: string, name: string, spec: Gadget['spec']): Promise<Gadget> {
  return (await api.createNamespacedCustomObject({
    group,
    version,
    namespace,
    plural,
    body: { apiVersion: `${group}/${version}`, kind: 'Gadget', metadata: { name }, spec },
  })) as Gadget;
}

async function read(namespace: string, name: string): Promise<Gadget> {
  return (await api.getNamespacedCustomObject({ group, version, namespace, plural, name })) as Gadget;
}

async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string>,
): Promise<number | undefined> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  return m?.values.find((v) =>
    Object.entries(labels).every(([k, val]) => (v.labels as Record<string, unknown>)[k] === val),
  )?.value;
}

type Behaviour = (
  req: ReconcileRequest,
  ctx: ReconcileContext,
  obj: Gadget | undefined,
) => Promise<ReconcileResult>;

function startManager(
  namespace: string,
  behaviour: Behaviour,
  extra: { onLeadershipLost?: () => void } = {},
) {
  const registry = new Registry();
  const manager = new Manager({ kubeConfig: kc, registry, logger, ...extra });
  const calls: Array<{ key: string; seen: boolean }> = [];
  const handle: ControllerHandle<Gadget> = manager.addController<Gadget>({
    name: 'gadget',
    group,
    version,
    plural,
    kind: 'Gadget',
    namespace,
    workers: 2,
    rateLimiter: { baseDelayMs: 200, maxDelayMs: 2000 },
    reconciler: {
      reconcile: async (req, ctx): Promise<ReconcileResult> => {
        const obj: Gadget | undefined = handle.cache.get(req.namespace, req.name);
        calls.push({ key: `${req.namespace}/${req.name}`, seen: obj !== undefined });
        return behaviour(req, ctx, obj);
      },
    },
  });
  cleanups.push(() => manager.stop(2000));
  return { manager, registry, calls, cache: handle.cache };
}

describe('Manager', () => {
  it('syncs caches before workers start and accounts results like controller-runtime', async () => {
    const namespace = await createTestNamespace(kc, 'rt-mgr');
    await create(namespace, 'ok', { size: 1 });
    await create(namespace, 'stalled', { size: 1 });
    await create(namespace, 'flaky', { size: 1 });
    await create(namespace, 'waiting', { size: 1 });
    let flakyFailures = 0;
    let waitingRuns = 0;
    const { manager, registry, calls } = startManager(namespace, async (req) => {
      switch (req.name) {
        case 'stalled':
          throw new StalledError('InvalidSpec', 'size is unsupported');
        case 'flaky':
          if (flakyFailures++ < 2) throw new TransientError('Throttled', 'try again');
          return {};
        case 'waiting':
          return waitingRuns++ < 2 ? { requeueAfterMs: 300 } : {};
        default:
          return {};
      }
    });
    expect(manager.ready()).toBe(false);
    await manager.start();
    expect(manager.ready()).toBe(true);
    expect(manager.isLeader()).toBe(true);

    await eventually(
      () => calls.filter((c) => c.key.endsWith('/flaky')).length === 3,
      20_000,
      'flaky to succeed',
    );
    await eventually(() => waitingRuns === 3, 20_000, 'waiting to be requeued twice');
    // Every reconcile found its object in the synced cache.
    expect(calls.every((c) => c.seen)).toBe(true);
    // Give a stalled key time to (wrongly) come back.
    await new Promise((r) => setTimeout(r, 1000));
    expect(calls.filter((c) => c.key.endsWith('/stalled'))).toHaveLength(1);

    const total = (result: string) =>
      metricValue(registry, 'controller_runtime_reconcile_total', { controller: 'gadget', result });
    expect(await total('success')).toBe(3); // ok, flaky, waiting (3rd run)
    expect(await total('error')).toBe(3); // stalled + 2 flaky
    expect(await total('requeue_after')).toBe(2);
    expect(await total('requeue')).toBe(0);
    expect(
      await metricValue(registry, 'controller_runtime_terminal_reconcile_errors_total', {
        controller: 'gadget',
      }),
    ).toBe(1);
    expect(
      await metricValue(registry, 'controller_runtime_reconcile_errors_total', { controller: 'gadget' }),
    ).toBe(3);
    expect(
      await metricValue(registry, 'workqueue_retries_total', { name: 'gadget', controller: 'gadget' }),
    ).toBe(2);
    // 2 workers + 1 poll-only worker (ceil(2 / 4)).
    expect(
      await metricValue(registry, 'controller_runtime_max_concurrent_reconciles', { controller: 'gadget' }),
    ).toBe(3);
  });

  it('reconciles on spec change and on delete (object gone from the cache)', async () => {
    const namespace = await createTestNamespace(kc, 'rt-mgr');
    const { manager, calls } = startManager(namespace, async () => ({}));
    await manager.start();
    await create(namespace, 'g1', { size: 1 });
    await eventually(() => calls.length >= 1, 20_000, 'reconcile on add');
    await api.patchNamespacedCustomObject({
      group,
      version,
      namespace,
      plural,
      name: 'g1',
      body: [{ op: 'replace', path: '/spec/size', value: 2 }],
    });
    await eventually(() => calls.length >= 2, 20_000, 'reconcile on update');
    await api.deleteNamespacedCustomObject({ group, version, namespace, plural, name: 'g1' });
    await eventually(() => calls.some((c) => !c.seen), 20_000, 'reconcile on delete');
  });

  it('stop() waits for in-flight reconciles up to the deadline, then aborts their signal', async () => {
    const namespace = await createTestNamespace(kc, 'rt-mgr');
    await create(namespace, 'slow', { size: 1 });
    let aborted = false;
    let entered = false;
    const { manager } = startManager(namespace, (_req, ctx) => {
      entered = true;
      return new Promise((resolve) => {
        ctx.signal.addEventListener('abort', () => {
          aborted = true;
          resolve({});
        });
      });
    });
    await manager.start();
    await eventually(() => entered, 20_000, 'reconcile to start');
    await manager.stop(300);
    expect(aborted).toBe(true);
  });

  it('stop() returns only after aborted reconciles returned (the Lease is released after them)', async () => {
    const namespace = await createTestNamespace(kc, 'rt-mgr');
    await create(namespace, 'abandon', { size: 1 });
    let entered = false;
    let returnedAt = 0;
    const { manager } = startManager(namespace, (_req, ctx) => {
      entered = true;
      // Like a reconcile whose in-flight cloud attempt takes a moment to be abandoned.
      return new Promise((resolve) => {
        ctx.signal.addEventListener('abort', () =>
          setTimeout(() => {
            returnedAt = Date.now();
            resolve({});
          }, 400),
        );
      });
    });
    await manager.start();
    await eventually(() => entered, 20_000, 'reconcile to start');
    await manager.stop(200);
    const stoppedAt = Date.now();
    expect(returnedAt).toBeGreaterThan(0);
    expect(returnedAt).toBeLessThanOrEqual(stoppedAt);
  });
});

describe('CustomResourceInformer', () => {
  it('restarts after a connection failure and catches up on changes made meanwhile', async () => {
    const namespace = await createTestNamespace(kc, 'rt-inf');
    const proxy = TcpProxy.forKubeConfig(kc);
    await proxy.resume();
    cleanups.push(() => proxy.pause());
    const informer = new CustomResourceInformer<Gadget>({
      kubeConfig: proxy.kubeConfigFor(kc),
      group,
      version,
      plural,
      namespace,
      logger,
      restartBaseDelayMs: 200,
      restartMaxDelayMs: 1000,
    });
    const added: string[] = [];
    const deleted: string[] = [];
    informer.onAdd((o) => added.push(o.metadata?.name ?? ''));
    informer.onDelete((o) => deleted.push(o.metadata?.name ?? ''));
    cleanups.push(() => informer.stop());
    await create(namespace, 'before', { size: 1 });
    await informer.start();
    await informer.waitForSync();
    expect(informer.hasSynced()).toBe(true);
    expect(informer.get(namespace, 'before')?.spec.size).toBe(1);

    await proxy.pause();
    await create(namespace, 'during', { size: 2 });
    await api.deleteNamespacedCustomObject({ group, version, namespace, plural, name: 'before' });
    // Let the informer notice the failure and retry against the dead address a few times.
    await new Promise((r) => setTimeout(r, 1500));
    await proxy.resume();

    await eventually(
      () => informer.get(namespace, 'during') !== undefined,
      30_000,
      'informer to see "during"',
    );
    await eventually(
      () => informer.get(namespace, 'before') === undefined,
      30_000,
      'informer to drop "before"',
    );
    expect(added).toContain('during');
    expect(deleted).toContain('before');
    expect(informer.list().map((o) => o.metadata?.name)).toEqual(['during']);
  });

  it('waitForSync rejects when its signal aborts first', async () => {
    const informer = new CustomResourceInformer<Gadget>({
      kubeConfig: kc,
      group,
      version,
      plural: 'nonexistents',
    });
    await expect(informer.waitForSync(AbortSignal.timeout(50))).rejects.toBeDefined();
  });
});

describe('StatusPatcher', () => {
  it('writes status only when it changed, removes dropped keys, never touches spec', async () => {
    const namespace = await createTestNamespace(kc, 'rt-status');
    const patcher = new StatusPatcher({ kubeConfig: kc, group, version, plural });
    const obj = await create(namespace, 's1', { size: 5 });

    const first = await patcher.patchStatus(obj, {
      observedGeneration: 1,
      phase: 'Ready',
      items: ['a', 'b'],
      extra: 'x',
    });
    expect(first.changed).toBe(true);
    const afterFirst = first.object!;
    expect(afterFirst.status).toEqual({
      observedGeneration: 1,
      phase: 'Ready',
      items: ['a', 'b'],
      extra: 'x',
    });

    // Same content, different key order: no write, resourceVersion unchanged.
    const same = await patcher.patchStatus(afterFirst, {
      extra: 'x',
      items: ['a', 'b'],
      phase: 'Ready',
      observedGeneration: 1,
    });
    expect(same.changed).toBe(false);
    expect((await read(namespace, 's1')).metadata?.resourceVersion).toBe(
      afterFirst.metadata?.resourceVersion,
    );

    // Dropping a key and shrinking an array really removes them.
    const second = await patcher.patchStatus(afterFirst, {
      observedGeneration: 1,
      phase: 'Ready',
      items: ['a'],
    });
    expect(second.changed).toBe(true);
    const stored = await read(namespace, 's1');
    expect(stored.status).toEqual({ observedGeneration: 1, phase: 'Ready', items: ['a'] });
    expect(stored.spec).toEqual({ size: 5 });

    // A stale object (as right after addFinalizer) is fine for the unlocked merge patch.
    const third = await patcher.patchStatus(afterFirst, { observedGeneration: 2, phase: 'Ready', items: [] });
    expect(third.changed).toBe(true);
    expect((await read(namespace, 's1')).status).toEqual({
      observedGeneration: 2,
      phase: 'Ready',
      items: [],
    });
  });

  it('replaceStatus is locked on resourceVersion: a stale object is a Conflict', async () => {
    const namespace = await createTestNamespace(kc, 'rt-status');
    const patcher = new StatusPatcher({ kubeConfig: kc, group, version, plural });
    const obj = await create(namespace, 'r1', { size: 5 });
    const first = await patcher.replaceStatus(obj, { phase: 'One', extra: 'x' });
    expect(first.object?.status).toEqual({ phase: 'One', extra: 'x' });
    const second = await patcher.replaceStatus(first.object!, { phase: 'Two' });
    expect(second.object?.status).toEqual({ phase: 'Two' });
    expect(second.object?.spec).toEqual({ size: 5 });
    await expect(patcher.replaceStatus(first.object!, { phase: 'Stale' })).rejects.toMatchObject({
      name: 'TransientError',
      reason: 'Conflict',
    });
  });

  it('reports a missing object as gone', async () => {
    const namespace = await createTestNamespace(kc, 'rt-status');
    const patcher = new StatusPatcher({ kubeConfig: kc, group, version, plural });
    const ghost: Gadget = {
      apiVersion: `${group}/${version}`,
      kind: 'Gadget',
      metadata: { name: 'ghost', namespace, resourceVersion: '1' },
      spec: { size: 1 },
    };
    expect(await patcher.patchStatus(ghost, { phase: 'X' })).toEqual({ changed: false, object: undefined });
  });

  it('adds and removes finalizers, locking only on the finalizer list', async () => {
    const namespace = await createTestNamespace(kc, 'rt-fin');
    const patcher = new StatusPatcher({ kubeConfig: kc, group, version, plural });
    const fin = 'runtime-test.ecsops.io/cleanup';
    const obj = await create(namespace, 'f1', { size: 1 });
    const withFin = await patcher.addFinalizer(obj, fin);
    expect(withFin.metadata?.finalizers).toEqual([fin]);
    expect(await patcher.addFinalizer(withFin, fin)).toBe(withFin);
    // First add is locked on resourceVersion: a stale object conflicts.
    await expect(patcher.addFinalizer(obj, 'runtime-test.ecsops.io/other')).rejects.toMatchObject({
      reason: 'Conflict',
    });

    // A status write in between does not make a finalizer change conflict (lock is on the list)...
    await patcher.patchStatus(withFin, { phase: 'Busy' });
    const other = await patcher.addFinalizer(withFin, 'runtime-test.ecsops.io/other');
    expect(other.metadata?.finalizers).toEqual([fin, 'runtime-test.ecsops.io/other']);
    // ...but a concurrent change of the list does.
    await expect(patcher.removeFinalizer(withFin, fin)).rejects.toMatchObject({ reason: 'Conflict' });

    await api.deleteNamespacedCustomObject({ group, version, namespace, plural, name: 'f1' });
    expect((await read(namespace, 'f1')).metadata?.deletionTimestamp).toBeDefined();
    const step = await patcher.removeFinalizer(other, 'runtime-test.ecsops.io/other');
    expect(step?.metadata?.finalizers).toEqual([fin]);
    const removed = await patcher.removeFinalizer(step!, fin);
    // Removing the last finalizer of a deleting object lets the API server delete it.
    expect(removed === undefined || (removed.metadata?.finalizers ?? []).length === 0).toBe(true);
    await expect(read(namespace, 'f1')).rejects.toMatchObject({ code: 404 });
  });
});

describe('EventRecorder', () => {
  it('creates a valid events.k8s.io/v1 Event and folds repeats into its series', async () => {
    const namespace = await createTestNamespace(kc, 'rt-ev');
    const obj = await create(namespace, 'e1', { size: 1 });
    const recorder = new EventRecorder({ kubeConfig: kc, logger, reportingInstance: 'gadget-test' });
    await recorder.event(obj, 'Normal', 'ExecutionStarted', 'StartExecution', 'started exec-1');
    await recorder.event(obj, 'Normal', 'ExecutionStarted', 'StartExecution', 'started exec-1');
    await recorder.event(obj, 'Normal', 'ExecutionStarted', 'StartExecution', 'started exec-1');
    await recorder.event(obj, 'Warning', 'ExecutionFailed', 'StartExecution', `failed … ${'x'.repeat(3000)}`);

    const events = await kc.makeApiClient(EventsV1Api).listNamespacedEvent({ namespace });
    const started = events.items.filter((e) => e.reason === 'ExecutionStarted');
    expect(started).toHaveLength(1);
    expect(started[0]).toMatchObject({
      type: 'Normal',
      action: 'StartExecution',
      note: 'started exec-1',
      reportingController: 'ecsops.io/controller',
      reportingInstance: 'gadget-test',
      regarding: { kind: 'Gadget', name: 'e1', namespace, uid: obj.metadata?.uid },
    });
    expect(started[0]?.series?.count).toBe(3);
    const failed = events.items.find((e) => e.reason === 'ExecutionFailed');
    expect(failed?.type).toBe('Warning');
    expect(Buffer.byteLength(failed?.note ?? '')).toBeLessThanOrEqual(1024);
    expect(failed?.note).toMatch(/^failed … x+\.\.\.$/);
  });

  it('rate-limits per object and never throws', async () => {
    const namespace = await createTestNamespace(kc, 'rt-ev');
    const obj = await create(namespace, 'e2', { size: 1 });
    const recorder = new EventRecorder({ kubeConfig: kc, logger, burst: 2 });
    for (let i = 0; i < 5; i++) await recorder.event(obj, 'Normal', 'Tick', 'Count', `tick ${i}`);
    const events = await kc.makeApiClient(EventsV1Api).listNamespacedEvent({ namespace });
    expect(events.items.filter((e) => e.reason === 'Tick')).toHaveLength(2);
    // keyed by (object, reason): another reason of the same object is not starved
    await recorder.event(obj, 'Normal', 'Tock', 'Count', 'tock');
    const after = await kc.makeApiClient(EventsV1Api).listNamespacedEvent({ namespace });
    expect(after.items.filter((e) => e.reason === 'Tock')).toHaveLength(1);
    // An object in a namespace that does not exist: the API error is logged, not thrown.
    const ghost = { ...obj, metadata: { ...obj.metadata, namespace: 'no-such-namespace', uid: 'ghost-uid' } };
    await expect(recorder.event(ghost, 'Normal', 'Tick', 'Count', 'ghost')).resolves.toBeUndefined();
  });
});
