/**
 * Cron schedules in IANA time zones and maintenance-window occurrences, for every kind that acts
 * on a schedule or only inside a window (PatchPolicy today; AppRelease and EcsExtension updates may
 * be gated by a MaintenanceWindow later). Pure: time is always passed in.
 *
 * Semantics follow Kubernetes CronJob (robfig/cron v3 `SpecSchedule.Next` with `spec.timeZone`):
 * - 5-field cron (minute hour day-of-month month day-of-week) or one of the macros `@yearly`,
 *   `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`; day-of-week 0–6 (Sunday 0).
 * - Spring forward: a wall-clock time that does not exist that day (02:30 in America/New_York on
 *   the second Sunday of March) does not fire that day, as CronJob skips it. croner would run it
 *   at 03:00; those shifted runs are dropped here.
 * - Fall back: a time in the repeated hour fires once (the first, daylight-time instance).
 *   CronJob fires twice there; running maintenance twice is never wanted, so this deviates.
 * - Missed runs: only the latest missed run is due, never a burst (CronJob with
 *   `startingDeadlineSeconds` of one period): see {@link dueRun}.
 */
import { Cron } from 'croner';
import parseDuration from 'parse-duration';

/** Which part of a schedule is invalid. */
export type ScheduleField = 'schedule' | 'timeZone' | 'duration' | 'blackoutDates';

/** A schedule the controller cannot use (the CRD's CEL rules catch most of these at admission). */
export class ScheduleError extends Error {
  constructor(
    readonly field: ScheduleField,
    message: string,
  ) {
    super(message);
    this.name = 'ScheduleError';
  }
}

const MACROS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

/** Looks up `timeZone` in the runtime's IANA database. @throws ScheduleError when unknown. */
export function checkTimeZone(timeZone: string): void {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
  } catch {
    throw new ScheduleError(
      'timeZone',
      `unknown time zone ${JSON.stringify(timeZone)}: use an IANA name such as Asia/Shanghai or UTC`,
    );
  }
}

/** The local calendar date `YYYY-MM-DD` of `at` in `timeZone`. */
export function localDate(at: Date, timeZone: string): string {
  return new Intl.DateTimeFormat('en-CA', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  }).format(at);
}

/** Iteration cap when skipping DST-shifted or blacked-out runs (about 3 years of daily runs). */
const MAX_STEPS = 1100;

/** A 5-field cron schedule in an IANA time zone; see the module comment for its semantics. */
export class CronSchedule {
  private readonly cron: Cron;

  /**
   * @param schedule 5-field cron or a macro, e.g. `0 3 * * *`, `0 1 * * SAT`, `@daily`.
   * @param timeZone IANA time zone name; default `UTC`.
   * @throws ScheduleError (`schedule` or `timeZone`) with a readable message.
   */
  constructor(
    readonly schedule: string,
    readonly timeZone = 'UTC',
  ) {
    checkTimeZone(timeZone);
    const trimmed = schedule.trim();
    const pattern = MACROS[trimmed.toLowerCase()] ?? trimmed;
    if (pattern.split(/\s+/).length !== 5) {
      throw new ScheduleError(
        'schedule',
        `schedule ${JSON.stringify(schedule)} must have 5 fields (minute hour day-of-month month day-of-week), e.g. "0 3 * * *"`,
      );
    }
    try {
      this.cron = new Cron(pattern, { timezone: timeZone, paused: true });
    } catch (err) {
      const why = err instanceof Error ? err.message.replace(/^CronPattern:\s*/, '') : String(err);
      throw new ScheduleError('schedule', `schedule ${JSON.stringify(schedule)} is not valid cron: ${why}`);
    }
    if (!this.cron.nextRun(new Date(0))) {
      throw new ScheduleError('schedule', `schedule ${JSON.stringify(schedule)} never fires`);
    }
  }

  /** The first run strictly after `after`, or undefined when none within about 3 years. */
  next(after: Date): Date | undefined {
    let ref = after;
    for (let i = 0; i < MAX_STEPS; i++) {
      const run = this.cron.nextRun(ref);
      if (!run) return undefined;
      if (this.cron.match(run)) return run;
      ref = run; // a DST-shifted run (the wall-clock time did not exist): CronJob skips it
    }
    return undefined;
  }

  /** The latest run at or before `atOrBefore`, or undefined when none within about 3 years. */
  previous(atOrBefore: Date): Date | undefined {
    let ref = new Date(atOrBefore.getTime() + 1);
    for (let i = 0; i < MAX_STEPS; i++) {
      const [run] = this.cron.previousRuns(1, ref);
      if (!run) return undefined;
      if (this.cron.match(run)) return run;
      ref = run;
    }
    return undefined;
  }
}

