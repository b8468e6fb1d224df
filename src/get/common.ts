/**
 * Pieces every kind's view shares: the header lines about the object itself (status from its
 * conditions, observed generation, deletion, summary counts) and the grouping of per-instance
 * status rows under the executions that last acted on them.
 */
import type { AnalysisSpec, AnalysisStatus, MetricStatus } from '../api/analysis.js';
import type {
  Condition,
  DriftDetectionMode,
  ObjectMeta,
  StateFreshness,
  TrackedExecution,
} from '../api/common.js';
import { humanDuration, statusOf, when, type Status } from './style.js';
import type { HeaderField, TreeNode, View } from './tree.js';
import {
  DEFAULT_DRAIN_SECONDS,
  DEFAULT_MAX_DRAINED,
  type TrafficControlSpec,
  type TrafficControlStatus,
} from '../api/traffic.js';

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

/** True once an analysis ended (its verdict is final). */
const analysisEnded = (a: AnalysisStatus): boolean => a.phase === 'Successful' || a.phase === 'Failed';

/**
 * The `Analysis:` header line of a kind with `spec.analysis` (AppRelease, PatchPolicy), from
 * `status.analysis`: its phase, what it gates (`run`, e.g. `after batch 1 of revision
 * 6b441aee7925`) and its message — the failure (metric, rendered query, measured value,
 * condition) when Failed, the per-metric progress otherwise. Absent without `status.analysis`.
 */
export function analysisField(a: AnalysisStatus | undefined, run: string): HeaderField | undefined {
  if (!a) return undefined;
  const message = (a.message ?? '').replace(/^analysis (Running|Inconclusive|Successful|Failed): /, '');
  return { label: 'Analysis', status: statusOf(a.phase), value: message ? `${run}: ${message}` : run };
}

/** A metric's word: Failed (it failed the run), Successful (done), Ended, Pending, Inconclusive, Running. */
function metricWord(a: AnalysisStatus, row: MetricStatus): string {
  if (a.phase === 'Failed' && a.failure?.metric === row.name) return 'Failed';
  if (row.measurements > 0 && row.nextAt === undefined) return 'Successful'; // took its `count`
  if (analysisEnded(a)) return 'Ended'; // another metric decided the run first
  if (row.measurements === 0) return 'Pending';
  return row.lastOutcome === 'Inconclusive' ? 'Inconclusive' : 'Running';
}

/** One metric of a run: counts, limits, the last value (or why it was inconclusive), when next. */
function metricNode(
  a: AnalysisStatus,
  row: MetricStatus,
  spec: AnalysisSpec['metrics'][number] | undefined,
  now: Date,
): TreeNode {
  const limits = [
    `count ${spec?.count ?? 1}`,
    ...(spec?.failureLimit ? [`failureLimit ${spec.failureLimit}`] : []),
    ...(spec?.inconclusiveLimit ? [`inconclusiveLimit ${spec.inconclusiveLimit}`] : []),
  ];
  const info = [
    `${row.measurements} measurement(s) (${row.successes} successful, ${row.failures} failed, ${row.inconclusives} inconclusive; ${limits.join(', ')})`,
  ];
  if (row.lastOutcome === 'Inconclusive' && row.lastError) info.push(`last inconclusive: ${row.lastError}`);
  else if (row.lastValue !== undefined) info.push(`last ${row.lastValue}`);
  const next = row.nextAt ? Date.parse(row.nextAt) : NaN;
  if (!analysisEnded(a) && !Number.isNaN(next))
    info.push(next > now.getTime() ? `next in ${humanDuration(next - now.getTime())}` : 'next due');
  return { icon: '∿', name: row.name, kind: 'Metric', status: statusOf(metricWord(a, row)), info };
}

/**
 * The node of `status.analysis` (the gate of one batch or install execution), named `name`, with
 * one child per metric: measurements, successes, failures, inconclusives, the last value or error
 * and when the next measurement is due; `spec` supplies each metric's count and limits.
 */
export function analysisNode(
  a: AnalysisStatus,
  spec: AnalysisSpec | undefined,
  name: string,
  now: Date,
): TreeNode {
  const info: string[] = [];
  const bake = a.bakeUntil ? Date.parse(a.bakeUntil) : NaN;
  if (!analysisEnded(a) && bake > now.getTime()) info.push(`baking until ${when(a.bakeUntil ?? '', now)}`);
  const took = a.finishedAt ? Date.parse(a.finishedAt) - Date.parse(a.startedAt) : NaN;
  if (!Number.isNaN(took)) info.push(`took ${humanDuration(took)}`);
  if (a.failure) info.push(`${a.failure.metric}: ${a.failure.condition}`);
  const specOf = new Map((spec?.metrics ?? []).map((m) => [m.name, m]));
  return {
    icon: 'α',
    name,
    kind: 'Analysis',
    status: statusOf(a.phase),
    time: a.startedAt,
    info,
    children: a.metrics.map((row) => metricNode(a, row, specOf.get(row.name), now)),
  };
}

/**
 * The `Traffic:` header line of a kind with `spec.trafficControl` (AppRelease, PatchPolicy): the
 * server groups and drain settings, then the backends `status.trafficControl.backends` holds out of
 * rotation (`rsp-1 i-1:8080 weight 50`), at most 5 named. Absent without either.
 */
export function trafficField(
  spec: TrafficControlSpec | undefined,
  st: TrafficControlStatus | undefined,
): HeaderField | undefined {
  const out = st?.backends ?? [];
  if (!spec && out.length === 0) return undefined;
  const groups = (spec?.serverGroups ?? []).map((g) => `${g.type} ${g.serverGroupId}`).join(', ');
  const settings = spec
    ? `${groups}; drain ${spec.drainSeconds ?? DEFAULT_DRAIN_SECONDS}s, maxDrained ${spec.maxDrained ?? DEFAULT_MAX_DRAINED}`
    : 'spec.trafficControl removed';
  const held =
    out.length === 0
      ? 'nothing out of rotation'
      : `${out.length} backend(s) out of rotation: ${out
          .slice(0, 5)
          .map((b) => `${b.serverGroupId} ${b.instanceId}:${b.port} weight ${b.weight}`)
          .join(', ')}${out.length > 5 ? ', …' : ''}`;
  return {
    label: 'Traffic',
    ...(out.length > 0 ? { status: statusOf('Progressing') } : {}),
    value: `${settings}; ${held}`,
  };
}
