/**
 * AppRelease rollouts that never lie (issue: the rollout as a list of steps): each defect found by
 * the end-to-end fault runs and the review, reproduced on the fast tier — the real reconciler and
 * cloud layer against the emulator in sandbox mode, so the wrapper really runs with bash per
 * instance directory and the host's files are checked, not only status.
 *
 * Each test uses its own application and its own instances (tag `app=<name>`), and controls the
 * hosts with flag files next to the instance's appDir (`fail-start-<version>`,
 * `fail-health-<version>`), so a failure can be switched on and off per host while a rollout runs.
 */
import { existsSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  PROMOTE_REQUESTED_ANNOTATION,
  type AppRelease,
  type AppReleaseSpec,
} from '../../src/api/apprelease.js';
import { OWNER_UID_TAG } from '../../src/api/common.js';
import { revisionOf } from '../../src/controllers/apprelease/wrapper.js';
import type { InvocationRecord } from '../../src/emulator/index.js';
import { REGION } from '../harness/fast.js';
import {
  appSpec,
  readyOf,
  startAppReleaseStack,
  type AppReleaseStack,
  type Artifact,
} from '../harness/fast-apprelease.js';

const APPS = ['d1', 'd2', 'd3', 'd4', 'd4b', 'd5', 'd6', 'd7', 'd8', 'd9', 'd10'];
const SIZES: Record<string, number> = { d4: 12, d4b: 6, d10: 102 };
const idsOf = (app: string): string[] =>
  Array.from({ length: SIZES[app] ?? 6 }, (_, i) => `i-${app}${String(i + 1).padStart(4, '0')}`);

/** app.sh of a version; start / health fail on a host while its flag file exists. */
function appScript(version: string): string {
  return [
    '#!/bin/bash',
    'F="$APP_DIR/.."',
    'case "$1" in',
    `  start) [ -f "$F/fail-start-${version}" ] && { echo "port 8080 in use" >&2; exit 7; }; echo "${version}" > "$F/running" ;;`,
    `  health) [ -f "$F/fail-health-${version}" ] && { echo unhealthy; exit 1; }; exit 0 ;;`,
    'esac',
  ].join('\n');
}

let s: AppReleaseStack;

/** Logs each status while ECSOPS_TEST_TRACE is set (a debugging aid for these tests). */
function trace(o: AppRelease | undefined): void {
  if (!process.env.ECSOPS_TEST_TRACE) return;
  const st = o?.status;
  console.log(
    JSON.stringify({
      phase: st?.phase,
      ready: readyOf(o)?.message,
      rollout: {
        ...st?.rollout,
        batches: st?.rollout?.batches.map((b) => [b.index, b.size, b.phase, b.invokeIds.length]),
      },
      ex: st?.executions?.map((e) => [e.action, e.round, e.pending]),
      retry: st?.retry,
    }),
  );
}

/** `s.until` with {@link trace}. */
function until(app: string, done: (o: AppRelease | undefined) => boolean): Promise<AppRelease | undefined> {
  return s.until(app, (o) => {
    trace(o);
    return done(o);
  });
}

const hostFile = (id: string, name: string): string => join(s.appDir(id), '..', name);
const flag = (id: string, name: string): void => writeFileSync(hostFile(id, name), '');
const unflag = (id: string, name: string): void => rmSync(hostFile(id, name), { force: true });
const running = (id: string): string | undefined =>
  existsSync(hostFile(id, 'running')) ? readFileSync(hostFile(id, 'running'), 'utf8').trim() : undefined;
const current = (id: string): string | undefined => {
  try {
    return readlinkSync(join(s.appDir(id), 'current'));
  } catch {
    return undefined;
  }
};

async function tags(app: string): Promise<Record<string, string | undefined>> {
  const list = await s.emu.control.listInstances(REGION);
  return Object.fromEntries(
    list.filter((i) => i.tags.app === app).map((i) => [i.instanceId, i.tags[`ecsops.io/app.${app}`]]),
  );
}

async function invocationsOf(obj: AppRelease): Promise<InvocationRecord[]> {
  return (await s.emu.control.listInvocations()).filter((v) => v.tags[OWNER_UID_TAG] === obj.metadata.uid);
}

