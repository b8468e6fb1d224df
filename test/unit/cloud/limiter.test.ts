import { describe, expect, it } from 'vitest';
import { PRIORITY, RateGate } from '../../../src/cloud/limiter.js';

/** A gate on a manual clock: run() records start times; `advance` moves time and fires timers. */
function harness(qps: number, concurrency = 100, quantum?: number) {
  let now = 0;
  const gate = new RateGate({
    qps,
    concurrency,
    now: () => now,
    ...(quantum !== undefined ? { quantum } : {}),
  });
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

  it('lets owners take turns of `quantum` attempts within a priority (a big drift check does not hold the queue)', async () => {
    const h = harness(10, 100, 5);
    const big = Array.from({ length: 30 }, (_, i) =>
      h.run(`big${i}`, { owner: 'big', priority: PRIORITY.background }),
    );
    const small = h.run('small0', { owner: 'small', priority: PRIORITY.background });
    await h.advance(5_000);
    await Promise.all([...big, small]);
    const order = h.starts.map((s) => s.tag);
    // The first quarter-second's 3 slots (pacing) went to `big` before `small` arrived; a newly
    // active owner is served next (a FIFO would put small0 last, at 30).
    expect(order.indexOf('small0')).toBe(3);
  });

  it('busy owners share the class in turns of `quantum` (deficit round robin)', async () => {
    const h = harness(10, 100, 5);
    const all = ['a', 'b', 'c'].flatMap((o) =>
      Array.from({ length: 12 }, (_, i) => h.run(`${o}${i}`, { owner: o, priority: PRIORITY.background })),
    );
    await h.advance(5_000);
    await Promise.all(all);
    const order = h.starts.map((s) => s.tag);
    // never more than one turn of 5 in a row while another owner waits …
    let run = 1;
    for (let i = 1; i < 30; i++) {
      run = order[i]?.[0] === order[i - 1]?.[0] ? run + 1 : 1;
      expect(run, order.join(' ')).toBeLessThanOrEqual(5);
    }
    // … so they finish together (shortest-first would finish a at 11 and b at 23)
    for (const o of ['a', 'b', 'c']) expect(order.indexOf(`${o}11`)).toBeGreaterThanOrEqual(26);
  });

  it('100 busy owners × 100 reads: a late owner’s single read is served within 50 attempts', async () => {
    // A rate far above the demand and one attempt at a time: the order is the scheduler's alone.
    const gate = new RateGate({ qps: 1e9, concurrency: 1 });
    const order: string[] = [];
    let late: Promise<void> | undefined;
    const busy: Array<Promise<void>> = [];
    for (let o = 0; o < 100; o++) {
      for (let i = 0; i < 100; i++) {
        busy.push(
          gate.run(
            async () => {
              order.push(`o${o}`);
              // the late owner arrives once 1,000 attempts have started
              if (order.length === 1_000)
                late = gate.run(async () => void order.push('late'), {
                  owner: 'late',
                  priority: PRIORITY.background,
                });
            },
            { owner: `o${o}`, priority: PRIORITY.background },
          ),
        );
      }
    }
    await Promise.all(busy);
    await late;
    const served = order.indexOf('late');
    expect(served).toBeGreaterThanOrEqual(1_000);
    expect(served - 1_000).toBeLessThanOrEqual(50);
    // and nobody starves: every busy owner got a turn within the first 100 × 4 attempts
    expect(new Set(order.slice(0, 400)).size).toBe(100);
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

  it('AIMD: a burst of throttled answers decreases the rate once; back at qps within 10 s of quiet', () => {
    let now = 0;
    const gate = new RateGate({ qps: 20, concurrency: 5, now: () => now });
    for (let i = 0; i < 30; i++) {
      now = i * 20; // 30 throttled answers within 600 ms: one congestion signal
      gate.throttled();
    }
    expect(gate.rate).toBeCloseTo(14);
    now = 1_600; // a second burst a second later decreases once more
    gate.throttled();
    expect(gate.rate).toBeCloseTo(9.8);
    now = 1_600 + 1_999;
    expect(gate.rate).toBeCloseTo(9.8); // still within the quiet period
    now = 1_600 + 10_000;
    expect(gate.rate).toBe(20);
    now = 1_600 + 2_000;
    expect(gate.rate).toBeCloseTo(11.8); // +10 % of qps per second of quiet
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
