/**
 * The ACK worker node predicate and the shared screen every kind applies to its resolved targets:
 * which tags mark a node, what `exclude` and `warn` keep, the status groups they write, and the
 * Warning Event emitted once per change of the node set (not on every reconcile).
 */
import { describe, expect, it } from 'vitest';
import type { Instance } from '../../../src/cloud/types.js';
import {
  disruptivePolicy,
  excludedStatus,
  explainNoTargets,
  isKubernetesNode,
  kubernetesNodesStatus,
  noteKubernetesNodes,
  screenKubernetesNodes,
  writeNodeStatus,
} from '../../../src/controllers/shared/kubernetes-nodes.js';
import type { ResolvedTarget } from '../../../src/controllers/shared/targets.js';
import type { EventSink } from '../../../src/runtime/events.js';

function target(id: string, tags: Record<string, string> = {}): ResolvedTarget {
  const instance: Instance = {
    instanceId: id,
    regionId: 'cn-hangzhou',
    status: 'Running',
    tags: Object.entries(tags).map(([key, value]) => ({ key, value })),
  };
  return { instanceId: id, instance, reachable: true };
}

const CLUSTER = { 'ack.aliyun.com': 'c50e414cb83a84760a3a36be7ea4884c2' };
const POOL = { 'ack.alibabacloud.com/nodepool-id': 'np29c8779601ce44afab9d766f1011d65f' };

describe('isKubernetesNode', () => {
  it.each([
    ['the cluster ID tag', CLUSTER, true],
    ['the node pool ID tag', POOL, true],
    [
      'both ACK tags and the scaling group tag',
      { ...CLUSTER, ...POOL, 'acs:autoscaling:scalingGroupId': 'asg-1' },
      true,
    ],
    ['an empty cluster ID value (the key alone counts)', { 'ack.aliyun.com': '' }, true],
    ['only the Auto Scaling tag (not ACK-specific)', { 'acs:autoscaling:scalingGroupId': 'asg-1' }, false],
    ['a look-alike key', { 'ack.aliyun.com.fake': 'x', 'my/ack.aliyun.com': 'y' }, false],
    ['a key differing in case', { 'ACK.aliyun.com': 'c1' }, false],
    ['ordinary tags', { fleet: 'web', env: 'prod' }, false],
    ['no tags', {}, false],
  ])('%s → %s', (_name, tags, expected) => {
    expect(isKubernetesNode(target('i-a', tags).instance)).toBe(expected);
  });

  it('treats an instance without a tags list as not a node', () => {
    expect(isKubernetesNode({})).toBe(false);
  });
});

describe('screenKubernetesNodes', () => {
  const targets = [target('i-c', CLUSTER), target('i-a'), target('i-b', POOL), target('i-d')];

  it('exclude: removes the nodes and lists them sorted', () => {
    const s = screenKubernetesNodes(targets, 'exclude');
    expect(s.targets.map((t) => t.instanceId)).toEqual(['i-a', 'i-d']);
    expect(s.nodeIds).toEqual(['i-b', 'i-c']);
    expect(excludedStatus(s)).toEqual([
      expect.objectContaining({ reason: 'KubernetesNode', count: 2, instanceIds: ['i-b', 'i-c'] }),
    ]);
    expect(kubernetesNodesStatus(s)).toBeUndefined();
  });

  it('warn: keeps every target and counts the nodes', () => {
    const s = screenKubernetesNodes(targets, 'warn');
    expect(s.targets.map((t) => t.instanceId)).toEqual(['i-c', 'i-a', 'i-b', 'i-d']);
    expect(excludedStatus(s)).toBeUndefined();
    expect(kubernetesNodesStatus(s)).toEqual({ count: 2, instanceIds: ['i-b', 'i-c'] });
  });

  it('lists at most 10 instance IDs but counts all', () => {
    const many = Array.from({ length: 25 }, (_, i) => target(`i-n${String(i).padStart(2, '0')}`, CLUSTER));
    const ex = excludedStatus(screenKubernetesNodes(many, 'exclude'));
    expect(ex?.[0]?.count).toBe(25);
    expect(ex?.[0]?.instanceIds).toHaveLength(10);
  });

  it('disruptivePolicy opts in only with allowKubernetesNodes: true', () => {
    expect(disruptivePolicy({})).toBe('exclude');
    expect(disruptivePolicy({ allowKubernetesNodes: false })).toBe('exclude');
    expect(disruptivePolicy({ allowKubernetesNodes: true })).toBe('warn');
  });

  it('writeNodeStatus sets, replaces and removes the fields; leaves them without a screen', () => {
    const status: Record<string, unknown> = {};
    writeNodeStatus(status, screenKubernetesNodes(targets, 'exclude'));
    expect(status.excluded).toBeDefined();
    writeNodeStatus(status, undefined); // targets not resolved this reconcile
    expect(status.excluded).toBeDefined();
    writeNodeStatus(status, screenKubernetesNodes(targets, 'warn'));
    expect(status.excluded).toBeUndefined();
    expect(status.kubernetesNodes).toEqual({ count: 2, instanceIds: ['i-b', 'i-c'] });
    writeNodeStatus(status, screenKubernetesNodes([target('i-a')], 'warn'));
    expect(status).toEqual({});
  });
});

