/**
 * {@link WorkTracker} over OOS executions (DESIGN §3): `StartExecution` of one template per batch
 * of at most 50 instances, `ListExecutions` by owner tag to adopt, the fleet view's shared
 * execution states (or `ListExecutions` by ID) plus `ListTaskExecutions` (loop children, one per
 * instance, skipped for a clean success) to poll.
 */
import { OWNER_KIND_TAG, OWNER_UID_TAG } from '../../api/common.js';
import {
  ACTIVE_EXECUTION_STATUSES,
  TERMINAL_EXECUTION_STATUSES,
  instancesOf,
  type ClientOptions,
  type RegionFleet,
  type Execution,
  type OosApi,
  type TaskExecution,
} from '../../cloud/index.js';
import { toMetaTime } from '../../runtime/conditions.js';
import { sanitizeText } from '../../runtime/sanitize.js';
import { toReconcileError } from './cloud-errors.js';
import type { ControllerMetrics, EventSink, Resource } from './deps.js';
import { OOS_BATCH_SIZE, ownerTags } from './execution.js';
import {
  ownerOf,
  type FinishedWork,
  type InstanceOutcome,
  pollDelayMs,
  type PollResult,
  reportFinished,
  type StartReporting,
  type WorkItem,
  type WorkTracker,
} from './work.js';

/** How old the region's shared listing of running executions may be for a poll, ms. */
export const POLL_LISTING_MAX_AGE_MS = 2_500;

/** Options of {@link OosExecutionTracker}. */
export interface OosTrackerOptions {
  /** OOS client of the resource's region (bound to the reconcile's abort signal). */
  oos: OosApi;
  /** Public or private OOS template to start, e.g. `ACS-ECS-BulkyConfigureOOSPackageWithTemporaryURL`. */
  template: string;
  /** The template parameters for one batch (must include the batch as OOS `targets`). */
  parameters(batch: readonly string[], action: string): Record<string, unknown>;
  events: EventSink;
  metrics: ControllerMetrics;
  /**
   * The region's fleet view: when set, polls read its shared, region-wide states of running and
   * recently finished executions of the owner's kind (by the `ecsops.io/owner-kind` tag) and
   * adoption its listing of active ones, instead of one `ListExecutions` per execution.
   */
  fleet?: RegionFleet;
  /** Signal and fairness owner of the fleet view's reads. */
  view?: ClientOptions;
  /**
   * The owner's poll delay bounds, ms (see {@link pollDelayMs}): a poll accepts a shared listing
   * no older than its items' poll delay (at most {@link POLL_LISTING_MAX_AGE_MS}), so a finish
   * shows within about two poll delays (one when the execution's owner is announced the finish).
   * Unset: always {@link POLL_LISTING_MAX_AGE_MS}.
   */
  pollDelay?: { minMs: number; maxMs: number };
}

/**
 * The instance batch an execution was started with: its `targets.ResourceIds` parameter (object
 * or JSON string), read by the cloud layer's {@link instancesOf}; `[]` when the parameters do not
 * name instances (unparsable `targets`, tag targets).
 */
export function executionBatch(exec: Execution): string[] {
  return instancesOf(exec) ?? [];
}

/**
 * True when OOS reports the execution `Success` with every one of its `batchSize` resources
 * `Success` in `ResourceStatus` (ListExecutions), so no loop child needs reading.
 */
export function cleanSuccess(exec: Execution, batchSize: number): boolean {
  const rs = exec.resourceStatus ?? {};
  const others = Object.entries(rs).filter(([k, n]) => k !== 'Success' && n > 0);
  return exec.status === 'Success' && batchSize > 0 && rs['Success'] === batchSize && others.length === 0;
}

/** Per-instance outcomes of a finished execution from its loop children. */
export function executionOutcomes(
  exec: Execution,
  batch: readonly string[],
  children: readonly TaskExecution[],
): InstanceOutcome[] {
  const byInstance = new Map<string, { status: string; message?: string }>();
  for (const t of children) {
    if (t.loopItem && t.loopItem.startsWith('i-'))
      byInstance.set(t.loopItem, { status: t.status, message: t.statusMessage });
  }
  return batch.map((instanceId) => {
    const r = byInstance.get(instanceId);
    const ok = r ? r.status === 'Success' : exec.status === 'Success';
    if (ok) return { instanceId, ok };
    const why = r?.message || r?.status || exec.statusMessage || `execution ${exec.status}`;
    const cancelled = r ? r.status === 'Cancelled' || r.status === 'Skipped' : exec.status === 'Cancelled';
    return { instanceId, ok, message: sanitizeText(why).slice(0, 512), ...(cancelled ? { cancelled } : {}) };
  });
}

