/**
 * status.stateFreshness (src/controllers/shared/freshness.ts): the recorded full-resync time moves
 * forward only in steps of at least half the full-resync period (so a steady fleet costs no status
 * write per interval), moves back at once when a target read earlier joins (the claim stays true),
 * and is reset when spec.driftDetection changes.
 */
import { describe, expect, it } from 'vitest';
import type { StateFreshness } from '../../../src/api/common.js';
import {
  driftDetectionOf,
  readStateFreshness,
  stateFreshness,
} from '../../../src/controllers/shared/freshness.js';

const H = 3_600_000;
const PERIOD = 10 * H;
const T0 = Date.parse('2026-06-01T00:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

describe('stateFreshness', () => {
  it('records the mode and the oldest read on the first visit, with the age for the gauge', () => {
    const r = stateFreshness(
      undefined,
      'ChangeFeed',
      { oldestReadMs: T0, fullResyncMs: PERIOD },
      T0 + 90_000,
    );
    expect(r.status).toEqual({ driftDetection: 'ChangeFeed', lastFullResyncTime: '2026-06-01T00:00:00Z' });
    expect(r.oldestReadAgeSeconds).toBe(90);
  });

  it('records only the mode while no target state is known (no age)', () => {
    const r = stateFreshness(undefined, 'PerInstance', { fullResyncMs: PERIOD }, T0);
    expect(r.status).toEqual({ driftDetection: 'PerInstance' });
    expect(r.oldestReadAgeSeconds).toBeUndefined();
  });

  it('rounds the time down to whole seconds (every read is at or after it)', () => {
    const r = stateFreshness(
      undefined,
      'ChangeFeed',
      { oldestReadMs: T0 + 999, fullResyncMs: PERIOD },
      T0 + 999,
    );
    expect(r.status.lastFullResyncTime).toBe(iso(T0));
  });

  it.each([
    ['1 ms newer', 1, false],
    ['one interval newer', 10 * 60_000, false],
    ['just under half the period newer', PERIOD / 2 - 1_000, false],
    ['half the period newer', PERIOD / 2, true],
    ['a whole period newer', PERIOD, true],
    ['1 s older (a target read earlier joined)', -1_000, true],
  ])('oldest read %s than the recorded time (%i ms): written = %s', (_name, delta, written) => {
    const prev: StateFreshness = { driftDetection: 'ChangeFeed', lastFullResyncTime: iso(T0) };
    const r = stateFreshness(
      prev,
      'ChangeFeed',
      { oldestReadMs: T0 + delta, fullResyncMs: PERIOD },
      T0 + PERIOD,
    );
    if (written)
      expect(r.status).toEqual({ driftDetection: 'ChangeFeed', lastFullResyncTime: iso(T0 + delta) });
    else expect(r.status).toBe(prev); // the same object: the status is unchanged, no write
  });

  it('over a day of 10-minute reconciles of a fleet re-read on a jittered 10 h sweep, moves 3-6 times, never ahead of the truth nor half a period behind', () => {
    // Each instance is re-read when its last read is older than a jittered [0.75, 1] x period.
    const n = 50;
    let seed = 7;
    const rand = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    const lastRead = Array.from({ length: n }, () => T0);
    const due = lastRead.map((t) => t + (0.75 + 0.25 * rand()) * PERIOD);
    let status: StateFreshness | undefined;
    let writes = 0;
    for (let t = T0; t <= T0 + 24 * H; t += 10 * 60_000) {
      for (let i = 0; i < n; i++)
        if (t >= due[i]!) {
          lastRead[i] = t;
          due[i] = t + (0.75 + 0.25 * rand()) * PERIOD;
        }
      const oldest = Math.min(...lastRead);
      const next = stateFreshness(
        status,
        'ChangeFeed',
        { oldestReadMs: oldest, fullResyncMs: PERIOD },
        t,
      ).status;
      if (next !== status) writes++;
      status = next;
      expect(Date.parse(status.lastFullResyncTime!)).toBeLessThanOrEqual(oldest);
      expect(oldest - Date.parse(status.lastFullResyncTime!)).toBeLessThan(PERIOD / 2);
    }
    // 145 reconciles: the first write plus one per half period at most.
    expect(writes).toBeGreaterThanOrEqual(3);
    expect(writes).toBeLessThanOrEqual(6);
  });

  it('resets on a change of spec.driftDetection, even to a time within half a period', () => {
    const prev: StateFreshness = { driftDetection: 'ChangeFeed', lastFullResyncTime: iso(T0) };
    const r = stateFreshness(
      prev,
      'PerInstance',
      { oldestReadMs: T0 + 60_000, fullResyncMs: PERIOD },
      T0 + 60_000,
    );
    expect(r.status).toEqual({ driftDetection: 'PerInstance', lastFullResyncTime: iso(T0 + 60_000) });
    const unknown = stateFreshness(prev, 'PerInstance', { fullResyncMs: PERIOD }, T0);
    expect(unknown.status).toEqual({ driftDetection: 'PerInstance' });
  });

  it('keeps the recorded time while no target is read (none reachable), and fills it in once one is', () => {
    const prev: StateFreshness = { driftDetection: 'ChangeFeed', lastFullResyncTime: iso(T0) };
    expect(stateFreshness(prev, 'ChangeFeed', { fullResyncMs: PERIOD }, T0 + H).status).toBe(prev);
    const bare: StateFreshness = { driftDetection: 'ChangeFeed' };
    expect(
      stateFreshness(bare, 'ChangeFeed', { oldestReadMs: T0 + H, fullResyncMs: PERIOD }, T0 + H).status,
    ).toEqual({ driftDetection: 'ChangeFeed', lastFullResyncTime: iso(T0 + H) });
  });
});

describe('readStateFreshness / driftDetectionOf', () => {
  it('asks the fleet view for the given kind and ids and ages against its clock', () => {
    const asked: Array<[string, readonly string[]]> = [];
    const fleet = {
      freshness(kind: 'packages' | 'patches', ids: readonly string[]) {
        asked.push([kind, ids]);
        return { oldestReadMs: T0, fullResyncMs: PERIOD };
      },
      nowMs: () => T0 + 5_000,
    };
    const r = readStateFreshness(fleet, 'patches', ['i-a', 'i-b'], undefined, 'ChangeFeed');
    expect(asked).toEqual([['patches', ['i-a', 'i-b']]]);
    expect(r).toEqual({
      status: { driftDetection: 'ChangeFeed', lastFullResyncTime: iso(T0) },
      oldestReadAgeSeconds: 5,
    });
  });

  it('defaults spec.driftDetection to ChangeFeed', () => {
    expect(driftDetectionOf({})).toBe('ChangeFeed');
    expect(driftDetectionOf({ driftDetection: 'PerInstance' })).toBe('PerInstance');
  });
});
