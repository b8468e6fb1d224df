/**
 * Cron schedules in IANA time zones and maintenance-window occurrences, for every kind that acts
 * on a schedule or only inside a window (PatchPolicy today; AppRelease and EcsExtension updates may
 * be gated by a MaintenanceWindow later). Pure: time is always passed in.
 *
 * {@link CronSchedule} (PatchPolicy scans) follows Kubernetes CronJob (robfig/cron v3
 * `SpecSchedule.Next` with `spec.timeZone`):
 * - 5-field cron (minute hour day-of-month month day-of-week) or one of the macros `@yearly`,
 *   `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`; day-of-week 0–6 (Sunday 0).
 * - Spring forward: a wall-clock time that does not exist that day (02:30 in America/New_York on
 *   the second Sunday of March) does not fire that day, as CronJob skips it. croner would run it
 *   at 03:00; those shifted runs are dropped here.
 * - Fall back: a time in the repeated hour fires once (the first, daylight-time instance).
 *   CronJob fires twice there; running maintenance twice is never wanted, so this deviates.
 * - Missed runs: only the latest missed run is due, never a burst (CronJob with
 *   `startingDeadlineSeconds` of one period): see {@link dueRun}.
 *
 * {@link MaintenanceWindowSchedule} deliberately departs from CronJob on the spring-forward night:
 * a window is never lost to the gap (it opens once, at the first instant after it, and keeps its
 * wall-clock end time), and a blackout date blocks every occurrence that touches it, not only the
 * ones that open on it. See the class comment.
 */
import { Cron } from 'croner';
import parseDuration from 'parse-duration';
import { toMetaTime } from '../../runtime/conditions.js';

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

const HOUR_MS = 3_600_000;

const wallFormats = new Map<string, Intl.DateTimeFormat>();

/**
 * The local wall-clock time of `at` in `timeZone`, as the epoch milliseconds those calendar fields
 * would have in UTC (so wall-clock arithmetic is plain addition, free of DST).
 */
export function wallClock(at: Date | number, timeZone: string): number {
  let format = wallFormats.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    wallFormats.set(timeZone, format);
  }
  const t = typeof at === 'number' ? at : at.getTime();
  const f: Record<string, number> = {};
  for (const part of format.formatToParts(t)) f[part.type] = Number(part.value);
  const fields = Date.UTC(f.year ?? 0, (f.month ?? 1) - 1, f.day, f.hour, f.minute, f.second);
  return fields + (((t % 1000) + 1000) % 1000);
}

/** UTC offset of `timeZone` at instant `t`, milliseconds (wall clock minus UTC). */
function offsetAt(t: number, timeZone: string): number {
  return wallClock(t, timeZone) - t;
}

/**
 * The instant a local wall-clock time names in `timeZone` (`wall` as from {@link wallClock}): the
 * earlier one when the autumn change repeats it; when spring-forward skips it, the first instant
 * after the gap (03:00 EDT for 02:30 in America/New_York on 2026-03-08), with `skipped` true.
 */
export function instantOf(wall: number, timeZone: string): { at: number; skipped: boolean } {
  // Offsets span UTC-12..UTC+14, and a zone changes offset at most once in such a stretch.
  const early = offsetAt(wall - 15 * HOUR_MS, timeZone);
  const late = offsetAt(wall + 15 * HOUR_MS, timeZone);
  const fits = [wall - early, wall - late].filter((t) => wallClock(t, timeZone) === wall);
  if (fits.length > 0) return { at: Math.min(...fits), skipped: false };
  // In a gap: the offset is `early` at lo and `late` at hi; find the first instant of `late`.
  let lo = Math.min(wall - early, wall - late);
  let hi = Math.max(wall - early, wall - late);
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (offsetAt(mid, timeZone) === early) lo = mid;
    else hi = mid;
  }
  return { at: hi, skipped: true };
}

