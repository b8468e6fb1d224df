/**
 * Traffic control with REAL HTTP traffic through the emulator's load balancer (issue 24), on the
 * real API server, the real controller and the emulator in sandbox mode running the demo app
 * (test/harness/traffic-scenarios.ts: 12 instances behind one ALB, port 8080). A steady load
 * (test/harness/load.ts, autocannon: 300 req/s, 16 keep-alive connections re-opened every 20
 * requests) runs for the whole of each scenario, counting failed requests (non-2xx, errors,
 * timeouts) and answers per version per second. In order:
 * a. an AppRelease rollout 1.4.2 → 1.4.3 WITH spec.trafficControl: 0 failed of ≥ 10,000, the
 *    version mix moving batch by batch (old share falling, ending 100 % new);
 * b. the same rollout (1.4.3 → 1.4.4) WITHOUT it: requests fail (what shows a) can fail);
 * c. a PatchPolicy install with reboots WITH trafficControl: 0 failed of ≥ 10,000;
 * d. the same install WITHOUT it: requests fail;
 * e. the controller as a child process SIGKILLed while a batch is drained (weight 0 on the ALB),
 *    then started again: every weight goes back to the original recorded in
 *    status.trafficControl.backends, the rollout completes, no request fails after the kill.
 * The figures of each scenario are printed; test/bench/traffic.bench.ts runs a–d longer.
 */
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { windows } from '../../harness/load.js';
import { spawnController, testControllerArgs, waitFor } from '../../harness/stack.js';
import {
  applyRelease,
  DEFAULT_SETTINGS,
  FIXTURE_WEIGHTS,
  getRelease,
  labelled,
  loadOn,
  runPatch,
  runRollout,
  shares,
  startTrafficFixture,
  stepShares,
  trafficControlOf,
  untilRelease,
  versionOf,
  weights,
  webScript,
  type ScenarioResult,
  type TrafficFixture,
} from '../../harness/traffic-scenarios.js';

/** One line of figures per scenario (the report reads them from the test output). */
function show(f: TrafficFixture, r: ScenarioResult): void {
  const mix = windows(r.load.buckets, 5).map(
    (w) => `${w.t}s:${JSON.stringify(labelled(f, w.byVersion))}${w.failed ? `!${w.failed}` : ''}`,
  );
  process.stdout.write(
    `[traffic-e2e] ${r.name}: requests ${r.load.requests}, failed ${r.load.failed} ${JSON.stringify(r.load.byStatus)}, ` +
      `change ${(r.changeMs / 1000).toFixed(1)} s (${r.detail}${r.lastInstall ? `; status.lastInstall ${JSON.stringify(r.lastInstall)}` : ''}), load ${(r.load.elapsedMs / 1000).toFixed(1)} s; ${mix.join(' ')}\n`,
  );
}

