/**
 * The `ecsops get ecsextension` view: executions → instances. In-flight executions come first
 * (from status.executions), then the ended ones the instance rows and the retry memory name,
 * newest first; rows naming no execution go to a `no execution` group.
 */
import type { TrackedExecution } from '../api/common.js';
import type { EcsExtension, ExtensionInstanceStatus } from '../api/ecsextension.js';
import {
  byInstanceId,
  driftField,
  executionKeyOf,
  groupNode,
  instanceLeaf,
  pendingKey,
  readinessWord,
  summarizedView,
  trackedByInstance,
} from './common.js';
import { statusOf, truncate, when } from './style.js';
import type { HeaderField, TreeNode, View } from './tree.js';

const SUMMARY_ORDER = ['installed', 'inProgress', 'failed', 'pending', 'unreachable'] as const;

function instanceNode(row: ExtensionInstanceStatus): TreeNode {
  const info: string[] = [];
  if (row.version) info.push(`version ${row.version}`);
  if (row.message) info.push(truncate(row.message, 120));
  return instanceLeaf(row, info);
}

function trackedNode(w: TrackedExecution): TreeNode {
  const info = [w.action];
  if (w.round !== undefined) info.push(`round ${w.round}`);
  if (w.instanceCount !== undefined) info.push(`${w.instanceCount} instance(s)`);
  return {
    icon: '⧉',
    name: w.executionId || '(starting)',
    kind: 'Execution',
    status: statusOf(w.pending ? 'Starting' : 'Running'),
    time: w.startTime,
    info,
    children: [],
  };
}

/** Header lines particular to EcsExtension. */
function extensionFields(obj: EcsExtension, now: Date): HeaderField[] {
  const st = obj.status ?? {};
  const spec = obj.spec ?? ({} as EcsExtension['spec']);
  const version =
    spec.packageVersion ?? `latest${st.resolvedPackageVersion ? ` = ${st.resolvedPackageVersion}` : ''}`;
  const out: HeaderField[] = [
    { label: 'Package', value: `${spec.packageName ?? ''} ${version}` },
    {
      label: 'Mode',
      value: `${spec.mode ?? 'Enforce'}, deletionPolicy ${spec.deletionPolicy ?? 'Orphan'}${spec.suspend ? ', suspended' : ''}`,
    },
  ];
  const drift = driftField(spec, st.stateFreshness, now);
  if (drift) out.push(drift);
  const retry = st.retry;
  if (retry && (retry.failures > 0 || retry.nextRetryTime))
    out.push({
      label: 'Retry',
      value: `${retry.failures} failed round(s) in a row${retry.nextRetryTime ? `; failed instances retried at ${when(retry.nextRetryTime, now)}` : ''}${retry.omitted ? `; ${retry.omitted} more failed instance(s) not remembered` : ''}`,
    });
  return out;
}

/**
 * Nodes for the ended executions the retry memory and the rows name (not `inFlight`), newest
 * first: Failed when the retry memory lists failures of it, else Ended until rows are placed.
 */
function endedExecutionNodes(
  obj: EcsExtension,
  tracked: Map<string, TrackedExecution>,
  inFlight: ReadonlyMap<string, TreeNode>,
): Array<[string, TreeNode]> {
  const st = obj.status ?? {};
  const ended = new Map<string, { time?: string; round?: number; failed: number }>();
  const note = (id: string, time: string | undefined, round?: number, failed = 0): void => {
    const e = ended.get(id) ?? { failed: 0 };
    if (round !== undefined) e.round = round;
    e.failed += failed;
    if (time && (!e.time || time > e.time)) e.time = time;
    ended.set(id, e);
  };
  for (const g of st.retry?.failed ?? [])
    if (g.executionId && !inFlight.has(g.executionId))
      note(g.executionId, g.since, g.round, g.instanceIds.length);
  for (const row of st.instances ?? []) {
    const key = executionKeyOf(row, tracked);
    if (key && !inFlight.has(key)) note(key, row.lastTransitionTime);
  }
  return [...ended.entries()]
    .sort(([, a], [, b]) => ((a.time ?? '') < (b.time ?? '') ? 1 : (a.time ?? '') > (b.time ?? '') ? -1 : 0))
    .map(([id, e]) => [
      id,
      {
        icon: '⧉',
        name: id,
        kind: 'Execution',
        status: statusOf(e.failed > 0 ? 'Failed' : 'Ended'),
        time: e.time,
        info: [
          ...(e.round !== undefined ? [`round ${e.round}`] : []),
          ...(e.failed > 0 ? [`${e.failed} instance(s) failed`] : []),
        ],
        children: [],
      },
    ]);
}

/**
 * The view of an EcsExtension: header (status, package, mode, retry, counts) and the tree
 * executions → instances.
 * @param obj the object as read from the API server (status may be absent).
 * @param now the time ages are computed at.
 */
export function ecsExtensionView(obj: EcsExtension, now: Date): View {
  const st = obj.status ?? {};
  const tracked = trackedByInstance(obj);
  const nodes = new Map<string, TreeNode>();
  for (const w of st.executions ?? []) nodes.set(pendingKey(w), trackedNode(w));
  const ended = endedExecutionNodes(obj, tracked, nodes);
  for (const [id, n] of ended) nodes.set(id, n);
  const others: TreeNode[] = [];
  for (const row of byInstanceId(st.instances ?? [])) {
    const key = executionKeyOf(row, tracked);
    const parent = key ? nodes.get(key) : undefined;
    if (parent) parent.children!.push(instanceNode(row));
    else others.push(instanceNode(row));
  }
  // Failed also when a row it last acted on failed; never Succeeded: the rows show only the
  // instances it was the last to act on, not how the execution ended.
  for (const [, n] of ended)
    if ((n.children ?? []).some((c) => c.status?.text === 'Failed')) n.status = statusOf('Failed');

  return summarizedView(obj, {
    kind: 'EcsExtension',
    word: readinessWord(obj),
    now,
    fields: extensionFields(obj, now),
    order: SUMMARY_ORDER,
    info: [
      `${obj.spec?.packageName ?? ''} ${obj.spec?.packageVersion ?? st.resolvedPackageVersion ?? ''}`.trim(),
    ],
    children: [...nodes.values(), ...(others.length ? [groupNode('no execution', others)] : [])],
  });
}
