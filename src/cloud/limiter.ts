/**
 * The rate gate of one (product, region): a fair, prioritized, sliding-window limiter with
 * adaptive backoff on throttling. Part of the fleet view's "fair, prioritized use of the region's
 * API quota" (DESIGN §2):
 *
 * - **Sliding window, as the service counts it**: the service sees a request at some moment
 *   between its start here and its answer, which the gate cannot observe. So an attempt starts
 *   only while fewer than `qps` attempts are in flight or were answered in the last 1,000 ms: then
 *   no 1,000 ms window at the service can hold more than `qps` arrivals, however late the event
 *   loop or the network delivers them (a start-time window let a request of one second that
 *   arrived a few ms late share the service's second with the next second's: 30 at qps 20). Each
 *   attempt thus holds its slot for 1 s plus its latency; with 20–100 ms latency that is 2–10 %
 *   below `qps`. A fixed 1 s window (p-queue `intervalCap`) lets up to 2 × qps through around a
 *   window edge; this cannot.
 * - **Pacing**: at most a quarter of `qps` (rounded up) starts in any quarter of that window, so a
 *   backlog leaves in four spread bunches per second, not one bunch at each window edge (the
 *   service sees a smooth rate, and late arrivals overlap less).
 * - **Concurrency**: at most `concurrency` attempts in flight.
 * - **Priority**: waiting attempts start highest priority first ({@link PRIORITY}: writes, then
 *   polls of running work, then interactive reads, then background drift reads).
 * - **Fairness**: within one priority, owners (resources) are served by deficit round robin with
 *   a small quantum (4) and a list for newly active owners (DRR++, {@link Lane}): one resource's
 *   5,000-instance drift check does not hold the queue, and a resource that just became active
 *   (one read) is served next, however many busy owners wait.
 * - **Per-action limits** (`actionQps`): an action Alibaba Cloud throttles below the product's
 *   rate also waits for its own sliding window, counted the same way; attempts of other actions
 *   go ahead meanwhile.
 * - **Adaptive (AIMD)**: `Throttling.*` answers shrink the effective rate (× 0.7, at least 1/s)
 *   at most once per second, however many arrive in it; after `recoverAfterMs` (2 s) without one
 *   it grows back by 10 % of `qps` per second, up to `qps`.
 */

/** Priority classes; higher starts first. */
export const PRIORITY = {
  /** Background drift reads (package / patch states of every instance). */
  background: 0,
  /** Reads a reconcile needs now (targets, templates). */
  interactive: 1,
  /** Polls of running executions / invocations. */
  poll: 2,
  /** Writes: StartExecution, RunCommand, CancelExecution, StopInvocation. */
  write: 3,
} as const;

/** Options of {@link RateGate}. */
export interface RateGateOptions {
  /** Attempts started per sliding second, > 0. */
  qps: number;
  /** Attempts in flight at once, ≥ 1. */
  concurrency: number;
  /**
   * Quiet period after the last throttled answer before the effective rate grows back, ms; then it
   * grows by 10 % of `qps` per second of quiet. Default 2,000.
   */
  recoverAfterMs?: number;
  /**
   * Attempts one owner starts per turn while other owners of the same priority wait (the DRR
   * quantum, see {@link Lane}). Default 4.
   */
  quantum?: number;
  /**
   * The multiplicative decrease is applied at most once per this many ms, however many throttled
   * answers arrive in it (AIMD: one burst is one congestion signal). Default 1,000.
   */
  decreaseWindowMs?: number;
  /**
   * Per-action limits, attempts per sliding second (e.g. `{ StartExecution: 5 }`), for APIs whose
   * flow control Alibaba Cloud sets per action below the product's rate. An attempt of a capped
   * action waits for its own window as well; other owners' attempts go ahead meanwhile.
   */
  actionQps?: Readonly<Record<string, number>>;
  /** Clock, ms since the epoch. Default `Date.now`. */
  now?: () => number;
}

