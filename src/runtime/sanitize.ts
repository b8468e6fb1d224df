/**
 * Error-text sanitizing for log lines, Event notes and condition messages (Flux `SanitizeError`).
 * Thin runtime-facing wrappers over src/util/sanitize.ts, which strips URL query strings
 * (signatures, STS tokens), credential key/value pairs, Authorization headers and
 * AccessKey-shaped values.
 */
import { sanitizeErrorText } from '../util/sanitize.js';

/** Returns `text` with credentials, signatures and URL query strings redacted (no truncation). */
export function sanitizeText(text: string): string {
  return sanitizeErrorText(text, Number.MAX_SAFE_INTEGER);
}

/** The sanitized message of any thrown value, truncated to `maxLength` characters (default 1024). */
export function sanitizeError(err: unknown, maxLength = 1024): string {
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
