/**
 * AppRelease end to end on the real API server: the CRD from crds/, the real controller (in
 * process, and as a child process for the SIGKILL test), the emulator in SANDBOX mode (the real
 * wrapper runs with bash in one directory per instance), and artifacts served on 127.0.0.1.
 *
 * 12 instances tagged app=shop. The scenarios build on each other (the stable revision of one is
 * the one the next rolls back to), so they run in order.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { EventsV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  APP_RELEASE_PLURAL,
  PROMOTE_REQUESTED_ANNOTATION,
  type AppRelease,
  type AppReleaseSpec,
} from '../../../src/api/apprelease.js';
import { GROUP, OWNER_UID_TAG, VERSION } from '../../../src/api/common.js';
import { revisionOf } from '../../../src/controllers/apprelease/wrapper.js';
import type { ExecutionRecord, InvocationRecord } from '../../../src/emulator/index.js';
import { ArtifactServer, type Artifact } from '../../harness/fast-apprelease.js';
import {
  createEcsExtension,
  fleetSeed,
  getEcsExtension,
  instanceIds,
  patchEcsExtension,
  REGION,
  spawnController,
  startStack,
  testControllerArgs,
  waitFor,
  waitForReady,
  type Stack,
} from '../../harness/stack.js';

const execFileAsync = promisify(execFile);
const ids = instanceIds('are', 1, 12);
const TAG_KEY = 'ecsops.io/app.shop';

/** app.sh of a version: `start` may fail or sleep; `health` fails on one instance. */
function appScript(version: string, o: { failStart?: boolean; failHealthOn?: string; sleep?: number } = {}) {
  return [
    '#!/bin/bash',
    'case "$1" in',
    `  start) ${o.sleep ? `sleep ${o.sleep}; ` : ''}echo "${version}" > "$APP_DIR/../running"; ${o.failStart ? 'echo "port 8080 in use" >&2; exit 7' : 'exit 0'} ;;`,
    `  health) [ "$ECSOPS_INSTANCE_ID" = "${o.failHealthOn ?? 'none'}" ] && { echo unhealthy; exit 1; }; exit 0 ;;`,
    'esac',
  ].join('\n');
}

function readyOf(o: AppRelease | undefined) {
  return o?.status?.conditions?.find((c) => c.type === 'Ready');
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => child.once('exit', () => r()));
}

/** Whether two [start, end] intervals (ms) overlap; an open end counts as still running. */
function overlaps(a: [number, number | undefined], b: [number, number | undefined]): boolean {
  const aEnd = a[1] ?? Number.POSITIVE_INFINITY;
  const bEnd = b[1] ?? Number.POSITIVE_INFINITY;
  return a[0] < bEnd && b[0] < aEnd;
}

