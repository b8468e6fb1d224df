/**
 * Small, total converters from raw Alibaba Cloud JSON (PascalCase, strings for numbers and
 * booleans, JSON in strings, `{ Instance: [...] }` wrappers) to the plain types of `types.ts`.
 * None of them throws, except {@link allPages} (documented there).
 */
import { CloudError } from './errors.js';
import type { CloudProduct, Tag } from './types.js';

export type Raw = Record<string, unknown>;

/** `v` if it is a plain object, else `{}`. */
export function obj(v: unknown): Raw {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Raw) : {};
}

/** `v` as an array of objects; a single object becomes `[v]`, anything else `[]`. */
export function arr(v: unknown): Raw[] {
  if (Array.isArray(v)) return v.map(obj);
  if (typeof v === 'object' && v !== null) return [v as Raw];
  return [];
}

/** ECS-style wrapped list: `wrapped(body.Instances, 'Instance')` for `{ Instances: { Instance: [...] } }`. */
export function wrapped(v: unknown, key: string): Raw[] {
  return arr(obj(v)[key]);
}

/** Non-empty string (numbers converted), else `undefined`. */
export function str(v: unknown): string | undefined {
  if (typeof v === 'string') return v === '' ? undefined : v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

/** Number from a number or a numeric string (`"3"`, `"100%"` → 100), else `undefined`. */
export function num(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v.trim().replace(/%$/, ''));
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

/** A count: {@link num} or 0. */
export function count(v: unknown): number {
  return num(v) ?? 0;
}

/** `true`/`"true"` (any case) → true, `false`/`"false"` → false, else `undefined`. */
export function bool(v: unknown): boolean | undefined {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') {
    const s = v.trim().toLowerCase();
    if (s === 'true') return true;
    if (s === 'false') return false;
  }
  return undefined;
}

/** Strings only (array elements that are not strings are dropped). */
export function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

/**
 * A JSON-object field that the API sends either as an object or as a JSON string. Invalid JSON
 * or a non-object JSON value is kept as `{ raw: <text or value> }`; absent/empty → `{}`.
 */
export function jsonObject(v: unknown): Raw {
  if (v === undefined || v === null || v === '') return {};
  if (typeof v === 'string') {
    try {
      const parsed: unknown = JSON.parse(v);
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return parsed as Raw;
      return { raw: parsed };
    } catch {
      return { raw: v };
    }
  }
  if (typeof v === 'object' && !Array.isArray(v)) return v as Raw;
  return { raw: v };
}

/** Any JSON value that may arrive as a JSON string; invalid JSON stays the string. */
export function jsonValue(v: unknown): unknown {
  if (typeof v !== 'string' || v === '') return v === '' ? undefined : v;
  try {
    return JSON.parse(v) as unknown;
  } catch {
    return v;
  }
}

/** `{ k: number }` from an object or JSON string of counts (string counts converted). */
export function countMap(v: unknown): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, x] of Object.entries(jsonObject(v))) {
    const n = num(x);
    if (n !== undefined) out[k] = n;
  }
  return out;
}

/** OOS tag map (object or JSON string) → `Record<string, string>`. */
export function tagMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(jsonObject(v))) {
    if (k === 'raw') continue;
    out[k] = typeof x === 'string' ? x : JSON.stringify(x);
  }
  return out;
}

/**
 * ECS tags → `Tag[]`. Accepts `{ Tag: [{ TagKey, TagValue }] }`, a bare array, and `Key`/`Value`
 * spellings.
 */
export function tagList(v: unknown): Tag[] {
  const items = Array.isArray(v) ? arr(v) : wrapped(v, 'Tag');
  const out: Tag[] = [];
  for (const t of items) {
    const key = str(t['TagKey']) ?? str(t['Key']);
    if (key !== undefined) out.push({ key, value: str(t['TagValue']) ?? str(t['Value']) ?? '' });
  }
  return out;
}

/** Base64 → UTF-8 text; absent → `undefined`. */
export function base64Text(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  return Buffer.from(v, 'base64').toString('utf8');
}

export { chunks } from '../util/chunks.js';

/** Copies only defined values (keeps optional fields absent rather than `undefined`). */
export function defined<T extends object>(o: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as T;
}

/** Upper bound on pages followed by one list call (guards against a token that never ends). */
export const MAX_PAGES = 10_000;

/** Code of the {@link CloudError} thrown when a paged list cannot be read to its end. */
export const PAGINATION_INCOMPLETE = 'PaginationIncomplete';

/** How far {@link allPages} follows `NextToken`. */
export interface PageLimit {
  /** Most pages read, ≥ 1. Default {@link MAX_PAGES}. */
  maxPages?: number;
  /**
   * What happens when `maxPages` pages have been read and the last still returned a token:
   * `'reject'` (default) rejects with `PaginationIncomplete`; `'stop'` resolves the items read so
   * far (for a list read newest first whose caller accepts the newest `maxPages` pages).
   */
  atMaxPages?: 'reject' | 'stop';
}

/**
 * Follows `NextToken` pages: calls `fetchPage(token)` (first with `undefined`) until it returns no
 * token, and resolves every page's items in order. `what` names the list call for errors.
 *
 * Never returns a list that skips pages: rejects with a transient `CloudError` (code
 * `PaginationIncomplete`, category `server`, message naming the action and the page count) when
 * the service repeats a token it already returned (the pages would loop) or, unless
 * `limit.atMaxPages` is `'stop'`, when `limit.maxPages` (default {@link MAX_PAGES}) pages have
 * been read and it still returns a token. With `'stop'` it resolves those first pages instead.
 * Rejections of `fetchPage` propagate unchanged.
 */
export async function allPages<T>(
  what: { product: CloudProduct; action: string },
  fetchPage: (nextToken: string | undefined) => Promise<{ items: T[]; nextToken?: string }>,
  limit: PageLimit = {},
): Promise<T[]> {
  const maxPages = limit.maxPages ?? MAX_PAGES;
  const out: T[] = [];
  const seen = new Set<string>();
  let token: string | undefined;
  for (let page = 1; ; page++) {
    const res = await fetchPage(token);
    out.push(...res.items);
    if (!res.nextToken) return out;
    if (seen.has(res.nextToken)) {
      throw incomplete(what, `page ${page} repeated a NextToken already followed; the list would loop`);
    }
    if (page >= maxPages) {
      if (limit.atMaxPages === 'stop') return out;
      throw incomplete(what, `still returned a NextToken after ${page} pages (limit ${maxPages})`);
    }
    seen.add(res.nextToken);
    token = res.nextToken;
  }
}

function incomplete(what: { product: CloudProduct; action: string }, detail: string): CloudError {
  return new CloudError({
    code: PAGINATION_INCOMPLETE,
    message: `${what.action} ${detail}; refusing to return a partial list`,
    action: what.action,
    product: what.product,
    kind: 'transient',
    category: 'server',
  });
}
