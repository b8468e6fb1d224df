/**
 * Kubernetes worker nodes among resolved targets (issue 21 item 5), one copy for every kind.
 *
 * Container Service for Kubernetes (ACK) tags the ECS instances of its worker nodes with
 * `ack.aliyun.com` = cluster ID and `ack.alibabacloud.com/nodepool-id` = node pool ID (see
 * docs/deploy.md "ACK worker nodes" for the sources). A reboot or an application deployed by
 * ecsops on such an instance bypasses the cluster's drain, so kinds doing disruptive work
 * (PatchPolicy installs and reboots, AppRelease) exclude them unless `spec.allowKubernetesNodes`
 * is true; EcsExtension (agents are legitimately installed on nodes) keeps them and only warns.
 * Pure except {@link noteKubernetesNodes}, which emits one Event per change of the node set.
 */
import type { ExcludedTargets, KubernetesNodesStatus } from '../../api/common.js';
import { KubernetesNodeReason, NoTargetsReason } from '../../api/conditions.js';
import {
  KubernetesNodesExcludedEvent,
  KubernetesNodesTargetedEvent,
  ReconcileAction,
} from '../../api/events.js';
import type { Tag } from '../../cloud/index.js';
import type { Verdict } from './conditions.js';
import type { EventSink } from './deps.js';
import type { ResolvedTarget } from './targets.js';
import { listIds } from './targets.js';

/**
 * ECS tag keys ACK puts on the instances of its worker nodes: the cluster ID and the node pool
 * ID. Either one marks an instance as a node. (Auto Scaling's `acs:autoscaling:scalingGroupId`
 * is not ACK-specific and is not used.)
 */
export const ACK_NODE_TAG_KEYS: readonly string[] = ['ack.aliyun.com', 'ack.alibabacloud.com/nodepool-id'];

/** Instance IDs kept in status next to a count. */
export const MAX_LISTED_NODE_IDS = 10;

/**
 * The ACK tag that marks `instance` as a Kubernetes worker node, or undefined.
 * @param instance anything with ECS `tags` (as DescribeInstances returns them).
 */
function kubernetesNodeTag(instance: { tags?: readonly Tag[] }): Tag | undefined {
  return instance.tags?.find((t) => ACK_NODE_TAG_KEYS.includes(t.key));
}

/** True when `instance` carries a tag ACK puts on its worker nodes ({@link ACK_NODE_TAG_KEYS}). */
export function isKubernetesNode(instance: { tags?: readonly Tag[] }): boolean {
  return kubernetesNodeTag(instance) !== undefined;
}

/**
 * What a kind does with targets that are Kubernetes worker nodes: `exclude` them from all of its
 * work (PatchPolicy, AppRelease without `spec.allowKubernetesNodes`), or `warn` and keep them
 * (EcsExtension; and the disruptive kinds when the spec opts in).
 */
export type KubernetesNodePolicy = 'exclude' | 'warn';

/** The outcome of {@link screenKubernetesNodes}. */
export interface NodeScreen {
  /** The targets the kind works on (nodes removed under `exclude`). */
  targets: ResolvedTarget[];
  /** Instance IDs of the targets that are Kubernetes nodes, sorted (excluded or kept). */
  nodeIds: string[];
  policy: KubernetesNodePolicy;
}

/**
 * Splits resolved targets by {@link isKubernetesNode}: under `exclude` the nodes are removed,
 * under `warn` they stay; both report them in `nodeIds`.
 */
export function screenKubernetesNodes(
  targets: readonly ResolvedTarget[],
  policy: KubernetesNodePolicy,
): NodeScreen {
  const nodeIds = targets
    .filter((t) => isKubernetesNode(t.instance))
    .map((t) => t.instanceId)
    .sort();
  if (policy === 'warn' || nodeIds.length === 0) return { targets: [...targets], nodeIds, policy };
  const nodes = new Set(nodeIds);
  return { targets: targets.filter((t) => !nodes.has(t.instanceId)), nodeIds, policy };
}

/** The policy of a kind that does disruptive work: `exclude` unless the spec opts in. */
export function disruptivePolicy(spec: { allowKubernetesNodes?: boolean }): KubernetesNodePolicy {
  return spec.allowKubernetesNodes === true ? 'warn' : 'exclude';
}

/**
 * `status.excluded` of the disruptive kinds: one group per reason (today only `KubernetesNode`),
 * with the count and the first {@link MAX_LISTED_NODE_IDS} instance IDs; undefined when nothing
 * is excluded (the field is then removed).
 */
