/**
 * `ecsops plan` and traffic control (issue 24): with `spec.trafficControl`, an AppRelease plan cuts
 * its batches with the controller's capacity guard (a group of 8 with maxDrained 25% lets 2 out at
 * a time) and names each batch's Draining step; instances in no listed group go without draining;
 * an ACK-managed load balancer is a plan problem. Against the emulator (reads only: the load
 * balancer reads go through the real CLB/ALB clients).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatPlans, planManifest } from '../../../src/plan/index.js';
import { startCloudStack, type CloudStack } from '../../harness/fast.js';

const REGION = 'cn-hangzhou';
const ids = Array.from({ length: 10 }, (_, i) => `i-pt${String(i + 1).padStart(4, '0')}`);

describe('ecsops plan with spec.trafficControl', () => {
  let stack: CloudStack;
  let alb = '';
  let ack = '';
  beforeAll(async () => {
    stack = await startCloudStack({
      seed: { regions: { [REGION]: { generate: [{ count: 10, idPrefix: 'i-pt', tags: { fleet: 'pt' } }] } } },
    });
    // 8 of the 10 instances behind an ALB, all healthy.
    const lb = await stack.emu.control.createLoadBalancer({
      type: 'ALB',
      regionId: REGION,
      healthCheck: { intervalSeconds: 100 },
      backends: ids.slice(0, 8).map((instanceId) => ({ instanceId, port: 8080 })),
    });
    alb = lb.serverGroupId;
    for (const id of ids.slice(0, 8)) await stack.emu.control.forceBackendHealth(alb, id, 8080, 'Healthy');
    ack = (
      await stack.emu.control.createLoadBalancer({
        type: 'CLB',
        regionId: REGION,
        tags: { 'ack.aliyun.com': 'c0ffee' },
        backends: [{ instanceId: ids[0] as string, port: 80 }],
      })
    ).serverGroupId;
  });
  afterAll(() => stack?.stop());

  const app = (trafficControl?: unknown) => ({
    apiVersion: 'ecsops.io/v1alpha1',
    kind: 'AppRelease',
    metadata: { name: 'shop', namespace: 'default' },
    spec: {
      regionId: REGION,
      targets: { tags: [{ key: 'fleet', value: 'pt' }] },
      application: 'shop',
      version: '1.0.0',
      artifact: { url: 'https://example.com/shop.tar.gz', sha256: 'a'.repeat(64) },
      hooks: { start: { script: 'true' } },
      strategy: { batchSize: 5 },
      ...(trafficControl ? { trafficControl } : {}),
    },
  });

  it('AppRelease: batches cut by the capacity guard, each with its Draining step', async () => {
    const [plan, plain] = await planManifest(
      [app({ serverGroups: [{ type: 'ALB', serverGroupId: alb }], drainSeconds: 10 }), app()],
      stack.cloud,
    );
    const work = plan?.work[0];
    expect(plain?.work[0]?.batches).toEqual([5, 5]);
    expect(plain?.work[0]?.traffic).toBeUndefined();
    // 25% of 8 = 2 out at once; instances in no group join a batch without draining.
    expect(work?.batches).toEqual([2, 2, 3, 3]);
    expect(work?.traffic?.[0]).toBe(
      `batch 0 (2) → Draining i-pt0001, i-pt0002 from ${alb} (drainSeconds 10) → deploy → original weights back → healthy in ${alb} (≤ 300s)`,
    );
    expect(work?.traffic?.[2]).toMatch(/^batch 2 \(3\) → Draining i-pt0005, i-pt0006 from /);
    expect(formatPlans([plan!])).toContain(`    batch 1 (2) → Draining i-pt0003, i-pt0004 from ${alb}`);
  });

  it('an ACK-managed load balancer is a plan problem (the controller would stall)', async () => {
    const [plan] = await planManifest(
      [app({ serverGroups: [{ type: 'CLB', serverGroupId: ack }] })],
      stack.cloud,
    );
    expect(plan?.problems).toEqual([
      expect.objectContaining({
        reason: 'LoadBalancerManagedByACK',
        message: expect.stringContaining('ack.aliyun.com'),
      }),
    ]);
  });
});