const param = (v: InvocationRecord, k: string): string => String(v.parameters[k]);

/** A spec of `app` on its own instances. */
function specOf(app: string, art: Artifact, over: Partial<AppReleaseSpec> = {}): AppReleaseSpec {
  return appSpec(s, art, {
    application: app,
    targets: { tags: [{ key: 'app', value: app }] },
    strategy: { batchSize: 2, maxErrors: 0 },
    ...over,
  });
}

/** Applies version 1 of `app` and waits for Ready; returns its revision. */
async function stableV1(app: string, plain = false): Promise<string> {
  const v1 = s.artifacts.add(`${app}-1`, { 'app.sh': appScript('1') }, s.root, plain);
  const obj = s.apply(app, specOf(app, v1, { strategy: { batchSize: '50%' } }));
  await until(app, (o) => {
    trace(o);
    return readyOf(o)?.status === 'True' && o?.status?.stableRevision !== undefined;
  });
  return revisionOf(obj.spec);
}

const deployRunning = (o: AppRelease | undefined, round: number): boolean =>
  (o?.status?.executions ?? []).some((e) => e.action === 'deploy' && e.round === round && !e.pending);

beforeAll(async () => {
  s = await startAppReleaseStack({
    seed: {
      regions: {
        [REGION]: {
          generate: APPS.map((app) => ({
            count: SIZES[app] ?? 6,
            idPrefix: `i-${app}`,
            tags: [{ key: 'app', value: app }],
          })),
        },
      },
    },
  });
});
afterAll(() => s.stop());

