/**
 * MaintenanceWindow reconciler on the shared kit: validates the schedule (cron, IANA time zone,
 * duration, blackout dates — the CRD's CEL rules catch most problems at admission; what only the
 * controller can judge becomes `Stalled`), writes `status.open`, `opensAt`, `nextOpen`,
 * `nextClose` and `skipped` (an occurrence held back by a blackout date, named in the Ready
 * message), requeues itself at the next edge of those, and tells the kinds that reference
 * the window (PatchPolicy) to re-plan whenever its spec changes or it disappears. No cloud calls
 * and no finalizer.
 */
import {
  MAINTENANCE_WINDOW_KIND,
  type MaintenanceWindow,
  type MaintenanceWindowStatus,
} from '../../api/maintenancewindow.js';
import { WindowClosedReason, WindowOpenReason } from '../../api/conditions.js';
import { toMetaTime } from '../../runtime/conditions.js';
import type {
  ReconcileContext,
  Reconciler,
  ReconcileRequest,
  ReconcileResult,
} from '../../runtime/controller.js';
import { StalledError, type ReconcileError } from '../../runtime/errors.js';
import type { ControllerMetrics, EventSink, KubeWriter, ObjectReader } from '../shared/deps.js';
import { SpecAnnouncer } from '../shared/announce.js';
import { ReconcileDriver, type BaseScope, type DerivedStatus, type KindHooks } from '../shared/driver.js';
import type { Outcome } from '../shared/conditions.js';
import {
  describeSkipped,
  isHeld,
  MaintenanceWindowSchedule,
  ScheduleError,
  type WindowState,
} from '../shared/schedule.js';
import { scheduleErrorReason } from '../shared/schedule-errors.js';

/** Longest requeue while waiting for the next opening or closing, milliseconds (bounds jitter to ±30 s). */
export const MAX_WINDOW_REQUEUE_MS = 10 * 60_000;

/** Facts of one MaintenanceWindow reconcile. */
export interface WindowScope extends BaseScope<MaintenanceWindow> {
  state?: WindowState;
}

export interface MaintenanceWindowDeps {
  objects: ObjectReader<MaintenanceWindow>;
  kube: KubeWriter<MaintenanceWindow>;
  events: EventSink;
  metrics: ControllerMetrics;
  now?: () => Date;
  /**
   * Called with (namespace, name) when a window's spec was seen for the first time, changed, or
   * the window was deleted: referencing objects must re-plan (PatchPolicy enqueues them).
   */
  onChange?: (namespace: string, name: string) => void;
}

/**
 * reconcileWindow parses the window (throws StalledError `InvalidSchedule`, `InvalidTimeZone` or
 * `InvalidWindow`) and records its state at the reconcile's time.
 */
export function reconcileWindow(scope: WindowScope): void {
  let schedule: MaintenanceWindowSchedule;
  try {
    schedule = new MaintenanceWindowSchedule(scope.obj.spec);
  } catch (err) {
    if (err instanceof ScheduleError) throw new StalledError(scheduleErrorReason(err), `spec.${err.message}`);
    throw err;
  }
  scope.state = schedule.stateAt(scope.now);
}

/** The MaintenanceWindow status and Ready verdict from the window's state (pure). */
export function deriveWindowStatus(
  scope: WindowScope,
  error: ReconcileError | undefined,
): DerivedStatus<MaintenanceWindowStatus> & { outcome?: Outcome } {
  const status: MaintenanceWindowStatus = { ...(scope.obj.status ?? {}) };
  const st = scope.state;
  if (!st || error) return { status };
  status.open = st.open;
  if (st.current) status.opensAt = toMetaTime(st.current.opensAt);
  else delete status.opensAt;
  if (st.next) status.nextOpen = toMetaTime(st.next.opensAt);
  else delete status.nextOpen;
  const close = st.current?.closesAt ?? st.next?.closesAt;
  if (close) status.nextClose = toMetaTime(close);
  else delete status.nextClose;
  const sk = st.skipped;
  if (sk) {
    status.skipped = {
      opensAt: toMetaTime(sk.opensAt),
      closesAt: toMetaTime(sk.closesAt),
      blackoutDate: sk.blackoutDate,
    };
  } else delete status.skipped;
  const next = st.next
    ? `next opens at ${status.nextOpen}`
    : 'the schedule opens no further occurrence within 3 years';
  const note = sk ? describeSkipped(sk, scope.now) : undefined;
  const message = st.open
    ? `open until ${status.nextClose}${note ? `; ${note}` : ''}`
    : sk && isHeld(sk, scope.now)
      ? `closed: ${note}; ${next}`
      : `closed; ${next}${note ? `; ${note}` : ''}`;
  return {
    status,
    outcome: {
      kind: 'verdict',
      verdict: {
        ready: { status: 'True', reason: st.open ? WindowOpenReason : WindowClosedReason, message },
      },
    },
  };
}

/**
 * Milliseconds until the window's next opening or closing, or the start or end of an occurrence
 * skipped for a blackout date (bounded), for the requeue.
 */
export function windowRequeueMs(scope: WindowScope): number {
  const st = scope.state;
  const now = scope.now.getTime();
  const edges = [st?.current?.closesAt ?? st?.next?.opensAt, st?.skipped?.opensAt, st?.skipped?.closesAt]
    .map((d) => d?.getTime() ?? Number.NaN)
    .filter((t) => t > now);
  if (edges.length === 0) return MAX_WINDOW_REQUEUE_MS;
  return Math.min(MAX_WINDOW_REQUEUE_MS, Math.max(1_000, Math.min(...edges) - now + 500));
}

/** The MaintenanceWindow reconciler: the shared driver with this kind's hooks. */
export class MaintenanceWindowReconciler implements Reconciler {
  private readonly driver: ReconcileDriver<MaintenanceWindow, WindowScope>;
  /** Tells referencing kinds about a new or changed spec, or a removed window. */
  private readonly announcer: SpecAnnouncer;

  constructor(private readonly deps: MaintenanceWindowDeps) {
    this.announcer = new SpecAnnouncer((ns, name) => this.deps.onChange?.(ns, name));
    const hooks: KindHooks<MaintenanceWindow, WindowScope> = {
      kind: MAINTENANCE_WINDOW_KIND,
      finalizer: false,
      writesAllowed: () => false,
      newScope: (base) => ({ ...base }),
      phases: [async (s) => this.announcer.announce(s.obj), async (s) => reconcileWindow(s)],
      reconcileDelete: async () => ({ done: true }),
      deriveStatus: deriveWindowStatus,
      requeueAfterMs: windowRequeueMs,
      forget: (uid) => this.announcer.forget(uid),
    };
    this.driver = new ReconcileDriver(hooks, {
      objects: deps.objects,
      kube: deps.kube,
      events: deps.events,
      metrics: deps.metrics,
      ...(deps.now ? { now: deps.now } : {}),
    });
  }

  /** Reconciles one MaintenanceWindow by key (see the driver). */
  reconcile(req: ReconcileRequest, ctx: ReconcileContext): Promise<ReconcileResult> {
    return this.driver.reconcile(req, ctx);
  }
}