/**
 * The run that is due now, CronJob style: the latest run at or before `now` that is later than
 * `since` (the last run handled, or the object's creation). Runs missed while the controller was
 * down collapse into this one (never a burst); it is always less than one period late, because a
 * later run would otherwise be the latest.
 * @returns the scheduled time of the due run, or undefined when nothing is due.
 */
export function dueRun(schedule: CronSchedule, now: Date, since: Date): Date | undefined {
  const run = schedule.previous(now);
  return run && run.getTime() > since.getTime() ? run : undefined;
}

/** A maintenance window: when it opens (cron), for how long, in which zone, and dates it never opens. */
export interface WindowSpec {
  /** 5-field cron: when the window opens. */
  schedule: string;
  /** Go duration, > 0 and ≤ 168h, e.g. `4h`. */
  duration: string;
  /** IANA time zone; default `UTC`. */
  timeZone?: string;
  /** `YYYY-MM-DD` or an inclusive range `YYYY-MM-DD/YYYY-MM-DD`, local dates in `timeZone`. */
  blackoutDates?: readonly string[];
}

/** One occurrence of a window. */
export interface WindowOccurrence {
  opensAt: Date;
  closesAt: Date;
}

/** Where `now` stands relative to a window. */
export interface WindowState {
  open: boolean;
  /** The occurrence `now` is inside (when open). */
  current?: WindowOccurrence;
  /** The next occurrence that opens after `now` (blackout dates skipped). */
  next?: WindowOccurrence;
}

/** Longest window duration accepted (7 days), milliseconds. */
export const MAX_WINDOW_MS = 7 * 24 * 3_600_000;

const DATE = /^\d{4}-\d{2}-\d{2}$/;

function parseBlackouts(list: readonly string[]): Array<[string, string]> {
  return list.map((entry): [string, string] => {
    const parts = entry.split('/');
    const from = parts[0] ?? '';
    const to = parts[1] ?? from;
    if (parts.length > 2 || !DATE.test(from) || !DATE.test(to) || from > to) {
      throw new ScheduleError(
        'blackoutDates',
        `blackout date ${JSON.stringify(entry)} must be YYYY-MM-DD or an inclusive range YYYY-MM-DD/YYYY-MM-DD`,
      );
    }
    return [from, to];
  });
}

/**
 * Occurrences of a {@link WindowSpec}. An occurrence opens at each cron run whose local date (in
 * the window's zone) is not a blackout date, and closes `duration` later.
 */
export class MaintenanceWindowSchedule {
  readonly cron: CronSchedule;
  /** Window length, milliseconds. */
  readonly durationMs: number;
  private readonly blackouts: Array<[string, string]>;

  /** @throws ScheduleError naming the invalid field. */
  constructor(readonly spec: WindowSpec) {
    this.cron = new CronSchedule(spec.schedule, spec.timeZone ?? 'UTC');
    const ms = parseDuration(spec.duration);
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0 || ms > MAX_WINDOW_MS) {
      throw new ScheduleError(
        'duration',
        `duration ${JSON.stringify(spec.duration)} must be greater than 0 and at most 168h (7 days)`,
      );
    }
    this.durationMs = ms;
    this.blackouts = parseBlackouts(spec.blackoutDates ?? []);
  }

  /** True when the occurrence opening at `opensAt` falls on a blackout date. */
  isBlackedOut(opensAt: Date): boolean {
    if (this.blackouts.length === 0) return false;
    const day = localDate(opensAt, this.cron.timeZone);
    return this.blackouts.some(([from, to]) => day >= from && day <= to);
  }

  /** The window's state at `now`; see {@link WindowState}. */
  stateAt(now: Date): WindowState {
    const state: WindowState = { open: false };
    let ref = now;
    for (let i = 0; i < MAX_STEPS; i++) {
      const run = this.cron.previous(ref);
      if (!run || now.getTime() - run.getTime() >= this.durationMs) break;
      if (!this.isBlackedOut(run)) {
        state.open = true;
        state.current = { opensAt: run, closesAt: new Date(run.getTime() + this.durationMs) };
        break;
      }
      ref = new Date(run.getTime() - 1);
    }
    let after = now;
    for (let i = 0; i < MAX_STEPS; i++) {
      const run = this.cron.next(after);
      if (!run) break;
      if (!this.isBlackedOut(run)) {
        state.next = { opensAt: run, closesAt: new Date(run.getTime() + this.durationMs) };
        break;
      }
      after = run;
    }
    return state;
  }
}
