/**
 * Pieces every kind's view shares: the header lines about the object itself (status from its
 * conditions, observed generation, deletion, summary counts) and the grouping of per-instance
 * status rows under the executions that last acted on them.
 */
import type {
  Condition,
  DriftDetectionMode,
  ObjectMeta,
  StateFreshness,
  TrackedExecution,
} from '../api/common.js';
import { statusOf, when, type Status } from './style.js';
import type { HeaderField, TreeNode, View } from './tree.js';

/** The fields of an ecsops object the shared helpers read (raw JSON from the API server). */
export interface AnyObject {
  kind?: string;
  metadata?: ObjectMeta;
  spec?: unknown;
  status?: {
    observedGeneration?: number;
    conditions?: Condition[];
    executions?: TrackedExecution[];
    summary?: Record<string, number>;
    instances?: Array<{ instanceId: string }>;
  };
}

/**
 * The `Drift:` line of the kinds with `spec.driftDetection` (EcsExtension, PatchPolicy): the mode
 * and, from `status.stateFreshness` recorded for that mode, since when every target's state was
 * read one by one. Absent when neither the spec nor the status says anything (objects written
 * before the field existed).
 */
export function driftField(
  spec: { driftDetection?: DriftDetectionMode } | undefined,
  freshness: StateFreshness | undefined,
  now: Date,
): HeaderField | undefined {
  const mode = spec?.driftDetection ?? freshness?.driftDetection;
  if (!mode) return undefined;
  const since =
    freshness?.driftDetection === mode && freshness.lastFullResyncTime
      ? `; every target re-read one by one since ${when(freshness.lastFullResyncTime, now)}`
      : '';
  return { label: 'Drift', value: `${mode}${since}` };
}

/** The condition of `type`, if present. */
export function conditionOf(obj: AnyObject, type: string): Condition | undefined {
  return obj.status?.conditions?.find((c) => c.type === type);
}

/**
 * One word for where the object stands, from its kstatus conditions: `Stalled`, `Reconciling`
 * (shown as Progressing), `Ready`, `NotReady`, or `Unknown` before the first reconcile.
 */
export function readinessWord(obj: AnyObject): string {
  if (obj.metadata?.deletionTimestamp) return 'Deleting';
  if (conditionOf(obj, 'Stalled')?.status === 'True') return 'Stalled';
  if (conditionOf(obj, 'Reconciling')?.status === 'True') return 'Progressing';
  const ready = conditionOf(obj, 'Ready');
  if (ready?.status === 'True') return 'Ready';
  if (ready?.status === 'False') return 'NotReady';
  return 'Unknown';
}

/** `Status:` and `Message:` lines from the Ready (or Stalled) condition, `word` first. */
export function statusFields(obj: AnyObject, word: string): HeaderField[] {
  const stalled = conditionOf(obj, 'Stalled');
  const ready = conditionOf(obj, 'Ready');
  const shown = stalled?.status === 'True' ? stalled : ready;
  const status: Status = statusOf(word);
  const reason = shown?.reason && shown.reason !== word ? `(${shown.reason})` : '';
  const out: HeaderField[] = [{ label: 'Status', status, value: reason }];
  if (shown?.message) out.push({ label: 'Message', value: shown.message });
  return out;
}

/** `Name`, `Namespace`, `Kind`, and the lines about generation and deletion when they apply. */
export function identityFields(obj: AnyObject, kind: string, now: Date): HeaderField[] {
  const m = obj.metadata ?? {};
  const out: HeaderField[] = [
    { label: 'Name', value: m.name ?? '' },
    { label: 'Namespace', value: m.namespace ?? '' },
    { label: 'Kind', value: kind },
  ];
  if (m.deletionTimestamp)
    out.push({
      label: 'Deleting',
      value: `since ${when(String(m.deletionTimestamp), now)}; finalizers: ${(m.finalizers ?? []).join(', ') || 'none'}`,
    });
  const observed = obj.status?.observedGeneration;
  if (m.generation !== undefined && observed !== m.generation)
    out.push({
      label: 'Observed',
      value: !observed // absent, or 0 as the CRD's status default writes it
        ? `not yet reconciled (generation ${m.generation})`
        : `generation ${observed} of ${m.generation}: the controller has not finished the latest spec yet`,
    });
  return out;
}

const WORDS: Record<string, string> = {
  inProgress: 'in progress',
  rolledBack: 'rolled back',
  nonCompliant: 'non-compliant',
  pendingReboot: 'pending reboot',
};