export class OosExecutionTracker implements WorkTracker {
  readonly batchSize = OOS_BATCH_SIZE;

  constructor(private readonly opts: OosTrackerOptions) {}

  /**
   * OOS `StartExecution` of one batch with its ClientToken and the owner tags. The fleet view is
   * told before the call (so an adoption listing is never older than an attempt whose answer was
   * lost) and after it (the execution ID replaces that note).
   */
  async send(owner: Resource, item: WorkItem): Promise<string> {
    const o = ownerOf(owner);
    const { oos, template, fleet } = this.opts;
    fleet?.noteStarted(o.uid, item.clientToken);
    try {
      const exec = await oos.startExecution({
        templateName: template,
        parameters: this.opts.parameters(item.instanceIds, item.action),
        clientToken: item.clientToken,
        tags: ownerTags(o.kind, o.namespace, o.name, o.uid),
        mode: 'Automatic',
        safetyCheck: 'Skip',
        description: `ecsops ${o.kind} ${o.namespace}/${o.name} ${item.action}`,
      });
      fleet?.noteStarted(o.uid, exec.executionId, item.clientToken);
      return exec.executionId;
    } catch (err) {
      throw toReconcileError(err, 'OOS StartExecution');
    }
  }

  /** The region's shared listing of running executions of the owner's kind. */
  private listing(
    owner: Resource,
    statuses: readonly string[],
    notBeforeOwner?: string,
  ): Promise<Execution[]> {
    return (this.opts.fleet as RegionFleet).runningExecutions(OWNER_KIND_TAG, owner.kind, {
      statuses,
      ...(notBeforeOwner !== undefined ? { notBeforeOwner } : {}),
      maxAgeMs: POLL_LISTING_MAX_AGE_MS,
      ...this.opts.view,
    });
  }

  /**
   * The fleet's shared execution states for `items`. Items the view lacks that started after it
   * was read (`notYet`) are left for a later refresh, which announces their end to the owner
   * (register.ts) — polls of just-started work cost no call. Older items it lacks are looked for
   * once more in a refresh that lists ended executions, then read by ID.
   */
  private async knownStates(
    owner: Resource,
    items: readonly WorkItem[],
  ): Promise<{ byId: ReadonlyMap<string, Execution>; notYet: Set<string> }> {
    const fleet = this.opts.fleet as RegionFleet;
    const delay = this.opts.pollDelay;
    const maxAgeMs = delay
      ? Math.min(
          POLL_LISTING_MAX_AGE_MS,
          pollDelayMs(
            items.map((t) => t.startTime),
            new Date(fleet.nowMs()),
            delay.minMs,
            delay.maxMs,
          ),
        )
      : POLL_LISTING_MAX_AGE_MS;
    const read = (ended: boolean) =>
      fleet.executionStates(OWNER_KIND_TAG, owner.kind, {
        maxAgeMs,
        ...(ended ? { ended: true } : {}),
        ...this.opts.view,
      });
    const first = await read(false);
    // Start times have second resolution: anything started in the view's second may be missing.
    // Only an item that knows its instances waits: one read back from status without them (they
    // are read back by a poll, fromTracked) is read by ID, or its instances would look free and
    // be started again.
    const notYet = new Set(
      items
        .filter(
          (t) =>
            !first.byId.has(t.executionId) &&
            t.instanceIds.length > 0 &&
            Date.parse(t.startTime) + 1_000 > first.readAtMs,
        )
        .map((t) => t.executionId),
    );
    const older = items.some((t) => !first.byId.has(t.executionId) && !notYet.has(t.executionId));
    return { byId: older ? (await read(true)).byId : first.byId, notYet };
  }

  get reporting(): StartReporting {
    const { metrics, events, template } = this.opts;
    return { metrics, events, metricLabel: template, noun: 'OOS execution' };
  }

