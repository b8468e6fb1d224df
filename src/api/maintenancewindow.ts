/**
 * `MaintenanceWindow` (ecsops.io/v1alpha1): "changes may start at cron S, for duration D, in time
 * zone Z, except on these dates". Referenced by any number of PatchPolicies
 * (`spec.install.maintenanceWindowRef`), so one object plans many policies; its status shows
 * whether it is open and when it next opens and closes. The same fields form a PatchPolicy's
 * inline `spec.install.maintenanceWindow`.
 */
import { Type, type Static } from '@sinclair/typebox';
import { commonStatusProperties, type ObjectMeta } from './common.js';

export const MAINTENANCE_WINDOW_KIND = 'MaintenanceWindow';
export const MAINTENANCE_WINDOW_PLURAL = 'maintenancewindows';

/** Longest window accepted at admission (Go duration for CEL `duration()`). */
export const MAX_WINDOW_DURATION = '168h';

const macro = '@(yearly|annually|monthly|weekly|daily|midnight|hourly)';
const months = 'JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC';
const days = 'SUN|MON|TUE|WED|THU|FRI|SAT';
/** One cron field: comma list of `*`, `v`, `v-v`, each optionally `/step` (no backslashes: CEL-safe). */
function cronField(value: string, question = false): string {
  const item = `([*]${question ? '|[?]' : ''}|(${value})(-(${value}))?)([/][0-9]+)?`;
  return `${item}(,${item})*`;
}
/**
 * RE2 pattern of a 5-field cron with Kubernetes CronJob's ranges (minute 0-59, hour 0-23,
 * day-of-month 1-31, month 1-12 or JAN-DEC, day-of-week 0-6 or SUN-SAT), or a macro.
 */
export const CRON_PATTERN =
  `(?i)^[ ]*(${macro}|` +
  [
    cronField('[0-5]?[0-9]'),
    cronField('[01]?[0-9]|2[0-3]'),
    cronField('[1-9]|[12][0-9]|3[01]', true),
    cronField(`[1-9]|1[0-2]|${months}`),
    cronField(`[0-6]|${days}`, true),
  ].join('[ ]+') +
  ')[ ]*$';

/** `schedule`: cron syntax judged at admission (CEL) with a readable message. */
export function CronScheduleSchema(field: string, description: string) {
  return Type.String({
    description,
    minLength: 1,
    maxLength: 128,
    'x-kubernetes-validations': [
      {
        rule: `self.matches('${CRON_PATTERN}')`,
        message: `${field} must be a 5-field cron expression (minute hour day-of-month month day-of-week) such as "0 3 * * *" or "0 1 * * SAT", or a macro such as @daily`,
      },
    ],
  });
}

/**
 * `timeZone`: an IANA name the API server's time-zone database knows (CEL `getHours(tz)` fails
 * for unknown names, and the API server reports "unknown time zone X"), as CronJob's timeZone.
 */
export function TimeZoneSchema(field: string) {
  return Type.String({
    description: `IANA time zone name the ${field.replace(/\.timeZone$/, '')} schedule is read in, e.g. Asia/Shanghai (default UTC).`,
    default: 'UTC',
    minLength: 1,
    maxLength: 64,
    pattern: '^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$',
    'x-kubernetes-validations': [
      {
        rule: "self != 'Local' && timestamp('2000-01-01T00:00:00Z').getHours(self) >= 0",
        message: `${field} must be an IANA time zone name such as Asia/Shanghai or UTC`,
      },
    ],
  });
}

/** `duration` of a window: a Go duration > 0 and ≤ 168h. */
export const WindowDurationSchema = Type.String({
  description:
    'How long each occurrence stays open (Go duration, e.g. 4h; more than 0, at most 168h = 7 days).',
  minLength: 1,
  maxLength: 32,
  'x-kubernetes-validations': [
    {
      rule: `duration(self) > duration('0s') && duration(self) <= duration('${MAX_WINDOW_DURATION}')`,
      message: `duration must be greater than 0 and at most ${MAX_WINDOW_DURATION} (7 days), e.g. 4h`,
    },
  ],
});

