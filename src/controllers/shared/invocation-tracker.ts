/**
 * {@link WorkTracker} over ECS Cloud Assistant invocations (DESIGN §1 AppRelease, §3): `RunCommand`
 * per batch of at most 100 instances with a deterministic ClientToken and owner tags,
 * `DescribeInvocations` by owner tag to adopt, `DescribeInvocations` by invoke ID (with output) to
 * poll, `StopInvocation` to cancel.
 */
import { OWNER_UID_TAG } from '../../api/common.js';
import type { CommandType, EcsApi, Invocation, InvokeInstance, Tag } from '../../cloud/types.js';
import { toMetaTime } from '../../runtime/conditions.js';
import { sanitizeText } from '../../runtime/sanitize.js';
import { toReconcileError } from './cloud-errors.js';
import type { ControllerMetrics, EventSink, Resource } from './deps.js';
import { ownerTags, RUN_COMMAND_BATCH_SIZE } from './execution.js';
import {
  ownerOf,
  type FinishedWork,
  type InstanceOutcome,
  type PollResult,
  reportFinished,
  type StartReporting,
  type WorkItem,
  type WorkTracker,
} from './work.js';

/** Overall invocation statuses after which Cloud Assistant does no further work. */
export const TERMINAL_INVOCATION_STATUSES: readonly string[] = [
  'Success',
  'Failed',
  'PartialFailed',
  'Stopped',
];

/** The command of one batch. */
export interface CommandSpec {
  type: CommandType;
  commandContent: string;
  /** Seconds. */
  timeoutSeconds: number;
  username?: string;
  workingDir?: string;
  /** Cloud Assistant custom parameters (`{{name}}`); sent with `EnableParameter=true`. */
  parameters?: Record<string, string>;
  /** What a timeout or StopInvocation kills (default `Process`). */
  terminationMode?: 'Process' | 'ProcessTree';
}

/** Options of {@link InvocationTracker}. */
export interface InvocationTrackerOptions {
  /** ECS client of the resource's region (bound to the reconcile's abort signal). */
  ecs: EcsApi;
  /** Metric `template` label, e.g. `RunCommand:apprelease`. */
  metricLabel: string;
  command(batch: readonly string[], action: string): CommandSpec;
  events: EventSink;
  metrics: ControllerMetrics;
  /** Characters of output kept per instance (tail). Default 1024. */
  outputTail?: number;
  /**
   * Redacts a kind's own secrets (e.g. env values) from the WHOLE output before the tail is cut;
   * default: the credential sanitizer only.
   */
  redact?: (text: string) => string;
  /**
   * Owner UIDs whose adoption listing found nothing in this process (shared across reconciles):
   * an unforced `adopt` of such an owner lists nothing. Every start records its intent first, so
   * after one empty listing untracked work can only come from a dropped intent (a forced adopt)
   * or another process (a restart, which starts with an empty set). Absent: list every time.
   */
  adoptionChecked?: Set<string>;
}

/**
 * Per-instance outcome of a finished invocation. The output is redacted as a whole (`redact`,
 * default the credential sanitizer) and only then cut to its last `tail` characters: a value or a
 * `password=` prefix the cut would split is still recognised.
 */
export function invocationOutcome(
  inst: InvokeInstance,
  tail = 1024,
  redact: (text: string) => string = sanitizeText,
): InstanceOutcome {
  const ok = inst.invocationStatus === 'Success' && (inst.exitCode ?? 0) === 0;
  const output = inst.output !== undefined ? redact(inst.output).slice(-tail) : undefined;
  const out: InstanceOutcome = { instanceId: inst.instanceId, ok };
  if (inst.exitCode !== undefined && inst.exitCode !== null) out.exitCode = inst.exitCode;
  if (output !== undefined) out.output = output;
  if (!ok) {
    const why =
      inst.errorInfo ||
      (inst.exitCode !== undefined && inst.exitCode !== null
        ? `${inst.invocationStatus}: exit code ${inst.exitCode}`
        : inst.invocationStatus);
    out.message = redact(why).slice(0, 512);
  }
  return out;
}

export class InvocationTracker implements WorkTracker {
  readonly batchSize = RUN_COMMAND_BATCH_SIZE;

  constructor(private readonly opts: InvocationTrackerOptions) {}

