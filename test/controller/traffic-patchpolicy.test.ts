/**
 * spec.trafficControl on a PatchPolicy (issue 24), fast tier: the install executions of a window
 * (with reboots) are cut by the capacity guard so a CLB vServer group of 4 never has more than
 * maxDrained = 1 backend out, every execution waits for its drain, and every weight ends at its
 * original value; scans never drain.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PatchPolicy } from '../../src/api/patchpolicy.js';
import { fleetIds } from '../harness/fast.js';
import {
  patchSeed,
  reachInstallWindow,
  REGION,
  startPatchStack,
  type PatchStack,
} from '../harness/fast-patchpolicy.js';

const WEIGHTS = [100, 80, 60, 40];

describe('PatchPolicy installs with trafficControl', () => {
  let s: PatchStack;
  beforeAll(async () => {
    s = await startPatchStack({ seed: patchSeed('lb', 0, 4) });
  });
  afterAll(() => s?.stop());

  it('patches (and reboots) one backend at a time behind a CLB, weights restored', async () => {
    const ids = fleetIds('lb', 1, 4);
    const lb = await s.emu.control.createLoadBalancer({
      type: 'CLB',
      regionId: REGION,
      healthCheck: { intervalSeconds: 100 },
      backends: ids.map((instanceId, i) => ({ instanceId, port: 80, weight: WEIGHTS[i] })),
    });
    for (const id of ids) await s.emu.control.forceBackendHealth(lb.serverGroupId, id, 80, 'Healthy');
    const groupOf = async () =>
      (await s.emu.control.listLoadBalancers())
        .flatMap((l) => l.groups)
        .find((g) => g.serverGroupId === lb.serverGroupId);
    const created = await reachInstallWindow(
      s,
      'lbp',
      'lb',
      {},
      {
        trafficControl: { serverGroups: [{ type: 'CLB', serverGroupId: lb.serverGroupId }], drainSeconds: 0 },
      },
    );
    let maxOut = 0;
    let obj: PatchPolicy | undefined;
    let last = Date.now();
    for (let i = 0; i < 2000; i++) {
      s.clock.advance(Math.max(1, Date.now() - last));
      last = Date.now();
      await s.reconcile('lbp');
      obj = s.get('lbp');
      const g = await groupOf();
      maxOut = Math.max(maxOut, (g?.backends ?? []).filter((b) => b.weight === 0).length);
      if (obj?.status?.lastInstall?.result === 'Succeeded' && (obj.status.executions ?? []).length === 0)
        break;
      await sleep(10);
    }
    expect(obj?.status?.lastInstall).toMatchObject({ result: 'Succeeded', succeeded: 4, failed: 0 });
    expect(maxOut).toBe(1);
    const installs = await s.executions(created.metadata.uid ?? '', 'install');
    expect(installs.map((e) => e.items.length)).toEqual([1, 1, 1, 1]);
    expect(installs[0]?.parameters).toMatchObject({ rebootIfNeed: true });
    expect((await groupOf())?.backends.map((b) => b.weight)).toEqual(WEIGHTS);
    expect(obj?.status?.trafficControl).toBeUndefined();
    const reasons = s.events.events.filter((e) => e.name === 'lbp').map((e) => e.reason);
    expect(reasons.filter((r) => r === 'BackendsDrained')).toHaveLength(4);
  });
});