/** Per-attempt options. */
export interface GateOptions {
  /** See {@link PRIORITY}; default `interactive`. */
  priority?: number;
  /** Fairness key, e.g. `EcsExtension/ns/name`; default `''` (one shared owner). */
  owner?: string;
  /** Aborting removes a waiting attempt; `run` then rejects with the signal's reason. */
  signal?: AbortSignal;
  /** The API action, for {@link RateGateOptions.actionQps}. */
  action?: string;
}

interface Waiter {
  action?: string;
  start: () => void;
  reject: (err: unknown) => void;
  cleanup: () => void;
}

/**
 * One priority class, scheduled by deficit round robin with a list for newly active owners
 * (DRR++, the scheduler of FQ-CoDel, RFC 8290 §4): each owner (resource) has a FIFO of waiters and
 * a deficit. An owner that becomes active joins the NEW list, which is served before the OLD list,
 * so a resource with a single read waiting is served after at most the attempt in hand, however
 * many busy owners are queued. The owner at the head of a list starts attempts while its deficit
 * lasts (one per attempt); then it gets `quantum` more and moves to the tail of the old list. Busy
 * owners thus share the class in turns of `quantum` attempts, and none waits longer than one turn
 * per other busy owner. An owner whose queue empties stays in the old list until its turn comes
 * (then it leaves), so an owner that keeps one attempt waiting at a time is not new every time.
 */
class Lane {
  private readonly flows = new Map<string, { queue: Waiter[]; deficit: number }>();
  private readonly fresh: string[] = [];
  private readonly old: string[] = [];

  constructor(private readonly quantum: number) {}

  push(owner: string, w: Waiter): void {
    const f = this.flows.get(owner);
    if (f) {
      f.queue.push(w);
      return;
    }
    this.flows.set(owner, { queue: [w], deficit: this.quantum });
    this.fresh.push(owner);
  }

  /**
   * The next waiter (see the class comment). An owner whose oldest waiter may not start yet
   * (`ready` false: its action's window is full) keeps its place and is passed over this time.
   */
  shift(ready: (w: Waiter) => boolean = () => true): Waiter | undefined {
    const skipped = new Set<string>();
    for (;;) {
      const owner = this.fresh.find((o) => !skipped.has(o)) ?? this.old.find((o) => !skipped.has(o));
      if (owner === undefined) return undefined;
      const f = this.flows.get(owner);
      const head = f?.queue[0];
      if (!f || !head) {
        this.drop(owner);
        continue;
      }
      if (!ready(head)) {
        skipped.add(owner);
        continue;
      }
      if (f.deficit <= 0) {
        f.deficit += this.quantum;
        this.unlist(owner);
        this.old.push(owner);
        continue;
      }
      f.deficit -= 1;
      f.queue.shift();
      if (f.queue.length === 0 && this.fresh.includes(owner)) {
        // An emptied new owner moves to the old list (RFC 8290 §4.2): arriving again at once
        // does not make it new again.
        this.unlist(owner);
        this.old.push(owner);
      }
      return head;
    }
  }

  remove(owner: string, w: Waiter): boolean {
    const q = this.flows.get(owner)?.queue;
    const i = q ? q.indexOf(w) : -1;
    if (!q || i < 0) return false;
    q.splice(i, 1);
    return true;
  }

  get size(): number {
    let n = 0;
    for (const f of this.flows.values()) n += f.queue.length;
    return n;
  }

  private drop(owner: string): void {
    this.flows.delete(owner);
    this.unlist(owner);
  }

  private unlist(owner: string): void {
    for (const list of [this.fresh, this.old]) {
      const i = list.indexOf(owner);
      if (i >= 0) list.splice(i, 1);
    }
  }
}

/**
 * The sliding window of the module comment for one rate (the product's, or one action's): the
 * attempts in flight plus the answer times of those answered within the last window.
 */
