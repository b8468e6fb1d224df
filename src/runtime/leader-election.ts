/**
 * A `coordination.k8s.io/v1` Lease leader elector with client-go semantics
 * (`k8s.io/client-go/tools/leaderelection/leaderelection.go`). client-node ships none.
 * See docs/adr/0002-lease-leader-election.md.
 */
import { CoordinationV1Api, V1MicroTime } from '@kubernetes/client-node';
import type { KubeConfig, V1Lease, V1LeaseSpec } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { realClock, sleep } from './clock.js';
import type { Clock } from './clock.js';
import { controllerRuntimeMetrics } from './metrics.js';
import { sanitizeError } from './sanitize.js';

/** Leadership callbacks (client-go `LeaderCallbacks`). Exceptions are logged, never propagated. */
export interface LeaderCallbacks {
  /** Called once this instance holds the Lease. `signal` aborts when leadership ends. */
  onStartedLeading(signal: AbortSignal): void | Promise<void>;
  /** Called when leadership ends (lost, renew deadline passed, or cancelled) — only after a start. */
  onStoppedLeading(): void;
  /** Called whenever the observed holder identity changes (including to this instance). */
  onNewLeader?(identity: string): void;
}

/** Options of {@link LeaderElector}. Durations in **milliseconds**. */
export interface LeaderElectorOptions {
  kubeConfig: KubeConfig;
  /** Namespace of the Lease. */
  namespace: string;
  /** Lease name, also the `name` label of `leader_election_master_status`. */
  name: string;
  /** This candidate's identity (pod name, or `hostname_uuid`); written to `spec.holderIdentity`. */
  identity: string;
  /** How long non-leaders wait after observing a change before taking over (default 15 000; whole seconds on the wire). */
  leaseDurationMs?: number;
  /** How long the leader keeps retrying a renewal before giving up leadership (default 10 000). */
  renewDeadlineMs?: number;
  /** Interval between acquire / renew attempts (default 2 000; acquire attempts get +0–120 % jitter). */
  retryPeriodMs?: number;
  /** Clear the holder when `run()`'s signal aborts so a successor takes over at once (default true). */
  releaseOnCancel?: boolean;
  callbacks: LeaderCallbacks;
  clock?: Clock;
  logger?: Logger;
  /** Registry for `leader_election_master_status{name}`. */
  registry?: Registry;
  /** Random source in [0, 1) for jitter (default Math.random). */
  random?: () => number;
}

const JITTER_FACTOR = 1.2;

/** The three durations of leader election, **milliseconds**. */
export interface LeaderElectionTimings {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

/**
 * Checks leader-election durations with client-go's `NewLeaderElector` rules, the ones
 * {@link LeaderElector} enforces: `retryPeriodMs` > 0, `leaseDurationMs` ≥ 1000 (whole seconds on
 * the wire), `leaseDurationMs` > `renewDeadlineMs`, and `renewDeadlineMs` > 1.2 × `retryPeriodMs`
 * (the jitter factor of acquire attempts). Returns a message for the first rule broken, naming
 * each duration by `names` (default: the option names, e.g. config passes its flag names), or
 * `undefined` when all hold. Pure; never throws.
 */
export function leaderElectionTimingsError(
  t: LeaderElectionTimings,
  names: { [K in keyof LeaderElectionTimings]: string } = {
    leaseDurationMs: 'leaseDurationMs',
    renewDeadlineMs: 'renewDeadlineMs',
    retryPeriodMs: 'retryPeriodMs',
  },
): string | undefined {
  if (!(t.retryPeriodMs > 0)) return `${names.retryPeriodMs} must be greater than 0`;
  if (!(t.leaseDurationMs >= 1000)) return `${names.leaseDurationMs} must be at least 1s`;
  if (!(t.renewDeadlineMs < t.leaseDurationMs))
    return `${names.renewDeadlineMs} must be shorter than ${names.leaseDurationMs}`;
  if (!(t.renewDeadlineMs > JITTER_FACTOR * t.retryPeriodMs))
    return `${names.renewDeadlineMs} must be longer than ${JITTER_FACTOR} × ${names.retryPeriodMs}`;
  return undefined;
}

function statusCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

/**
 * Lease-based leader election:
 *
 * - **acquire**: read the Lease; on 404 create it (409 AlreadyExists = lost the race); otherwise
 *   take it over only if it is free (`holderIdentity` empty) or expired, with
 *   `replaceNamespacedLease` carrying the read resourceVersion (409 Conflict = lost the race).
 * - **expiry** is judged from the *locally observed* time of the last change of the record
 *   (`observedTime + leaseDurationSeconds`), never from the remote `renewTime` (clock skew).
 * - **renew** every `retryPeriodMs`; if no renewal succeeds within `renewDeadlineMs`, leadership is
 *   given up (the caller should exit the process: another replica may already lead).
 * - `acquireTime` / `renewTime` are `V1MicroTime` (six fractional digits on the wire);
 *   `leaseTransitions` is incremented when the holder changes.
 * - **release** (on cancel) writes an empty `holderIdentity` with `leaseDurationSeconds: 1`.
 *
 * RBAC: `coordination.k8s.io` `leases`: `get`, `create`, `update`.
 */
export class LeaderElector {
  readonly identity: string;
  private readonly api: CoordinationV1Api;
  private readonly opts: LeaderElectorOptions;
  private readonly clock: Clock;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly random: () => number;
  private readonly log: Logger | undefined;
  private readonly gauge: ((v: number) => void) | undefined;

