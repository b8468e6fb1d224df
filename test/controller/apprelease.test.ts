/**
 * AppRelease on the fast tier: the real reconciler and cloud layer against the emulator in sandbox
 * mode (the wrapper really runs with bash per instance directory), 12 instances tagged app=shop.
 */
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROMOTE_REQUESTED_ANNOTATION, type AppRelease } from '../../src/api/apprelease.js';
import { OWNER_UID_TAG } from '../../src/api/common.js';
import { revisionOf } from '../../src/controllers/apprelease/wrapper.js';
import { toTracked } from '../../src/controllers/shared/work.js';
import type { InvocationRecord } from '../../src/emulator/index.js';
import { MemoryStore, REGION } from '../harness/fast.js';
import {
  appSpec,
  readyOf,
  startAppReleaseStack,
  type AppReleaseStack,
  type Artifact,
} from '../harness/fast-apprelease.js';

const ids = Array.from({ length: 12 }, (_, i) => `i-ar${String(i + 1).padStart(4, '0')}`);

/** app.sh of a version: `start` fails with FAIL_START, `health` fails on the instances in FAIL_HEALTH. */
function appScript(version: string, o: { failStart?: boolean; failHealthOn?: string } = {}): string {
  return [
    '#!/bin/bash',
    'case "$1" in',
    `  start) echo "${version}" > "$APP_DIR/../running"; ${o.failStart ? 'echo "port 8080 in use" >&2; exit 7' : 'exit 0'} ;;`,
    `  health) [ "$ECSOPS_INSTANCE_ID" = "${o.failHealthOn ?? 'none'}" ] && { echo unhealthy; exit 1; }; exit 0 ;;`,
    'esac',
  ].join('\n');
}

function tagOf(s: AppReleaseStack, id: string): Promise<string | undefined> {
  return s.emu.control
    .listInstances(REGION)
    .then((list) => list.find((i) => i.instanceId === id)?.tags['ecsops.io/app.shop']);
}

async function tags(s: AppReleaseStack): Promise<Record<string, string | undefined>> {
  const list = await s.emu.control.listInstances(REGION);
  return Object.fromEntries(list.map((i) => [i.instanceId, i.tags['ecsops.io/app.shop']]));
}

async function invocationsOf(s: AppReleaseStack, obj: AppRelease): Promise<InvocationRecord[]> {
  return (await s.emu.control.listInvocations()).filter((v) => v.tags[OWNER_UID_TAG] === obj.metadata.uid);
}

const paramOf = (v: InvocationRecord, k: string) => String(v.parameters[k]);

