/**
 * The `ecsops get apprelease` view: revision → batches → instances, plus the rollback of the
 * rollout and the revisions of the history.
 *
 * Instances hang under what last acted on them: a batch when their row's invocation is one of the
 * batch's invoke IDs (or the pending start of that batch), the rollback when it is one of the
 * rollback's, otherwise the revision they run (their ECS tag), otherwise a `no revision` group.
 *
 * With `spec.analysis`, `status.analysis` (the metric gate of the newest finished batch) is the
 * `Analysis:` header line and an `analysis of batch N` node right after that batch, one row per
 * metric.
 */
import type { AppInstanceStatus, AppRelease, BatchStatus, RolloutStatus } from '../api/apprelease.js';
import type { TrackedExecution } from '../api/common.js';
import {
  analysisField,
  trafficField,
  analysisNode,
  byInstanceId,
  executionKeyOf,
  groupNode,
  instanceLeaf,
  lastOutputLine,
  pendingKey,
  readinessWord,
  summarizedView,
  trackedByInstance,
} from './common.js';
import { statusOf, truncate, when } from './style.js';
import type { HeaderField, TreeNode, View } from './tree.js';

const SUMMARY_ORDER = ['updated', 'inProgress', 'failed', 'rolledBack', 'pending', 'unreachable'] as const;

/** One instance row as a node: state, revision, failed step and exit code, last output line. */
function instanceNode(row: AppInstanceStatus): TreeNode {
  const info: string[] = [];
  if (row.revision) info.push(`rev ${row.revision}`);
  const line = lastOutputLine(row.output);
  const step = row.step ? `step ${row.step}${row.exitCode !== undefined ? ` exit ${row.exitCode}` : ''}` : '';
  if (step || line) info.push([step, line ? truncate(line, 120) : ''].filter(Boolean).join(': '));
  else if (row.message) info.push(truncate(row.message, 120));
  return instanceLeaf(row, info);
}

function batchName(b: { index: number }, obj: AppRelease, r: RolloutStatus): string {
  const canary = b.index === 0 && obj.spec?.strategy?.canary !== undefined && !r.enrol;
  return `batch ${b.index}${canary ? ' (canary)' : ''}`;
}

function batchNode(b: BatchStatus, obj: AppRelease, r: RolloutStatus): TreeNode {
  const ids = b.invokeIds.length > 2 ? [b.invokeIds[0], `+${b.invokeIds.length - 1} more`] : b.invokeIds;
  const info = [`${b.size} instance(s)`];
  if (b.failed) info.push(`${b.failed} failed`);
  if (r.retrying && r.retrying.batch === b.index)
    info.push(
      `download retry ${r.retrying.attempt} of ${r.retrying.instanceIds.length} instance(s) ${r.retrying.sent ? 'sent' : `at ${r.retrying.notBefore}`}`,
    );
  info.push(ids.join(' '));
  return {
    icon: '≡',
    name: batchName(b, obj, r),
    kind: 'Batch',
    status: statusOf(b.phase),
    time: b.startTime,
    info,
    children: [],
  };
}

function pauseNode(obj: AppRelease, r: RolloutStatus): TreeNode {
  const reason = r.pauseReason ?? 'spec';
  const canary = obj.spec?.strategy?.canary;
  const how =
    reason === 'canary'
      ? canary?.pauseDuration
        ? `continues by itself ${canary.pauseDuration} after the canary, or when promoted`
        : 'waits to be promoted'
      : reason === 'between'
        ? `pauseBetweenBatches ${obj.spec?.strategy?.pauseBetweenBatches ?? ''}`
        : 'spec.paused is true';
  return {
    icon: '‖',
    name: `pause (${reason})`,
    kind: 'Pause',
    status: statusOf('Paused'),
    time: r.pausedAt,
    info: [how],
  };
}

function rollbackNode(r: RolloutStatus, phase: string | undefined, started: string | undefined): TreeNode {
  const rb = r.rollback!;
  const back = rb.total - rb.remaining.length;
  const word =
    phase === 'RollingBack' || (phase !== 'RolledBack' && rb.remaining.length > 0)
      ? 'RollingBack'
      : 'RolledBack';
  const info = [`${back}/${rb.total} instance(s) back`];
  if (rb.attempt > 1) info.push(`attempt ${rb.attempt}`);
  if (rb.retryAt) info.push(`retry at ${rb.retryAt}`);
  if (rb.invokeIds.length > 0) info.push(rb.invokeIds[rb.invokeIds.length - 1]!);
  return {
    icon: '↺',
    name: `rollback to ${rb.to === 'none' ? 'nothing' : rb.to}`,
    kind: 'Rollback',
    status: statusOf(word),
    time: started,
    info,
    children: [],
  };
}

