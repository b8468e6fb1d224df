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

/** Local day of a DST change, as UTC instants: [start, end). */
interface DstNight {
  timeZone: string;
  night: string;
  start: string;
  end: string;
  /** [local opening HH:MM, expected opensAt, expected closesAt] for a 4 h window. */
  cases: Array<[string, string, string]>;
}

const DST_NIGHTS: DstNight[] = [
  {
    timeZone: 'America/New_York',
    night: 'spring 2026-03-08 (02:00 EST → 03:00 EDT)',
    start: '2026-03-08T05:00:00Z',
    end: '2026-03-09T04:00:00Z',
    cases: [
      ['01:30', '2026-03-08T06:30:00Z', '2026-03-08T10:30:00Z'], // just before the gap: 4 elapsed hours
      ['02:00', '2026-03-08T07:00:00Z', '2026-03-08T10:00:00Z'], // in the gap: 03:00–06:00 EDT
      ['02:30', '2026-03-08T07:00:00Z', '2026-03-08T10:30:00Z'], // in the gap: 03:00–06:30 EDT
      ['02:59', '2026-03-08T07:00:00Z', '2026-03-08T10:59:00Z'],
      ['03:00', '2026-03-08T07:00:00Z', '2026-03-08T11:00:00Z'], // just after the gap
      ['03:30', '2026-03-08T07:30:00Z', '2026-03-08T11:30:00Z'],
    ],
  },
  {
    timeZone: 'America/New_York',
    night: 'autumn 2026-11-01 (02:00 EDT → 01:00 EST)',
    start: '2026-11-01T04:00:00Z',
    end: '2026-11-02T05:00:00Z',
    cases: [
      ['00:30', '2026-11-01T04:30:00Z', '2026-11-01T08:30:00Z'], // just before the repeated hour
      ['01:00', '2026-11-01T05:00:00Z', '2026-11-01T09:00:00Z'], // in the repeated hour: the EDT one
      ['01:30', '2026-11-01T05:30:00Z', '2026-11-01T09:30:00Z'],
      ['01:59', '2026-11-01T05:59:00Z', '2026-11-01T09:59:00Z'],
      ['02:00', '2026-11-01T07:00:00Z', '2026-11-01T11:00:00Z'], // just after
    ],
  },
  {
    timeZone: 'Europe/Berlin',
    night: 'spring 2026-03-29 (02:00 CET → 03:00 CEST)',
    start: '2026-03-28T23:00:00Z',
    end: '2026-03-29T22:00:00Z',
    cases: [
      ['01:30', '2026-03-29T00:30:00Z', '2026-03-29T04:30:00Z'],
      ['02:00', '2026-03-29T01:00:00Z', '2026-03-29T04:00:00Z'],
      ['02:30', '2026-03-29T01:00:00Z', '2026-03-29T04:30:00Z'],
      ['03:00', '2026-03-29T01:00:00Z', '2026-03-29T05:00:00Z'],
      ['03:30', '2026-03-29T01:30:00Z', '2026-03-29T05:30:00Z'],
    ],
  },
  {
    timeZone: 'Europe/Berlin',
    night: 'autumn 2026-10-25 (03:00 CEST → 02:00 CET)',
    start: '2026-10-24T22:00:00Z',
    end: '2026-10-25T23:00:00Z',
    cases: [
      ['01:30', '2026-10-24T23:30:00Z', '2026-10-25T03:30:00Z'],
      ['02:00', '2026-10-25T00:00:00Z', '2026-10-25T04:00:00Z'], // in the repeated hour: the CEST one
      ['02:30', '2026-10-25T00:30:00Z', '2026-10-25T04:30:00Z'],
      ['02:59', '2026-10-25T00:59:00Z', '2026-10-25T04:59:00Z'],
      ['03:00', '2026-10-25T02:00:00Z', '2026-10-25T06:00:00Z'], // just after
    ],
  },
];

/**
 * Every occurrence seen open while stepping through [from, to) in `stepMs` steps (plus the instants
 * just after each `next` opening), as `opensAt→closesAt`.
 */
function openedBetween(
  w: MaintenanceWindowSchedule,
  from: string,
  to: string,
  stepMs = 10 * 60_000,
): string[] {
  const seen = new Set<string>();
  const probe = (t: number) => {
    const st = w.stateAt(new Date(t));
    if (st.current) seen.add(`${iso(st.current.opensAt)}→${iso(st.current.closesAt)}`);
    return st;
  };
  for (let t = Date.parse(from); t < Date.parse(to); t += stepMs) {
    const next = probe(t).next;
    if (next && next.opensAt.getTime() < Date.parse(to)) probe(next.opensAt.getTime());
  }
  return [...seen];
}

