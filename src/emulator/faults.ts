import { mulberry32 } from './rng.js';
import { OWNER_UID_TAG } from './scope.js';

/** Faults for one action (or `*` for every action). Rates are probabilities in 0..1. */
export interface ActionFaults {
  /** Probability of answering `Throttling.User` (HTTP 400). */
  throttleRate?: number;
  /** Probability of answering a 5xx error. */
  errorRate?: number;
  /** Code used for injected 5xx errors: `ServiceUnavailable` (503, default) or `InternalError` (500). */
  errorCode?: 'ServiceUnavailable' | 'InternalError';
  /** Added latency before the response, in real milliseconds (not scaled by timeScale). */
  latencyMs?: number;
  /**
   * Spread of the added latency: each request waits `latencyMs` ± a uniform draw of up to this
   * many milliseconds (never below 0). One extra PRNG draw per request, only when set.
   */
  latencyJitterMs?: number;
  /**
   * Probability that the TCP connection is reset before the action runs (the client sees
   * ECONNRESET / "socket hang up" and nothing happened in the cloud).
   */
  resetRate?: number;
  /**
   * Probability that the action runs and then the connection is reset instead of the response
   * (the client sees ECONNRESET although the cloud did the work, as when a response is lost on the
   * way back): the case a ClientToken exists for.
   */
  responseLossRate?: number;
}

/**
 * Fault-injection configuration set through the control API. Decisions draw from a PRNG seeded
 * with `seed` (default 1), one draw per API request, so the same request sequence gets the same
 * faults in every run.
 */
export interface FaultConfig {
  seed?: number;
  /** Keyed by action name (`DescribeInstances`) or `*`; an action's own entry wins over `*`. */
  actions?: Record<string, ActionFaults>;
  /**
   * When set, throttled responses carry `x-acs-retry-after: <milliseconds>` (the real service
   * mostly sends none). Milliseconds because that is how Alibaba's own SDK reads the header:
   * openapi-core `getThrottlingTimeLeft` → `ThrottlingError.retryAfter`, used by
   * @darabonba/typescript `getBackoffDelay` as a delay in ms.
   */
  retryAfterMs?: number;
  /** Instances whose per-instance work (OOS loop items, Cloud Assistant commands) fails, with the reason. */
  failInstances?: Record<string, string>;
  /**
   * Scripted faults, consumed in order: the next `count` requests of `action` (or `*`) that match
   * the rule's `match` scope get the rule's `kind` of fault (an error body, a connection reset, a
   * lost response or a hold), after `skip` matching requests pass. Used to reproduce exact
   * sequences (three expired STS tokens in a row, a permission denied until RAM is fixed, one lost
   * StartExecution response for one instance) that rates cannot.
   */
  failNext?: ScriptedError[];
  /**
   * Quota mode, the way the real service throttles: at most this many requests per sliding second
   * (1,000 ms) are admitted per action, keyed by action name or `*` (an action's own entry wins;
   * `*` gives every action its own budget of that size). Arrivals beyond it are answered
   * `Throttling.User` (HTTP 400, `x-acs-retry-after` when `retryAfterMs` is set) and do not use up
   * the budget. Checked after `failNext` and before the random rates; no PRNG draw.
   */
  quota?: Record<string, number>;
}

/** Kinds of {@link ScriptedError}. */
export type ScriptedFaultKind = 'error' | 'reset' | 'responseLoss' | 'hold';

/**
 * Scope of a {@link ScriptedError}: every given selector must match the request (see
 * `requestScope` in scope.ts for where instance IDs and tags are read from).
 */
export interface FaultMatch {
  /** The request names this instance (`InstanceId`, `InstanceId.N`, `InstanceIds`, `ResourceId.N`, `ResourceIds`, StartExecution `targets.ResourceIds`). */
  instanceId?: string;
  /** The request carries this tag (ECS `Tag.N.Key`/`Value`, OOS `Tags` JSON); without `value` any value matches. */
  tag?: { key: string; value?: string };
  /** The request carries the owner tag `ecsops.io/owner-uid` with this value. */
  ownerUid?: string;
  /**
   * The request's `Parameters` JSON has this top-level key with this value (OOS StartExecution
   * `action: install`, ECS RunCommand `action: rollback`), to pick one kind of start.
   */
  parameter?: { key: string; value: string };
}

