/**
 * The `ecsops get patchpolicy` view: window → install → executions → instances, and
 * scan → executions → instances, with compliance counts and snapshots per instance.
 *
 * Instances hang under the execution their row names (the last one that acted on them), inside
 * the operation (last install or last scan) that lists it; rows naming an older execution get
 * their own execution node, rows naming none a `no execution` group.
 *
 * With `spec.analysis`, `status.analysis` (the metric gate between two install executions) is the
 * `Analysis:` header line and an `analysis of execution N` node under the install of that window
 * occurrence, after its executions, one row per metric.
 */
import type { TrackedExecution } from '../api/common.js';
import type { PatchInstanceStatus, PatchOperation, PatchPolicy } from '../api/patchpolicy.js';
import {
  analysisField,
  trafficField,
  analysisNode,
  byInstanceId,
  conditionOf,
  driftField,
  executionKeyOf,
  groupNode,
  instanceLeaf,
  pendingKey,
  readinessWord,
  summarizedView,
  trackedByInstance,
} from './common.js';
import { humanDuration, statusOf, truncate, when } from './style.js';
import type { HeaderField, TreeNode, View } from './tree.js';

const SUMMARY_ORDER = [
  'compliant',
  'nonCompliant',
  'pendingReboot',
  'patching',
  'failed',
  'unscanned',
  'unreachable',
] as const;

/** One instance row: compliance state, patch counts, the newest snapshot, missing patches. */
function instanceNode(row: PatchInstanceStatus, now: Date): TreeNode {
  const info: string[] = [];
  const counts: Array<[number | undefined, string]> = [
    [row.missingCount, 'missing'],
    [row.failedCount, 'failed'],
    [row.pendingRebootCount, 'pending reboot'],
    [row.installedCount, 'installed'],
  ];
  for (const [n, word] of counts) if (n) info.push(`${n} ${word}`);
  const snap = row.snapshots?.[row.snapshots.length - 1];
  if (snap)
    info.push(`snapshot ${snap.snapshotId}${snap.expiresAt ? ` until ${when(snap.expiresAt, now)}` : ''}`);
  const patches = (row.missingPatches ?? []).slice(0, 2);
  if (patches.length > 0 && row.state !== 'Compliant')
    info.push(
      `patches ${patches.map((p) => `${p.kbId ?? p.title}${p.severity ? ` (${p.severity})` : ''}`).join(' / ')}`,
    );
  if (row.message && ['Failed', 'Unreachable', 'Patching'].includes(row.state))
    info.push(truncate(row.message, 120));
  return instanceLeaf(row, info);
}

function operationNode(kind: 'Install' | 'Scan', op: PatchOperation): TreeNode {
  const info: string[] = [];
  if (op.trigger) info.push(op.trigger);
  if (op.instances !== undefined) info.push(`${op.instances} instance(s)`);
  if (op.succeeded) info.push(`${op.succeeded} succeeded`);
  if (op.failed) info.push(`${op.failed} failed`);
  if (op.cancelled) info.push(`${op.cancelled} not patched (window closed)`);
  if (op.cancelRequestedAt) info.push(`cancel sent ${op.cancelRequestedAt}`);
  const took = op.endTime ? Date.parse(op.endTime) - Date.parse(op.startTime) : NaN;
  if (!Number.isNaN(took)) info.push(`took ${humanDuration(took)}`);
  // The message repeats the counts unless the operation failed or was cancelled as a whole.
  if (op.message && (op.result === 'Failed' || op.result === 'Cancelled'))
    info.push(truncate(op.message, 120));
  return {
    icon: '◆',
    name: kind === 'Install' ? 'install' : 'scan',
    kind,
    status: statusOf(op.result),
    time: op.startTime,
    info,
    children: [],
  };
}

interface ExecutionSlot {
  node: TreeNode;
  tracked?: TrackedExecution;
  /** The operation listing it (its result stands for a single-execution operation). */
  op?: PatchOperation;
}