describe('noteKubernetesNodes', () => {
  function sink(): EventSink & { seen: Array<{ type: string; reason: string; note: string }> } {
    const seen: Array<{ type: string; reason: string; note: string }> = [];
    return {
      seen,
      event: (_obj, type, reason, _action, note) => {
        seen.push({ type, reason, note: note ?? '' });
        return Promise.resolve();
      },
    } as EventSink & { seen: typeof seen };
  }
  const obj = { apiVersion: 'ecsops.io/v1alpha1', kind: 'PatchPolicy', metadata: { name: 'p', uid: 'u' } };

  it('emits once per change of the node set, never for an unchanged one', () => {
    const ev = sink();
    const status: Record<string, unknown> = {};
    const reconcile = (ts: ResolvedTarget[]) => {
      const s = screenKubernetesNodes(ts, 'exclude');
      noteKubernetesNodes(ev, obj as never, status, s);
      writeNodeStatus(status, s);
    };
    const two = [target('i-a'), target('i-b', CLUSTER), target('i-c', POOL)];
    reconcile(two);
    reconcile(two);
    reconcile(two);
    expect(ev.seen).toHaveLength(1);
    expect(ev.seen[0]).toMatchObject({ type: 'Warning', reason: 'KubernetesNodesExcluded' });
    expect(ev.seen[0]?.note).toContain('i-b, i-c');
    reconcile([...two, target('i-d', CLUSTER)]); // a third node joins
    expect(ev.seen).toHaveLength(2);
    reconcile([target('i-a')]); // none left: nothing to warn about
    expect(ev.seen).toHaveLength(2);
  });

  it('warn policy emits KubernetesNodesTargeted', () => {
    const ev = sink();
    noteKubernetesNodes(ev, obj as never, {}, screenKubernetesNodes([target('i-b', POOL)], 'warn'));
    expect(ev.seen).toEqual([
      expect.objectContaining({ type: 'Warning', reason: 'KubernetesNodesTargeted' }),
    ]);
  });
});

describe('explainNoTargets', () => {
  const noTargets = {
    ready: { status: 'True' as const, reason: 'NoTargets', message: 'no instance matches spec.targets' },
    extra: [{ type: 'Compliant', status: 'Unknown' as const, reason: 'NoTargets', message: 'x' }],
  };
  const excluded = excludedStatus(
    screenKubernetesNodes([target('i-b', CLUSTER), target('i-c', POOL)], 'exclude'),
  );

  it('says the matches are ACK worker nodes when all of them were excluded', () => {
    const v = explainNoTargets(noTargets, excluded);
    expect(v.ready.message).toContain('the 2 matching instance(s) are ACK worker nodes');
    expect(v.extra?.[0]?.message).toContain('spec.allowKubernetesNodes');
  });

  it('leaves other verdicts, and NoTargets without exclusions, unchanged', () => {
    expect(explainNoTargets(noTargets, undefined)).toEqual(noTargets);
    const operating = { ready: { status: 'True' as const, reason: 'Operating', message: 'm' } };
    expect(explainNoTargets(operating, excluded)).toEqual(operating);
  });
});