const DATE = '[0-9]{4}-[0-9]{2}-[0-9]{2}';

export const BlackoutDatesSchema = Type.Array(
  Type.String({
    pattern: `^${DATE}(/${DATE})?$`,
    maxLength: 21,
    'x-kubernetes-validations': [
      {
        rule: "self.split('/').all(d, timestamp(d + 'T00:00:00Z') > timestamp('1970-01-01T00:00:00Z'))",
        message: 'blackoutDates entries must be calendar dates (YYYY-MM-DD)',
      },
      {
        rule: "!self.contains('/') || self.split('/')[0] <= self.split('/')[1]",
        message: 'a blackoutDates range YYYY-MM-DD/YYYY-MM-DD must not end before it starts',
      },
    ],
  }),
  {
    description:
      'Local dates (in timeZone) no occurrence may touch: YYYY-MM-DD or an inclusive range YYYY-MM-DD/YYYY-MM-DD. An occurrence any part of which falls on a listed date is skipped whole (one opening at 23:00 the evening before is skipped too), and the status names the date.',
    maxItems: 366,
  },
);

/** Fields of a window, shared by MaintenanceWindow.spec and PatchPolicy's inline window. */
export function windowProperties(prefix: string) {
  return {
    schedule: CronScheduleSchema(
      `${prefix}.schedule`,
      'When the window opens: 5-field cron (minute hour day-of-month month day-of-week) in timeZone, e.g. "0 1 * * SAT". DST: an opening time skipped by spring-forward opens once, at the first instant after the gap, and keeps its local end time (opening + duration on the wall clock); a time in the repeated autumn hour opens once.',
    ),
    duration: WindowDurationSchema,
    timeZone: Type.Optional(TimeZoneSchema(`${prefix}.timeZone`)),
    blackoutDates: Type.Optional(BlackoutDatesSchema),
  };
}

export const MaintenanceWindowSpecSchema = Type.Object(windowProperties('spec'), {
  description: 'When changes may start: cron opening time, duration, time zone and blackout dates.',
});
export type MaintenanceWindowSpec = Static<typeof MaintenanceWindowSpecSchema>;

/** An occurrence skipped for a blackout date (MaintenanceWindow status and PatchPolicy status.window). */
export const SkippedOccurrenceSchema = Type.Object(
  {
    opensAt: Type.String({
      format: 'date-time',
      description: 'When the skipped occurrence would have opened.',
    }),
    closesAt: Type.String({ format: 'date-time', description: 'When it would have closed.' }),
    blackoutDate: Type.String({
      description: 'The blackout date (local YYYY-MM-DD) it touches: why it does not open.',
      maxLength: 10,
    }),
  },
  {
    description:
      'An occurrence that does not open because part of it falls on a blackout date: the one that would be open now (the window is held), else the first one before the next opening.',
  },
);

export const MaintenanceWindowStatusSchema = Type.Object({
  ...commonStatusProperties,
  open: Type.Optional(Type.Boolean({ description: 'True while an occurrence is open.' })),
  opensAt: Type.Optional(
    Type.String({ format: 'date-time', description: 'When the open occurrence opened (only while open).' }),
  ),
  nextOpen: Type.Optional(
    Type.String({
      format: 'date-time',
      description: 'When the next occurrence opens (blackout dates skipped).',
    }),
  ),
  nextClose: Type.Optional(
    Type.String({
      format: 'date-time',
      description: 'When the open occurrence closes, or else when the next one will close.',
    }),
  ),
  skipped: Type.Optional(SkippedOccurrenceSchema),
});
export type MaintenanceWindowStatus = Static<typeof MaintenanceWindowStatusSchema>;

export interface MaintenanceWindow {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: MaintenanceWindowSpec;
  status?: MaintenanceWindowStatus;
}