/**
 * `6 targeted: 4 updated, 2 unreachable` from a status summary (counts over every instance),
 * listing the non-zero counts in `order`; plus how many rows the bounded status shows.
 */
export function summaryField(obj: AnyObject, order: readonly string[]): HeaderField | undefined {
  const s = obj.status?.summary;
  if (!s) return undefined;
  const parts = order.filter((k) => (s[k] ?? 0) > 0).map((k) => `${s[k]} ${WORDS[k] ?? k}`);
  const shown = obj.status?.instances?.length ?? 0;
  const rows = shown < (s.targeted ?? 0) ? ` (${shown} shown: failed and in progress first)` : '';
  return {
    label: 'Instances',
    value: `${s.targeted ?? 0} targeted${parts.length ? `: ${parts.join(', ')}` : ''}${rows}`,
  };
}

/** The tracked execution each instance of a pending start belongs to (pending rows say `pending`). */
export function trackedByInstance(obj: AnyObject): Map<string, TrackedExecution> {
  const out = new Map<string, TrackedExecution>();
  for (const w of obj.status?.executions ?? []) for (const id of w.instanceIds ?? []) out.set(id, w);
  return out;
}

/**
 * The execution a status row belongs to: its `executionId`, or for a row that says `pending`
 * the tracked start that lists it (keyed `pending:<clientToken>`).
 */
export function executionKeyOf(
  row: { instanceId: string; executionId?: string },
  tracked: Map<string, TrackedExecution>,
): string | undefined {
  const w = tracked.get(row.instanceId);
  if (row.executionId === 'pending' || (w?.pending && !row.executionId)) return w ? pendingKey(w) : undefined;
  return row.executionId || undefined;
}

/** The key of a tracked execution: its ID, or `pending:<clientToken>` before the cloud answered. */
export function pendingKey(w: TrackedExecution): string {
  return w.executionId ? w.executionId : `pending:${w.clientToken}`;
}

/** Rows sorted by instance ID (stable order while watching; the status order moves with states). */
export function byInstanceId<T extends { instanceId: string }>(rows: readonly T[]): T[] {
  return [...rows].sort((a, b) => (a.instanceId < b.instanceId ? -1 : a.instanceId > b.instanceId ? 1 : 0));
}

/** A group node for instances no execution or revision claims. */
export function groupNode(name: string, children: TreeNode[]): TreeNode {
  return { icon: '○', name, kind: 'Group', info: [`${children.length} instance(s)`], children };
}

/** The last line worth showing of a command's output (wrapper step markers and log headers skipped). */
export function lastOutputLine(output: string | undefined): string | undefined {
  if (!output) return undefined;
  const lines = output.split(/\r?\n/).map((l) => l.trim());
  for (let i = lines.length - 1; i >= 0; i--) {
    const l = lines[i] ?? '';
    if (!l || /^ecsops-(step|result) /.test(l) || /^--- .* ---$/.test(l) || /^=== .* ===$/.test(l)) continue;
    return l;
  }
  return undefined;
}

/**
 * The view of a resource that has a status summary: the header (identity, readiness as `word`,
 * the kind's own `fields`, then the summary counts in `order`) and the root node named after the
 * object, with `info` and `children` under it.
 */
export function summarizedView(
  obj: AnyObject,
  o: {
    kind: string;
    word: string;
    now: Date;
    fields: HeaderField[];
    order: readonly string[];
    info: string[];
    children: TreeNode[];
  },
): View {
  const header: HeaderField[] = [
    ...identityFields(obj, o.kind, o.now),
    ...statusFields(obj, o.word),
    ...o.fields,
  ];
  const counts = summaryField(obj, o.order);
  if (counts) header.push(counts);
  const created = obj.metadata?.creationTimestamp;
  return {
    header,
    tree: {
      name: obj.metadata?.name ?? '',
      kind: o.kind,
      status: statusOf(o.word),
      time: created ? String(created) : undefined,
      info: o.info,
      children: o.children,
    },
  };
}

/** The leaf of one instance's status row: its ID, state and last transition, with `info` lines. */
export function instanceLeaf(
  row: { instanceId: string; state: string; lastTransitionTime?: string },
  info: string[],
): TreeNode {
  return {
    icon: '□',
    name: row.instanceId,
    kind: 'Instance',
    status: statusOf(row.state),
    time: row.lastTransitionTime,
    info,
  };
}