  private observedLease: V1Lease | undefined;
  private observedTime = 0;
  private reportedLeader: string | undefined;
  private leading = false;

  /**
   * @throws Error when the identity is empty or the durations break
   *   {@link leaderElectionTimingsError}'s rules (client-go `NewLeaderElector` checks).
   */
  constructor(opts: LeaderElectorOptions) {
    this.opts = opts;
    this.identity = opts.identity;
    this.clock = opts.clock ?? realClock;
    this.leaseDurationMs = opts.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = opts.retryPeriodMs ?? 2_000;
    this.random = opts.random ?? Math.random;
    this.log = opts.logger?.child({ lease: `${opts.namespace}/${opts.name}`, identity: opts.identity });
    if (!opts.identity) throw new Error('leader election: identity must not be empty');
    const invalid = leaderElectionTimingsError({
      leaseDurationMs: this.leaseDurationMs,
      renewDeadlineMs: this.renewDeadlineMs,
      retryPeriodMs: this.retryPeriodMs,
    });
    if (invalid) throw new Error(`leader election: ${invalid}`);
    this.api = opts.kubeConfig.makeApiClient(CoordinationV1Api);
    if (opts.registry) {
      const g = controllerRuntimeMetrics(opts.registry).leaderElectionMasterStatus;
      const labels = { name: opts.name };
      this.gauge = (v) => g.set(labels, v);
      this.gauge(0);
    }
  }

  /** True while this instance holds the Lease and has not given it up. */
  isLeader(): boolean {
    return this.leading;
  }

  /** The last observed holder identity ('' when free), or undefined before the first read. */
  getLeader(): string | undefined {
    return this.observedLease ? (this.observedLease.spec?.holderIdentity ?? '') : undefined;
  }

  /**
   * Campaigns until the Lease is acquired, then leads — calling `onStartedLeading` — and renews until
   * leadership is lost or `signal` aborts. Resolves when leadership has ended (after
   * `onStoppedLeading`, and after the release when cancelled with `releaseOnCancel`), or when
   * `signal` aborts before acquiring. Never rejects; API errors are logged and retried.
   */
  async run(signal?: AbortSignal): Promise<void> {
    const acquired = await this.acquire(signal);
    if (!acquired) return;
    const leadership = new AbortController();
    this.leading = true;
    this.gauge?.(1);
    this.log?.info('acquired lease; started leading');
    try {
      await this.opts.callbacks.onStartedLeading(leadership.signal);
    } catch (err) {
      this.log?.error({ error: sanitizeError(err) }, 'onStartedLeading threw');
    }
    try {
      await this.renewLoop(signal);
    } finally {
      this.leading = false;
      this.gauge?.(0);
      leadership.abort(new Error('leadership ended'));
      if (signal?.aborted && (this.opts.releaseOnCancel ?? true)) await this.release();
      try {
        this.opts.callbacks.onStoppedLeading();
      } catch (err) {
        this.log?.error({ error: sanitizeError(err) }, 'onStoppedLeading threw');
      }
    }
  }

  /**
   * Gives the Lease up: writes `holderIdentity: ''`, `leaseDurationSeconds: 1` with the observed
   * resourceVersion so a successor can acquire it at once. Returns true when released; false if this
   * instance was not the observed holder or the write failed (logged, never thrown).
   */
  async release(): Promise<boolean> {
    const lease = this.observedLease;
    if (!lease || lease.spec?.holderIdentity !== this.identity) return false;
    const now = new V1MicroTime(this.clock.now());
    const spec: V1LeaseSpec = {
      holderIdentity: '',
      leaseDurationSeconds: 1,
      acquireTime: now,
      renewTime: now,
      leaseTransitions: lease.spec?.leaseTransitions ?? 0,
    };
    try {
      const updated = await this.api.replaceNamespacedLease({
        name: this.opts.name,
        namespace: this.opts.namespace,
        body: { ...lease, spec },
      });
      this.observe(updated, this.clock.now());
      this.leading = false;
      this.log?.info('released lease');
      return true;
    } catch (err) {
      this.log?.warn({ error: sanitizeError(err), code: statusCode(err) }, 'failed to release lease');
      return false;
    }
  }

