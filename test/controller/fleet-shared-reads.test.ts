/**
 * Shared region-wide reads of the kinds that used to read per resource (issue 25, item 2): AppRelease
 * targets through the fleet view's batched instance reads, PatchPolicy execution polls through the
 * fleet's shared execution listing. Counted in emulator calls.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SCAN_REQUESTED_ANNOTATION } from '../../src/api/patchpolicy.js';
import { REGION } from '../harness/fast.js';
import { appSpec, startAppReleaseStack, type AppReleaseStack } from '../harness/fast-apprelease.js';
import { patchSeed, startPatchStack, type PatchStack } from '../harness/fast-patchpolicy.js';

let stop: (() => Promise<void>) | undefined;
afterEach(async () => {
  await stop?.();
  stop = undefined;
});

describe('AppRelease targets through the fleet view', () => {
  it('three AppReleases listing instance IDs, reconciled together, cost one DescribeInstances', async () => {
    const s: AppReleaseStack = await startAppReleaseStack({
      seed: { regions: { [REGION]: { generate: [{ count: 9, idPrefix: 'i-fr' }] } } },
    });
    stop = () => s.stop();
    const artifact = s.artifacts.add('fr', { 'app.sh': '#!/bin/bash\nexit 0' }, s.root);
    const apps = ['a1', 'a2', 'a3'];
    apps.forEach((app, k) =>
      s.apply(
        app,
        appSpec(s, artifact, {
          application: app,
          targets: { instanceIds: [1, 2, 3].map((n) => `i-fr${String(k * 3 + n).padStart(4, '0')}`) },
          install: { appDir: `${s.root}/{{ACS::InstanceId}}/${app}` },
        }),
      ),
    );
    await s.emu.control.resetRequestCounts();
    const steps = await Promise.all(apps.map((app) => s.reconcile(app)));
    for (const step of steps) expect(step.error).toBeUndefined();
    const counts = await s.emu.control.requestCounts();
    // One batched read of the 9 instances (and one Cloud Assistant read), not one pair per release.
    expect(counts.DescribeInstances ?? 0).toBe(1);
    expect(counts.DescribeCloudAssistantStatus ?? 0).toBe(1);
    for (const app of apps) expect(s.get(app)?.status?.summary?.targeted).toBe(3);
  });
});

describe('PatchPolicy polls through the shared execution listing', () => {
  it('6 running scans of 2 policies cost listing calls per poll round, not a call per execution', async () => {
    // timeScale 1: a scan of 50 instances runs for a while, so every execution is still running
    // when polled.
    const s: PatchStack = await startPatchStack({ seed: patchSeed('ps', 240, 0), timeScale: 1 });
    stop = () => s.stop();
    const names = ['p1', 'p2'];
    names.forEach((n, k) =>
      s.apply(n, {
        targets: {
          instanceIds: Array.from(
            { length: 120 },
            (_, i) => `i-ps${String(k * 120 + i + 1).padStart(4, '0')}`,
          ),
        },
        interval: '1h',
        scan: { schedule: '0 3 * * *', timeZone: 'Asia/Shanghai' },
      }),
    );
    for (const n of names) {
      expect((await s.reconcile(n)).error).toBeUndefined();
      s.store.annotate('default', n, { [SCAN_REQUESTED_ANNOTATION]: 'now-1' });
      expect((await s.reconcile(n)).error).toBeUndefined();
    }
    const running = () => s.emu.control.listExecutions({ status: 'Running' });
    for (let i = 0; i < 100 && (await running()).length < 6; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await running()).toHaveLength(6); // 3 scans of ≤ 50 instances per policy
    await s.emu.control.resetRequestCounts();
    s.clock.advance(2_000);
    for (const n of names) expect((await s.reconcile(n)).error).toBeUndefined();
    const counts = await s.emu.control.requestCounts();
    // Running executions of the kind (and, on the first read, the recently ended ones): ≤ 2
    // ListExecutions for the round, where polling by execution ID cost 6.
    expect(counts.ListExecutions ?? 0).toBeLessThanOrEqual(2);
    for (const n of names) expect(s.get(n)?.status?.executions).toHaveLength(3);
  });
});