  async adopt(
    owner: Resource,
    known: ReadonlySet<string>,
    now: Date,
    opts: { force?: boolean } = {},
  ): Promise<WorkItem[]> {
    let owned: Execution[];
    let checkedAt: number | undefined;
    const uid = owner.metadata.uid ?? '';
    try {
      if (this.opts.fleet) {
        // Every start of this process for the resource is tracked in its status or older than
        // the last check: nothing can be untracked.
        if (!opts.force && !this.opts.fleet.adoptionNeeded(uid, known)) return [];
        checkedAt = this.opts.fleet.nowMs();
        // The shared listing is never older than this process's last StartExecution for this
        // resource (start() notes it), so work started before a failed status write is seen; a
        // restarted process has no such start, and any listing it reads postdates the crash.
        owned = (await this.listing(owner, ACTIVE_EXECUTION_STATUSES, uid)).filter(
          (e) => e.tags[OWNER_UID_TAG] === uid,
        );
      } else {
        // One ListExecutions per non-terminal status keeps the answer small however long the
        // resource's execution history grows.
        const tags = { [OWNER_UID_TAG]: uid };
        const pages = await Promise.all(
          ACTIVE_EXECUTION_STATUSES.map((status) => this.opts.oos.listAllExecutions({ tags, status })),
        );
        owned = pages.flat();
      }
    } catch (err) {
      throw toReconcileError(err, 'OOS ListExecutions');
    }
    const seen = new Set<string>();
    const adopted: WorkItem[] = [];
    for (const exec of owned) {
      if (known.has(exec.executionId) || seen.has(exec.executionId)) continue;
      seen.add(exec.executionId);
      adopted.push({
        executionId: exec.executionId,
        action: String(exec.parameters.action ?? 'install'),
        instanceIds: executionBatch(exec),
        clientToken: '',
        startTime: exec.startDate ?? exec.createDate ?? toMetaTime(now),
      });
    }
    // Only a check that found nothing to adopt is remembered: adopted work must reach status first.
    if (checkedAt !== undefined && adopted.length === 0) this.opts.fleet?.noteAdoptionChecked(uid, checkedAt);
    return adopted;
  }

  async poll(owner: Resource, items: readonly WorkItem[]): Promise<PollResult> {
    const oos = this.opts.oos;
    // Polled work is tracked by the owner's status: this process's starts among it are confirmed.
    this.opts.fleet?.confirmTracked(
      owner.metadata.uid ?? '',
      items.map((t) => t.executionId),
    );
    let listed: Array<Execution | undefined>;
    let notYet = new Set<string>();
    try {
      // The region's shared view of running and recently finished executions of the owner's
      // kind; executions it does not hold and that are older than it (finished long ago) are
      // read by ID; newer ones wait for a later refresh (which announces their end).
      const known =
        this.opts.fleet && items.length > 0
          ? await this.knownStates(owner, items)
          : { byId: new Map<string, Execution>(), notYet: new Set<string>() };
      notYet = known.notYet;
      listed = await Promise.all(
        items.map((t) =>
          notYet.has(t.executionId)
            ? undefined
            : (known.byId.get(t.executionId) ?? oos.getExecution(t.executionId)),
        ),
      );
    } catch (err) {
      throw toReconcileError(err, 'OOS ListExecutions');
    }
    const running: WorkItem[] = [];
    const vanished: WorkItem[] = [];
    const done: Array<{ work: WorkItem; exec: Execution }> = [];
    for (const [i, item] of items.entries()) {
      const exec = listed[i];
      if (notYet.has(item.executionId)) {
        running.push(item); // started after the shared view was read: not visible there yet
        continue;
      }
      if (!exec) {
        vanished.push(item);
        continue;
      }
      const work = item.instanceIds.length > 0 ? item : { ...item, instanceIds: executionBatch(exec) };
      if (TERMINAL_EXECUTION_STATUSES.includes(exec.status)) done.push({ work, exec });
      else running.push(work);
    }
    let children: TaskExecution[][];
    try {
      children = await Promise.all(
        // A clean success (every resource Success per ResourceStatus) needs no per-instance read.
        done.map(({ work, exec }) =>
          cleanSuccess(exec, work.instanceIds.length)
            ? Promise.resolve([])
            : oos.listTaskExecutions({ executionId: exec.executionId, includeChildTaskExecution: true }),
        ),
      );
    } catch (err) {
      throw toReconcileError(err, 'OOS ListTaskExecutions');
    }
    const finished: FinishedWork[] = done.map(({ work, exec }, i) => {
      const f = {
        work,
        status: exec.status,
        outcomes: executionOutcomes(exec, work.instanceIds, children[i] ?? []),
      };
      reportFinished(owner, f, this.reporting);
      return f;
    });
    return { running, finished, vanished };
  }
}
