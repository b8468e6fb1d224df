/**
 * PatchPolicy and ACK worker nodes on the fast tier (issue 21 item 5): a policy over a tag whose
 * instances include two ACK workers (ECS tags `ack.aliyun.com` / `ack.alibabacloud.com/nodepool-id`)
 * scans and patches the others, never the two, and reports them in `status.excluded` with one
 * Warning Event; with `spec.allowKubernetesNodes: true` they are patched too (and counted in
 * `status.kubernetesNodes`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fleetIds } from '../harness/fast.js';
import {
  cond,
  REGION,
  reachInstallWindow,
  startPatchStack,
  type PatchStack,
} from '../harness/fast-patchpolicy.js';

const ACK_TAGS = {
  'ack.aliyun.com': 'c50e414cb83a84760a3a36be7ea4884c2',
  'ack.alibabacloud.com/nodepool-id': 'np1',
};

/** `fleet=<prefix>`: 4 plain instances, then 2 ACK workers; all miss 3 patches. */
function fleet(prefix: string) {
  return [
    { count: 4, idPrefix: `i-${prefix}`, tags: { fleet: prefix }, patches: 3 },
    { count: 2, idPrefix: `i-${prefix}`, startIndex: 5, tags: { fleet: prefix, ...ACK_TAGS }, patches: 3 },
  ];
}

function ids(execs: Array<{ items: Array<{ instanceId: string }> }>): string[] {
  return execs.flatMap((e) => e.items.map((i) => i.instanceId)).sort();
}

describe('PatchPolicy over a tag that includes ACK worker nodes', () => {
  let s: PatchStack;
  beforeAll(async () => {
    s = await startPatchStack({
      seed: { regions: { [REGION]: { generate: [...fleet('ak'), ...fleet('ao')] as never } } },
    });
  });
  afterAll(() => s.stop());

  it('patches the others and reports the two nodes as excluded', async () => {
    const created = await reachInstallWindow(s, 'web', 'ak');
    const uid = created.metadata.uid ?? '';
    const obj = await s.settle('web');
    const nodes = fleetIds('ak', 5, 6);
    // Neither scanned nor patched: no execution names them.
    expect(ids(await s.executions(uid, 'install'))).toEqual(fleetIds('ak', 1, 4));
    expect(ids(await s.executions(uid, 'scan')).filter((id) => nodes.includes(id))).toEqual([]);
    expect(obj?.status?.summary).toMatchObject({ targeted: 4, compliant: 4 });
    expect(obj?.status?.excluded).toEqual([
      expect.objectContaining({ reason: 'KubernetesNode', count: 2, instanceIds: nodes }),
    ]);
    expect(obj?.status?.kubernetesNodes).toBeUndefined();
    expect(obj?.status?.instances?.map((r) => r.instanceId)).toEqual(fleetIds('ak', 1, 4));
    expect(cond(obj, 'Compliant')).toMatchObject({ status: 'True' });
    // The cloud agrees: no patch was installed on the two nodes (the others' are).
    const states = await s.emu.control.getPatchStates(REGION);
    const installedOn = (id: string) =>
      states
        .filter((p) => p.instanceId === id)
        .flatMap((p) => p.patches.filter((x) => x.status === 'Installed'));
    expect(nodes.flatMap(installedOn)).toEqual([]);
    expect(installedOn('i-ak0001').length).toBeGreaterThan(0);
    // One Warning Event for the set, not one per reconcile.
    const warned = s.events.events.filter((e) => e.name === 'web' && e.reason === 'KubernetesNodesExcluded');
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ type: 'Warning' });
    expect(warned[0]?.note).toContain('i-ak0005, i-ak0006');
  });

  it('patches them too with spec.allowKubernetesNodes: true', async () => {
    const created = s.apply('opt-in', {
      targets: { tags: [{ key: 'fleet', value: 'ao' }] },
      allowKubernetesNodes: true,
      install: {
        maintenanceWindow: { schedule: '0 * * * *', duration: '2h' },
        rebootIfNeeded: true,
        minRemaining: '10m',
      },
    });
    s.store.annotate('default', 'opt-in', { 'ecsops.io/scan-requested-at': '1' });
    await s.reconcile('opt-in');
    await s.settle('opt-in'); // the scan; the install starts in the reconcile that folds it
    const obj = await s.settle('opt-in');
    expect(ids(await s.executions(created.metadata.uid ?? '', 'install'))).toEqual(fleetIds('ao', 1, 6));
    expect(obj?.status?.summary).toMatchObject({ targeted: 6, compliant: 6 });
    expect(obj?.status?.excluded).toBeUndefined();
    expect(obj?.status?.kubernetesNodes).toEqual({ count: 2, instanceIds: fleetIds('ao', 5, 6) });
    expect(
      s.events.events.filter((e) => e.name === 'opt-in' && e.reason === 'KubernetesNodesTargeted'),
    ).toHaveLength(1);
  });
});