describe('AppRelease end to end (real API server, emulator sandbox, 12 instances)', () => {
  let stack: Stack;
  let root: string;
  const artifacts = new ArtifactServer();
  const children: ChildProcess[] = [];
  let uid = '';

  const appDir = (id: string) => join(root, id, 'app');
  const get = async (name = 'shop'): Promise<AppRelease> =>
    (await stack.api.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: stack.namespace,
      plural: APP_RELEASE_PLURAL,
      name,
    })) as AppRelease;
  const patch = async (body: Record<string, unknown>, name = 'shop') => {
    await stack.api.patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, namespace: stack.namespace, plural: APP_RELEASE_PLURAL, name, body },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  };
  const until = (what: string, ok: (o: AppRelease) => boolean, timeoutMs = 90_000) =>
    waitFor(
      what,
      async () => {
        const o = await get();
        return o.status?.observedGeneration === o.metadata.generation && ok(o) ? o : undefined;
      },
      timeoutMs,
      100,
    );
  const tags = async (): Promise<Record<string, string | undefined>> =>
    Object.fromEntries(
      (await stack.emu.control.listInstances(REGION)).map((i) => [i.instanceId, i.tags[TAG_KEY]]),
    );
  const invocations = async (): Promise<InvocationRecord[]> =>
    (await stack.emu.control.listInvocations()).filter((v) => v.tags[OWNER_UID_TAG] === uid);
  const param = (v: InvocationRecord, k: string) => String(v.parameters[k]);
  const startsOf = (id: string, rev: string) =>
    existsSync(join(root, id, 'events.log'))
      ? readFileSync(join(root, id, 'events.log'), 'utf8')
          .split('\n')
          .filter((l) => l === `start ${rev}`).length
      : 0;

  function spec(a: Artifact, over: Partial<AppReleaseSpec> = {}): AppReleaseSpec {
    const log = (what: string) => `echo "${what} $ECSOPS_REVISION" >> "$APP_DIR/../events.log"`;
    return {
      regionId: REGION,
      targets: { tags: [{ key: 'app', value: 'shop' }] },
      interval: '10s',
      application: 'shop',
      version: '1.0.0',
      artifact: a,
      install: {
        appDir: `${root}/{{ACS::InstanceId}}/app`,
        keepReleases: 3,
        env: { DB_PASSWORD: 'hunter2-e2e' },
      },
      hooks: {
        stop: { script: log('stop'), timeoutSeconds: 10 },
        start: { script: `${log('start')}\n./app.sh start`, timeoutSeconds: 20 },
      },
      healthCheck: {
        exec: { script: './app.sh health' },
        periodSeconds: 1,
        failureThreshold: 1,
        timeoutSeconds: 5,
      },
      strategy: { batchSize: '25%', canary: { instances: 1, pause: true }, maxErrors: 0 },
      rollback: { automatic: true },
      progressDeadlineSeconds: 120,
      ...over,
    };
  }

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'ecsops-are2e-'));
    await artifacts.start();
    stack = await startStack({
      seed: {
        ...fleetSeed('unused', 0),
        regions: {
          [REGION]: { generate: [{ count: 12, idPrefix: 'i-are', tags: [{ key: 'app', value: 'shop' }] }] },
        },
      },
      prefix: 'are2e',
      timeScale: 0.05, // an OOS package install item takes 1 s (the lock test), Cloud Assistant Pending→Running 15 ms
      controller: false,
      sandbox: { rootDir: root },
    });
  });
  afterEach(async () => {
    for (const c of children.splice(0)) {
      c.kill('SIGKILL');
      await exited(c);
    }
  });
  afterAll(async () => {
    await stack?.stop();
    await artifacts.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('canary of 1 → Paused → promote → batches of 25 % → Ready with all 12 on the new revision', async () => {
    await stack.startController();
    const v1 = artifacts.add('shop-1', { 'app.sh': appScript('1') }, root);
    const created = (await stack.api.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: stack.namespace,
      plural: APP_RELEASE_PLURAL,
      body: {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: 'AppRelease',
        metadata: { name: 'shop' },
        spec: spec(v1),
      },
    })) as AppRelease;
    uid = created.metadata.uid ?? '';
    const rev = revisionOf(created.spec); // the spec as defaulted by the API server
    let obj = await until('Paused after the canary', (o) => o.status?.phase === 'Paused');
    expect(obj.status?.currentRevision).toBe(rev);
    expect(obj.status?.summary).toMatchObject({ targeted: 12, updated: 1, pending: 11 });
    expect(obj.status?.conditions?.find((c) => c.type === 'Paused')).toMatchObject({
      status: 'True',
      reason: 'CanaryPause',
    });
    expect(readyOf(obj)).toMatchObject({ status: 'False', reason: 'RolloutPaused' });
    expect(Object.entries(await tags()).filter(([, t]) => t === rev)).toEqual([[ids[0], rev]]);
    // held: nothing more starts while paused
    const held = (await invocations()).length;
    await new Promise((r) => setTimeout(r, 2_000));
    expect((await invocations()).length).toBe(held);

    await patch({ metadata: { annotations: { [PROMOTE_REQUESTED_ANNOTATION]: new Date().toISOString() } } });
    obj = await until('Ready after promote', (o) => readyOf(o)?.status === 'True');
    expect(readyOf(obj)?.reason).toBe('RolloutSucceeded');
    expect(obj.status).toMatchObject({ phase: 'Succeeded', currentRevision: rev, stableRevision: rev });
    expect(obj.status?.summary).toMatchObject({
      targeted: 12,
      updated: 12,
      healthy: 12,
      failed: 0,
      pending: 0,
    });
    expect(obj.status?.conditions?.find((c) => c.type === 'Paused')?.status).toBe('False');
    // the emulator's tags match the status, instance by instance
    const t = await tags();
    expect(ids.map((id) => t[id])).toEqual(ids.map(() => rev));
    for (const row of obj.status?.instances ?? []) expect(row.revision).toBe(t[row.instanceId]);
    expect(obj.status?.instances?.map((r) => r.instanceId).sort()).toEqual(ids);
    for (const id of ids) expect(readlinkSync(join(appDir(id), 'current'))).toBe(`releases/${rev}`);
    // canary 1, then ceil(25 % × 12) = 3 per batch
    const deploys = (await invocations()).filter((v) => param(v, 'action') === 'deploy');
    expect(deploys.map((v) => v.instances.length)).toEqual([1, 3, 3, 3, 2]);
    expect(obj.status?.rollout?.batches.map((b) => [b.index, b.size, b.phase])).toEqual([
      [0, 1, 'Succeeded'],
      [1, 3, 'Succeeded'],
      [2, 3, 'Succeeded'],
      [3, 3, 'Succeeded'],
      [4, 2, 'Succeeded'],
    ]);
    // Events on the API server; no env value or pre-signed query string anywhere visible
    const events = (
      await stack.kc.makeApiClient(EventsV1Api).listNamespacedEvent({ namespace: stack.namespace })
    ).items.filter((e) => e.regarding?.name === 'shop');
    const reasons = events.map((e) => e.reason);
    expect(reasons).toEqual(
      expect.arrayContaining([
        'RolloutStarted',
        'BatchStarted',
        'RolloutPaused',
        'RolloutPromoted',
        'RolloutSucceeded',
      ]),
    );
    expect(events.filter((e) => e.reason === 'BatchStarted')).toHaveLength(5);
    const visible = JSON.stringify([events, obj.status]);
    expect(visible).not.toContain('hunter2-e2e');
    expect(visible).not.toContain('presigned-secret');
    // kubectl printer columns
    const { stdout } = await execFileAsync(inject('kubectlPath'), [
      '--kubeconfig',
      inject('kubeconfigPath'),
      '-n',
      stack.namespace,
      'get',
      'apprelease',
      'shop',
    ]);
    const [header, row] = stdout.trim().split('\n');
    expect(header?.split(/\s+/).slice(0, 4)).toEqual(['NAME', 'READY', 'PHASE', 'UPDATED']);
    expect(row?.split(/\s+/).slice(0, 3)).toEqual(['shop', 'True', 'Succeeded']);
  });

  it('a release whose start fails on the canary is rolled back automatically; no other instance is touched', async () => {
    const stable = (await get()).status?.stableRevision ?? '';
    const seen = new Set((await invocations()).map((v) => v.invokeId));
    const v2 = artifacts.add('shop-2', { 'app.sh': appScript('2', { failStart: true }) }, root);
    await patch({ spec: { version: '2.0.0', artifact: v2 } });
    const obj = await until('RolledBack', (o) => o.status?.phase === 'RolledBack');
    const rev2 = obj.status?.currentRevision ?? '';
    expect(rev2).not.toBe(stable);
    expect(readyOf(obj)).toMatchObject({ status: 'False', reason: 'RolledBack' });
    expect(readyOf(obj)?.message).toContain('step start');
    expect(readyOf(obj)?.message).toContain(ids[0]);
    expect(obj.status?.rollout?.failure).toMatchObject({ step: 'start', instanceId: ids[0], exitCode: 7 });
    const fresh = (await invocations()).filter((v) => !seen.has(v.invokeId));
    expect(fresh.map((v) => [param(v, 'action'), v.instances.map((i) => i.instanceId)])).toEqual([
      ['deploy', [ids[0]]],
      ['rollback', [ids[0]]],
    ]);
    const t = await tags();
    expect(ids.map((id) => t[id])).toEqual(ids.map(() => stable));
    expect(readlinkSync(join(appDir(ids[0] as string), 'current'))).toBe(`releases/${stable}`);
    expect(readFileSync(join(root, ids[0] as string, 'running'), 'utf8').trim()).toBe('1');
    for (const id of ids.slice(1)) expect(existsSync(join(appDir(id), 'releases', rev2))).toBe(false);
    const row = obj.status?.instances?.find((r) => r.instanceId === ids[0]);
    expect(row).toMatchObject({ state: 'RolledBack', step: 'start', exitCode: 7 });
    expect(row?.output).toContain('port 8080 in use');
    expect(obj.status?.history?.[0]).toMatchObject({ revision: rev2, result: 'RolledBack' });
  });

  it('a health check failing in batch 2 rolls back batches 1–2 and leaves the fleet on the stable revision', async () => {
    const stable = (await get()).status?.stableRevision ?? '';
    const seen = new Set((await invocations()).map((v) => v.invokeId));
    const v3 = artifacts.add('shop-3', { 'app.sh': appScript('3', { failHealthOn: ids[2] }) }, root);
    await patch({ spec: { version: '3.0.0', artifact: v3, strategy: { canary: { pause: false } } } });
    const obj = await until(
      'RolledBack',
      (o) =>
        o.status?.phase === 'RolledBack' &&
        o.status.currentRevision !== undefined &&
        o.status.rollout?.revision === o.status.currentRevision &&
        o.status.history?.[0]?.revision === o.status.currentRevision,
    );
    const rev3 = obj.status?.currentRevision ?? '';
    expect(readyOf(obj)).toMatchObject({ status: 'False', reason: 'RolledBack' });
    expect(readyOf(obj)?.message).toContain('step health');
    expect(readyOf(obj)?.message).toContain(ids[2]);
    expect(obj.status?.rollout?.failure).toMatchObject({ step: 'health', instanceId: ids[2] });
    const fresh = (await invocations()).filter((v) => !seen.has(v.invokeId));
    const deployed = fresh.filter((v) => param(v, 'action') === 'deploy');
    expect(deployed.map((v) => v.instances.map((i) => i.instanceId))).toEqual([[ids[0]], ids.slice(1, 4)]);
    expect(deployed.every((v) => param(v, 'revision') === rev3)).toBe(true);
    const rolledBack = fresh.filter((v) => param(v, 'action') === 'rollback');
    expect(rolledBack.every((v) => param(v, 'revision') === stable)).toBe(true);
    expect(rolledBack.flatMap((v) => v.instances.map((i) => i.instanceId)).sort()).toEqual(ids.slice(0, 4));
    expect(fresh).toHaveLength(deployed.length + rolledBack.length); // nothing else ran
    const t = await tags();
    expect(ids.map((id) => t[id])).toEqual(ids.map(() => stable));
    for (const id of ids.slice(0, 4)) {
      expect(readlinkSync(join(appDir(id), 'current'))).toBe(`releases/${stable}`);
      expect(readFileSync(join(root, id, 'running'), 'utf8').trim()).toBe('1');
    }
    for (const id of ids.slice(4)) expect(existsSync(join(appDir(id), 'releases', rev3))).toBe(false);
    expect(obj.status?.summary).toMatchObject({ targeted: 12, healthy: 12 });
    expect(obj.status?.history?.[0]).toMatchObject({ revision: rev3, result: 'RolledBack' });
  });

  it('a controller SIGKILLed mid-batch and restarted starts no invocation twice and completes the rollout', async () => {
    await stack.stopController();
    const args = testControllerArgs(stack.namespace, stack.emu, ['--apprelease-workers', '1']);
    const first = spawnController(args);
    children.push(first);
    const seen = new Set((await invocations()).map((v) => v.invokeId));
    const v4 = artifacts.add('shop-4', { 'app.sh': appScript('4', { sleep: 2 }) }, root);
    await patch({
      spec: {
        version: '4.0.0',
        artifact: v4,
        strategy: { batchSize: 4, canary: { instances: 2, pause: false } },
      },
    });
    // kill while the second batch (index 1) is running on the hosts
    const running = await waitFor(
      'batch 1 running',
      async () => {
        const deploys = (await invocations()).filter(
          (v) => !seen.has(v.invokeId) && param(v, 'action') === 'deploy',
        );
        const second = deploys[1];
        return second?.instances.some((i) => i.status === 'Running') ? second : undefined;
      },
      60_000,
      20,
    );
    first.kill('SIGKILL');
    await exited(first);
    expect(() => process.kill(first.pid ?? 0, 0)).toThrow(); // really gone
    const rev4 = param(running, 'revision');
    expect(running.instances.some((i) => i.finishedAtMs === undefined)).toBe(true);

    const second = spawnController(args);
    children.push(second);
    const obj = await until(
      'Ready on revision 4 after the restart',
      (o) => readyOf(o)?.status === 'True' && o.status?.stableRevision === rev4,
      120_000,
    );
    expect(obj.status?.summary).toMatchObject({ targeted: 12, updated: 12 });
    const deploys = (await invocations()).filter(
      (v) => !seen.has(v.invokeId) && param(v, 'action') === 'deploy',
    );
    // one invocation per batch: canary 2, then 4, 4, 2 — each ClientToken once, each instance once
    const byToken = new Map<string, number>();
    for (const v of deploys) byToken.set(v.clientToken, (byToken.get(v.clientToken) ?? 0) + 1);
    expect([...byToken.values()]).toEqual([1, 1, 1, 1]);
    expect(deploys.map((v) => v.instances.length)).toEqual([2, 4, 4, 2]);
    expect(deploys.flatMap((v) => v.instances.map((i) => i.instanceId)).sort()).toEqual(ids);
    // on the hosts: every instance ran revision 4's start hook exactly once
    expect(ids.map((id) => startsOf(id, rev4))).toEqual(ids.map(() => 1));
    expect(obj.status?.rollout?.batches.map((b) => b.phase)).toEqual([
      'Succeeded',
      'Succeeded',
      'Succeeded',
      'Succeeded',
    ]);
    second.kill('SIGTERM');
    await exited(second);
  });

  it('an EcsExtension install and AppRelease batches over the same instances never overlap on an instance', async () => {
    await stack.startController();
    const seen = new Set((await invocations()).map((v) => v.invokeId));
    // 1. the EcsExtension is installing (12 items, 1 s each, 10 at a time) when the release changes
    const ext = await createEcsExtension(stack, 'node', {
      targets: { tags: [{ key: 'app', value: 'shop' }] },
      parameters: { version: '16' },
    });
    const executions = async (): Promise<ExecutionRecord[]> =>
      stack.emu.control.listExecutions({ tagKey: OWNER_UID_TAG, tagValue: ext.metadata.uid });
    await waitFor(
      'the install execution runs',
      async () => (await getEcsExtension(stack, 'node'))?.status?.executions?.length,
      30_000,
      20,
    );
    const v5 = artifacts.add('shop-5', { 'app.sh': appScript('5', { sleep: 1 }) }, root);
    await patch({
      spec: {
        version: '5.0.0',
        artifact: v5,
        strategy: { batchSize: 6, canary: { instances: 6, pause: false } },
      },
    });
    const waiting = await until(
      'AppRelease waits for the EcsExtension',
      (o) => readyOf(o)?.reason === 'WaitingForInstanceLock',
      30_000,
    );
    expect(readyOf(waiting)?.message).toContain(`EcsExtension ${stack.namespace}/node`);
    await waitForReady(stack, 'node', 'True', 60_000);
    const rev5 = (
      await until(
        'Ready on revision 5',
        (o) => readyOf(o)?.status === 'True' && o.status?.stableRevision === o.status?.currentRevision,
      )
    ).status?.currentRevision;

    // 2. the release is deploying (start sleeps 3 s) when the EcsExtension's parameters change
    const v6 = artifacts.add('shop-6', { 'app.sh': appScript('6', { sleep: 3 }) }, root);
    await patch({
      spec: {
        version: '6.0.0',
        artifact: v6,
        strategy: { batchSize: 12, canary: { instances: 12, pause: false } },
      },
    });
    await waitFor(
      'a batch of revision 6 runs',
      async () =>
        (await invocations()).some(
          (v) =>
            !seen.has(v.invokeId) &&
            param(v, 'revision') !== rev5 &&
            v.instances.some((i) => i.status === 'Running'),
        ),
      30_000,
      20,
    );
    await patchEcsExtension(stack, 'node', { spec: { parameters: { version: '18' } } });
    const extWaiting = await waitFor(
      'EcsExtension waits for the AppRelease',
      async () => {
        const o = await getEcsExtension(stack, 'node');
        const ready = o?.status?.conditions?.find((c) => c.type === 'Ready');
        return o?.status?.observedGeneration === o?.metadata.generation &&
          ready?.message?.includes(`AppRelease ${stack.namespace}/shop`)
          ? ready
          : undefined;
      },
      30_000,
      50,
    );
    expect(extWaiting.status).toBe('False');
    await until(
      'Ready on revision 6',
      (o) =>
        readyOf(o)?.status === 'True' &&
        o.status?.stableRevision === o.status?.currentRevision &&
        o.status?.currentRevision !== rev5,
    );
    let lastExt: unknown;
    await waitFor(
      'EcsExtension updated',
      async () => {
        const o = await getEcsExtension(stack, 'node');
        lastExt = o?.status;
        return (
          o?.metadata.generation === o?.status?.observedGeneration &&
          o?.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True'
        );
      },
      60_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; status ${JSON.stringify(lastExt)}`);
    });

    // The emulator's timeline: per instance, no OOS execution item overlaps a Cloud Assistant run.
    const oos = (await executions()).flatMap((e) =>
      e.items.map((i) => ({
        id: i.instanceId,
        span: [i.startedAtMs ?? 0, i.endedAtMs] as [number, number | undefined],
      })),
    );
    const ca = (await invocations())
      .filter((v) => !seen.has(v.invokeId))
      .flatMap((v) =>
        v.instances.map((i) => ({
          id: i.instanceId,
          span: [i.startedAtMs ?? 0, i.finishedAtMs] as [number, number | undefined],
        })),
      );
    expect(oos.filter((x) => x.span[0] > 0)).toHaveLength(24); // install + update on 12 instances
    expect(ca.filter((x) => x.span[0] > 0)).toHaveLength(24); // revisions 5 and 6 on 12 instances
    const clashes = oos.flatMap((a) =>
      ca
        .filter((b) => b.id === a.id && overlaps(a.span, b.span))
        .map((b) => ({ instance: a.id, oos: a.span, runCommand: b.span })),
    );
    expect(clashes).toEqual([]);
  });

  it('a 13th instance tagged into the target gets the current revision within one interval, without a spec change', async () => {
    const before = await get();
    const rev = before.status?.stableRevision ?? '';
    expect(before.status?.currentRevision).toBe(rev);
    const added = Date.now();
    await stack.emu.control.addInstances(REGION, [{ instanceId: 'i-are0013', tags: { app: 'shop' } }]);
    const obj = await until(
      '13 updated',
      (o) => o.status?.summary?.updated === 13 && readyOf(o)?.status === 'True',
      40_000,
    );
    // interval 10s (±5 %) + one batch whose start hook sleeps 3 s, with slack for a shared machine
    expect(Date.now() - added).toBeLessThan(20_000);
    expect(obj.metadata.generation).toBe(before.metadata.generation);
    expect((await tags())['i-are0013']).toBe(rev);
    expect(obj.status?.history?.[0]).toEqual(before.status?.history?.[0]); // an enrolment is not a rollout
    expect(startsOf('i-are0013', rev)).toBe(1);
  });
});