/** One scripted fault of {@link FaultConfig.failNext}. */
export interface ScriptedError {
  /** Action name, or `*` for every action. */
  action: string;
  /**
   * What happens to a matching request. `error` (default): answered with `code` / `httpStatus` /
   * `message`. `reset`: the TCP connection is reset before the action runs (nothing happens in the
   * cloud). `responseLoss`: the action runs (state changes) and then the connection is reset
   * instead of the answer. `hold`: the request is held unprocessed until released through the
   * control API (`POST /faults/holds/:ruleId/release`, `DELETE /faults/rules/:id`, `DELETE /faults`,
   * `POST /reset`), then processed normally.
   */
  kind?: ScriptedFaultKind;
  /** Name of the rule, unique in `failNext`; generated (`rule-N`) when absent. */
  id?: string;
  /** Only requests in this scope match; absent = every request of `action`. */
  match?: FaultMatch;
  /** Alibaba error code; required when `kind` is `error`. */
  code?: string;
  /** HTTP status of the error body; required when `kind` is `error`. */
  httpStatus?: number;
  /** Error message; default `injected <code>`. */
  message?: string;
  /** Matching requests affected. Default 1. */
  count?: number;
  /** Matching requests let through first. Default 0. */
  skip?: number;
}

/**
 * Partial update of the fault configuration (`PATCH /faults`): given top-level fields replace the
 * current ones, except the maps `actions`, `quota` and `failInstances`, which are merged key by key
 * (a `null` value removes that key). A top-level `null` removes the field. The PRNG is re-seeded
 * only when `seed` is given.
 */
export interface FaultPatch {
  seed?: number;
  actions?: Record<string, ActionFaults | null> | null;
  retryAfterMs?: number | null;
  failInstances?: Record<string, string | null> | null;
  failNext?: ScriptedError[] | null;
  quota?: Record<string, number | null> | null;
}

/** A request held by a `hold` rule, as `GET /faults/holds` lists it. */
export interface HeldRequest {
  ruleId: string;
  action: string;
  /** The RequestId the answer will carry. */
  requestId: string;
  /** When it was held, milliseconds since the epoch. */
  heldSinceMs: number;
  /** Instance IDs the request names. */
  instanceIds: string[];
}

/** What to do to one request. */
export interface FaultDecision {
  kind: 'none' | 'throttle' | 'error' | 'scripted' | 'reset' | 'responseLoss' | 'hold';
  /** Set when `kind` is `scripted`. */
  scripted?: { code: string; httpStatus: number; message: string };
  /** The scripted rule that decided (`scripted`, `hold`, and `reset` / `responseLoss` from a rule). */
  ruleId?: string;
  errorCode: 'ServiceUnavailable' | 'InternalError';
  latencyMs: number;
}

/** The request facts a scripted rule's `match` is checked against. */
export interface FaultRequest {
  instanceIds: readonly string[];
  tags: Readonly<Record<string, string>>;
  /** Top-level values of the request's `Parameters` JSON (see scope.ts). */
  parameters?: Readonly<Record<string, string>>;
}

interface HeldEntry extends HeldRequest {
  resume: (process: boolean) => void;
}

const KINDS: readonly ScriptedFaultKind[] = ['error', 'reset', 'responseLoss', 'hold'];

function matches(m: FaultMatch | undefined, req: FaultRequest): boolean {
  if (!m) return true;
  if (m.instanceId !== undefined && !req.instanceIds.includes(m.instanceId)) return false;
  if (m.tag !== undefined) {
    const v = req.tags[m.tag.key];
    if (v === undefined || (m.tag.value !== undefined && v !== m.tag.value)) return false;
  }
  if (m.ownerUid !== undefined && req.tags[OWNER_UID_TAG] !== m.ownerUid) return false;
  if (m.parameter !== undefined && req.parameters?.[m.parameter.key] !== m.parameter.value) return false;
  return true;
}

/** @throws Error naming the problem of an invalid rule. */
function checkRule(r: ScriptedError): void {
  if (typeof r !== 'object' || r === null) throw new Error('a fault rule must be an object');
  if (typeof r.action !== 'string' || r.action === '') throw new Error('a fault rule needs an action');
  const kind = r.kind ?? 'error';
  if (!KINDS.includes(kind))
    throw new Error(`fault rule kind ${JSON.stringify(kind)} is not one of ${KINDS.join(', ')}`);
  if (kind === 'error' && (typeof r.code !== 'string' || typeof r.httpStatus !== 'number')) {
    throw new Error(`fault rule for ${r.action}: kind error needs code and httpStatus`);
  }
  if (r.id !== undefined && (typeof r.id !== 'string' || r.id === '' || r.id.includes('/'))) {
    throw new Error('a fault rule id must be a non-empty string without "/"');
  }
}

