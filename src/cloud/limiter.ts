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
 * - **Fairness**: within one priority, owners (resources) take turns in slices of at most `slice`
 *   attempts, so one resource's 5,000-instance drift check does not hold the queue: another
 *   resource's read waits for at most one slice per owner ahead of it.
 * - **Per-action limits** (`actionQps`): an action Alibaba Cloud throttles below the product's
 *   rate also waits for its own sliding window, counted the same way; attempts of other actions
 *   go ahead meanwhile.
 * - **Adaptive**: a `Throttling.*` answer shrinks the effective rate (× 0.7, at least 1/s); every
 *   `recoverAfterMs` without throttling it grows back by 10 % of `qps` up to `qps`.
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
  /** Quiet period before the effective rate grows back after throttling, ms. Default 5,000. */
  recoverAfterMs?: number;
  /**
   * Consecutive attempts one owner may start while an owner of the same priority with fewer
   * attempts left waits. Default 64.
   */
  slice?: number;
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
 * One priority class: owners in arrival order, each with a FIFO of waiters. The first owner is
 * served for up to `slice` consecutive attempts, then moves to the back if another waiting owner
 * has fewer attempts left: a large resource never holds the class for more than one slice while
 * a smaller one waits, and among equals the one ahead keeps its turn, so resources finish one
 * after another in arrival order (shortest-remaining-first; round-robin would make every
 * resource of a burst finish at the end, and the median wait the longest).
 */
class Lane {
  readonly owners = new Map<string, Waiter[]>();
  private served = 0;

  constructor(private readonly slice: number) {}

  push(owner: string, w: Waiter): void {
    const q = this.owners.get(owner);
    if (q) q.push(w);
    else this.owners.set(owner, [w]);
  }

  /**
   * The next waiter: the current owner's oldest, or the next owner's once the slice is used up.
   * An owner whose oldest waiter may not start yet (`ready` false: its action's window is full)
   * is passed over this time.
   */
  shift(ready: (w: Waiter) => boolean = () => true): Waiter | undefined {
    for (const [owner, q] of this.owners) {
      if (q[0] && !ready(q[0])) continue;
      const w = q.shift();
      this.served++;
      if (q.length === 0) {
        this.owners.delete(owner);
        this.served = 0;
      } else if (this.served >= this.slice) {
        this.served = 0;
        if (this.someShorter(owner, q.length)) {
          this.owners.delete(owner);
          this.owners.set(owner, q); // to the back of the rotation
        }
      }
      if (w) return w;
    }
    return undefined;
  }

  /** True when an owner other than `owner` has fewer than `n` waiters. */
  private someShorter(owner: string, n: number): boolean {
    for (const [o, q] of this.owners) if (o !== owner && q.length < n) return true;
    return false;
  }

  remove(owner: string, w: Waiter): boolean {
    const q = this.owners.get(owner);
    const i = q ? q.indexOf(w) : -1;
    if (!q || i < 0) return false;
    q.splice(i, 1);
    if (q.length === 0) this.owners.delete(owner);
    return true;
  }

  get size(): number {
    let n = 0;
    for (const q of this.owners.values()) n += q.length;
    return n;
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
  private effective: number;
  private lastThrottleAt = 0;
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
    this.effective = opts.qps;
    this.now = opts.now ?? Date.now;
    this.recoverAfterMs = opts.recoverAfterMs ?? 5_000;
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
    return this.effective;
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
      if (!lane) this.lanes.set(priority, (lane = new Lane(this.opts.slice ?? 64)));
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

  /** Tells the gate the service throttled an attempt: the effective rate shrinks. */
  throttled(): void {
    this.lastThrottleAt = this.now();
    this.effective = Math.max(1, Math.min(this.effective, this.opts.qps) * 0.7);
  }

  private recover(now: number): void {
    if (this.effective >= this.opts.qps || now - this.lastThrottleAt < this.recoverAfterMs) return;
    this.effective = Math.min(this.opts.qps, this.effective + Math.max(1, this.opts.qps * 0.1));
    this.lastThrottleAt = now; // next step after another quiet period
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
      this.recover(now);
      const waitMs = this.window.wait(now, this.effective);
      if (waitMs > 0) {
        if (Number.isFinite(waitMs)) this.wake(waitMs);
        return;
      }
      // Pacing: at most a quarter of the starts in a quarter of the window.
      const cap = Math.max(1, Math.floor(this.effective));
      const spanMs = (1000 * cap) / this.effective;
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
