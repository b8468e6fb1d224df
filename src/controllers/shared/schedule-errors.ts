/** Maps a {@link ScheduleError} to the Stalled reason a kind reports for it. */
import { InvalidScheduleReason, InvalidTimeZoneReason, InvalidWindowReason } from '../../api/conditions.js';
import type { ScheduleError } from './schedule.js';

/** `InvalidSchedule` (cron), `InvalidTimeZone` or `InvalidWindow` (duration, blackout dates). */
export function scheduleErrorReason(err: ScheduleError): string {
  switch (err.field) {
    case 'schedule':
      return InvalidScheduleReason;
    case 'timeZone':
      return InvalidTimeZoneReason;
    default:
      return InvalidWindowReason;
  }
}