/** Header lines particular to AppRelease. */
function releaseFields(obj: AppRelease, now: Date): HeaderField[] {
  const st = obj.status ?? {};
  const spec = obj.spec ?? ({} as AppRelease['spec']);
  const out: HeaderField[] = [{ label: 'Application', value: spec.application ?? '' }];
  out.push({
    label: 'Version',
    value: `${spec.version ?? ''}${st.currentRevision ? ` (revision ${st.currentRevision})` : ''}`,
  });
  if (st.stableRevision)
    out.push({ label: 'Stable', value: `${st.stableVersion ?? '?'} (revision ${st.stableRevision})` });
  const s = spec.strategy ?? {};
  const parts: string[] = [];
  if (s.canary)
    parts.push(
      `canary ${s.canary.instances ?? 1}${s.canary.pause === false ? '' : s.canary.pauseDuration ? ` then pause ${s.canary.pauseDuration}` : ' then pause until promoted'}`,
    );
  parts.push(`batches of ${s.batchSize ?? '25%'}`);
  if (s.pauseBetweenBatches) parts.push(`${s.pauseBetweenBatches} between batches`);
  parts.push(`maxErrors ${s.maxErrors ?? 0}`);
  parts.push(spec.rollback?.automatic === false ? 'no automatic rollback' : 'automatic rollback');
  out.push({ label: 'Strategy', value: parts.join(', ') });
  const r = st.rollout;
  if (r && st.phase === 'Paused') {
    const name = obj.metadata?.name ?? '<name>';
    out.push({
      label: 'Paused',
      value: `${r.pauseReason ?? ''}${r.pausedAt ? ` since ${when(r.pausedAt, now)}` : ''}; continue with: kubectl annotate appreleases/${name} ecsops.io/promote-requested-at="$(date +%s)" --overwrite`,
    });
  }
  if (spec.suspend) out.push({ label: 'Suspended', value: 'spec.suspend is true: no batch starts' });
  const gate = st.analysis ? gateOf(st.analysis.runId) : undefined;
  const analysis = analysisField(
    st.analysis,
    gate ? `after batch ${gate.batch} of revision ${gate.revision}` : `run ${st.analysis?.runId ?? ''}`,
  );
  if (analysis) out.push(analysis);
  const traffic = trafficField(spec.trafficControl, st.trafficControl);
  if (traffic) out.push(traffic);
  return out;
}

/** The batch an AppRelease analysis runId (`<revision>/<rollout sequence>/batch-<index>`) gates. */
function gateOf(runId: string): { revision: string; sequence: number; batch: number } | undefined {
  const m = /^([^/]+)\/(\d+)\/batch-(\d+)$/.exec(runId);
  return m ? { revision: m[1]!, sequence: Number(m[2]), batch: Number(m[3]) } : undefined;
}

/** Revision nodes by revision, in drawing order, and the one of the rollout in status. */
interface Revisions {
  nodes: Map<string, TreeNode>;
  rollout: TreeNode | undefined;
  /** Adds a node for a revision no status field names (an instance's tag). */
  add(rev: string, status: string, time: string | undefined, info: string[]): TreeNode;
}

/** The spec's revision, the rollout's, the stable one, then the history's, each once. */
function revisionNodes(obj: AppRelease): Revisions {
  const st = obj.status ?? {};
  const r = st.rollout;
  const history = st.history ?? [];
  const nodes = new Map<string, TreeNode>();
  const add = (rev: string, status: string, time: string | undefined, info: string[]): TreeNode => {
    const node: TreeNode = {
      icon: '#',
      name: `revision ${rev}`,
      kind: 'Revision',
      status: statusOf(status),
      time,
      info,
      children: [],
    };
    nodes.set(rev, node);
    return node;
  };
  const labels = (rev: string): string[] => [
    ...(rev === st.currentRevision ? ['current'] : []),
    ...(rev === st.stableRevision ? ['stable'] : []),
  ];
  const finished = (rev: string) => history.find((h) => h.revision === rev);
  if (st.currentRevision && st.currentRevision !== r?.revision) {
    // The spec names a revision the last rollout was not about: already the stable one (a spec
    // change back to it needs no rollout), or one whose rollout has not started.
    const isStable = st.currentRevision === st.stableRevision;
    add(st.currentRevision, isStable ? (st.phase ?? 'Stable') : 'Pending', undefined, [
      `version ${obj.spec?.version ?? '?'}`,
      ...labels(st.currentRevision),
      ...(isStable ? [] : ['not rolled out yet']),
    ]);
  }
  let rollout: TreeNode | undefined;
  if (r) {
    const current = r.revision === st.currentRevision;
    rollout = add(
      r.revision,
      current ? (st.phase ?? 'Progressing') : (finished(r.revision)?.result ?? 'Superseded'),
      r.startTime,
      [
        `version ${r.version ?? '?'}`,
        ...labels(r.revision),
        ...(r.failed > 0 ? [`${r.failed} failed`] : []),
        ...(current && st.phase === 'Progressing' ? [`next batch ${r.nextBatch}`] : []),
      ],
    );
  }
  if (st.stableRevision && !nodes.has(st.stableRevision))
    add(st.stableRevision, 'Stable', finished(st.stableRevision)?.finished, [
      `version ${st.stableVersion ?? '?'}`,
      ...labels(st.stableRevision),
    ]);
  for (const h of history) {
    if (nodes.has(h.revision)) continue;
    add(h.revision, h.result, h.finished, [
      `version ${h.version ?? '?'}`,
      ...(h.message ? [truncate(h.message, 100)] : []),
    ]);
  }
  return { nodes, rollout, add };
}

