/**
 * `ecsops plan` and ACK worker nodes (issue 21 item 5): against the emulator, a fleet of four plain
 * instances and two ACK workers (ECS tags `ack.aliyun.com` / `ack.alibabacloud.com/nodepool-id`).
 * PatchPolicy and AppRelease plans list the two as `excluded` (not in `targeted`, not in any
 * execution) unless `spec.allowKubernetesNodes` is true; the EcsExtension plan keeps them and
 * says so in a note. The table form names the excluded count.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CloudClients } from '../../../src/cloud/index.js';
import { startCloudStack, type CloudStack } from '../../harness/fast.js';
import { formatPlans, planManifest, type Plan } from '../../../src/plan/index.js';

const REGION = 'cn-hangzhou';
const ACK = {
  'ack.aliyun.com': 'c50e414cb83a84760a3a36be7ea4884c2',
  'ack.alibabacloud.com/nodepool-id': 'np1',
};
const PLAIN = ['i-kn0001', 'i-kn0002', 'i-kn0003', 'i-kn0004'];
const NODES = ['i-kn0005', 'i-kn0006'];

describe('ecsops plan with ACK worker nodes among the targets', () => {
  let stack: CloudStack;
  let cloud: CloudClients;
  beforeAll(async () => {
    stack = await startCloudStack({
      seed: {
        regions: {
          [REGION]: {
            generate: [
              { count: 4, idPrefix: 'i-kn', tags: { fleet: 'kn' }, patches: 2 },
              { count: 2, idPrefix: 'i-kn', startIndex: 5, tags: { fleet: 'kn', ...ACK }, patches: 2 },
            ],
          },
        },
        packageTemplates: [{ name: 'ACS-Extension-agent', versions: [{ version: 'v1' }] }],
      },
      timeScale: 0.005,
    });
    cloud = stack.cloud;
  });
  afterAll(() => stack?.stop());

  const doc = (kind: string, spec: Record<string, unknown>) => ({
    apiVersion: 'ecsops.io/v1alpha1',
    kind,
    metadata: { name: kind.toLowerCase(), namespace: 'default' },
    spec: { regionId: REGION, targets: { tags: [{ key: 'fleet', value: 'kn' }] }, ...spec },
  });
  const patch = (extra: Record<string, unknown> = {}) =>
    doc('PatchPolicy', {
      install: { maintenanceWindow: { schedule: '* * * * *', duration: '1h' }, rebootIfNeeded: true },
      ...extra,
    });
  const app = (extra: Record<string, unknown> = {}) =>
    doc('AppRelease', {
      application: 'shop',
      version: '1.0.0',
      artifact: { url: 'https://example.com/shop.tar.gz', sha256: 'a'.repeat(64) },
      hooks: { start: { script: 'true' } },
      ...extra,
    });
  const stateOf = (p: Plan, state: string) =>
    p.instances.filter((i) => i.state === state).map((i) => i.instanceId);
  const worked = (p: Plan) => [...new Set(p.work.flatMap((w) => w.instanceIds))].sort();

  it('PatchPolicy and AppRelease: the two nodes are excluded, the rest planned', async () => {
    const [pp, ar] = await planManifest([patch(), app()], cloud);
    for (const p of [pp, ar]) {
      expect(p?.problems).toEqual([]);
      expect(stateOf(p!, 'excluded')).toEqual(NODES);
      expect(p?.summary).toMatchObject({ targeted: 4, excluded: 2 });
      expect(worked(p!).filter((id) => NODES.includes(id))).toEqual([]);
    }
    expect(worked(ar!)).toEqual(PLAIN);
    expect(formatPlans([pp!])).toContain('excluded 2 ACK worker node(s)');
    expect(formatPlans([pp!])).toMatch(/i-kn0005\s+excluded\s+ACK worker node/);
  });

  it('with spec.allowKubernetesNodes: true they are planned like the others', async () => {
    const [pp, ar] = await planManifest(
      [patch({ allowKubernetesNodes: true }), app({ allowKubernetesNodes: true })],
      cloud,
    );
    for (const p of [pp, ar]) {
      expect(stateOf(p!, 'excluded')).toEqual([]);
      expect(p?.summary.targeted).toBe(6);
      expect(p?.summary.excluded).toBeUndefined();
      expect(p?.notes.join('\n')).toContain('2 targeted instance(s) are ACK worker nodes');
    }
    expect(worked(ar!)).toEqual([...PLAIN, ...NODES]);
  });

  it('EcsExtension keeps the nodes and notes them', async () => {
    const [ext] = await planManifest([doc('EcsExtension', { packageName: 'ACS-Extension-agent' })], cloud);
    expect(stateOf(ext!, 'excluded')).toEqual([]);
    expect(ext?.summary.targeted).toBe(6);
    expect(worked(ext!)).toEqual([...PLAIN, ...NODES]);
    expect(ext?.notes.join('\n')).toContain('i-kn0005, i-kn0006');
  });
});
