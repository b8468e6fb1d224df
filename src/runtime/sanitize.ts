/**
 * Error-text sanitizing for log lines, Event notes and condition messages (Flux `SanitizeError`).
 * Thin runtime-facing wrappers over src/util/sanitize.ts, which strips URL query strings
 * (signatures, STS tokens), credential key/value pairs, Authorization headers and
 * AccessKey-shaped values.
 */
import { STATUS_CODES } from 'node:http';
import { sanitizeErrorText } from '../util/sanitize.js';

/** Returns `text` with credentials, signatures and URL query strings redacted (no truncation). */
export function sanitizeText(text: string): string {
  return sanitizeErrorText(text, Number.MAX_SAFE_INTEGER);
}

/**
 * The sanitized message of any thrown value, truncated to `maxLength` characters (default 1024).
 * A Kubernetes API error (or an error caused by one) is {@link errorSummary}'s one line, never
 * client-node's `HTTP-Code: … Headers: {…}` dump.
 */
export function sanitizeError(err: unknown, maxLength = 1024): string {
  if (err instanceof Error && chain(err).some((e) => httpStatusOf(e) !== undefined))
    return errorSummary(err, maxLength);
  const raw = err instanceof Error ? err.message : String(err);
  return sanitizeErrorText(raw, maxLength);
}

/** Truncates `text` to at most `maxLength` characters, marking the cut with an ellipsis. */
export function truncate(text: string, maxLength: number): string {
  return text.length <= maxLength ? text : `${text.slice(0, Math.max(0, maxLength - 1))}…`;
}

/**
 * Truncates `text` to at most `maxBytes` UTF-8 bytes (Kubernetes validates string lengths in bytes,
 * e.g. Event `note` ≤ 1024), never splitting a character; a cut ends with `...`.
 */
export function truncateBytes(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text, 'utf8') <= maxBytes) return text;
  const suffix = '...';
  let out = '';
  let used = 0;
  for (const ch of text) {
    const n = Buffer.byteLength(ch, 'utf8');
    if (used + n > maxBytes - suffix.length) break;
    out += ch;
    used += n;
  }
  return out + suffix;
}

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
export function chain(err: Error): Error[] {
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
