/**
 * AppRelease and ACK worker nodes on the fast tier (issue 21 item 5): over a tag whose instances
 * include two ACK workers (ECS tags `ack.aliyun.com` / `ack.alibabacloud.com/nodepool-id`), the
 * release deploys to the others only — no invocation, no revision tag, no directory on the nodes —
 * and lists the two in `status.excluded`; with `spec.allowKubernetesNodes: true` they get it too.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OWNER_UID_TAG } from '../../src/api/common.js';
import { fleetIds, REGION } from '../harness/fast.js';
import {
  appSpec,
  readyOf,
  startAppReleaseStack,
  type AppReleaseStack,
  type Artifact,
} from '../harness/fast-apprelease.js';

const ACK_TAGS = [
  { key: 'ack.aliyun.com', value: 'c50e414cb83a84760a3a36be7ea4884c2' },
  { key: 'ack.alibabacloud.com/nodepool-id', value: 'np1' },
];

/** `app=<prefix>`: 4 plain instances, then 2 ACK workers. */
function fleet(prefix: string) {
  const app = { key: 'app', value: prefix };
  return [
    { count: 4, idPrefix: `i-${prefix}`, tags: [app] },
    { count: 2, idPrefix: `i-${prefix}`, startIndex: 5, tags: [app, ...ACK_TAGS] },
  ];
}

describe('AppRelease over a tag that includes ACK worker nodes', () => {
  let s: AppReleaseStack;
  let v1: Artifact;
  beforeAll(async () => {
    s = await startAppReleaseStack({
      seed: { regions: { [REGION]: { generate: [...fleet('wk'), ...fleet('wo')] } } },
    });
    v1 = s.artifacts.add('app-1', { 'app.sh': '#!/bin/bash\nexit 0\n' }, s.root);
  });
  afterAll(() => s.stop());

  async function deployedTo(uid: string): Promise<string[]> {
    const invs = (await s.emu.control.listInvocations()).filter((v) => v.tags[OWNER_UID_TAG] === uid);
    return invs.flatMap((v) => v.instances.map((i) => i.instanceId)).sort();
  }
  async function revisionTags(application: string): Promise<Record<string, string | undefined>> {
    const list = await s.emu.control.listInstances(REGION);
    return Object.fromEntries(list.map((i) => [i.instanceId, i.tags[`ecsops.io/app.${application}`]]));
  }
  const spec = (application: string, over = {}) =>
    appSpec(s, v1, {
      targets: { tags: [{ key: 'app', value: application }] },
      application,
      strategy: { batchSize: '100%', maxErrors: 0 },
      healthCheck: undefined,
      ...over,
    });

  it('deploys to the others and reports the two nodes as excluded', async () => {
    const created = s.apply('wk', spec('wk'));
    const obj = await s.until('wk', (o) => readyOf(o)?.status === 'True');
    expect(readyOf(obj)?.reason).toBe('RolloutSucceeded');
    const nodes = fleetIds('wk', 5, 6);
    expect(await deployedTo(created.metadata.uid ?? '')).toEqual(fleetIds('wk', 1, 4));
    const tags = await revisionTags('wk');
    expect(fleetIds('wk', 1, 4).every((id) => tags[id] === obj?.status?.currentRevision)).toBe(true);
    expect(nodes.map((id) => tags[id])).toEqual([undefined, undefined]);
    for (const id of nodes) expect(existsSync(s.appDir(id))).toBe(false);
    expect(obj?.status?.summary).toMatchObject({ targeted: 4, updated: 4 });
    expect(obj?.status?.excluded).toEqual([
      expect.objectContaining({ reason: 'KubernetesNode', count: 2, instanceIds: nodes }),
    ]);
    const warned = s.events.events.filter((e) => e.name === 'wk' && e.reason === 'KubernetesNodesExcluded');
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ type: 'Warning' });
  });

  it('deploys to them too with spec.allowKubernetesNodes: true', async () => {
    const created = s.apply('wo', spec('wo', { allowKubernetesNodes: true }));
    const obj = await s.until('wo', (o) => readyOf(o)?.status === 'True');
    expect(await deployedTo(created.metadata.uid ?? '')).toEqual(fleetIds('wo', 1, 6));
    expect(obj?.status?.summary).toMatchObject({ targeted: 6, updated: 6 });
    expect(obj?.status?.excluded).toBeUndefined();
    expect(obj?.status?.kubernetesNodes).toEqual({ count: 2, instanceIds: fleetIds('wo', 5, 6) });
  });
});