describe('traffic control under real HTTP traffic (12 instances behind one ALB)', () => {
  let f: TrafficFixture;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    f = await startTrafficFixture();
  }, 240_000);
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await f?.stop();
  });

  it('a. AppRelease 1.4.2 → 1.4.3 with trafficControl: no failed request of ≥ 10,000, the mix moves batch by batch', async () => {
    const r = await runRollout(f, 'a', '1.4.3', { drainSeconds: 2, healthyTimeoutSeconds: 60 });
    show(f, r);
    expect(r.load.requests).toBeGreaterThanOrEqual(10_000);
    expect(r.load.failed).toBe(0);
    expect(r.load.byStatus).toEqual({ '200': r.load.requests });
    expect(r.detail).toBe('batches [3,3,3,3]');
    // Before the change only 1.4.2 answers; after it only 1.4.3.
    const before = shares(f, r.load, '1.4.3', 0, r.changeStartSecond - 1);
    expect(before.every((s) => s === 0)).toBe(true);
    const after = shares(f, r.load, '1.4.3', r.changeDoneSecond + 1, r.load.buckets.length - 1);
    expect(after.length).toBeGreaterThan(0);
    expect(after.every((s) => s === 1)).toBe(true);
    // In between the new share rises batch by batch (3 of 12 each): before the first batch started
    // (its drain), then from each batch's start to the next one's, the last up to Succeeded.
    const steps = stepShares(f, r, '1.4.3');
    process.stdout.write(
      `[traffic-e2e] a: 1.4.3 share by batch step ${JSON.stringify(steps.map((x) => +x.toFixed(3)))}\n`,
    );
    expect(steps.length).toBeGreaterThanOrEqual(4);
    for (let i = 1; i < steps.length; i++)
      expect(steps[i], JSON.stringify(steps)).toBeGreaterThan(steps[i - 1] as number);
    expect(steps[0]).toBeLessThan(0.25);
    expect(steps.at(-1)).toBeGreaterThan(0.9);
    expect(r.weightsAfter).toEqual(FIXTURE_WEIGHTS);
  }, 200_000);

  it('b. the same rollout (1.4.3 → 1.4.4) without trafficControl: requests fail', async () => {
    const r = await runRollout(f, 'b', '1.4.4', null, { ...DEFAULT_SETTINGS, minRequests: 0 });
    show(f, r);
    expect(r.load.failed).toBeGreaterThan(0);
    expect(labelled(f, r.load.byVersion)['1.4.4']).toBeGreaterThan(0);
  }, 200_000);

  it('c. PatchPolicy install with reboots, with trafficControl: no failed request of ≥ 10,000', async () => {
    const r = await runPatch(f, 'patch-c', { drainSeconds: 2, healthyTimeoutSeconds: 60 });
    show(f, r);
    expect(r.load.requests).toBeGreaterThanOrEqual(10_000);
    expect(r.load.failed).toBe(0);
    // Cut by the guard (maxDrained 25 % of 12): 4 install executions of 3, one after the other.
    expect(r.detail).toBe('install executions [3,3,3,3] (rebootIfNeed)');
    expect(r.weightsAfter).toEqual(FIXTURE_WEIGHTS);
  }, 200_000);

  it('d. the same install without trafficControl: requests fail', async () => {
    const r = await runPatch(f, 'patch-d', null, { ...DEFAULT_SETTINGS, minRequests: 0 });
    show(f, r);
    expect(r.load.failed).toBeGreaterThan(0);
  }, 200_000);

  it('e. controller SIGKILLed while a batch is drained: weights restored to the recorded originals, rollout completes, no request fails after the kill', async () => {
    await f.stack.stopController();
    const args = testControllerArgs(f.stack.namespace, f.stack.emu, ['--apprelease-workers', '1']);
    const first = spawnController(args);
    children.push(first);
    const run = loadOn(f, { ...DEFAULT_SETTINGS, maxDurationMs: 180_000 });
    const art = f.artifacts.add('web-1.4.5-e', { 'web.sh': webScript('1.4.5') }, f.root);
    const spec = {
      ...(f.spec as NonNullable<TrafficFixture['spec']>),
      version: '1.4.5',
      artifact: art,
      suspend: false,
      strategy: { batchSize: 6, maxErrors: 0 },
      trafficControl: trafficControlOf(f, { drainSeconds: 10, maxDrained: '50%' }),
    };
    await applyRelease(f, spec);
    // Drained: status records the originals and the ALB shows those backends at weight 0.
    const drained = await waitFor(
      'a batch out of rotation',
      async () => {
        const o = await getRelease(f);
        const recorded = o.status?.trafficControl?.backends ?? [];
        if (recorded.length === 0) return undefined;
        const w = await weights(f);
        const out = recorded.every((b) => w[f.ids.indexOf(b.instanceId)] === 0);
        return out ? recorded : undefined;
      },
      60_000,
      100,
    );
    first.kill('SIGKILL');
    const killedAt = run.second();
    await new Promise((r) => first.once('exit', r));
    expect(drained.length).toBe(6);
    for (const b of drained) expect(b.weight).toBe(FIXTURE_WEIGHTS[f.ids.indexOf(b.instanceId)]);
    const second = spawnController(args);
    children.push(second);
    const done = await untilRelease(
      f,
      '1.4.5 Succeeded after the restart',
      (o) => o.status?.phase === 'Succeeded' && o.status.stableRevision === o.status.currentRevision,
      150_000,
    );
    f.versions.set(done.status?.currentRevision ?? '', '1.4.5');
    const load = await run.stop();
    second.kill('SIGTERM');
    await new Promise((r) => second.once('exit', r));
    const afterKill = load.buckets.slice(killedAt);
    const failedAfterKill = afterKill.reduce((n, b) => n + b.failed, 0);
    process.stdout.write(
      `[traffic-e2e] e: requests ${load.requests}, failed ${load.failed} ${JSON.stringify(load.byStatus)}, ` +
        `killed at ${killedAt} s, failed after the kill ${failedAfterKill}, recorded ${JSON.stringify(drained.map((b) => [b.instanceId, b.weight]))}, ` +
        `${JSON.stringify(labelled(f, load.byVersion))}\n`,
    );
    expect(failedAfterKill).toBe(0);
    expect(versionOf(f, done.status?.currentRevision ?? '')).toBe('1.4.5');
    expect(done.status?.trafficControl).toBeUndefined();
    const after = await weights(f);
    for (const b of drained) expect(after[f.ids.indexOf(b.instanceId)]).toBe(b.weight);
    expect(after).toEqual(FIXTURE_WEIGHTS);
  }, 240_000);
});
