/**
 * The daemon's pino logger: JSON lines to stdout, ISO timestamps, string levels, credential
 * redaction and the standard `err` serializer. Per-reconcile child loggers carry `controller`,
 * `namespace`, `name` and `reconcileID` (see manager.ts).
 */
import { pino, stdSerializers, stdTimeFunctions } from 'pino';
import type { DestinationStream, Logger } from 'pino';

export type { Logger } from 'pino';

/** Log levels accepted by {@link createLogger} (pino's). */
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

const SECRET_KEYS = [
  'accessKeyId',
  'accessKeySecret',
  'securityToken',
  'bearerToken',
  'token',
  'password',
  'authorization',
  'Authorization',
];

/**
 * pino redaction paths. A `*` wildcard matches exactly one level, so every secret key is listed
 * at depths 0–3, plus the HTTP header forms; redaction is the backstop — never log SDK configs,
 * credentials or whole request objects in the first place.
 */
export const REDACT_PATHS: readonly string[] = [
  ...SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `*.*.*.${k}`]),
  'credential.*',
  '*.credential.*',
  'config.*.accessKeySecret',
  'headers.authorization',
  '*.headers.authorization',
  '*.*.headers.authorization',
  'headers["x-acs-security-token"]',
  '*.headers["x-acs-security-token"]',
  '*.*.headers["x-acs-security-token"]',
  'headers["x-acs-accesskey-id"]',
  '*.headers["x-acs-accesskey-id"]',
];

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Minimum level (default `info`; main.ts reads it from `--log-level` / `LOG_LEVEL`). */
  level?: LogLevel;
  /** Static fields on every line (default none: no pid/hostname, which the platform adds). */
  base?: Record<string, unknown>;
  /** Destination stream (default stdout, synchronous so a `process.exit` after logging loses nothing). */
  destination?: DestinationStream;
}

/**
 * Creates the root logger: JSON to stdout (or `destination`), `time` as ISO 8601, `level` as a
 * string, `err` serialized with type/message/stack, credential fields redacted as `[REDACTED]`.
 * Throws pino's error for an unknown `level`.
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      base: opts.base ?? null,
      timestamp: stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: stdSerializers.err, error: stdSerializers.err },
      redact: { paths: [...REDACT_PATHS], censor: '[REDACTED]' },
    },
    opts.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