/** The rollout's batches and rollback, and which invocation belongs to which. */
class RolloutParts {
  readonly batches = new Map<number, TreeNode>();
  readonly byInvoke = new Map<string, TreeNode>();
  readonly rollback: TreeNode | undefined;

  constructor(
    private readonly obj: AppRelease,
    private readonly r: RolloutStatus | undefined,
  ) {
    if (!r) return;
    for (const b of [...r.batches].sort((a, c) => a.index - c.index)) {
      const node = batchNode(b, obj, r);
      this.batches.set(b.index, node);
      for (const id of b.invokeIds) this.byInvoke.set(id, node);
    }
    if (r.rollback) {
      const started = (obj.status?.executions ?? []).find((w) => w.action === 'rollback')?.startTime;
      this.rollback = rollbackNode(r, obj.status?.phase, started);
      for (const id of r.rollback.invokeIds) this.byInvoke.set(id, this.rollback);
    }
  }

  /** The batch of a deploy start, a `Starting` node when rollout.batches does not list it yet. */
  batchOf(w: TrackedExecution): TreeNode | undefined {
    if (!this.r || w.round === undefined) return undefined;
    const found = this.batches.get(w.round);
    if (found) return found;
    const node: TreeNode = {
      icon: '≡',
      name: batchName({ index: w.round }, this.obj, this.r),
      kind: 'Batch',
      status: statusOf('Starting'),
      time: w.startTime,
      info: [`${w.instanceCount ?? w.instanceIds?.length ?? 0} instance(s)`],
      children: [],
    };
    this.batches.set(w.round, node);
    return node;
  }

  /**
   * Batches by index (the analysis right after the batch it gates), the pause (while paused), the
   * rollback.
   */
  children(now: Date): TreeNode[] {
    const st = this.obj.status ?? {};
    const r = this.r;
    const paused = r && st.phase === 'Paused' && r.revision === st.currentRevision;
    const a = st.analysis;
    const gate = a ? gateOf(a.runId) : undefined;
    const gated =
      a && gate && r?.revision === gate.revision && r.sequence === gate.sequence ? gate : undefined;
    return [
      ...[...this.batches.entries()]
        .sort((x, y) => x[0] - y[0])
        .flatMap(([index, n]) =>
          gated && a && index === gated.batch
            ? [n, analysisNode(a, this.obj.spec?.analysis, `analysis of batch ${index}`, now)]
            : [n],
        ),
      ...(paused ? [pauseNode(this.obj, r)] : []),
      ...(this.rollback ? [this.rollback] : []),
    ];
  }
}

/**
 * The view of an AppRelease: header (status, versions, strategy, counts) and the tree
 * revision → batches → instances (with the rollback, the pause and older revisions).
 * @param obj the object as read from the API server (status may be absent).
 * @param now the time ages are computed at.
 */
export function appReleaseView(obj: AppRelease, now: Date): View {
  const st = obj.status ?? {};
  const revisions = revisionNodes(obj);
  const parts = new RolloutParts(obj, st.rollout);
  const tracked = trackedByInstance(obj);
  const trackedByKey = new Map((st.executions ?? []).map((w) => [pendingKey(w), w]));

  // Each row under what last acted on it, else under the revision it runs.
  const others: TreeNode[] = [];
  const extra = new Map<string, TreeNode>();
  for (const row of byInstanceId(st.instances ?? [])) {
    const key = executionKeyOf(row, tracked);
    const w = key ? trackedByKey.get(key) : undefined;
    let parent = key ? parts.byInvoke.get(key) : undefined;
    if (!parent && w?.action === 'deploy') parent = parts.batchOf(w);
    if (!parent && w?.action === 'rollback') parent = parts.rollback;
    if (!parent && w && key) {
      // Work of another kind (uninstall on delete): one node per tracked invocation.
      parent = extra.get(key) ?? {
        icon: '⧉',
        name: w.executionId || '(starting)',
        kind: 'Invocation',
        status: statusOf(w.pending ? 'Starting' : 'Running'),
        time: w.startTime,
        info: [w.action],
        children: [],
      };
      extra.set(key, parent);
    }
    if (!parent && row.revision)
      parent =
        revisions.nodes.get(row.revision) ??
        revisions.add(row.revision, 'Unknown', undefined, ['not in status history']);
    if (parent) parent.children!.push(instanceNode(row));
    else others.push(instanceNode(row));
  }
  if (revisions.rollout)
    revisions.rollout.children = [...parts.children(now), ...(revisions.rollout.children ?? [])];

  return summarizedView(obj, {
    kind: 'AppRelease',
    word: st.phase ?? readinessWord(obj),
    now,
    fields: releaseFields(obj, now),
    order: SUMMARY_ORDER,
    info: [`version ${obj.spec?.version ?? '?'}`],
    children: [
      ...revisions.nodes.values(),
      ...extra.values(),
      ...(others.length ? [groupNode('no revision', others)] : []),
    ],
  });
}
