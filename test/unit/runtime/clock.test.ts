import { describe, expect, it } from 'vitest';
import {
  clampTimerDelay,
  FakeClock,
  MAX_TIMER_DELAY_MS,
  realClock,
  sleep,
} from '../../../src/runtime/clock.js';

describe('clampTimerDelay', () => {
  it.each([
    [0, 0],
    [-5, 0],
    [Number.NaN, 0],
    [1500, 1500],
    [MAX_TIMER_DELAY_MS, MAX_TIMER_DELAY_MS],
    [MAX_TIMER_DELAY_MS + 1, MAX_TIMER_DELAY_MS],
    [2 ** 40, MAX_TIMER_DELAY_MS],
    [Number.POSITIVE_INFINITY, MAX_TIMER_DELAY_MS],
  ])('%s → %s', (ms, want) => {
    expect(clampTimerDelay(ms)).toBe(want);
  });
});

describe('realClock.setTimeout', () => {
  it('does not fire a 2^40 ms timer at once (Node would turn it into 1 ms)', async () => {
    let fired = false;
    const handle = realClock.setTimeout(() => {
      fired = true;
    }, 2 ** 40);
    try {
      await new Promise((r) => setTimeout(r, 50));
      expect(fired).toBe(false);
    } finally {
      realClock.clearTimeout(handle);
    }
  });

  it('a sleep of 2^40 ms is still pending after 50 ms and ends on abort', async () => {
    const ac = new AbortController();
    let done = false;
    const p = sleep(realClock, 2 ** 40, ac.signal).then(
      () => (done = true),
      () => 'aborted',
    );
    await new Promise((r) => setTimeout(r, 50));
    expect(done).toBe(false);
    ac.abort(new Error('stop'));
    expect(await p).toBe('aborted');
  });
});

describe('FakeClock.setTimeout', () => {
  it('clamps like the real clock: a 2^40 ms timer fires after 2^31 − 1 ms', async () => {
    const clock = new FakeClock(0);
    let firedAt: number | undefined;
    clock.setTimeout(() => {
      firedAt = clock.now();
    }, 2 ** 40);
    await clock.advance(MAX_TIMER_DELAY_MS - 1);
    expect(firedAt).toBeUndefined();
    await clock.advance(1);
    expect(firedAt).toBe(MAX_TIMER_DELAY_MS);
  });

  it('treats NaN and negative delays as 0', async () => {
    const clock = new FakeClock(0);
    const fired: string[] = [];
    clock.setTimeout(() => fired.push('nan'), Number.NaN);
    clock.setTimeout(() => fired.push('neg'), -10);
    await clock.advance(0);
    expect(fired).toEqual(['nan', 'neg']);
  });
});
