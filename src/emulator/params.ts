import { ApiError, invalidParameter, missingParameter } from './errors.js';

/**
 * Typed access to the flattened RPC parameters of one request (query string plus form body),
 * following the openapi-core flattening rules: scalars `Key=v`, repeat lists `Key.N=v`,
 * object lists `Key.N.Sub=v`, and JSON-encoded ("shrink") parameters.
 */
export class Params {
  constructor(readonly raw: Readonly<Record<string, string>>) {}

  /** The value, or undefined when absent or empty. */
  str(name: string): string | undefined {
    const v = this.raw[name];
    return v === undefined || v === '' ? undefined : v;
  }

  /** The value; throws `MissingParameter` (400) when absent or empty. */
  required(name: string): string {
    const v = this.str(name);
    if (v === undefined) throw missingParameter(name);
    return v;
  }

  /** Value constrained to `allowed`; throws `InvalidParameter` otherwise. */
  oneOf<T extends string>(name: string, allowed: readonly T[], def?: T): T | undefined {
    const v = this.str(name);
    if (v === undefined) return def;
    const hit = allowed.find((a) => a.toLowerCase() === v.toLowerCase());
    if (!hit) throw invalidParameter(name, `expected one of ${allowed.join(', ')}`);
    return hit;
  }

  /** Integer value; throws `InvalidParameter` when not an integer or outside [min, max]. */
  int(name: string, opts: { min?: number; max?: number } = {}): number | undefined {
    const v = this.str(name);
    if (v === undefined) return undefined;
    if (!/^-?\d+$/.test(v)) throw invalidParameter(name, 'not an integer');
    const n = Number(v);
    if (opts.min !== undefined && n < opts.min) throw invalidParameter(name, `must be >= ${opts.min}`);
    if (opts.max !== undefined && n > opts.max) throw invalidParameter(name, `must be <= ${opts.max}`);
    return n;
  }

  /** Boolean value (`true`/`false`, case-insensitive). */
  bool(name: string): boolean | undefined {
    const v = this.str(name);
    if (v === undefined) return undefined;
    if (/^true$/i.test(v)) return true;
    if (/^false$/i.test(v)) return false;
    throw invalidParameter(name, 'not a boolean');
  }

  /** JSON-decoded value; throws `InvalidParameter` when not valid JSON. */
  json(name: string): unknown {
    const v = this.str(name);
    if (v === undefined) return undefined;
    try {
      return JSON.parse(v) as unknown;
    } catch {
      throw invalidParameter(name, 'not valid JSON');
    }
  }

  /** JSON object (map) value; throws `InvalidParameter` when not a JSON object. */
  jsonObject(name: string): Record<string, unknown> | undefined {
    const v = this.json(name);
    if (v === undefined) return undefined;
    if (typeof v !== 'object' || v === null || Array.isArray(v))
      throw invalidParameter(name, 'not a JSON object');
    return v as Record<string, unknown>;
  }

  /** JSON array of strings; throws `InvalidParameter` when not one or longer than `max`. */
  jsonStringArray(name: string, max?: number): string[] | undefined {
    const v = this.json(name);
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
      throw invalidParameter(name, 'not a JSON array of strings');
    }
    if (max !== undefined && v.length > max) throw invalidParameter(name, `at most ${max} items`);
    return v as string[];
  }

  /** Repeat list `Name.1`, `Name.2`, … in index order. */
  list(name: string): string[] {
    const out: Array<[number, string]> = [];
    const re = new RegExp(`^${name.replace(/\./g, '\\.')}\\.(\\d+)$`);
    for (const [k, v] of Object.entries(this.raw)) {
      const m = re.exec(k);
      if (m) out.push([Number(m[1]), v]);
    }
    return out.sort((a, b) => a[0] - b[0]).map(([, v]) => v);
  }

  /** Object list `Name.N.Sub` → array of `{ Sub: value }` in index order. */
  objList(name: string): Array<Record<string, string>> {
    const byIndex = new Map<number, Record<string, string>>();
    const re = new RegExp(`^${name.replace(/\./g, '\\.')}\\.(\\d+)\\.(.+)$`);
    for (const [k, v] of Object.entries(this.raw)) {
      const m = re.exec(k);
      if (!m) continue;
      const i = Number(m[1]);
      const obj = byIndex.get(i) ?? {};
      obj[m[2] as string] = v;
      byIndex.set(i, obj);
    }
    return [...byIndex.entries()].sort((a, b) => a[0] - b[0]).map(([, o]) => o);
  }
}

/** Page size limits of one action: `[min, max]`, default, and whether values below min are clamped. */
export interface PageLimits {
  min: number;
  max: number;
  def: number;
  /** ECS DescribeInstances raises values below 10 to 10 instead of rejecting them. */
  clampLow?: boolean;
}

/** One page of a list plus the token for the next page ('' on the last page). */
export interface Page<T> {
  items: T[];
  nextToken: string;
  maxResults: number;
  total: number;
}

/**
 * Pages `all` by `NextToken`/`MaxResults`. The token is opaque (base64url of the offset and the
 * action). Throws `InvalidParameter` for MaxResults outside the limits or a malformed/foreign
 * NextToken.
 */
export function paginate<T>(p: Params, all: T[], limits: PageLimits, scope: string): Page<T> {
  let max = p.int('MaxResults');
  if (max === undefined) max = limits.def;
  if (max < limits.min) {
    if (limits.clampLow && max >= 1) max = limits.min;
    else throw invalidParameter('MaxResults', `must be between ${limits.min} and ${limits.max}`);
  }
  if (max > limits.max)
    throw invalidParameter('MaxResults', `must be between ${limits.min} and ${limits.max}`);
  let offset = 0;
  const token = p.str('NextToken');
  if (token !== undefined) offset = decodeToken(token, scope);
  const items = all.slice(offset, offset + max);
  const next = offset + max < all.length ? encodeToken(offset + max, scope) : '';
  return { items, nextToken: next, maxResults: max, total: all.length };
}

function encodeToken(offset: number, scope: string): string {
  return Buffer.from(`${scope}:${offset}`).toString('base64url');
}

function decodeToken(token: string, scope: string): number {
  const s = Buffer.from(token, 'base64url').toString('utf8');
  const m = /^(.+):(\d+)$/.exec(s);
  if (!m || m[1] !== scope) {
    throw new ApiError(400, 'InvalidParameter', 'The specified parameter "NextToken" is not valid.');
  }
  return Number(m[2]);
}
