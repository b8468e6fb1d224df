/**
 * spec.trafficControl on the fast tier (issue 24): the real AppRelease reconciler and cloud layer
 * (CLB/ALB clients over the real SDK path) against the emulator in sandbox mode, with load
 * balancers whose backends are the test's instances. Health is forced through the control API
 * (these apps serve no HTTP; the real data plane and real traffic are measured by
 * test/bench/traffic.bench.ts and test/integration/traffic/). What it shows:
 * - the capacity guard holds at every reconcile (a group of 4 never has more than maxDrained = 1 out)
 *   and every weight ends at its original value;
 * - a load balancer that never reports a backend healthy fails its batch by healthyTimeoutSeconds,
 *   the rollout rolls back, and status says why;
 * - a restart mid-drain (fresh process memory) with suspend: true restores every weight at once, and
 *   the rollout goes on when resumed; deletion restores before the finalizer goes.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppRelease, AppReleaseSpec } from '../../src/api/apprelease.js';
import type { LoadBalancerView } from '../../src/emulator/control-client.js';
import { REGION } from '../harness/fast.js';
import {
  appSpec,
  readyOf,
  startAppReleaseStack,
  type AppReleaseStack,
  type Artifact,
} from '../harness/fast-apprelease.js';

const APPS = ['t1', 't2', 't3', 't4', 't5'];
const idsOf = (app: string): string[] =>
  Array.from({ length: 4 }, (_, i) => `i-${app}${String(i + 1).padStart(4, '0')}`);
const WEIGHTS = [10, 20, 30, 40];

let s: AppReleaseStack;

function appScript(version: string): string {
  return [
    '#!/bin/bash',
    'case "$1" in',
    `  start) echo ${version} > "$APP_DIR/../running" ;;`,
    '  health) exit 0 ;;',
    'esac',
  ].join('\n');
}

/** An ALB (or CLB) in front of `app`'s 4 instances on port 8080, weights 10–40, every backend forced Healthy. */
async function balancer(app: string, type: 'ALB' | 'CLB' = 'ALB'): Promise<string> {
  const lb = await s.emu.control.createLoadBalancer({
    type,
    regionId: REGION,
    healthCheck: { intervalSeconds: 100 },
    backends: idsOf(app).map((instanceId, i) => ({ instanceId, port: 8080, weight: WEIGHTS[i] })),
  });
  for (const id of idsOf(app)) await s.emu.control.forceBackendHealth(lb.serverGroupId, id, 8080, 'Healthy');
  return lb.serverGroupId;
}

async function group(id: string): Promise<LoadBalancerView['groups'][number]> {
  const all = await s.emu.control.listLoadBalancers();
  const g = all.flatMap((l) => l.groups).find((x) => x.serverGroupId === id);
  if (!g) throw new Error(`no group ${id}`);
  return g;
}
/** `ecsops_drained_backends` of AppRelease `name`. */
async function drainedGauge(name: string): Promise<number | undefined> {
  const values = (await s.registry.getSingleMetric('ecsops_drained_backends')?.get())?.values ?? [];
  return values.find((v) => v.labels.name === name)?.value;
}
const weights = async (id: string): Promise<number[]> => (await group(id)).backends.map((b) => b.weight);

function specOf(app: string, art: Artifact, gid: string, over: Partial<AppReleaseSpec> = {}): AppReleaseSpec {
  return appSpec(s, art, {
    application: app,
    targets: { tags: [{ key: 'app', value: app }] },
    healthCheck: { exec: { script: './app.sh health' }, periodSeconds: 1, failureThreshold: 1 },
    strategy: { batchSize: 2, maxErrors: 0 },
    trafficControl: {
      serverGroups: [{ type: 'ALB', serverGroupId: gid }],
      drainSeconds: 5,
      healthyTimeoutSeconds: 10,
    },
    ...over,
  });
}

/**
 * Reconciles `app` until `done`, advancing the fake clock by each requeue; after every reconcile
 * `check` sees the object and the group's backends.
 * @throws when maxSteps pass first.
 */
async function drive(
  app: string,
  gid: string,
  done: (o: AppRelease | undefined) => boolean,
  check: (o: AppRelease | undefined, out: number) => void = () => undefined,
  maxSteps = 800,
): Promise<AppRelease | undefined> {
  for (let i = 0; i < maxSteps; i++) {
    const step = await s.reconcile(app);
    const o = s.get(app);
    const g = await group(gid);
    check(o, g.backends.filter((b) => b.weight === 0).length + (4 - g.backends.length));
    if (done(o)) return o;
    s.clock.advance(step.result?.requeueAfterMs ?? 1_000);
    await sleep(step.error ? 5 : 8);
  }
  throw new Error(`${app}: not done after ${maxSteps} reconciles: ${JSON.stringify(readyOf(s.get(app)))}`);
}

