/**
 * Error-text sanitizer: everything that may reach a log line, a Kubernetes Event note or a
 * condition message goes through {@link sanitizeErrorText} first (Flux `SanitizeError` habit).
 *
 * It removes, in this order:
 * 1. values registered with {@link registerSecret} (configured AccessKey secret, resolved STS
 *    tokens; the most recent {@link MAX_REGISTERED_SECRETS}), verbatim and URL-encoded;
 * 2. URL query strings (`?Signature=...&AccessKeyId=...`), which carry V1 signatures and STS tokens;
 * 3. `key=value` / `"key":"value"` / `key: value` pairs whose key names a credential
 *    (`Signature`, `AccessKeyId`, `AccessKeySecret`, `SecurityToken`, `BearerToken`, `password`, ...);
 * 4. `Authorization:` header values and ACS3 `Credential=...,Signature=...` fragments;
 * 5. anything shaped like an Alibaba Cloud AccessKey ID (`LTAI` + 12 or more alphanumerics), an
 *    AccessKey secret (30 mixed-case alphanumerics) or an STS token (`CAIS...` or a long Base64 run);
 *
 * and finally truncates the result to a maximum length.
 */

/** Marker that replaces every removed value. */
export const REDACTED = '[REDACTED]';

/** Default maximum length (characters) of a sanitized text. */
export const DEFAULT_MAX_LENGTH = 1024;

/** Registered secrets shorter than this are ignored (they would redact ordinary words). */
const MIN_SECRET_LENGTH = 6;

/**
 * How many registered secret values are kept. Under STS rotation every refresh registers a new
 * token (and secret); the oldest are dropped, since an expired token is worthless and the
 * sanitizer's shape rules still catch `CAIS...` tokens.
 */
export const MAX_REGISTERED_SECRETS = 64;

/** Registered values, least recently registered first (Map insertion order = LRU order). */
const secrets = new Map<string, readonly string[]>();
/** How many registered values produce each literal pattern (a value and its URL-encoded form). */
const patternRefs = new Map<string, number>();
/** Every distinct pattern, longest first; maintained on insert/evict, never sorted per call. */
const patterns: string[] = [];

function addPattern(p: string): void {
  const refs = patternRefs.get(p) ?? 0;
  patternRefs.set(p, refs + 1);
  if (refs > 0) return;
  // First index whose pattern is shorter than `p` (binary search; stable among equal lengths).
  let lo = 0;
  let hi = patterns.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((patterns[mid] as string).length >= p.length) lo = mid + 1;
    else hi = mid;
  }
  patterns.splice(lo, 0, p);
}

function dropPattern(p: string): void {
  const refs = patternRefs.get(p) ?? 0;
  if (refs > 1) {
    patternRefs.set(p, refs - 1);
    return;
  }
  patternRefs.delete(p);
  const i = patterns.indexOf(p);
  if (i >= 0) patterns.splice(i, 1);
}

/**
 * Registers a secret value (AccessKey secret, STS security token, ...) so that
 * {@link sanitizeErrorText} removes it, verbatim and URL-encoded, wherever it appears. Empty,
 * missing and very short (< 6 characters) values are ignored. The registry is process-wide and
 * bounded: it keeps the {@link MAX_REGISTERED_SECRETS} most recently registered values;
 * registering a value again makes it the most recent. Cost: O(log n + n) for a new value,
 * O(1) for a re-registration. Never throws.
 */
export function registerSecret(value: string | undefined | null): void {
  if (typeof value !== 'string' || value.length < MIN_SECRET_LENGTH) return;
  const existing = secrets.get(value);
  if (existing) {
    secrets.delete(value);
    secrets.set(value, existing);
    return;
  }
  const encoded = encodeURIComponent(value);
  const own = encoded === value ? [value] : [value, encoded];
  secrets.set(value, own);
  for (const p of own) addPattern(p);
  while (secrets.size > MAX_REGISTERED_SECRETS) {
    const [oldest, its] = secrets.entries().next().value as [string, readonly string[]];
    secrets.delete(oldest);
    for (const p of its) dropPattern(p);
  }
}

/** Number of secret values currently registered (at most {@link MAX_REGISTERED_SECRETS}). */
export function registeredSecretCount(): number {
  return secrets.size;
}