  private async acquire(signal?: AbortSignal): Promise<boolean> {
    this.log?.info('attempting to acquire leader lease');
    for (;;) {
      if (signal?.aborted) return false;
      if (await this.tryAcquireOrRenew()) return true;
      const wait = this.retryPeriodMs * (1 + this.random() * JITTER_FACTOR);
      try {
        await sleep(this.clock, wait, signal);
      } catch {
        return false;
      }
    }
  }

  /** Returns when a renewal did not succeed within the renew deadline, or when `signal` aborts. */
  private async renewLoop(signal?: AbortSignal): Promise<void> {
    for (;;) {
      try {
        await sleep(this.clock, this.retryPeriodMs, signal);
      } catch {
        return;
      }
      const deadline = this.clock.now() + this.renewDeadlineMs;
      let renewed = false;
      while (!renewed) {
        if (signal?.aborted) return;
        const left = deadline - this.clock.now();
        if (left <= 0) break;
        renewed = await this.withTimeout(this.tryAcquireOrRenew(), left);
        if (renewed) break;
        if (this.clock.now() + this.retryPeriodMs >= deadline) break;
        try {
          await sleep(this.clock, this.retryPeriodMs, signal);
        } catch {
          return;
        }
      }
      if (!renewed) {
        this.log?.error(
          { renewDeadlineMs: this.renewDeadlineMs },
          'failed to renew lease within the deadline; stopped leading',
        );
        return;
      }
    }
  }

  private withTimeout(p: Promise<boolean>, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = this.clock.setTimeout(() => resolve(false), ms);
      void p.then((v) => {
        this.clock.clearTimeout(timer);
        resolve(v);
      });
    });
  }

  private observe(lease: V1Lease, now: number): void {
    const changed = lease.metadata?.resourceVersion !== this.observedLease?.metadata?.resourceVersion;
    this.observedLease = lease;
    if (changed) this.observedTime = now;
    const holder = lease.spec?.holderIdentity ?? '';
    if (holder && holder !== this.reportedLeader) {
      this.reportedLeader = holder;
      this.log?.info({ leader: holder }, 'new leader observed');
      try {
        this.opts.callbacks.onNewLeader?.(holder);
      } catch (err) {
        this.log?.error({ error: sanitizeError(err) }, 'onNewLeader threw');
      }
    }
  }

  /** One acquire-or-renew attempt (client-go `tryAcquireOrRenew`). Never throws. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const { name, namespace } = this.opts;
    const durationSeconds = Math.ceil(this.leaseDurationMs / 1000);
    const nowMs = this.clock.now();
    const now = new V1MicroTime(nowMs);
    let lease: V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (statusCode(err) !== 404) {
        this.log?.warn({ error: sanitizeError(err), code: statusCode(err) }, 'error reading lease');
        return false;
      }
      try {
        const created = await this.api.createNamespacedLease({
          namespace,
          body: {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name, namespace },
            spec: {
              holderIdentity: this.identity,
              leaseDurationSeconds: durationSeconds,
              acquireTime: now,
              renewTime: now,
              leaseTransitions: 0,
            },
          },
        });
        this.observe(created, this.clock.now());
        return true;
      } catch (createErr) {
        if (statusCode(createErr) !== 409) {
          this.log?.warn(
            { error: sanitizeError(createErr), code: statusCode(createErr) },
            'error creating lease',
          );
        }
        return false;
      }
    }

    this.observe(lease, nowMs);
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    const remoteDurationMs = (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
    if (holder !== '' && holder !== this.identity && this.observedTime + remoteDurationMs > nowMs) {
      return false; // held by another candidate and not expired (judged by local observation)
    }
    const isHolder = holder === this.identity;
    const next: V1LeaseSpec = {
      holderIdentity: this.identity,
      leaseDurationSeconds: durationSeconds,
      renewTime: now,
      acquireTime: isHolder && spec.acquireTime ? new V1MicroTime(spec.acquireTime) : now,
      leaseTransitions: isHolder ? (spec.leaseTransitions ?? 0) : (spec.leaseTransitions ?? 0) + 1,
    };
    try {
      const updated = await this.api.replaceNamespacedLease({
        name,
        namespace,
        body: { ...lease, spec: next },
      });
      this.observe(updated, this.clock.now());
      return true;
    } catch (err) {
      if (statusCode(err) !== 409) {
        this.log?.warn({ error: sanitizeError(err), code: statusCode(err) }, 'error updating lease');
      }
      return false;
    }
  }
}