class AnswerWindow {
  inFlight = 0;
  /** Answer times (ms), oldest first; none older than 1,000 ms is kept. */
  private readonly ends: number[] = [];

  /**
   * How long (ms) a new attempt must wait at `rate` attempts per second: 0 = it may start now;
   * `Infinity` = every slot is in flight, so only an answer (which pumps the gate) frees one.
   */
  wait(now: number, rate: number): number {
    // With a (possibly fractional) rate r, at most k = floor(r) attempts may be in flight or
    // answered within the last `1000·k/r` ms; only the oldest answer's age frees a slot.
    const cap = Math.max(1, Math.floor(rate));
    const spanMs = (1000 * cap) / rate;
    while (this.ends.length > 0 && now - (this.ends[0] ?? 0) >= spanMs) this.ends.shift();
    if (this.inFlight + this.ends.length < cap) return 0;
    return this.ends.length > 0 ? Math.max(1, Math.ceil((this.ends[0] ?? now) + spanMs - now)) : Infinity;
  }

  answered(now: number): void {
    this.inFlight--;
    while (this.ends.length > 0 && now - (this.ends[0] ?? 0) >= 1000) this.ends.shift();
    this.ends.push(now);
  }
}

/** See the module comment. */
export class RateGate {
  private readonly lanes = new Map<number, Lane>();
  /** Start times of the most recent attempts (ms), oldest first (pacing). */
  private readonly starts: number[] = [];
  private readonly window = new AnswerWindow();
  /** The windows of capped actions (`actionQps`). */
  private readonly actionWindows = new Map<string, AnswerWindow>();
  private timer: NodeJS.Timeout | undefined;
  /** The rate after the last decrease (attempts per second). */
  private reduced: number;
  private lastThrottleAt = -Infinity;
  private lastDecreaseAt = -Infinity;
  private readonly now: () => number;
  private readonly recoverAfterMs: number;

  constructor(private readonly opts: RateGateOptions) {
    if (!(opts.qps > 0) || !(opts.concurrency >= 1)) {
      throw new RangeError(
        `rate gate: qps must be > 0 and concurrency >= 1 (got ${opts.qps}, ${opts.concurrency})`,
      );
    }
    for (const [action, q] of Object.entries(opts.actionQps ?? {})) {
      if (!(q > 0)) throw new RangeError(`rate gate: the limit of ${action} must be > 0 (got ${q})`);
      this.actionWindows.set(action, new AnswerWindow());
    }
    this.reduced = opts.qps;
    this.now = opts.now ?? Date.now;
    this.recoverAfterMs = opts.recoverAfterMs ?? 2_000;
  }

  /** Attempts waiting for a slot. */
  get size(): number {
    let n = 0;
    for (const l of this.lanes.values()) n += l.size;
    return n;
  }

  /** Attempts in flight. */
  get pending(): number {
    return this.window.inFlight;
  }

  /** The current effective rate, attempts per second (≤ qps). */
  get rate(): number {
    return this.rateAt(this.now());
  }

  /**
   * The effective rate at `now` (AIMD): the rate after the last decrease, plus 10 % of `qps` per
   * full second of quiet beyond `recoverAfterMs` since the last throttled answer, up to `qps`.
   */
  private rateAt(now: number): number {
    const quiet = now - this.lastThrottleAt - this.recoverAfterMs;
    if (quiet < 0) return this.reduced;
    const steps = Math.floor(quiet / 1000) + 1;
    return Math.min(this.opts.qps, this.reduced + steps * Math.max(1, this.opts.qps * 0.1));
  }