describe('MaintenanceWindowSchedule on the DST nights of 2026', () => {
  const rows = DST_NIGHTS.flatMap((n) =>
    n.cases.flatMap(([hhmm, opens, closes]) => {
      const [h, m] = hhmm.split(':').map(Number);
      return [
        [n.timeZone, n.night, `${m} ${h} * * *`, n.start, n.end, opens, closes],
        [n.timeZone, n.night, `${m} ${h} * * SUN`, n.start, n.end, opens, closes], // every night is a Sunday
      ] as const;
    }),
  );
  it.each(rows)(
    '%s %s: %s (4h) opens exactly once',
    (timeZone, _night, schedule, start, end, opens, closes) => {
      const w = new MaintenanceWindowSchedule({ schedule, duration: '4h', timeZone });
      expect(openedBetween(w, start, end)).toEqual([`${d(opens).toISOString()}→${d(closes).toISOString()}`]);
      // Seen from the day before, that night's occurrence is the next one (a week is never lost).
      const before = w.stateAt(new Date(Date.parse(start) - 1));
      expect(iso(before.next?.opensAt)).toBe(d(opens).toISOString());
      expect(iso(before.next?.closesAt)).toBe(d(closes).toISOString());
      // ... and the one after it is the next day's (or week's), at its usual local time.
      const after = w.stateAt(d(opens)).next;
      const gapDays = schedule.endsWith('SUN') ? 7 : 1;
      expect(Math.round((after!.opensAt.getTime() - Date.parse(start)) / 86_400_000)).toBe(gapDays);
    },
  );

  it('the issue’s cases: 02:30 New York opens once on 2026-03-08; the weekly 4 h one opens that night, not 2026-03-15', () => {
    const daily = new MaintenanceWindowSchedule({
      schedule: '30 2 * * *',
      duration: '1h',
      timeZone: 'America/New_York',
    });
    expect(iso(daily.stateAt(d('2026-03-08T05:00:00Z')).next?.opensAt)).toBe('2026-03-08T07:00:00.000Z');
    expect(daily.stateAt(d('2026-03-08T07:10:00Z'))).toMatchObject({
      open: true,
      current: { opensAt: d('2026-03-08T07:00:00Z'), closesAt: d('2026-03-08T07:30:00Z') }, // 03:00–03:30 EDT
    });
    const weekly = new MaintenanceWindowSchedule({
      schedule: '30 2 * * SUN',
      duration: '4h',
      timeZone: 'America/New_York',
    });
    expect(weekly.stateAt(d('2026-03-02T12:00:00Z')).next).toEqual({
      opensAt: d('2026-03-08T07:00:00Z'), // 03:00 EDT, the first instant after the gap
      closesAt: d('2026-03-08T10:30:00Z'), // 06:30 EDT: its usual local end time
    });
  });

  it('a window lying wholly inside the skipped hour opens at the first instant after it for its full duration', () => {
    const w = new MaintenanceWindowSchedule({
      schedule: '30 2 * * *',
      duration: '20m',
      timeZone: 'America/New_York',
    });
    expect(openedBetween(w, '2026-03-08T05:00:00Z', '2026-03-09T04:00:00Z', 5 * 60_000)).toEqual([
      '2026-03-08T07:00:00.000Z→2026-03-08T07:20:00.000Z',
    ]);
  });

  it('several openings inside the skipped hour are one occurrence', () => {
    const w = new MaintenanceWindowSchedule({
      schedule: '*/20 2 * * *',
      duration: '30m',
      timeZone: 'America/New_York',
    });
    expect(openedBetween(w, '2026-03-08T05:00:00Z', '2026-03-09T04:00:00Z', 5 * 60_000)).toEqual([
      '2026-03-08T07:00:00.000Z→2026-03-08T07:30:00.000Z',
    ]);
  });
});

