/**
 * EcsExtension and ACK worker nodes on the fast tier (issue 21 item 5): an agent belongs on a
 * Kubernetes node too, so the two ACK workers (ECS tags `ack.aliyun.com` /
 * `ack.alibabacloud.com/nodepool-id`) among the targets are NOT excluded: the package is installed
 * on all six, `status.kubernetesNodes` counts the two, and one Warning Event names them (not one
 * per reconcile).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OWNER_UID_TAG } from '../../src/api/common.js';
import { fleetIds, fleetSeed, isReady, REGION, startFastStack, type FastStack } from '../harness/fast.js';

describe('EcsExtension over a tag that includes ACK worker nodes', () => {
  let s: FastStack;
  beforeAll(async () => {
    const fleet = { key: 'fleet', value: 'ek' };
    const seed = {
      ...fleetSeed('ek', 4), // the package templates
      regions: {
        [REGION]: {
          generate: [
            { count: 4, idPrefix: 'i-ek', tags: [fleet] },
            {
              count: 2,
              idPrefix: 'i-ek',
              startIndex: 5,
              tags: [
                fleet,
                { key: 'ack.aliyun.com', value: 'c50e414cb83a84760a3a36be7ea4884c2' },
                { key: 'ack.alibabacloud.com/nodepool-id', value: 'np1' },
              ],
            },
          ],
        },
      },
    };
    s = await startFastStack({ seed });
  });
  afterAll(() => s.stop());

  it('installs on every target, counts the two nodes and warns once', async () => {
    const created = s.apply('agent', { targets: { tags: [{ key: 'fleet', value: 'ek' }] } });
    let obj = await s.until('agent', (o) => isReady(o));
    expect(obj?.status?.summary).toMatchObject({ targeted: 6, installed: 6 });
    const execs = await s.emu.control.listExecutions({
      tagKey: OWNER_UID_TAG,
      tagValue: created.metadata.uid,
    });
    const installed = execs.flatMap((e) => e.items.map((i) => i.instanceId)).sort();
    expect(installed).toEqual(fleetIds('ek', 1, 6));
    expect(obj?.status?.kubernetesNodes).toEqual({ count: 2, instanceIds: fleetIds('ek', 5, 6) });
    expect(obj?.status?.excluded).toBeUndefined();
    for (let i = 0; i < 3; i++) {
      s.clock.advance(11 * 60_000); // drift checks re-resolve the targets
      await s.reconcile('agent');
    }
    obj = s.get('agent');
    expect(obj?.status?.kubernetesNodes?.count).toBe(2);
    const warned = s.events.events.filter(
      (e) => e.name === 'agent' && e.reason === 'KubernetesNodesTargeted',
    );
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ type: 'Warning' });
    expect(warned[0]?.note).toContain('i-ek0005, i-ek0006');
  });
});