/** Header lines particular to PatchPolicy. */
function policyFields(obj: PatchPolicy, now: Date): HeaderField[] {
  const st = obj.status ?? {};
  const spec = obj.spec ?? ({} as PatchPolicy['spec']);
  const out: HeaderField[] = [];
  const compliant = conditionOf(obj, 'Compliant');
  if (compliant) {
    const word =
      compliant.status === 'True' ? 'Compliant' : compliant.status === 'False' ? 'NonCompliant' : 'Unknown';
    out.push({ label: 'Compliance', status: statusOf(word), value: compliant.message });
  }
  if (spec.scan)
    out.push({
      label: 'Scan',
      value: `${spec.scan.schedule} ${spec.scan.timeZone ?? 'UTC'}${st.nextScan ? `; next ${when(st.nextScan, now)}` : ''}`,
    });
  const install = spec.install;
  if (install) {
    const parts = [
      install.maintenanceWindowRef
        ? `window ${install.maintenanceWindowRef.name}`
        : `window ${install.maintenanceWindow?.schedule ?? ''} for ${install.maintenanceWindow?.duration ?? ''}`,
      install.snapshot?.enabled ? `snapshot kept ${install.snapshot.retentionDays ?? 7}d` : 'no snapshot',
      install.rebootIfNeeded ? 'reboot if needed' : 'no reboot',
      `minRemaining ${install.minRemaining ?? '30m'}`,
    ];
    if (install.cancelAtWindowEnd) parts.push('cancel at window end');
    out.push({ label: 'Install', value: parts.join(', ') });
  }
  const drift = driftField(spec, st.stateFreshness, now);
  if (drift) out.push(drift);
  const gate = st.analysis ? gateOf(st.analysis.runId) : undefined;
  const analysis = analysisField(
    st.analysis,
    gate
      ? `after install execution ${gate.execution} of the window opened at ${gate.opensAt}`
      : `run ${st.analysis?.runId ?? ''}`,
  );
  if (analysis) out.push(analysis);
  const traffic = trafficField(spec.trafficControl, st.trafficControl);
  if (traffic) out.push(traffic);
  if (spec.suspend)
    out.push({ label: 'Suspended', value: 'spec.suspend is true: no scan or install starts' });
  return out;
}

/** The install execution a PatchPolicy analysis runId (`<window opensAt>/execution-<n>`) follows. */
function gateOf(runId: string): { opensAt: string; execution: number } | undefined {
  const m = /^(.+)\/execution-(\d+)$/.exec(runId);
  return m ? { opensAt: m[1]!, execution: Number(m[2]) } : undefined;
}

/**
 * The view of a PatchPolicy: header (status, compliance, schedule, install rules, counts) and
 * the tree window → install → executions → instances, scan → executions → instances.
 * @param obj the object as read from the API server (status may be absent).
 * @param now the time ages and "in 4d" distances are computed at.
 */