describe('scans keep CronJob semantics on the DST nights', () => {
  it.each([
    ['America/New_York', '2026-03-08T05:00:00Z', '2026-03-09T06:30:00.000Z'],
    ['Europe/Berlin', '2026-03-28T23:00:00Z', '2026-03-30T00:30:00.000Z'],
  ])('a 02:30 scan in %s does not run on the spring-forward night', (tz, dayStart, next) => {
    const scan = new CronSchedule('30 2 * * *', tz);
    expect(iso(scan.next(d(dayStart)))).toBe(next);
    // Nothing is due that night, though a window with the same cron opens.
    const noon = new Date(Date.parse(dayStart) + 12 * 3_600_000);
    expect(dueRun(scan, noon, d(dayStart))).toBeUndefined();
    const window = new MaintenanceWindowSchedule({ schedule: '30 2 * * *', duration: '4h', timeZone: tz });
    expect(window.stateAt(d(dayStart)).next?.opensAt.getTime()).toBeLessThan(Date.parse(next));
  });

  it('a 01:30 scan in the repeated autumn hour runs once', () => {
    const scan = new CronSchedule('30 1 * * *', 'America/New_York');
    expect(iso(scan.next(d('2026-11-01T04:00:00Z')))).toBe('2026-11-01T05:30:00.000Z');
    expect(iso(scan.next(d('2026-11-01T05:30:00Z')))).toBe('2026-11-02T06:30:00.000Z');
  });
});

describe('blackout dates block any part of a window that falls on them', () => {
  // 23:00–03:00 Asia/Shanghai, nightly; 2026-06-06 is a blackout date.
  const eve = new MaintenanceWindowSchedule({
    schedule: '0 23 * * *',
    duration: '4h',
    timeZone: 'Asia/Shanghai',
    blackoutDates: ['2026-06-06'],
  });

  it('skips, whole, the occurrence that opens the evening before and runs into the blackout date', () => {
    // 2026-06-05 23:30 local: inside the occurrence 23:00 June 5 – 03:00 June 6.
    expect(eve.stateAt(d('2026-06-05T15:30:00Z'))).toEqual({
      open: false,
      skipped: {
        opensAt: d('2026-06-05T15:00:00Z'),
        closesAt: d('2026-06-05T19:00:00Z'),
        blackoutDate: '2026-06-06',
      },
      next: { opensAt: d('2026-06-07T15:00:00Z'), closesAt: d('2026-06-07T19:00:00Z') },
    });
    // Not cut at midnight either: closed at 23:59 and at 00:30 local.
    expect(eve.stateAt(d('2026-06-05T15:59:00Z')).open).toBe(false);
    expect(eve.stateAt(d('2026-06-05T16:30:00Z')).open).toBe(false);
    expect(openedBetween(eve, '2026-06-04T00:00:00Z', '2026-06-08T00:00:00Z')).toEqual([
      '2026-06-04T15:00:00.000Z→2026-06-04T19:00:00.000Z',
      '2026-06-07T15:00:00.000Z→2026-06-07T19:00:00.000Z',
    ]);
  });

  it('names the first skipped occurrence ahead while the window is open or closed', () => {
    const open = eve.stateAt(d('2026-06-04T16:00:00Z'));
    expect(open.open).toBe(true);
    expect(open.skipped).toMatchObject({ opensAt: d('2026-06-05T15:00:00Z'), blackoutDate: '2026-06-06' });
    expect(eve.stateAt(d('2026-06-07T16:00:00Z')).skipped).toBeUndefined();
  });

  it('leaves a window ending exactly at the blackout day’s midnight alone', () => {
    const w = new MaintenanceWindowSchedule({
      schedule: '0 20 * * *',
      duration: '4h',
      timeZone: 'Asia/Shanghai',
      blackoutDates: ['2026-06-06'],
    });
    expect(w.stateAt(d('2026-06-05T15:59:59Z'))).toMatchObject({
      open: true,
      skipped: { blackoutDate: '2026-06-06' },
    });
    expect(iso(w.stateAt(d('2026-06-05T12:00:00Z')).current?.opensAt)).toBe('2026-06-05T12:00:00.000Z');
  });

  it('names the first blackout date a multi-day occurrence touches (ranges inclusive)', () => {
    const w = new MaintenanceWindowSchedule({
      schedule: '0 1 * * SAT',
      duration: '48h',
      timeZone: 'UTC',
      blackoutDates: ['2026-06-08/2026-06-09', '2026-06-15'],
    });
    // Sat 6 June 01:00 – Mon 8 June 01:00 touches the 8th; Sat 13 – Mon 15 touches the 15th.
    const st = w.stateAt(d('2026-06-06T02:00:00Z'));
    expect(st).toMatchObject({ open: false, skipped: { blackoutDate: '2026-06-08' } });
    expect(iso(st.next?.opensAt)).toBe('2026-06-20T01:00:00.000Z');
    expect(w.blackoutDate({ opensAt: d('2026-06-13T01:00:00Z'), closesAt: d('2026-06-15T01:00:00Z') })).toBe(
      '2026-06-15',
    );
  });
});
