import { mulberry32 } from './rng.js';

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
   * Scripted errors, consumed in order: the next `count` requests of `action` (or `*`) are
   * answered with `code` / `httpStatus` / `message`, after `skip` matching requests pass. Used to
   * reproduce exact sequences (three expired STS tokens in a row, a permission denied until RAM
   * is fixed) that rates cannot.
   */
  failNext?: ScriptedError[];
}

/** One scripted error of {@link FaultConfig.failNext}. */
export interface ScriptedError {
  action: string;
  code: string;
  httpStatus: number;
  message?: string;
  /** Requests answered with the error. Default 1. */
  count?: number;
  /** Matching requests let through first. Default 0. */
  skip?: number;
}

/** What to do to one request. */
export interface FaultDecision {
  kind: 'none' | 'throttle' | 'error' | 'scripted' | 'reset' | 'responseLoss';
  /** Set when `kind` is `scripted`. */
  scripted?: { code: string; httpStatus: number; message: string };
  errorCode: 'ServiceUnavailable' | 'InternalError';
  latencyMs: number;
}

/** Holds the fault configuration and its seeded PRNG. */
export class Faults {
  private cfg: FaultConfig = {};
  private rng = mulberry32(1);

  /** Replaces the configuration and re-seeds the PRNG. */
  set(cfg: FaultConfig): void {
    this.cfg = structuredClone(cfg);
    this.rng = mulberry32(cfg.seed ?? 1);
  }

  /** Removes every fault. */
  clear(): void {
    this.set({});
  }

  /** The current configuration (a copy). */
  get(): FaultConfig {
    return structuredClone(this.cfg);
  }

  /** Decides the fault for one request of `action`. Draws from the PRNG only when a rate is set. */
  decide(action: string): FaultDecision {
    const script = this.cfg.failNext?.find(
      (e) => (e.action === action || e.action === '*') && (e.count ?? 1) > 0,
    );
    if (script) {
      if ((script.skip ?? 0) > 0) script.skip = (script.skip ?? 0) - 1;
      else {
        script.count = (script.count ?? 1) - 1;
        return {
          kind: 'scripted',
          errorCode: 'ServiceUnavailable',
          latencyMs: 0,
          scripted: {
            code: script.code,
            httpStatus: script.httpStatus,
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

  /** Milliseconds for `x-acs-retry-after`, or undefined when not configured. */
  retryAfterMs(): number | undefined {
    return this.cfg.retryAfterMs;
  }

  /** The injected failure reason of an instance, if any. */
  instanceFailure(instanceId: string): string | undefined {
    return this.cfg.failInstances?.[instanceId];
  }
}