export function patchPolicyView(obj: PatchPolicy, now: Date): View {
  const st = obj.status ?? {};
  const tracked = trackedByInstance(obj);
  const slots = new Map<string, ExecutionSlot>();
  const executionNode = (
    key: string,
    w: TrackedExecution | undefined,
    op: PatchOperation | undefined,
  ): ExecutionSlot => {
    const found = slots.get(key);
    if (found) return found;
    const info: string[] = [];
    if (w) info.push(w.action);
    if (w?.instanceCount !== undefined) info.push(`${w.instanceCount} instance(s)`);
    const slot: ExecutionSlot = {
      node: {
        icon: '⧉',
        name: w ? w.executionId || '(starting)' : key,
        kind: 'Execution',
        time: w?.startTime,
        info,
        children: [],
      },
      tracked: w,
      op,
    };
    slots.set(key, slot);
    return slot;
  };

  // Operations and the executions they list (in flight ones first).
  const inFlight = st.executions ?? [];
  const ops: Array<[PatchOperation | undefined, 'install' | 'scan']> = [
    [st.lastInstall, 'install'],
    [st.lastScan, 'scan'],
  ];
  const opNodes = new Map<string, TreeNode>();
  for (const [op, action] of ops) {
    const mine = inFlight.filter((w) => w.action === action);
    if (!op && mine.length === 0) continue;
    const node = op
      ? operationNode(action === 'install' ? 'Install' : 'Scan', op)
      : {
          icon: '◆',
          name: action,
          kind: action === 'install' ? 'Install' : 'Scan',
          status: statusOf('Running'),
          info: [] as string[],
          children: [] as TreeNode[],
        };
    for (const w of mine) node.children!.push(executionNode(pendingKey(w), w, op).node);
    for (const id of op?.executionIds ?? [])
      if (!slots.has(id))
        node.children!.push(
          executionNode(
            id,
            inFlight.find((w) => w.executionId === id),
            op,
          ).node,
        );
    if (op?.executionCount !== undefined && op.executionCount > (op.executionIds?.length ?? 0))
      node.info!.push(`${op.executionCount} executions, ${op.executionIds?.length ?? 0} listed`);
    opNodes.set(action, node);
  }

  // Instances under their execution; older executions get a node of their own.
  const rootExtra: TreeNode[] = [];
  const others: TreeNode[] = [];
  for (const row of byInstanceId(st.instances ?? [])) {
    const node = instanceNode(row, now);
    const key = executionKeyOf(row, tracked);
    if (!key) {
      others.push(node);
      continue;
    }
    let slot = slots.get(key);
    if (!slot) {
      slot = executionNode(key, undefined, undefined);
      rootExtra.push(slot.node);
    }
    slot.node.children!.push(node);
  }
  for (const slot of slots.values()) slot.node.status = statusOf(executionWord(slot));

  const children: TreeNode[] = [];
  const install = opNodes.get('install');
  const a = st.analysis;
  const gate = a ? gateOf(a.runId) : undefined;
  if (a && gate) {
    const node = analysisNode(a, obj.spec?.analysis, `analysis of execution ${gate.execution}`, now);
    if (install && st.lastInstall?.windowOpensAt === gate.opensAt) install.children!.push(node);
    else rootExtra.push(node);
  }
  if (obj.spec?.install || st.window) {
    const w = st.window;
    const info: string[] = [];
    if (w?.open && w.closesAt) info.push(`closes ${when(w.closesAt, now)}`);
    if (!w?.open && w?.nextOpen) info.push(`opens ${when(w.nextOpen, now)}`);
    if (w?.message) info.push(w.message);
    if (!w) info.push('not planned yet');
    const name = w?.name ?? obj.spec?.install?.maintenanceWindowRef?.name;
    children.push({
      icon: '◷',
      name: `window ${name ?? '(inline)'}`,
      kind: name ? 'MaintenanceWindow' : 'Window',
      status: statusOf(w ? (w.open ? 'Open' : 'Closed') : 'Unknown'),
      time: w?.open ? w.opensAt : undefined,
      info,
      children: install ? [install] : [],
    });
  } else if (install) children.push(install);
  const scan = opNodes.get('scan');
  if (scan) children.push(scan);
  children.push(...rootExtra);
  if (others.length) children.push(groupNode('no execution', others));

  return summarizedView(obj, {
    kind: 'PatchPolicy',
    word: readinessWord(obj),
    now,
    fields: policyFields(obj, now),
    order: SUMMARY_ORDER,
    info: st.complianceCheckedAt ? [`compliance read ${st.complianceCheckedAt}`] : [],
    children,
  });
}

/**
 * What to call an execution: Starting / Running while tracked; once ended, the result of the
 * operation when it was the operation's only execution, else Failed when an instance it last
 * acted on failed, else Ended.
 */
function executionWord(slot: ExecutionSlot): string {
  if (slot.tracked) return slot.tracked.pending ? 'Starting' : 'Running';
  const op = slot.op;
  if (op && op.result !== 'Running' && (op.executionCount ?? op.executionIds?.length ?? 0) === 1)
    return op.result;
  if ((slot.node.children ?? []).some((c) => c.status?.text === 'Failed')) return 'Failed';
  return 'Ended';
}