/** A 5-field cron schedule in an IANA time zone; see the module comment for its semantics. */
export class CronSchedule {
  private readonly cron: Cron;
  /** The 5-field pattern (a macro expanded). */
  readonly pattern: string;

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
    this.pattern = pattern;
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

/** One occurrence of a window: open from `opensAt` (inclusive) to `closesAt` (exclusive). */
export interface WindowOccurrence {
  opensAt: Date;
  closesAt: Date;
}

/** An occurrence that does not open because it touches a blackout date. */
export interface SkippedOccurrence extends WindowOccurrence {
  /** The first blackout date (local, `YYYY-MM-DD`) the occurrence touches. */
  blackoutDate: string;
}

/** Where `now` stands relative to a window. */
export interface WindowState {
  open: boolean;
  /** The occurrence `now` is inside (when open). */
  current?: WindowOccurrence;
  /** The next occurrence that opens after `now` (blackout dates skipped). */
  next?: WindowOccurrence;
  /**
   * An occurrence skipped for a blackout date: when closed, the one that would be open at `now`
   * (the window is held: `skipped.opensAt <= now`); otherwise the first one between `now` and
   * `next`. Absent when no blackout date holds the window back.
   */
  skipped?: SkippedOccurrence;
}

/** True when `now` is inside the skipped occurrence (the window is held by its blackout date). */
export function isHeld(skipped: SkippedOccurrence, now: Date): boolean {
  return skipped.opensAt.getTime() <= now.getTime();
}

/**
 * Names the blackout date that holds a window back, for status messages: `held for blackout date
 * D (the occurrence from A to B is skipped)` while `now` is inside the skipped occurrence, else
 * `the occurrence opening at A is skipped for blackout date D`.
 */
export function describeSkipped(skipped: SkippedOccurrence, now: Date): string {
  const opens = toMetaTime(skipped.opensAt);
  return isHeld(skipped, now)
    ? `held for blackout date ${skipped.blackoutDate} (the occurrence from ${opens} to ${toMetaTime(skipped.closesAt)} is skipped)`
    : `the occurrence opening at ${opens} is skipped for blackout date ${skipped.blackoutDate}`;
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
 * Occurrences of a {@link WindowSpec}. The cron is read on the window time zone's wall clock; each
 * run opens an occurrence that stays open for `duration` (elapsed time), except:
 *
 * - **Spring forward** (unlike CronJob, whose run is skipped, and unlike {@link CronSchedule}):
 *   an opening time the clock jumps over opens once, at the first instant after the gap, and
 *   keeps its wall-clock end time (opening + duration on the local clock): 02:30 + 4h in
 *   America/New_York on 2026-03-08 opens at 03:00 EDT and closes at 06:30 EDT, so it is shorter by
 *   the part of it the clock skipped. When that end is skipped too (a window shorter than the jump
 *   that lies wholly inside it), it opens at the first instant after the gap for its full
 *   duration. Runs that land on the same instant (several openings inside one gap) are one
 *   occurrence, closing at the latest of their ends.
 * - **Fall back**: an opening time in the repeated hour opens once, at its first (daylight-time)
 *   instance, as {@link CronSchedule}.
 * - **Blackout dates** block every occurrence that touches them: one whose open span
 *   [opensAt, closesAt) includes any moment of a blackout date (local dates in the window's time
 *   zone) does not open at all, so a window opening at 23:00 the evening before a blackout date
 *   is skipped whole rather than cut at midnight: an install batch started inside a cut window
 *   could still run, and reboot, into the blackout day. A window ending exactly at midnight does
 *   not touch the next day.
 */
export class MaintenanceWindowSchedule {
  readonly cron: CronSchedule;
  /** Window length, milliseconds. */
  readonly durationMs: number;
  private readonly blackouts: Array<[string, string]>;
  /** The cron evaluated on wall-clock times (see {@link wallClock}): UTC has no DST. */
  private readonly wall: Cron;

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
    this.wall = new Cron(this.cron.pattern, { timezone: 'UTC', paused: true });
  }

  private get timeZone(): string {
    return this.cron.timeZone;
  }

  /**
   * The first blackout date (local `YYYY-MM-DD`) that any moment of `occ` falls on, or undefined
   * when the occurrence may open.
   */
  blackoutDate(occ: WindowOccurrence): string | undefined {
    if (this.blackouts.length === 0) return undefined;
    const first = localDate(occ.opensAt, this.timeZone);
    const last = localDate(new Date(occ.closesAt.getTime() - 1), this.timeZone);
    let found: string | undefined;
    for (const [from, to] of this.blackouts) {
      if (from > last || to < first) continue;
      const day = from > first ? from : first;
      if (found === undefined || day < found) found = day;
    }
    return found;
  }

  /** The occurrence opened by the wall-clock cron run `wallRun` (DST as in the class comment). */
  private occurrence(wallRun: number): WindowOccurrence {
    const open = instantOf(wallRun, this.timeZone);
    let closes = open.at + this.durationMs;
    if (open.skipped) {
      const end = instantOf(wallRun + this.durationMs, this.timeZone).at; // keeps its end time
      if (end > open.at) closes = end;
    }
    return { opensAt: new Date(open.at), closesAt: new Date(closes) };
  }

  /** Occurrences opening after `after`, earliest first (runs opening at one instant merged). */
  private *occurrencesAfter(after: number): Generator<WindowOccurrence> {
    // Openings never come before their wall-clock time's first instance, so no earlier run opens
    // after `after`; later runs in a repeated hour may still open before it (and are passed over).
    let ref = new Date(wallClock(after, this.timeZone));
    let pending: WindowOccurrence | undefined;
    for (let i = 0; i < MAX_STEPS; i++) {
      const run = this.wall.nextRun(ref);
      if (!run) break;
      ref = run;
      const occ = this.occurrence(run.getTime());
      if (occ.opensAt.getTime() <= after) continue;
      if (pending && pending.opensAt.getTime() !== occ.opensAt.getTime()) yield pending;
      else if (pending && pending.closesAt > occ.closesAt) occ.closesAt = pending.closesAt;
      pending = occ;
    }
    if (pending) yield pending;
  }

  /**
   * Occurrences opening at or before `atOrBefore` and less than `duration` before it, latest
   * first (runs opening at one instant merged).
   */
  private *occurrencesBefore(atOrBefore: number): Generator<WindowOccurrence> {
    // A run later on the wall clock than `atOrBefore` opens at or before it only when the clock was
    // set back less than the size of that change ago (the repeated hour): start that much later.
    const setBack = offsetAt(atOrBefore - 3 * HOUR_MS, this.timeZone) - offsetAt(atOrBefore, this.timeZone);
    let ref = new Date(wallClock(atOrBefore, this.timeZone) + Math.max(0, setBack) + 1);
    let pending: WindowOccurrence | undefined;
    for (let i = 0; i < MAX_STEPS; i++) {
      const [run] = this.wall.previousRuns(1, ref);
      if (!run) break;
      ref = run;
      const occ = this.occurrence(run.getTime());
      const opens = occ.opensAt.getTime();
      if (opens > atOrBefore) continue;
      if (atOrBefore - opens >= this.durationMs) break;
      if (pending && pending.opensAt.getTime() !== opens) yield pending;
      else if (pending && pending.closesAt > occ.closesAt) occ.closesAt = pending.closesAt;
      pending = occ;
    }
    if (pending) yield pending;
  }

  /** The window's state at `now`; see {@link WindowState}. */
  stateAt(now: Date): WindowState {
    const state: WindowState = { open: false };
    const t = now.getTime();
    let held: SkippedOccurrence | undefined;
    for (const occ of this.occurrencesBefore(t)) {
      if (occ.closesAt.getTime() <= t) continue;
      const blackoutDate = this.blackoutDate(occ);
      if (blackoutDate === undefined) {
        state.open = true;
        state.current = occ;
        break;
      }
      held ??= { ...occ, blackoutDate };
    }
    if (held && !state.open) state.skipped = held;
    for (const occ of this.occurrencesAfter(t)) {
      const blackoutDate = this.blackoutDate(occ);
      if (blackoutDate === undefined) {
        state.next = occ;
        break;
      }
      state.skipped ??= { ...occ, blackoutDate };
    }
    return state;
  }
}