describe('AppRelease (fast tier, emulator sandbox)', () => {
  let s: AppReleaseStack;
  let v1: Artifact;
  beforeAll(async () => {
    s = await startAppReleaseStack({
      seed: {
        regions: {
          [REGION]: { generate: [{ count: 12, idPrefix: 'i-ar', tags: [{ key: 'app', value: 'shop' }] }] },
        },
      },
    });
    v1 = s.artifacts.add('shop-1', { 'app.sh': appScript('1') }, s.root);
  });
  afterAll(() => s.stop());

  it('canary of 1 → paused → promote → batches of 25 % → Ready, tags match status', async () => {
    const created = s.apply('shop', appSpec(s, v1));
    const rev = revisionOf(created.spec);
    let obj = await s.until('shop', (o) => o?.status?.phase === 'Paused');
    expect(obj?.status?.summary).toMatchObject({ targeted: 12, updated: 1, pending: 11 });
    expect(obj?.status?.conditions?.find((c) => c.type === 'Paused')).toMatchObject({
      status: 'True',
      reason: 'CanaryPause',
    });
    expect(readyOf(obj)).toMatchObject({ status: 'False', reason: 'RolloutPaused' });
    expect(Object.values(await tags(s)).filter((t) => t === rev)).toHaveLength(1);
    // held: more reconciles start nothing
    const before = (await invocationsOf(s, created)).length;
    for (let i = 0; i < 5; i++) {
      await s.reconcile('shop');
      s.clock.advance(60_000);
    }
    expect((await invocationsOf(s, created)).length).toBe(before);

    s.store.annotate('default', 'shop', { [PROMOTE_REQUESTED_ANNOTATION]: '2026-06-01T12:00:00Z' });
    obj = await s.until('shop', (o) => readyOf(o)?.status === 'True');
    expect(readyOf(obj)?.reason).toBe('RolloutSucceeded');
    expect(obj?.status).toMatchObject({ phase: 'Succeeded', currentRevision: rev, stableRevision: rev });
    expect(obj?.status?.summary).toMatchObject({
      targeted: 12,
      updated: 12,
      healthy: 12,
      failed: 0,
      pending: 0,
    });
    expect(obj?.status?.conditions?.find((c) => c.type === 'Paused')?.status).toBe('False');
    const t = await tags(s);
    expect(ids.every((id) => t[id] === rev)).toBe(true);
    for (const id of ids) expect(readlinkSync(join(s.appDir(id), 'current'))).toBe(`releases/${rev}`);
    // batches: canary 1, then ceil(25 % of 12) = 3
    const deploys = (await invocationsOf(s, created)).filter((v) => paramOf(v, 'action') === 'deploy');
    expect(deploys.map((v) => v.instances.length)).toEqual([1, 3, 3, 3, 2]);
    expect(obj?.status?.rollout?.batches.map((b) => [b.index, b.size, b.phase])).toEqual([
      [0, 1, 'Succeeded'],
      [1, 3, 'Succeeded'],
      [2, 3, 'Succeeded'],
      [3, 3, 'Succeeded'],
      [4, 2, 'Succeeded'],
    ]);
    const reasons = s.events.events.filter((e) => e.name === 'shop').map((e) => e.reason);
    expect(reasons).toEqual(
      expect.arrayContaining([
        'RolloutStarted',
        'BatchStarted',
        'RolloutPaused',
        'RolloutPromoted',
        'RolloutSucceeded',
      ]),
    );
    expect(reasons.filter((r) => r === 'BatchStarted')).toHaveLength(5);
    // secrets never reach Events or status
    const visible = JSON.stringify([s.events.events, obj?.status]);
    expect(visible).not.toContain('hunter2-secret');
    expect(visible).not.toContain('presigned-secret');
    const metrics = await s.registry.getSingleMetricAsString('ecsops_apprelease_rollouts_total');
    expect(metrics).toContain(
      'ecsops_apprelease_rollouts_total{namespace="default",name="shop",result="Succeeded"} 1',
    );
    expect(await s.registry.getSingleMetricAsString('ecsops_apprelease_instances')).toContain(
      'ecsops_apprelease_instances{namespace="default",name="shop",state="updated"} 12',
    );
  });

  it('a 13th instance tagged into the target gets the current revision within one interval', async () => {
    const rev = s.get('shop')?.status?.currentRevision;
    await s.emu.control.addInstances(REGION, [{ instanceId: 'i-ar0013', tags: { app: 'shop' } }]);
    const step = await s.reconcile('shop');
    expect(step.result?.requeueAfterMs).toBeLessThanOrEqual(10 * 60_000);
    s.clock.advance(step.result?.requeueAfterMs ?? 0);
    const obj = await s.until(
      'shop',
      (o) => o?.status?.summary?.updated === 13 && readyOf(o)?.status === 'True',
    );
    expect(await tagOf(s, 'i-ar0013')).toBe(rev);
    expect(obj?.status?.history).toHaveLength(1); // an enrolment is not a new rollout
  });

  it('a release whose start fails on the canary is rolled back; no other instance is touched', async () => {
    const stable = s.get('shop')?.status?.stableRevision;
    const v2 = s.artifacts.add('shop-2', { 'app.sh': appScript('2', { failStart: true }) }, s.root);
    const obj0 = s.apply('shop', appSpec(s, v2, { version: '2.0.0' }));
    const rev2 = revisionOf(obj0.spec);
    const obj = await s.until('shop', (o) => o?.status?.phase === 'RolledBack');
    expect(readyOf(obj)).toMatchObject({ status: 'False', reason: 'RolledBack' });
    expect(readyOf(obj)?.message).toContain('step start');
    expect(readyOf(obj)?.message).toContain('i-ar0001');
    expect(obj?.status?.rollout?.failure).toMatchObject({
      step: 'start',
      instanceId: 'i-ar0001',
      exitCode: 7,
    });
    const mine = (await invocationsOf(s, obj0)).filter(
      (v) => paramOf(v, 'revision') === rev2 || paramOf(v, 'action') === 'rollback',
    );
    expect(mine.flatMap((v) => v.instances.map((i) => i.instanceId)).sort()).toEqual([
      'i-ar0001',
      'i-ar0001',
    ]);
    const t = await tags(s);
    expect(Object.values(t).every((x) => x === stable)).toBe(true);
    expect(readlinkSync(join(s.appDir('i-ar0001'), 'current'))).toBe(`releases/${stable}`);
    expect(readFileSync(join(s.appDir('i-ar0001'), '..', 'running'), 'utf8').trim()).toBe('1');
    expect(existsSync(join(s.appDir('i-ar0002'), 'releases', rev2))).toBe(false);
    const row = obj?.status?.instances?.find((r) => r.instanceId === 'i-ar0001');
    expect(row).toMatchObject({ state: 'RolledBack', step: 'start', exitCode: 7 });
    expect(row?.output).toContain('port 8080 in use');
    expect(s.events.events.some((e) => e.reason === 'RolledBack' && e.type === 'Warning')).toBe(true);
  });

  it('a health check failing in batch 2 rolls back batches 1–2 and leaves the fleet on the stable revision', async () => {
    const stable = s.get('shop')?.status?.stableRevision;
    const v3 = s.artifacts.add('shop-3', { 'app.sh': appScript('3', { failHealthOn: 'i-ar0003' }) }, s.root);
    const spec = appSpec(s, v3, {
      version: '3.0.0',
      strategy: { batchSize: '25%', canary: { instances: 1, pause: false } },
    });
    const seen = (await s.emu.control.listInvocations()).length;
    const obj0 = s.apply('shop', spec);
    const rev3 = revisionOf(obj0.spec);
    const obj = await s.until('shop', (o) => o?.status?.phase === 'RolledBack');
    expect(readyOf(obj)?.message).toContain('step health');
    expect(obj?.status?.rollout?.failure).toMatchObject({ step: 'health', instanceId: 'i-ar0003' });
    const fresh = new Set((await s.emu.control.listInvocations()).slice(seen).map((v) => v.invokeId));
    const inv = (await invocationsOf(s, obj0)).filter((v) => fresh.has(v.invokeId));
    const deployed = inv.filter((v) => paramOf(v, 'revision') === rev3 && paramOf(v, 'action') === 'deploy');
    // 13 targets now: batches of ceil(25 % × 13) = 4 after the canary
    expect(deployed.map((v) => v.instances.length)).toEqual([1, 4]);
    const rolledBack = inv.filter(
      (v) => paramOf(v, 'action') === 'rollback' && paramOf(v, 'revision') === stable,
    );
    expect(rolledBack.flatMap((v) => v.instances.map((i) => i.instanceId)).sort()).toEqual([
      'i-ar0001',
      'i-ar0002',
      'i-ar0003',
      'i-ar0004',
      'i-ar0005',
    ]);
    const t = await tags(s);
    expect(Object.values(t).every((x) => x === stable)).toBe(true);
    for (const id of ['i-ar0001', 'i-ar0002', 'i-ar0003', 'i-ar0004', 'i-ar0005'])
      expect(readlinkSync(join(s.appDir(id), 'current'))).toBe(`releases/${stable}`);
    expect(obj?.status?.history?.[0]).toMatchObject({ revision: rev3, result: 'RolledBack' });
  });

  it('a restart between RunCommand and the status write starts no invocation twice, and the rollout completes', async () => {
    const v4 = s.artifacts.add('shop-4', { 'app.sh': appScript('4') }, s.root);
    const obj0 = s.apply(
      'shop',
      appSpec(s, v4, {
        version: '4.0.0',
        strategy: { batchSize: 4, canary: { instances: 2, pause: false } },
      }),
    );
    const rev4 = revisionOf(obj0.spec);
    let crashes = 0;
    await s.until('shop', (o) => {
      // after each batch start, drop the status write (crash before it landed) and restart
      if (o?.status?.executions?.length && crashes < 3 && o.status.rollout?.revision === rev4) {
        const st = structuredClone(o.status);
        delete st.executions;
        if (st.rollout) {
          st.rollout.nextBatch -= 1;
          st.rollout.batches.pop();
        }
        o.status = st;
        crashes++;
        s.restart();
      }
      return readyOf(o)?.status === 'True' && o?.status?.currentRevision === rev4;
    });
    expect(crashes).toBe(3);
    const mine = (await invocationsOf(s, obj0)).filter((v) => paramOf(v, 'revision') === rev4);
    const tokens = mine.map((v) => v.clientToken);
    expect(new Set(tokens).size).toBe(tokens.length);
    const perInstance = mine.flatMap((v) => v.instances.map((i) => i.instanceId));
    expect(perInstance.sort()).toEqual([...ids, 'i-ar0013'].sort());
  });

  it('waits for another kind’s in-flight work on the same instances (cross-kind lock)', async () => {
    const other = new MemoryStore<AppRelease>();
    s.lock.addSource('EcsExtension', other);
    const holder = other.apply({
      apiVersion: 'ecsops.io/v1alpha1',
      kind: 'EcsExtension',
      metadata: { name: 'node', namespace: 'default' },
      spec: {} as AppRelease['spec'],
    });
    const work = {
      executionId: 'exec-1',
      action: 'install',
      instanceIds: ids,
      clientToken: 't',
      startTime: '2026-06-01T00:00:00Z',
    };
    holder.status = { executions: [toTracked(work)] };
    const v5 = s.artifacts.add('shop-5', { 'app.sh': appScript('5') }, s.root);
    const obj0 = s.apply(
      'shop',
      appSpec(s, v5, { version: '5.0.0', strategy: { canary: { instances: 1, pause: false } } }),
    );
    const obj = await s.until('shop', (o) => readyOf(o)?.reason === 'WaitingForInstanceLock');
    expect(readyOf(obj)?.message).toContain('EcsExtension default/node');
    expect(
      (await invocationsOf(s, obj0)).filter((v) => paramOf(v, 'revision') === revisionOf(obj0.spec)),
    ).toHaveLength(1); // only i-ar0013 was free
    holder.status = {};
    const done = await s.until(
      'shop',
      (o) => readyOf(o)?.status === 'True' && o?.status?.currentRevision === revisionOf(obj0.spec),
    );
    expect(done?.status?.summary?.updated).toBe(13);
    // and once its batches finished, it holds nothing: the other kind may act again
    expect(s.lock.check(holder, [...ids, 'i-ar0013']).held).toEqual([]);
  });
});
