/**
 * An injectable clock, so time-dependent runtime code (workqueue backoff, leader election, event
 * aggregation) can be tested deterministically. All values are **milliseconds**.
 */
export interface Clock {
  /** Current time in milliseconds since the Unix epoch (like `Date.now()`). */
  now(): number;
  /**
   * Runs `fn` once after `ms` milliseconds, clamped to [0, {@link MAX_TIMER_DELAY_MS}] (NaN → 0):
   * a longer wait fires early, so callers that wait longer must re-check the time (the workqueue
   * does). Returns a handle for {@link Clock.clearTimeout}.
   */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Cancels a timer created by {@link Clock.setTimeout}; unknown or fired handles are ignored. */
  clearTimeout(handle: TimerHandle): void;
}

/** Opaque timer handle returned by {@link Clock.setTimeout}. */
export type TimerHandle = object | number;

/** Longest delay a Node.js timer honours, milliseconds (2^31 − 1, about 24.8 days). */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/**
 * `ms` clamped to [0, {@link MAX_TIMER_DELAY_MS}]; NaN becomes 0. Node.js turns a delay above
 * the maximum (or NaN) into 1 ms, which would make a "wait 30 days" timer fire at once.
 */
export function clampTimerDelay(ms: number): number {
  if (Number.isNaN(ms)) return 0;
  return Math.min(MAX_TIMER_DELAY_MS, Math.max(0, ms));
}

/** The process clock: `Date.now()` and Node.js timers (delays clamped by {@link clampTimerDelay}). */
export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, clampTimerDelay(ms)),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** Resolves after `ms` milliseconds of `clock` time, or rejects with the signal's reason when aborted. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = (): void => {
      clock.clearTimeout(handle);
      reject(signal?.reason as Error);
    };
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

interface FakeTimer {
  id: number;
  at: number;
  fn: () => void;
}

/**
 * A manually advanced clock for tests. Timers fire only from {@link FakeClock.advance}, in due-time
 * order (ties in creation order), with `now()` set to each timer's due time while it runs.
 */
export class FakeClock implements Clock {
  private current: number;
  private nextId = 1;
  private timers: FakeTimer[] = [];

  /** @param startMs initial time in milliseconds since the epoch (default 2026-01-01T00:00:00Z). */
  constructor(startMs = Date.UTC(2026, 0, 1)) {
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = this.nextId++;
    // Same clamp as realClock, so tests see what production does.
    this.timers.push({ id, at: this.current + clampTimerDelay(ms), fn });
    return id;
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }

  /** Number of timers not yet fired or cleared. */
  pendingTimers(): number {
    return this.timers.length;
  }

  /**
   * Moves time forward by `ms` milliseconds, firing every timer that falls due (including timers
   * created by fired timers, if they fall due within the window). Awaits a macrotask after each
   * timer so promise continuations run before the next one fires.
   */
  async advance(ms: number): Promise<void> {
    const target = this.current + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.at <= target).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.current = Math.max(this.current, due.at);
      due.fn();
      await flushMicrotasks();
    }
    this.current = target;
    await flushMicrotasks();
  }
}

/** Lets pending promise continuations run (one macrotask turn). */
export function flushMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
