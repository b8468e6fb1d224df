/**
 * The daemon's pino logger: JSON lines to stdout, ISO timestamps, string levels, credential
 * redaction and the standard `err` serializer — except for Kubernetes API errors, which become one
 * short line ({@link errorSummary}) instead of client-node's dump of the response headers and body.
 * Per-reconcile child loggers carry `controller`, `namespace`, `name` and `reconcileID` (see
 * manager.ts).
 */
import { STATUS_CODES } from 'node:http';
import { pino, stdSerializers, stdTimeFunctions } from 'pino';
import type { DestinationStream, Logger } from 'pino';
import { sanitizeText, truncate } from './sanitize.js';

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

/** Longest {@link errorSummary} by default, in characters. */
export const ERROR_SUMMARY_MAX_LENGTH = 300;

/**
 * The HTTP status of a Kubernetes API error: `code` of client-node's `ApiException` (a failed
 * request), or `statusCode` of a failed watch; undefined for anything else (network errors carry a
 * string `code` such as `ECONNREFUSED`).
 */
export function httpStatusOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { code, statusCode } = err as { code?: unknown; statusCode?: unknown };
  if (typeof code === 'number') return code;
  return typeof statusCode === 'number' ? statusCode : undefined;
}

/** `reason` and `message` of a Kubernetes `Status` body (client-node keeps it as a JSON string). */
function statusOf(body: unknown): { reason?: string; message?: string } {
  let parsed = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      // Not a Status (e.g. "404 page not found" for an unknown API group): its first line.
      return { message: body.trim().split('\n')[0] || undefined };
    }
  }
  if (typeof parsed !== 'object' || parsed === null) return {};
  const { reason, message } = parsed as { reason?: unknown; message?: unknown };
  return {
    ...(typeof reason === 'string' && reason ? { reason } : {}),
    ...(typeof message === 'string' && message ? { message } : {}),
  };
}

/** One link of an error chain: a Kubernetes API error's status, else the message (or code). */
function linkText(e: Error): string {
  const status = httpStatusOf(e);
  if (status !== undefined) {
    const { reason, message } = statusOf((e as { body?: unknown }).body);
    return `HTTP ${status} ${reason ?? STATUS_CODES[status] ?? ''}`.trim() + (message ? `: ${message}` : '');
  }
  const code = (e as { code?: unknown }).code;
  // An AggregateError (one per address tried) has no message of its own: its first error's.
  const inner = e instanceof AggregateError ? (e.errors as unknown[])[0] : undefined;
  return e.message || (inner instanceof Error ? inner.message : '') || (typeof code === 'string' ? code : '');
}

/**
 * The links of `err`'s cause chain (at most 4), up to and including the first Kubernetes API error
 * (its cause says nothing more).
 */
function chain(err: Error): Error[] {
  const links: Error[] = [];
  for (let e: unknown = err; e instanceof Error && links.length < 4; e = e.cause) {
    links.push(e);
    if (httpStatusOf(e) !== undefined) break;
  }
  return links;
}

/**
 * One short, sanitized line saying why `err` happened. A Kubernetes API error becomes
 * `HTTP <status> <reason>: <message of the Status>` (e.g. `HTTP 429 TooManyRequests: storage is
 * (re)initializing`) — never client-node's `HTTP-Code: … Headers: {…}` dump, also when it is the
 * cause of another error; a network error carries its cause (`fetch failed: connect ECONNREFUSED
 * 127.0.0.1:6443`). Whitespace is collapsed, credentials and URL query strings are removed, and
 * the result is cut to `maxLength` characters.
 */
export function errorSummary(err: unknown, maxLength = ERROR_SUMMARY_MAX_LENGTH): string {
  let text = String(err);
  if (err instanceof Error) {
    const parts: string[] = [];
    for (const link of chain(err)) {
      const t = linkText(link);
      if (t && !parts.some((p) => p.includes(t))) parts.push(t);
    }
    text = parts.join(': ') || err.name;
  }
  return truncate(sanitizeText(text.replace(/\s+/g, ' ').trim()), maxLength);
}

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