/** @throws Error on a negative or non-numeric quota. */
function checkQuota(q: Record<string, number> | undefined): void {
  for (const [k, v] of Object.entries(q ?? {})) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw new Error(`quota for ${k} must be a number >= 0 (requests per second)`);
    }
  }
}

/** Holds the fault configuration, its seeded PRNG, the quota windows and the held requests. */
export class Faults {
  private cfg: FaultConfig = {};
  private rng = mulberry32(1);
  private ruleSeq = 0;
  /** Admission times (ms) in the last second, per action, for `quota`. */
  private readonly admitted = new Map<string, number[]>();
  private held: HeldEntry[] = [];

  /**
   * Replaces the configuration and re-seeds the PRNG; rules without an `id` get one. Requests
   * held by a rule that is no longer in `failNext` are released (processed).
   * @throws Error on an invalid rule or quota (the configuration is then unchanged).
   */
  set(cfg: FaultConfig): void {
    const next = structuredClone(cfg);
    for (const r of next.failNext ?? []) checkRule(r);
    checkQuota(next.quota);
    this.assignIds(next.failNext ?? []);
    this.cfg = next;
    this.rng = mulberry32(cfg.seed ?? 1);
    this.admitted.clear();
    this.releaseOrphans();
  }

  /**
   * Merges a partial configuration (see {@link FaultPatch}) without re-seeding the PRNG unless
   * `seed` is given. @returns the resulting configuration. @throws Error on an invalid rule or quota.
   */
  patch(p: FaultPatch): FaultConfig {
    const next = structuredClone(this.cfg);
    const merge = <T>(cur: Record<string, T> | undefined, upd: Record<string, T | null>) => {
      const out: Record<string, T> = { ...(cur ?? {}) };
      for (const [k, v] of Object.entries(upd)) {
        if (v === null) delete out[k];
        else out[k] = v;
      }
      return out;
    };
    if (p.actions === null) delete next.actions;
    else if (p.actions !== undefined) next.actions = merge(next.actions, p.actions);
    if (p.quota === null) delete next.quota;
    else if (p.quota !== undefined) next.quota = merge(next.quota, p.quota);
    if (p.failInstances === null) delete next.failInstances;
    else if (p.failInstances !== undefined) next.failInstances = merge(next.failInstances, p.failInstances);
    if (p.retryAfterMs === null) delete next.retryAfterMs;
    else if (p.retryAfterMs !== undefined) next.retryAfterMs = p.retryAfterMs;
    if (p.failNext === null) delete next.failNext;
    else if (p.failNext !== undefined) next.failNext = structuredClone(p.failNext);
    if (p.seed !== undefined) next.seed = p.seed;
    for (const r of next.failNext ?? []) checkRule(r);
    checkQuota(next.quota);
    this.assignIds(next.failNext ?? []);
    this.cfg = next;
    if (p.seed !== undefined) this.rng = mulberry32(p.seed);
    this.releaseOrphans();
    return this.get();
  }

  /** Removes every fault and releases every held request (they are processed). */
  clear(): void {
    this.set({});
    this.releaseAll();
  }

  /** The current configuration (a copy). */
  get(): FaultConfig {
    return structuredClone(this.cfg);
  }

  /**
   * Appends one rule to `failNext`. @returns its id (the given one, or a generated `rule-N`).
   * @throws Error on an invalid rule or an id already in use.
   */
  addRule(rule: ScriptedError): string {
    checkRule(rule);
    const list = (this.cfg.failNext ??= []);
    if (rule.id !== undefined && list.some((r) => r.id === rule.id)) {
      throw new Error(`fault rule id ${rule.id} is already in use`);
    }
    const r = structuredClone(rule);
    this.assignIds([...list, r]);
    list.push(r);
    return r.id as string;
  }

  /** Removes the rule `id` and releases the requests it holds. @returns whether it existed. */
  removeRule(id: string): boolean {
    const list = this.cfg.failNext ?? [];
    const i = list.findIndex((r) => r.id === id);
    if (i < 0) return false;
    list.splice(i, 1);
    this.release(id);
    return true;
  }