describe('defect 1: RolledBack only once every target is confirmed on the stable revision', () => {
  it('a rollback whose RunCommand fails, then one host whose rollback fails: RolledBack only once both are fixed', async () => {
    const app = 'd1';
    const ids = idsOf(app);
    const v1 = await stableV1(app);
    const v2 = s.artifacts.add('d1-2', { 'app.sh': appScript('2') }, s.root);
    flag(ids[2] as string, 'fail-health-2'); // batch 1 fails (batches of 2)
    flag(ids[0] as string, 'fail-start-1'); // and the rollback of host 1 fails
    const obj = s.apply(app, specOf(app, v2, { version: '2.0.0' }));
    const v2rev = revisionOf(obj.spec);
    const uid = obj.metadata.uid ?? '';
    let rule: Promise<string> | undefined;
    let rollingBack = 0;
    let seenWhileRollingBack: AppRelease | undefined;
    const o = await until(app, (x) => {
      if (!rule && deployRunning(x, 1)) {
        // the next RunCommand is the rollback: it fails past the retries, several reconciles long
        rule = s.emu.control.addFaultRule({
          action: 'RunCommand',
          code: 'ServiceUnavailable',
          httpStatus: 503,
          count: 40,
          match: { ownerUid: uid },
        });
      }
      // Host 1's rollback failed and waits for its retry (judged by status, not by a count of
      // reconciles, which depends on how fast the hosts run in real time).
      if (
        x?.status?.phase === 'RollingBack' &&
        x.status.rollout?.rollback?.retryAt !== undefined &&
        ++rollingBack === 3
      ) {
        seenWhileRollingBack = structuredClone(x);
        unflag(ids[0] as string, 'fail-start-1'); // the host is fixed
      }
      return x?.status?.phase === 'RolledBack';
    });
    if (rule) await s.emu.control.removeFaultRule(await rule);
    // the moment it says RolledBack, every target runs the stable revision
    const t = await tags(app);
    for (const id of ids) {
      expect(t[id], id).toBe(v1);
      expect(current(id), id).toBe(`releases/${v1}`);
      expect(running(id), id).toBe('1');
    }
    expect(o?.status?.instances?.find((r) => r.instanceId === ids[0])).toMatchObject({
      state: 'RolledBack',
      revision: v1,
    });
    // while host 1's rollback failed, the resource said so and still counted it
    expect(seenWhileRollingBack?.status?.rollout?.rollback?.remaining).toEqual([ids[0]]);
    expect(readyOf(seenWhileRollingBack)?.message).toMatch(
      /1 of \d+ instance\(s\) left \(1 failed to roll back/,
    );
    expect(seenWhileRollingBack?.status?.instances?.find((r) => r.instanceId === ids[0])).toMatchObject({
      state: 'Failed',
      revision: v2rev,
    });
    unflag(ids[2] as string, 'fail-health-2');
  });
});

describe('defect 2: a batch row exists only once one of its invocations exists', () => {
  it('a canary whose RunCommand fails is not skipped: the first deploy has the canary size and the pause follows it', async () => {
    const app = 'd2';
    await stableV1(app);
    const v2 = s.artifacts.add('d2-2', { 'app.sh': appScript('2') }, s.root);
    const obj = s.apply(
      app,
      specOf(app, v2, {
        version: '2.0.0',
        strategy: { batchSize: 3, canary: { instances: 1, pause: true } },
      }),
    );
    const rule = await s.emu.control.addFaultRule({
      action: 'RunCommand',
      code: 'ServiceUnavailable',
      httpStatus: 503,
      count: 1000,
      match: { ownerUid: obj.metadata.uid ?? '' },
    });
    for (let i = 0; i < 4; i++) {
      await s.reconcile(app);
      s.clock.advance(5_000);
      const r = s.get(app)?.status?.rollout;
      expect(r?.batches.filter((b) => b.invokeIds.length === 0)).toEqual([]);
      expect(r?.nextBatch).toBe(0);
    }
    await s.emu.control.removeFaultRule(rule);
    const o = await until(app, (x) => x?.status?.phase === 'Paused');
    const deploys = (await invocationsOf(obj)).filter(
      (v) => param(v, 'action') === 'deploy' && param(v, 'revision') === revisionOf(obj.spec),
    );
    expect(deploys.map((v) => v.instances.length)).toEqual([1]);
    expect(o?.status?.rollout?.batches.map((b) => [b.index, b.size, b.phase])).toEqual([[0, 1, 'Succeeded']]);
    expect(o?.status?.conditions?.find((c) => c.type === 'Paused')?.reason).toBe('CanaryPause');
  });
});

describe('defect 3: a failure is counted once per (invocation, instance)', () => {
  it('maxErrors 1, one failing host and TagResources failing past the retries: failed stays 1 and the rollout succeeds', async () => {
    const app = 'd3';
    const ids = idsOf(app);
    await stableV1(app);
    const v2 = s.artifacts.add('d3-2', { 'app.sh': appScript('2') }, s.root);
    flag(ids[1] as string, 'fail-health-2');
    const obj = s.apply(app, specOf(app, v2, { version: '2.0.0', strategy: { batchSize: 6, maxErrors: 1 } }));
    let rule: string | undefined;
    const o = await until(app, (x) => {
      if (!rule && deployRunning(x, 0)) {
        void s.emu.control
          .addFaultRule({ action: 'TagResources', code: 'ServiceUnavailable', httpStatus: 503, count: 30 })
          .then((id) => (rule = id));
      }
      return (
        x?.status?.phase === 'Succeeded' ||
        x?.status?.phase === 'RolledBack' ||
        x?.status?.phase === 'RollingBack'
      );
    });
    if (rule) await s.emu.control.removeFaultRule(rule);
    expect(rule).toBeDefined();
    expect(o?.status?.rollout?.failed).toBe(1);
    expect(o?.status?.phase).toBe('Succeeded');
    expect(o?.status?.history?.[0]).toMatchObject({ revision: revisionOf(obj.spec), result: 'Succeeded' });
    unflag(ids[1] as string, 'fail-health-2');
  });
});

describe('defect 4: the stable revision is kept and redeployable', () => {
  it('a host enrolled mid-rollout gets the stable revision deployed by the rollback, not nothing', async () => {
    const app = 'd4';
    const ids = idsOf(app);
    const v1 = await stableV1(app, true);
    const v2 = s.artifacts.add('d4-2', { 'app.sh': appScript('2') }, s.root);
    flag(ids[5] as string, 'fail-health-2'); // i-d40006, in the second batch
    const late = 'i-d40000'; // sorts first: the second batch takes it
    const obj = s.apply(app, specOf(app, v2, { version: '2.0.0', strategy: { batchSize: 4 } }));
    let added = false;
    const o = await until(app, (x) => {
      if (!added && deployRunning(x, 0)) {
        added = true;
        void s.emu.control.addInstances(REGION, [{ instanceId: late, tags: { app } }]);
      }
      return x?.status?.phase === 'RolledBack';
    });
    const lateDeploys = (await invocationsOf(obj)).filter(
      (v) => param(v, 'action') === 'deploy' && v.instances.some((i) => i.instanceId === late),
    );
    expect(lateDeploys.length).toBe(1); // it got the bad revision
    expect((await tags(app))[late]).toBe(v1);
    expect(current(late)).toBe(`releases/${v1}`);
    expect(running(late)).toBe('1');
    expect(o?.status?.instances?.find((r) => r.instanceId === late)).toMatchObject({
      state: 'RolledBack',
      revision: v1,
    });
    expect(o?.status?.stableRelease).toMatchObject({
      revision: v1,
      artifact: { sha256: expect.any(String) },
    });
    expect(JSON.stringify(o?.status)).not.toContain('hunter2-secret');
    unflag(ids[5] as string, 'fail-health-2');
  });

  it('when the stable artifact URL was pre-signed (not kept), a host without it on disk is reported, never RolledBack', async () => {
    const app = 'd4b';
    const ids = idsOf(app);
    await stableV1(app); // pre-signed URL: only its digest is kept
    const v2 = s.artifacts.add('d4b-2', { 'app.sh': appScript('2') }, s.root);
    flag(ids[4] as string, 'fail-health-2'); // i-d4b0005, in the second batch
    const late = 'i-d4b0000';
    s.apply(app, specOf(app, v2, { version: '2.0.0', strategy: { batchSize: 4 } }));
    let added = false;
    let idle = 0;
    await until(app, (x) => {
      if (!added && deployRunning(x, 0)) {
        added = true;
        void s.emu.control.addInstances(REGION, [{ instanceId: late, tags: { app } }]);
      }
      const settledBack = x?.status?.phase === 'RollingBack' && x.status.executions === undefined;
      return x?.status?.phase === 'RolledBack' || (settledBack && ++idle > 5);
    });
    for (let i = 0; i < 5; i++) {
      await s.reconcile(app);
      s.clock.advance(60_000);
    }
    const o = s.get(app);
    expect(o?.status?.phase).toBe('RollingBack');
    expect(o?.status?.rollout?.rollback?.remaining).toEqual([late]);
    const row = o?.status?.instances?.find((r) => r.instanceId === late);
    expect(row?.output).toContain('cannot be downloaded again');
    unflag(ids[4] as string, 'fail-health-2');
  });
});

describe('defect 5: a host unreachable while the rollout fails is rolled back once it is back', () => {
  it('Cloud Assistant offline for 25 s at the failure: RollingBack until it is back, then it runs the stable revision', async () => {
    const app = 'd5';
    const ids = idsOf(app);
    const v1 = await stableV1(app);
    const v2 = s.artifacts.add('d5-2', { 'app.sh': appScript('2') }, s.root);
    flag(ids[3] as string, 'fail-health-2'); // batch 1 fails
    const away = ids[0] as string; // updated in batch 0, then offline
    s.apply(app, specOf(app, v2, { version: '2.0.0' }));
    let offline = false;
    let idle = 0;
    let o = await until(app, (x) => {
      if (!offline && deployRunning(x, 1)) {
        offline = true;
        void s.emu.control.updateInstance(REGION, away, { cloudAssistantOnline: false });
      }
      const settledBack = x?.status?.phase === 'RollingBack' && x.status.executions === undefined;
      return x?.status?.phase === 'RolledBack' || (settledBack && ++idle > 5);
    });
    expect(o?.status?.phase).toBe('RollingBack');
    expect(o?.status?.rollout?.rollback?.remaining).toEqual([away]);
    expect(readyOf(o)?.message).toContain('1 unreachable');
    s.clock.advance(25_000);
    await s.emu.control.updateInstance(REGION, away, { cloudAssistantOnline: true });
    o = await until(app, (x) => x?.status?.phase === 'RolledBack');
    expect((await tags(app))[away]).toBe(v1);
    expect(running(away)).toBe('1');
    expect(o?.status?.instances?.find((r) => r.instanceId === away)?.state).toBe('RolledBack');
    unflag(ids[3] as string, 'fail-health-2');
  });
});

describe('defect 6: a transport failure of the download is retried with backoff', () => {
  it('two connections closed with no answer: retried, the rollout succeeds without a rollback', async () => {
    const app = 'd6';
    await stableV1(app);
    const v2 = s.artifacts.add('d6-2', { 'app.sh': appScript('2') }, s.root);
    s.artifacts.resetNext('d6-2', 2);
    const obj = s.apply(app, specOf(app, v2, { version: '2.0.0', strategy: { batchSize: 6 } }));
    const o = await until(app, (x) =>
      ['Succeeded', 'RollingBack', 'RolledBack'].includes(x?.status?.phase ?? ''),
    );
    expect(o?.status?.phase).toBe('Succeeded');
    expect(o?.status?.rollout?.failed).toBe(0);
    const rev = revisionOf(obj.spec);
    expect(Object.values(await tags(app)).every((t) => t === rev)).toBe(true);
    const deploys = (await invocationsOf(obj)).filter(
      (v) => param(v, 'action') === 'deploy' && param(v, 'revision') === rev,
    );
    expect(deploys.map((v) => v.instances.length)).toEqual([6, 2]);
  });

  it('a sha256 mismatch stays a hard failure (rolled back at once)', async () => {
    const app = 'd6';
    const v3 = s.artifacts.add('d6-3', { 'app.sh': appScript('3') }, s.root);
    const bad = { ...v3, sha256: 'f'.repeat(64) };
    s.apply(app, specOf(app, bad, { version: '3.0.0', strategy: { batchSize: 6 } }));
    const o = await until(app, (x) => x?.status?.phase === 'RolledBack');
    expect(o?.status?.rollout?.failure?.step).toBe('verify');
  });
});

describe('defect 7: a promote applies only to a pause that has begun', () => {
  it('a promote set while the canary batch runs does not remove the pause', async () => {
    const app = 'd7';
    await stableV1(app);
    const v2 = s.artifacts.add('d7-2', { 'app.sh': appScript('2') }, s.root);
    const obj = s.apply(
      app,
      specOf(app, v2, {
        version: '2.0.0',
        strategy: { batchSize: 2, canary: { instances: 1, pause: true } },
      }),
    );
    let promoted = false;
    const o = await until(app, (x) => {
      if (!promoted && deployRunning(x, 0)) {
        promoted = true;
        s.store.annotate('default', app, { [PROMOTE_REQUESTED_ANNOTATION]: 'early' });
      }
      return x?.status?.phase === 'Paused' || x?.status?.phase === 'Succeeded';
    });
    expect(promoted).toBe(true);
    expect(o?.status?.phase).toBe('Paused');
    const rev = revisionOf(obj.spec);
    expect(Object.values(await tags(app)).filter((t) => t === rev)).toHaveLength(1);
    s.store.annotate('default', app, { [PROMOTE_REQUESTED_ANNOTATION]: 'after-the-pause' });
    await until(app, (x) => x?.status?.phase === 'Succeeded');
    expect(Object.values(await tags(app)).every((t) => t === rev)).toBe(true);
  });
});

describe('defect 8: uninstall, adoption listing', () => {
  it('idle reconciles list the owner’s invocations at most once per process', async () => {
    const app = 'd9';
    await stableV1(app);
    const before = (await s.emu.control.requestCounts()).DescribeInvocations ?? 0;
    for (let i = 0; i < 5; i++) {
      await s.reconcile(app);
      s.clock.advance(60_000);
    }
    const after = (await s.emu.control.requestCounts()).DescribeInvocations ?? 0;
    expect(after - before).toBeLessThanOrEqual(1);
  });

  it('Uninstall removes the application where its deploy failed and was rolled back too', async () => {
    const app = 'd8';
    const ids = idsOf(app);
    await stableV1(app);
    const v2 = s.artifacts.add('d8-2', { 'app.sh': appScript('2') }, s.root);
    flag(ids[1] as string, 'fail-health-2');
    s.apply(
      app,
      specOf(app, v2, { version: '2.0.0', strategy: { batchSize: 6 }, deletionPolicy: 'Uninstall' }),
    );
    await until(app, (x) => x?.status?.phase === 'RolledBack');
    expect(existsSync(s.appDir(ids[1] as string))).toBe(true);
    s.store.delete('default', app);
    await until(app, (x) => x === undefined);
    for (const id of ids) expect(existsSync(s.appDir(id)), id).toBe(false);
  });
});

describe('defects 1 and 2 past 100 instances: the second RunCommand of a batch', () => {
  it('a failing second chunk is linked to its batch and counted; its rollback chunk failing keeps RollingBack', async () => {
    const app = 'd10';
    const ids = idsOf(app); // 102: one batch is RunCommand(100) + RunCommand(2)
    const lean = (v: Artifact): Partial<AppReleaseSpec> => ({
      artifact: v,
      hooks: { start: { script: './app.sh start' } },
      install: { appDir: `${s.root}/{{ACS::InstanceId}}/app`, keepReleases: 2 },
      strategy: { batchSize: '100%' },
    });
    const v1art = s.artifacts.add('d10-1', { 'app.sh': appScript('1') }, s.root, true);
    const v1obj = s.apply(app, specOf(app, v1art, lean(v1art)));
    const v1 = revisionOf(v1obj.spec);
    await until(app, (o) => readyOf(o)?.status === 'True' && o?.status?.stableRevision === v1);
    const v2art = s.artifacts.add('d10-2', { 'app.sh': appScript('2') }, s.root);
    const last = ids[101] as string;
    flag(last, 'fail-health-2'); // in the second chunk
    const fault = () =>
      s.emu.control.addFaultRule({
        action: 'RunCommand',
        code: 'ServiceUnavailable',
        httpStatus: 503,
        count: 10_000,
        match: { instanceId: last },
      });
    let rule = await fault();
    s.apply(app, specOf(app, v2art, { ...lean(v2art), version: '2.0.0' }));
    for (let i = 0; i < 4; i++) {
      await s.reconcile(app);
      s.clock.advance(5_000);
    }
    let o = s.get(app);
    // the first chunk runs as batch 0; the second waits to be re-sent, and the batch stays open
    expect(o?.status?.rollout?.batches.map((b) => [b.index, b.size, b.phase, b.invokeIds.length])).toEqual([
      [0, 100, 'Running', 1],
    ]);
    expect(o?.status?.executions?.filter((e) => e.pending).map((e) => e.instanceIds)).toEqual([
      [ids[100], last],
    ]);
    await s.emu.control.removeFaultRule(rule);
    let refaulted = false;
    let held = 0;
    o = await until(app, (x) => {
      const sent =
        (x?.status?.executions ?? []).filter((e) => e.action === 'deploy' && !e.pending).length === 2;
      if (!refaulted && sent) {
        refaulted = true;
        void fault().then((id) => (rule = id)); // the rollback's second chunk will fail too
      }
      if (x?.status?.phase === 'RollingBack' && x.status.rollout?.rollback && ++held === 10)
        void s.emu.control.removeFaultRule(rule);
      return x?.status?.phase === 'RolledBack';
    });
    expect(held).toBeGreaterThanOrEqual(10); // RollingBack while the second rollback chunk failed
    expect(
      o?.status?.rollout?.batches.map((b) => [b.index, b.size, b.phase, b.invokeIds.length, b.failed]),
    ).toEqual([[0, 102, 'Failed', 2, 1]]);
    expect(o?.status?.rollout?.failed).toBe(1);
    const t = await tags(app);
    expect(ids.filter((id) => t[id] !== v1)).toEqual([]);
    expect(running(last)).toBe('1');
    unflag(last, 'fail-health-2');
  });
});