export function excludedStatus(screen: NodeScreen): ExcludedTargets | undefined {
  if (screen.policy !== 'exclude' || screen.nodeIds.length === 0) return undefined;
  return [
    {
      reason: KubernetesNodeReason,
      count: screen.nodeIds.length,
      instanceIds: screen.nodeIds.slice(0, MAX_LISTED_NODE_IDS),
      message:
        'ACK worker node (tag ack.aliyun.com or ack.alibabacloud.com/nodepool-id): not acted on; set spec.allowKubernetesNodes to true to include it',
    },
  ];
}

/**
 * `status.kubernetesNodes`: the targets that are Kubernetes nodes and ARE acted on (EcsExtension,
 * or a disruptive kind that opted in); undefined when there are none.
 */
export function kubernetesNodesStatus(screen: NodeScreen): KubernetesNodesStatus | undefined {
  if (screen.policy !== 'warn' || screen.nodeIds.length === 0) return undefined;
  return { count: screen.nodeIds.length, instanceIds: screen.nodeIds.slice(0, MAX_LISTED_NODE_IDS) };
}

/** The node set a status records (excluded or kept), as `count:id,id,...` for comparison. */
function recordedKey(status: {
  excluded?: ExcludedTargets;
  kubernetesNodes?: KubernetesNodesStatus;
}): string {
  const ex = status.excluded?.find((g) => g.reason === KubernetesNodeReason);
  const kept = status.kubernetesNodes;
  const at = ex ? `x${ex.count}:${ex.instanceIds.join(',')}` : '';
  const warn = kept ? `w${kept.count}:${kept.instanceIds.join(',')}` : '';
  return `${at}|${warn}`;
}

/**
 * Emits one Warning Event when the Kubernetes nodes among the targets differ from what the
 * previous status records (`status.excluded` / `status.kubernetesNodes`): `KubernetesNodesExcluded`
 * under `exclude`, `KubernetesNodesTargeted` under `warn`. Nothing when the set is unchanged (not
 * once per reconcile) or empty.
 * @param previous the object's stored status.
 */
export function noteKubernetesNodes(
  events: EventSink,
  obj: Parameters<EventSink['event']>[0],
  previous: { excluded?: ExcludedTargets; kubernetesNodes?: KubernetesNodesStatus } | undefined,
  screen: NodeScreen,
): void {
  if (screen.nodeIds.length === 0) return;
  const next: { excluded?: ExcludedTargets; kubernetesNodes?: KubernetesNodesStatus } = {};
  writeNodeStatus(next, screen);
  if (recordedKey(previous ?? {}) === recordedKey(next)) return;
  const ids = listIds(screen.nodeIds);
  if (screen.policy === 'exclude') {
    void events.event(
      obj,
      'Warning',
      KubernetesNodesExcludedEvent,
      ReconcileAction,
      `${screen.nodeIds.length} targeted instance(s) are ACK worker nodes and are excluded: ${ids}. Set spec.allowKubernetesNodes to true to act on them (drain them first).`,
    );
  } else {
    void events.event(
      obj,
      'Warning',
      KubernetesNodesTargetedEvent,
      ReconcileAction,
      `${screen.nodeIds.length} targeted instance(s) are ACK worker nodes: ${ids}`,
    );
  }
}

/**
 * Writes `status.excluded` and `status.kubernetesNodes` from this reconcile's screen (each removed
 * when empty); leaves both as they were when targets were not resolved (`screen` undefined).
 */
export function writeNodeStatus(
  status: { excluded?: ExcludedTargets; kubernetesNodes?: KubernetesNodesStatus },
  screen: NodeScreen | undefined,
): void {
  if (!screen) return;
  const ex = excludedStatus(screen);
  if (ex) status.excluded = ex;
  else delete status.excluded;
  const kept = kubernetesNodesStatus(screen);
  if (kept) status.kubernetesNodes = kept;
  else delete status.kubernetesNodes;
}

/**
 * Adds to a `NoTargets` verdict (Ready and extra conditions) why nothing is targeted when every
 * match was excluded as a Kubernetes node: `no instance matches spec.targets` alone would be wrong.
 * Other verdicts are returned unchanged.
 */
export function explainNoTargets<V extends Verdict>(verdict: V, excluded: ExcludedTargets | undefined): V {
  const n = excluded?.find((g) => g.reason === KubernetesNodeReason)?.count ?? 0;
  if (n === 0) return verdict;
  const note = `: the ${n} matching instance(s) are ACK worker nodes, excluded unless spec.allowKubernetesNodes is true`;
  const fix = <C extends { reason: string; message: string }>(c: C): C =>
    c.reason === NoTargetsReason ? { ...c, message: `no instance to act on${note}` } : c;
  return {
    ...verdict,
    ready: fix(verdict.ready),
    ...(verdict.extra ? { extra: verdict.extra.map(fix) } : {}),
  };
}
