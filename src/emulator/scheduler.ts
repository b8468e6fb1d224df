/**
 * Timer registry for modelled durations. Every timer is unref'd (never keeps the process alive)
 * and tracked so {@link Scheduler.clearAll} cancels everything on `stop()` / `reset()`.
 */
export class Scheduler {
  private readonly timers = new Set<NodeJS.Timeout>();
  private generation = 0;

  /**
   * @param timeScale multiplies every modelled duration (1 = real time; tests use ~0.01).
   */
  constructor(public timeScale: number) {}

  /**
   * Runs `fn` after `modelMs` modelled milliseconds (scaled by timeScale). Callbacks scheduled
   * before a {@link clearAll} never run.
   */
  after(modelMs: number, fn: () => void): void {
    const gen = this.generation;
    const delay = Math.max(0, Math.round(modelMs * this.timeScale));
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (gen === this.generation) fn();
    }, delay);
    t.unref();
    this.timers.add(t);
  }

  /** Cancels all pending timers. */
  clearAll(): void {
    this.generation++;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