  /** ECS `RunCommand` of one batch with its ClientToken and the owner tags. */
  async send(owner: Resource, item: WorkItem): Promise<string> {
    const o = ownerOf(owner);
    const tags: Tag[] = Object.entries(ownerTags(o.kind, o.namespace, o.name, o.uid)).map(([key, value]) => ({
      key,
      value,
    }));
    const cmd = this.opts.command(item.instanceIds, item.action);
    try {
      const { invokeId } = await this.opts.ecs.runCommand({
        type: cmd.type,
        commandContent: cmd.commandContent,
        instanceIds: item.instanceIds,
        timeoutSeconds: cmd.timeoutSeconds,
        clientToken: item.clientToken,
        name: `ecsops-${o.kind.toLowerCase()}-${item.action}`.slice(0, 128),
        description: `ecsops ${o.kind} ${o.namespace}/${o.name} ${item.action}`,
        tags,
        ...(cmd.username ? { username: cmd.username } : {}),
        ...(cmd.workingDir ? { workingDir: cmd.workingDir } : {}),
        ...(cmd.parameters ? { enableParameter: true, parameters: cmd.parameters } : {}),
        ...(cmd.terminationMode ? { terminationMode: cmd.terminationMode } : {}),
      });
      return invokeId;
    } catch (err) {
      throw toReconcileError(err, 'ECS RunCommand');
    }
  }

  get reporting(): StartReporting {
    const { metrics, events, metricLabel } = this.opts;
    return { metrics, events, metricLabel, noun: 'Cloud Assistant invocation' };
  }

  async adopt(
    owner: Resource,
    known: ReadonlySet<string>,
    now: Date,
    opts: { force?: boolean } = {},
  ): Promise<WorkItem[]> {
    const uid = owner.metadata.uid ?? '';
    const checked = this.opts.adoptionChecked;
    if (!opts.force && checked?.has(uid)) return [];
    let listed: Invocation[];
    try {
      listed = await this.opts.ecs.describeInvocations({
        tags: [{ key: OWNER_UID_TAG, value: uid }],
      });
    } catch (err) {
      throw toReconcileError(err, 'ECS DescribeInvocations');
    }
    const adopted = listed
      .filter(
        (inv) => !known.has(inv.invokeId) && !TERMINAL_INVOCATION_STATUSES.includes(inv.invocationStatus),
      )
      .map((inv) => ({
        executionId: inv.invokeId,
        action: actionOf(inv),
        instanceIds: inv.instances.map((i) => i.instanceId),
        clientToken: '',
        startTime: inv.creationTime ?? toMetaTime(now),
      }));
    // Only a listing that found nothing is remembered: adopted work must reach status first.
    if (adopted.length === 0) checked?.add(uid);
    else checked?.delete(uid);
    return adopted;
  }

  async poll(owner: Resource, items: readonly WorkItem[]): Promise<PollResult> {
    let listed: Array<Invocation | undefined>;
    try {
      listed = await Promise.all(
        items.map(async (w) => {
          const found = await this.opts.ecs.describeInvocations({
            invokeId: w.executionId,
            includeOutput: true,
          });
          return found.find((inv) => inv.invokeId === w.executionId);
        }),
      );
    } catch (err) {
      throw toReconcileError(err, 'ECS DescribeInvocations');
    }
    const running: WorkItem[] = [];
    const vanished: WorkItem[] = [];
    const finished: FinishedWork[] = [];
    for (const [i, item] of items.entries()) {
      const inv = listed[i];
      if (!inv) {
        vanished.push(item);
        continue;
      }
      const work =
        item.instanceIds.length > 0 ? item : { ...item, instanceIds: inv.instances.map((x) => x.instanceId) };
      if (!TERMINAL_INVOCATION_STATUSES.includes(inv.invocationStatus)) {
        running.push(work);
        continue;
      }
      const byId = new Map(inv.instances.map((x) => [x.instanceId, x]));
      const outcomes = work.instanceIds.map((id) => {
        const inst = byId.get(id);
        return inst
          ? invocationOutcome(inst, this.opts.outputTail, this.opts.redact)
          : { instanceId: id, ok: false, message: `not part of invocation ${inv.invokeId}` };
      });
      const f = { work, status: inv.invocationStatus, outcomes };
      reportFinished(owner, f, this.reporting);
      finished.push(f);
    }
    return { running, finished, vanished };
  }

  /** ECS StopInvocation of `work` (all of its instances). @throws ReconcileError. */
  async cancel(work: WorkItem): Promise<void> {
    try {
      await this.opts.ecs.stopInvocation(work.executionId);
    } catch (err) {
      throw toReconcileError(err, 'ECS StopInvocation');
    }
  }
}

/** The action recorded in an adopted invocation's name (`ecsops-<kind>-<action>`). */
function actionOf(inv: Invocation): string {
  const m = /^ecsops-[a-z]+-(.+)$/.exec(inv.commandName ?? '');
  return m?.[1] ?? 'run';
}