  /**
   * Runs `fn` once a slot is free under the rules of the module comment. Resolves or rejects
   * with `fn`'s outcome; rejects with `signal.reason` if aborted while waiting.
   */
  run<T>(fn: () => Promise<T>, o: GateOptions = {}): Promise<T> {
    const { signal } = o;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const priority = o.priority ?? PRIORITY.interactive;
    const owner = o.owner ?? '';
    return new Promise<T>((resolve, reject) => {
      let lane = this.lanes.get(priority);
      if (!lane) this.lanes.set(priority, (lane = new Lane(this.opts.quantum ?? 4)));
      const onAbort = (): void => {
        if (lane.remove(owner, waiter)) reject(signal?.reason);
      };
      const waiter: Waiter = {
        ...(o.action !== undefined ? { action: o.action } : {}),
        start: () => {
          const action = o.action === undefined ? undefined : this.actionWindows.get(o.action);
          this.window.inFlight++;
          if (action) action.inFlight++;
          fn()
            .then(resolve, reject)
            .finally(() => {
              const now = this.now();
              this.window.answered(now);
              action?.answered(now);
              this.pump();
            });
        },
        reject,
        cleanup: () => signal?.removeEventListener('abort', onAbort),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      lane.push(owner, waiter);
      this.pump();
    });
  }

  /**
   * Tells the gate the service throttled an attempt: the effective rate is multiplied by 0.7 (at
   * least 1/s), at most once per `decreaseWindowMs`; recovery waits for quiet (see {@link rate}).
   */
  throttled(): void {
    const now = this.now();
    if (now - this.lastDecreaseAt >= (this.opts.decreaseWindowMs ?? 1_000)) {
      this.reduced = Math.max(1, this.rateAt(now) * 0.7);
      this.lastDecreaseAt = now;
    } else {
      this.reduced = this.rateAt(now); // keep what recovered; the quiet period restarts
    }
    this.lastThrottleAt = now;
  }

  private next(now: number): Waiter | undefined {
    const priorities = [...this.lanes.keys()].sort((a, b) => b - a);
    const ready = (w: Waiter): boolean => this.actionWait(w.action, now) === 0;
    for (const p of priorities) {
      const w = this.lanes.get(p)?.shift(ready);
      if (w) return w;
    }
    return undefined;
  }

  /** How long (ms) an attempt of `action` must wait for the action's own window; 0 = now. */
  private actionWait(action: string | undefined, now: number): number {
    const q = action === undefined ? undefined : this.opts.actionQps?.[action];
    const window = action === undefined ? undefined : this.actionWindows.get(action);
    return q === undefined || !window ? 0 : window.wait(now, q);
  }

  /** Arms the pump timer for `waitMs` unless one is armed. */
  private wake(waitMs: number): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pump();
    }, waitMs);
  }

  private pump(): void {
    for (;;) {
      if (this.window.inFlight >= this.opts.concurrency || this.size === 0) return;
      const now = this.now();
      const rate = this.rateAt(now);
      const waitMs = this.window.wait(now, rate);
      if (waitMs > 0) {
        if (Number.isFinite(waitMs)) this.wake(waitMs);
        return;
      }
      // Pacing: at most a quarter of the starts in a quarter of the window.
      const cap = Math.max(1, Math.floor(rate));
      const spanMs = (1000 * cap) / rate;
      const quarterCap = Math.ceil(cap / 4);
      while (this.starts.length > quarterCap) this.starts.shift();
      const quarterFirst = this.starts.length >= quarterCap ? this.starts[0] : undefined;
      if (quarterFirst !== undefined && now - quarterFirst < spanMs / 4) {
        this.wake(Math.max(1, Math.ceil(quarterFirst + spanMs / 4 - now)));
        return;
      }
      const w = this.next(now);
      if (!w) {
        // Every waiting attempt is held by its action's limit: wake when the first window frees.
        const waits = Object.keys(this.opts.actionQps ?? {})
          .map((a) => this.actionWait(a, now))
          .filter((ms) => ms > 0 && Number.isFinite(ms));
        if (waits.length > 0) this.wake(Math.min(...waits));
        return;
      }
      w.cleanup();
      this.starts.push(now);
      w.start();
    }
  }
}