beforeAll(async () => {
  s = await startAppReleaseStack({
    seed: {
      regions: {
        [REGION]: {
          generate: APPS.map((app) => ({
            count: 4,
            idPrefix: `i-${app}`,
            tags: [{ key: 'app', value: app }],
          })),
        },
      },
    },
  });
});
afterAll(async () => s?.stop());

describe('AppRelease with trafficControl', () => {
  it('drains one backend at a time (maxDrained 25% of 4), acts, restores the original weights', async () => {
    const gid = await balancer('t1');
    const art = s.artifacts.add('t1-1', { 'app.sh': appScript('1') }, s.root);
    s.apply('t1', specOf('t1', art, gid));
    let maxOut = 0;
    const reasons = new Set<string>();
    const o = await drive(
      't1',
      gid,
      (x) => readyOf(x)?.status === 'True' && x?.status?.phase === 'Succeeded',
      (x, out) => {
        maxOut = Math.max(maxOut, out);
        const r = x?.status?.conditions?.find((c) => c.type === 'Reconciling')?.reason;
        if (r) reasons.add(r);
      },
    );
    expect(maxOut).toBe(1); // the guard held, and something was drained
    expect(await weights(gid)).toEqual(WEIGHTS);
    expect(o?.status?.trafficControl).toBeUndefined();
    // Batch size 2 was cut to 1 by the guard: four batches.
    expect(o?.status?.rollout?.batches.map((b) => b.size)).toEqual([1, 1, 1, 1]);
    expect(reasons.has('Draining')).toBe(true);
    const evs = s.events.events.filter((e) => e.name === 't1').map((e) => e.reason);
    expect(evs.filter((r) => r === 'BackendsDrained')).toHaveLength(4);
    expect(evs.filter((r) => r === 'BackendsRestored')).toHaveLength(4);
  });

  it('a backend the load balancer never reports healthy fails its batch by healthyTimeoutSeconds and rolls back', async () => {
    const gid = await balancer('t2');
    const v1 = s.artifacts.add('t2-1', { 'app.sh': appScript('1') }, s.root);
    s.apply('t2', specOf('t2', v1, gid));
    await drive('t2', gid, (x) => x?.status?.phase === 'Succeeded');
    const [, second] = idsOf('t2');
    await s.emu.control.forceBackendHealth(gid, second as string, 8080, 'Unhealthy');
    const v2 = s.artifacts.add('t2-2', { 'app.sh': appScript('2') }, s.root);
    s.apply(
      't2',
      specOf('t2', v2, gid, {
        version: '2.0.0',
        trafficControl: {
          serverGroups: [{ type: 'ALB', serverGroupId: gid }],
          drainSeconds: 5,
          healthyTimeoutSeconds: 10,
          minHealthyBackends: 1,
        },
      }),
    );
    let maxOut = 0;
    const o = await drive(
      't2',
      gid,
      (x) => x?.status?.phase === 'RollingBack' || x?.status?.phase === 'RolledBack',
      (_x, out) => (maxOut = Math.max(maxOut, out)),
    );
    expect(o?.status?.rollout?.failure?.message).toMatch(
      /load balancer did not report the instance healthy within 10s \(healthyTimeoutSeconds\)/,
    );
    expect(o?.status?.rollout?.failure?.message).toContain(second);
    // The rollback goes through the same drain; once the backend is healthy again it completes.
    await s.emu.control.forceBackendHealth(gid, second as string, 8080, 'Healthy');
    const done = await drive(
      't2',
      gid,
      (x) => x?.status?.phase === 'RolledBack',
      (_x, out) => (maxOut = Math.max(maxOut, out)),
    );
    expect(readyOf(done)?.reason).toBe('RolledBack');
    expect(maxOut).toBeLessThanOrEqual(1);
    expect(await weights(gid)).toEqual(WEIGHTS);
    expect(done?.status?.trafficControl).toBeUndefined();
  });

  it('a restart mid-drain with suspend: true puts every weight back at once; resumed, the rollout completes', async () => {
    const gid = await balancer('t3');
    const art = s.artifacts.add('t3-1', { 'app.sh': appScript('1') }, s.root);
    s.apply(
      't3',
      specOf('t3', art, gid, {
        trafficControl: {
          serverGroups: [{ type: 'ALB', serverGroupId: gid }],
          drainSeconds: 600,
          maxDrained: 2,
        },
      }),
    );
    // Until a batch is out of rotation and waits out its drain.
    const draining = await drive('t3', gid, (x) =>
      (x?.status?.executions ?? []).some((e) => e.trafficPhase === 'Draining' && e.phaseSince !== undefined),
    );
    expect(draining?.status?.trafficControl?.backends?.map((b) => b.weight)).toEqual([10, 20]);
    expect((await weights(gid)).filter((w) => w === 0)).toHaveLength(2);
    expect(await drainedGauge('t3')).toBe(2);
    s.restart(); // the process's memory is gone; status and the cloud remain
    const cur = s.get('t3') as AppRelease;
    s.apply('t3', { ...cur.spec, suspend: true });
    const suspended = await drive('t3', gid, (x) => x?.status?.trafficControl === undefined);
    expect(await weights(gid)).toEqual(WEIGHTS);
    expect(suspended?.status?.executions ?? []).toEqual([]);
    expect(await drainedGauge('t3')).toBe(0);
    s.apply('t3', {
      ...cur.spec,
      suspend: false,
      trafficControl: { serverGroups: [{ type: 'ALB', serverGroupId: gid }], drainSeconds: 5, maxDrained: 2 },
    });
    let maxOut = 0;
    await drive(
      't3',
      gid,
      (x) => x?.status?.phase === 'Succeeded',
      (_x, out) => (maxOut = Math.max(maxOut, out)),
    );
    expect(maxOut).toBe(2);
    expect(await weights(gid)).toEqual(WEIGHTS);
  });

  it('deletion while instances are drained restores them before the finalizer goes', async () => {
    const gid = await balancer('t4', 'CLB');
    const art = s.artifacts.add('t4-1', { 'app.sh': appScript('1') }, s.root);
    s.apply(
      't4',
      specOf('t4', art, gid, {
        trafficControl: { serverGroups: [{ type: 'CLB', serverGroupId: gid }], drainSeconds: 600 },
      }),
    );
    await drive('t4', gid, (x) =>
      (x?.status?.executions ?? []).some((e) => e.trafficPhase === 'Draining' && e.phaseSince !== undefined),
    );
    expect((await weights(gid)).filter((w) => w === 0)).toHaveLength(1);
    s.store.delete('default', 't4');
    for (let i = 0; i < 50 && s.get('t4') !== undefined; i++) {
      const step = await s.reconcile('t4');
      s.clock.advance(step.result?.requeueAfterMs ?? 1000);
      await sleep(5);
    }
    expect(s.get('t4')?.status).toBeUndefined();
    expect(s.get('t4')).toBeUndefined();
    expect(await weights(gid)).toEqual(WEIGHTS);
  });

  it('drain and restore writes that fail (5xx past the retries, a reset, a lost answer) are retried; nothing acts before its drain', async () => {
    const gid = await balancer('t5');
    const art = s.artifacts.add('t5-1', { 'app.sh': appScript('1') }, s.root);
    await s.emu.control.setFaults({
      failNext: [
        // The first drain write: 503 past the cloud layer's retries (two reconciles fail).
        {
          action: 'UpdateServerGroupServersAttribute',
          code: 'ServiceUnavailable',
          httpStatus: 503,
          count: 12,
        },
        // Later writes: one reset before acting, one answer lost after acting.
        { action: 'UpdateServerGroupServersAttribute', kind: 'reset', skip: 2 },
        { action: 'UpdateServerGroupServersAttribute', kind: 'responseLoss', skip: 3 },
      ],
    });
    s.apply('t5', specOf('t5', art, gid));
    const errors = new Set<string>();
    const o = await drive(
      't5',
      gid,
      (x) => x?.status?.phase === 'Succeeded',
      (x) => {
        const r = x?.status?.conditions?.find((c) => c.type === 'Reconciling')?.reason;
        if (r && r !== 'Draining' && r !== 'RolloutInProgress' && r !== 'WaitingForLoadBalancerHealth')
          errors.add(r);
      },
    ).finally(() => s.emu.control.clearFaults());
    // Every deploy ran while its instance was out of rotation: its invocation started after the drain.
    const invs = (await s.emu.control.listInvocations()).filter((v) =>
      v.instances.some((i) => i.instanceId.startsWith('i-t5')),
    );
    const events = s.events.events.filter((e) => e.name === 't5');
    const drainedFirst = (id: string) =>
      events.findIndex((e) => e.reason === 'BackendsDrained' && e.note.includes(id));
    const startedAt = (id: string) =>
      events.findIndex(
        (e) =>
          e.reason === 'ExecutionStarted' &&
          e.note.includes('deploy') &&
          invs.some((v) => e.note.includes(v.invokeId) && v.instances.some((i) => i.instanceId === id)),
      );
    const actedWhileInRotation = idsOf('t5').filter(
      (id) => !(drainedFirst(id) >= 0 && drainedFirst(id) < startedAt(id)),
    );
    expect(actedWhileInRotation).toEqual([]);
    expect(errors.size).toBeGreaterThan(0); // the 503s were reported, not hidden
    expect(await weights(gid)).toEqual(WEIGHTS);
    expect(o?.status?.trafficControl).toBeUndefined();
  });
});
