import { describe, expect, it } from 'vitest';
import { PRIORITY, RateGate } from '../../../src/cloud/limiter.js';

/** A gate on a manual clock: run() records start times; `advance` moves time and fires timers. */
function harness(qps: number, concurrency = 100, slice?: number) {
  let now = 0;
  const gate = new RateGate({ qps, concurrency, now: () => now, ...(slice !== undefined ? { slice } : {}) });
  const starts: Array<{ t: number; tag: string }> = [];
  const run = (tag: string, o: Parameters<RateGate['run']>[1] = {}) =>
    gate.run(async () => {
      starts.push({ t: now, tag });
    }, o);
  return {
    gate,
    starts,
    run,
    async advance(ms: number) {
      // real timers drive the gate; keep them short by stepping the fake clock with small waits
      for (let i = 0; i < ms; i += 10) {
        now += 10;
        await new Promise((r) => setTimeout(r, 0));
        await new Promise((r) => setTimeout(r, 11));
      }
    },
  };
}

describe('RateGate', () => {
  it('never starts more than qps attempts in any sliding second', async () => {
    const h = harness(5);
    const all = Array.from({ length: 23 }, (_, i) => h.run(`a${i}`));
    await h.advance(5_000);
    await Promise.all(all);
    const times = h.starts.map((s) => s.t);
    for (const t of times) expect(times.filter((x) => x >= t && x < t + 1000).length).toBeLessThanOrEqual(5);
    expect(times).toHaveLength(23);
  });

  it('counts an attempt until 1 s after its answer: late arrivals cannot crowd the service-side second', async () => {
    let now = 0;
    const gate = new RateGate({ qps: 4, concurrency: 100, now: () => now });
    const starts: number[] = [];
    const answers: Array<() => void> = [];
    // Every attempt is answered 300 ms after it started (the service saw it somewhere in between).
    const all = Array.from({ length: 8 }, () =>
      gate.run(
        () =>
          new Promise<void>((done) => {
            starts.push(now);
            answers.push(done);
          }),
      ),
    );
    const answerAt = new Map<number, number>();
    for (let i = 0; i < 300 && starts.length < 8; i++) {
      now += 10;
      starts.forEach((t, k) => {
        if (!answerAt.has(k) && now - t >= 300) {
          answerAt.set(k, now);
          answers[k]?.();
        }
      });
      await new Promise((r) => setTimeout(r, 0));
      await new Promise((r) => setTimeout(r, 11));
    }
    for (const k of starts.keys()) if (!answerAt.has(k)) answers[k]?.();
    await Promise.all(all);
    // The fifth started only once the first answer (at 300 ms) was 1 s old: a start-time window
    // would have let it start at 1,000 ms, and both could have arrived within one second.
    expect(starts[4]).toBeGreaterThanOrEqual(1_300);
    expect(starts.slice(0, 4).every((t) => t < 1_000)).toBe(true);
  });

  it('paces a backlog: at most a quarter of qps starts in any quarter of the window', async () => {
    const h = harness(20);
    const all = Array.from({ length: 60 }, (_, i) => h.run(`a${i}`));
    await h.advance(4_000);
    await Promise.all(all);
    const times = h.starts.map((s) => s.t);
    for (const t of times) expect(times.filter((x) => x >= t && x < t + 250).length).toBeLessThanOrEqual(5);
    for (const t of times) expect(times.filter((x) => x >= t && x < t + 1000).length).toBeLessThanOrEqual(20);
    // Still the full rate: the 60th start opens the fourth quarter of the third window (+ the
    // harness's 10 ms clock steps per wait), not later.
    expect(Math.max(...times)).toBeLessThanOrEqual(2 * 1000 + (3 * 1000) / 4 + 100);
  });

  it('starts writes before polls before drift reads', async () => {
    const h = harness(1);
    const first = h.run('first');
    const drift = h.run('drift', { priority: PRIORITY.background });
    const poll = h.run('poll', { priority: PRIORITY.poll });
    const write = h.run('write', { priority: PRIORITY.write });
    await h.advance(4_000);
    await Promise.all([first, drift, poll, write]);
    expect(h.starts.map((s) => s.tag)).toEqual(['first', 'write', 'poll', 'drift']);
  });

  it('lets owners take turns in slices within a priority (a big drift check does not hold the queue)', async () => {
    const h = harness(10, 100, 5);
    const big = Array.from({ length: 30 }, (_, i) =>
      h.run(`big${i}`, { owner: 'big', priority: PRIORITY.background }),
    );
    const small = h.run('small0', { owner: 'small', priority: PRIORITY.background });
    await h.advance(5_000);
    await Promise.all([...big, small]);
    const order = h.starts.map((s) => s.tag);
    // The first quarter-second's 3 slots (pacing) went to `big` before `small` arrived; then `big`
    // finishes at most one slice of 5 before `small` gets its turn (a FIFO would put small0 last, at 30).
    expect(order.indexOf('small0')).toBeGreaterThanOrEqual(3);
    expect(order.indexOf('small0')).toBeLessThanOrEqual(8);
  });

  it('among owners with equal work the one ahead keeps its turn, so they finish one after another', async () => {
    const h = harness(10, 100, 5);
    const all = ['a', 'b', 'c'].flatMap((o) =>
      Array.from({ length: 12 }, (_, i) => h.run(`${o}${i}`, { owner: o, priority: PRIORITY.background })),
    );
    await h.advance(5_000);
    await Promise.all(all);
    const order = h.starts.map((s) => s.tag);
    // Round-robin in slices of 5 would finish a, b and c only in the last 6 starts.
    expect(order.indexOf('a11')).toBe(11);
    expect(order.indexOf('b11')).toBe(23);
  });

  it('holds a capped action to its own sliding window while other actions go ahead', async () => {
    let now = 0;
    const gate = new RateGate({
      qps: 100,
      concurrency: 100,
      now: () => now,
      actionQps: { StartExecution: 2 },
    });
    const starts: Array<{ t: number; tag: string }> = [];
    const run = (tag: string, action: string, owner: string) =>
      gate.run(async () => void starts.push({ t: now, tag }), { action, owner, priority: PRIORITY.write });
    const all = [
      ...Array.from({ length: 5 }, (_, i) => run(`start${i}`, 'StartExecution', 'a')),
      run('read0', 'ListExecutions', 'b'),
    ];
    for (let i = 0; i < 300; i++) {
      now += 10;
      await new Promise((r) => setTimeout(r, 0));
      await new Promise((r) => setTimeout(r, 11));
      if (starts.length === 6) break;
    }
    await Promise.all(all);
    const startTimes = starts.filter((s) => s.tag.startsWith('start')).map((s) => s.t);
    for (const t of startTimes)
      expect(startTimes.filter((x) => x >= t && x < t + 1000).length).toBeLessThanOrEqual(2);
    expect(startTimes).toHaveLength(5);
    // The read of another owner did not wait behind the held StartExecutions.
    expect(starts.findIndex((s) => s.tag === 'read0')).toBeLessThanOrEqual(2);
    expect(() => new RateGate({ qps: 1, concurrency: 1, actionQps: { X: 0 } })).toThrow(RangeError);
  });

  it('shrinks the rate on throttling and recovers after quiet periods', () => {
    let now = 0;
    const gate = new RateGate({ qps: 20, concurrency: 5, now: () => now, recoverAfterMs: 5_000 });
    gate.throttled();
    gate.throttled();
    expect(gate.rate).toBeCloseTo(9.8);
    now = 5_000;
    void gate.run(async () => undefined);
    expect(gate.rate).toBeCloseTo(11.8);
  });

  it('removes an aborted waiter without starting it', async () => {
    const h = harness(1);
    const ac = new AbortController();
    const first = h.run('first');
    const second = h.run('second', { signal: ac.signal });
    ac.abort(new Error('stop'));
    await expect(second).rejects.toThrow('stop');
    await h.advance(2_000);
    await first;
    expect(h.starts.map((s) => s.tag)).toEqual(['first']);
  });
});
