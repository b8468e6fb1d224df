import { describe, expect, it } from 'vitest';
import {
  CronSchedule,
  dueRun,
  MaintenanceWindowSchedule,
  ScheduleError,
} from '../../../src/controllers/shared/schedule.js';

const d = (s: string) => new Date(s);
const iso = (x: Date | undefined) => x?.toISOString();

describe('CronSchedule', () => {
  it.each([
    ['0 3 * * *', 'Asia/Shanghai', '2026-06-01T12:00:00Z', '2026-06-01T19:00:00.000Z'],
    ['@daily', 'UTC', '2026-06-01T12:00:00Z', '2026-06-02T00:00:00.000Z'],
    ['0 1 * * SAT', 'UTC', '2026-06-01T12:00:00Z', '2026-06-06T01:00:00.000Z'],
    ['30 2 * * *', 'America/New_York', '2026-03-08T05:00:00Z', '2026-03-09T06:30:00.000Z'], // spring-forward skipped
    ['30 1 * * *', 'America/New_York', '2026-11-01T05:30:00Z', '2026-11-02T06:30:00.000Z'], // fall-back: once
  ])('%s in %s after %s → %s', (expr, tz, after, next) => {
    expect(iso(new CronSchedule(expr, tz).next(d(after)))).toBe(next);
  });

  it('previous() includes the instant itself and skips DST-shifted runs', () => {
    const c = new CronSchedule('30 2 * * *', 'America/New_York');
    expect(iso(c.previous(d('2026-03-09T06:30:00Z')))).toBe('2026-03-09T06:30:00.000Z');
    expect(iso(c.previous(d('2026-03-09T06:00:00Z')))).toBe('2026-03-07T07:30:00.000Z');
  });

  it.each([
    ['61 * * * *', 'schedule', /not valid cron/],
    ['0 3 * *', 'schedule', /must have 5 fields/],
    ['0 0 3 * * *', 'schedule', /must have 5 fields/],
  ])('rejects %s', (expr, field, msg) => {
    const err = (() => {
      try {
        new CronSchedule(expr);
      } catch (e) {
        return e as ScheduleError;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(ScheduleError);
    expect(err?.field).toBe(field);
    expect(err?.message).toMatch(msg);
  });

  it('rejects an unknown time zone', () => {
    expect(() => new CronSchedule('0 3 * * *', 'Mars/Olympus')).toThrow(/unknown time zone "Mars\/Olympus"/);
  });
});

describe('dueRun (CronJob missed-run semantics)', () => {
  const hourly = new CronSchedule('0 * * * *');
  it('returns only the latest missed run, never a burst', () => {
    expect(iso(dueRun(hourly, d('2026-06-01T22:30:00Z'), d('2026-06-01T20:00:00Z')))).toBe(
      '2026-06-01T22:00:00.000Z',
    );
  });
  it('returns nothing when the latest run was handled or predates creation', () => {
    expect(dueRun(hourly, d('2026-06-01T22:30:00Z'), d('2026-06-01T22:00:00Z'))).toBeUndefined();
    expect(dueRun(hourly, d('2026-06-01T22:30:00Z'), d('2026-06-01T22:10:00Z'))).toBeUndefined();
  });
});

describe('MaintenanceWindowSchedule', () => {
  const w = new MaintenanceWindowSchedule({
    schedule: '0 1 * * SAT',
    duration: '4h',
    timeZone: 'Asia/Shanghai',
    blackoutDates: ['2026-06-13', '2026-06-27/2026-07-04'],
  });
  it('is open from the opening for duration, closed otherwise', () => {
    expect(w.stateAt(d('2026-06-05T17:00:00Z'))).toMatchObject({
      open: true,
      current: { opensAt: d('2026-06-05T17:00:00Z'), closesAt: d('2026-06-05T21:00:00Z') },
    });
    expect(w.stateAt(d('2026-06-05T21:00:00Z')).open).toBe(false);
  });
  it('skips blackout dates (local dates in the window time zone, ranges inclusive)', () => {
    expect(w.stateAt(d('2026-06-12T17:30:00Z')).open).toBe(false); // Sat 13 June in Shanghai
    expect(iso(w.stateAt(d('2026-06-12T17:30:00Z')).next?.opensAt)).toBe('2026-06-19T17:00:00.000Z');
    expect(iso(w.stateAt(d('2026-06-20T00:00:00Z')).next?.opensAt)).toBe('2026-07-10T17:00:00.000Z');
  });
  it.each([
    [{ duration: '0s' }, 'duration', /greater than 0/],
    [{ duration: '169h' }, 'duration', /at most 168h/],
    [{ blackoutDates: ['2026-07-04/2026-07-01'] }, 'blackoutDates', /YYYY-MM-DD/],
  ])('rejects %j', (patch, field, msg) => {
    try {
      new MaintenanceWindowSchedule({ schedule: '0 1 * * *', duration: '1h', ...patch });
      expect.unreachable();
    } catch (e) {
      expect((e as ScheduleError).field).toBe(field);
      expect((e as Error).message).toMatch(msg);
    }
  });
});
