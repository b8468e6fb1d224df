/**
 * The daemon's pino logger: JSON lines to stdout, ISO timestamps, string levels, credential
 * redaction and the standard `err` serializer — except for Kubernetes API errors, which become one
 * short line ({@link errorSummary}) instead of client-node's dump of the response headers and body.
 * Per-reconcile child loggers carry `controller`, `namespace`, `name` and `reconcileID` (see
 * manager.ts).
 */
import { pino, stdSerializers, stdTimeFunctions } from 'pino';
import type { DestinationStream, Logger } from 'pino';
import { chain, errorSummary, httpStatusOf, sanitizeText } from './sanitize.js';

export { ERROR_SUMMARY_MAX_LENGTH, errorSummary, httpStatusOf } from './sanitize.js';

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

/**
 * pino's `err` serializer, except for an HTTP error (client-node `ApiException`, failed watch) or
 * an error caused by one: `{type, code, message}` with {@link errorSummary}'s message — no headers,
 * body or generated-client stack; a wrapping error keeps its own stack.
 */
export function serializeError(err: unknown): unknown {
  if (!(err instanceof Error) || !chain(err).some((e) => httpStatusOf(e) !== undefined)) {
    return stdSerializers.err(err as Error);
  }
  const code = httpStatusOf(err);
  return code !== undefined
    ? { type: err.constructor.name, code, message: errorSummary(err) }
    : { type: err.constructor.name, message: errorSummary(err), stack: sanitizeText(err.stack ?? '') };
}

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
 * string, `err` serialized with type/message/stack ({@link serializeError}: one line for an HTTP
 * error), credential fields redacted as `[REDACTED]`.
 * Throws pino's error for an unknown `level`.
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      base: opts.base ?? null,
      timestamp: stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: serializeError, error: serializeError },
      redact: { paths: [...REDACT_PATHS], censor: '[REDACTED]' },
    },
    opts.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