  /**
   * Decides the fault for one request of `action`: the first `failNext` rule for the action that
   * still has count left and matches the request's scope, then the quota, then the rates. Draws
   * from the PRNG only when a rate is set.
   */
  decide(action: string, req: FaultRequest = { instanceIds: [], tags: {} }): FaultDecision {
    const script = this.cfg.failNext?.find(
      (e) => (e.action === action || e.action === '*') && (e.count ?? 1) > 0 && matches(e.match, req),
    );
    if (script) {
      if ((script.skip ?? 0) > 0) script.skip = (script.skip ?? 0) - 1;
      else {
        script.count = (script.count ?? 1) - 1;
        const kind = script.kind ?? 'error';
        const base = { errorCode: 'ServiceUnavailable' as const, latencyMs: 0, ruleId: script.id };
        if (kind !== 'error') return { ...base, kind };
        return {
          ...base,
          kind: 'scripted',
          scripted: {
            code: script.code ?? 'InternalError',
            httpStatus: script.httpStatus ?? 500,
            message: script.message ?? `injected ${script.code}`,
          },
        };
      }
    }
    const f = this.cfg.actions?.[action] ?? this.cfg.actions?.['*'];
    const d: FaultDecision = {
      kind: 'none',
      errorCode: f?.errorCode ?? 'ServiceUnavailable',
      latencyMs: f?.latencyMs ?? 0,
    };
    const limit = this.cfg.quota?.[action] ?? this.cfg.quota?.['*'];
    if (limit !== undefined) {
      const now = Date.now();
      const recent = (this.admitted.get(action) ?? []).filter((t) => t > now - 1000);
      this.admitted.set(action, recent);
      if (recent.length >= limit) return { ...d, kind: 'throttle' };
      recent.push(now);
    }
    const t = f?.throttleRate ?? 0;
    const e = f?.errorRate ?? 0;
    const c = f?.resetRate ?? 0;
    const l = f?.responseLossRate ?? 0;
    if (t > 0 || e > 0 || c > 0 || l > 0) {
      const r = this.rng();
      if (r < t) d.kind = 'throttle';
      else if (r < t + e) d.kind = 'error';
      else if (r < t + e + c) d.kind = 'reset';
      else if (r < t + e + c + l) d.kind = 'responseLoss';
    }
    const j = f?.latencyJitterMs ?? 0;
    if (j > 0) d.latencyMs = Math.max(0, Math.round(d.latencyMs + (this.rng() * 2 - 1) * j));
    return d;
  }

  /**
   * Holds a request for rule `ruleId` until it is released. Resolves `true` when released (process
   * it), `false` when dropped by {@link dropAll} (emulator stopping: do not process).
   */
  hold(info: Omit<HeldRequest, 'heldSinceMs'>): Promise<boolean> {
    return new Promise((resolve) => {
      this.held.push({ ...info, heldSinceMs: Date.now(), resume: resolve });
    });
  }

  /** Requests currently held, oldest first. */
  holds(): HeldRequest[] {
    return this.held.map(({ resume: _resume, ...h }) => ({ ...h, instanceIds: [...h.instanceIds] }));
  }

  /** Releases every request held by rule `ruleId` (they are processed). @returns how many. */
  release(ruleId: string): number {
    const mine = this.held.filter((h) => h.ruleId === ruleId);
    this.held = this.held.filter((h) => h.ruleId !== ruleId);
    for (const h of mine) h.resume(true);
    return mine.length;
  }

  /** Releases every held request (they are processed). @returns how many. */
  releaseAll(): number {
    const all = this.held;
    this.held = [];
    for (const h of all) h.resume(true);
    return all.length;
  }

  /** Drops every held request without processing it (emulator stop). */
  dropAll(): void {
    const all = this.held;
    this.held = [];
    for (const h of all) h.resume(false);
  }

  /** Milliseconds for `x-acs-retry-after`, or undefined when not configured. */
  retryAfterMs(): number | undefined {
    return this.cfg.retryAfterMs;
  }

  /** The injected failure reason of an instance, if any. */
  instanceFailure(instanceId: string): string | undefined {
    return this.cfg.failInstances?.[instanceId];
  }

  /** Gives every rule without an id a fresh `rule-N`. @throws Error when two rules share an id. */
  private assignIds(list: ScriptedError[]): void {
    const given = list.map((r) => r.id).filter((x): x is string => x !== undefined);
    const used = new Set(given);
    if (used.size !== given.length) throw new Error('fault rule ids must be unique');
    for (const r of list) {
      if (r.id !== undefined) continue;
      let id: string;
      do id = `rule-${++this.ruleSeq}`;
      while (used.has(id));
      used.add(id);
      r.id = id;
    }
  }

  /** Releases held requests whose rule is no longer configured. */
  private releaseOrphans(): void {
    const ids = new Set((this.cfg.failNext ?? []).map((r) => r.id));
    for (const h of [...this.held]) if (!ids.has(h.ruleId)) this.release(h.ruleId);
  }
}