/** Empties the secret registry (tests only). */
export function clearRegisteredSecrets(): void {
  secrets.clear();
  patternRefs.clear();
  patterns.length = 0;
}

const CREDENTIAL_KEYS =
  'signature|accesskeyid|access_key_id|accesskeysecret|access_key_secret|securitytoken|security_token|' +
  'bearertoken|bearer_token|x-acs-security-token|x-acs-accesskey-id|password|secret|token';

/** `Key=value`, `Key: value` (value up to a delimiter). */
const KEY_VALUE = new RegExp(
  `\\b(${CREDENTIAL_KEYS})(\\s*[=:]\\s*)(?!\\s*["'])(?!\\[REDACTED\\])[^\\s&,;"'}\\]]+`,
  'gi',
);
/** `"Key":"value"` / `'key': 'value'` (JSON or JS-ish). */
const QUOTED_KEY_VALUE = new RegExp(
  `(["']?)\\b(${CREDENTIAL_KEYS})\\1(\\s*[=:]\\s*)(["'])(?:\\\\.|(?!\\4).)*\\4`,
  'gi',
);
/** `Authorization: <anything to end of line>` or `authorization=...`. */
const AUTHORIZATION = /\b(authorization)(["']?\s*[:=]\s*["']?)[^\r\n"']*/gi;
/** ACS3 authorization fragments appearing without the header name. */
const ACS3 = /ACS3-HMAC-SHA256\s+[^\s"']+/g;
/** A `?` starting a query string: `?a=b&c=d` (anything up to whitespace/quote). */
const QUERY_STRING = /\?[^\s"'<>?]*=[^\s"'<>]*/g;
/** Alibaba Cloud AccessKey ID. */
const ACCESS_KEY_ID = /\bLTAI[A-Za-z0-9]{12,}\b/g;
/** STS security token (they start with `CAIS`). */
const STS_TOKEN = /\bCAIS[A-Za-z0-9+/=_-]{16,}/g;
/** 30 alphanumerics: the shape of an AccessKey secret (checked for mixed character classes). */
const SECRET_SHAPE = /\b[A-Za-z0-9]{30}\b/g;
/** Long Base64-ish runs (≥ 100 characters) mixing cases and digits: tokens, signatures. */
const LONG_TOKEN = /[A-Za-z0-9+/_-]{100,}={0,2}/g;

function mixedClasses(s: string): boolean {
  return /[a-z]/.test(s) && /[A-Z]/.test(s) && /[0-9]/.test(s);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Returns `text` with credentials, signatures and URL query strings removed, truncated to
 * `maxLength` characters (default 1024; the suffix `…[truncated]` marks a cut). Never throws;
 * non-string input is converted with `String()`.
 */
export function sanitizeErrorText(text: unknown, maxLength: number = DEFAULT_MAX_LENGTH): string {
  let s = typeof text === 'string' ? text : String(text);
  // Longest first, so a secret that contains another registered value is removed whole.
  for (const secret of patterns) {
    if (s.includes(secret)) s = s.replace(new RegExp(escapeRegExp(secret), 'g'), REDACTED);
  }
  s = s
    .replace(QUERY_STRING, `?${REDACTED}`)
    .replace(AUTHORIZATION, (_m, name: string, sep: string) => `${name}${sep}${REDACTED}`)
    .replace(ACS3, REDACTED)
    .replace(
      QUOTED_KEY_VALUE,
      (_m, q: string, key: string, sep: string, vq: string) => `${q}${key}${q}${sep}${vq}${REDACTED}${vq}`,
    )
    .replace(KEY_VALUE, (_m, key: string, sep: string) => `${key}${sep}${REDACTED}`)
    .replace(ACCESS_KEY_ID, REDACTED)
    .replace(STS_TOKEN, REDACTED)
    .replace(SECRET_SHAPE, (m) => (mixedClasses(m) ? REDACTED : m))
    .replace(LONG_TOKEN, (m) => (mixedClasses(m) ? REDACTED : m));
  if (s.length > maxLength) {
    const suffix = '…[truncated]';
    s = s.slice(0, Math.max(0, maxLength - suffix.length)) + suffix;
  }
  return s;
}
