/**
 * An `events.k8s.io/v1` Event recorder (client-node has no recorder or broadcaster), with
 * client-go-style aggregation into `series` and a per-(object, reason) token bucket.
 */
import { hostname } from 'node:os';
import { EventsV1Api, PatchStrategy, V1MicroTime, setHeaderOptions } from '@kubernetes/client-node';
import type { EventsV1Event, KubeConfig, KubernetesObject, V1ObjectReference } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { realClock } from './clock.js';
import type { Clock } from './clock.js';
import { sanitizeError, truncateBytes } from './sanitize.js';

export type EventType = 'Normal' | 'Warning';

/** Records Events about objects; implemented by {@link EventRecorder} (fakes for tests are easy). */
export interface EventSink {
  /**
   * Records an Event. Never throws or rejects; failures are logged.
   * @param regarding the object the Event is about (needs apiVersion, kind, metadata.name/uid).
   * @param reason CamelCase, ≤ 128 characters (e.g. `ExecutionStarted`).
   * @param action what the controller did, CamelCase, ≤ 128 (e.g. `StartExecution`).
   * @param note human-readable, **already sanitized** by the caller; truncated to 1024 bytes.
   */
  event(
    regarding: KubernetesObject,
    type: EventType,
    reason: string,
    action: string,
    note: string,
  ): Promise<void>;
}

/** Options of {@link EventRecorder}. Durations in milliseconds. */
export interface EventRecorderOptions {
  kubeConfig: KubeConfig;
  /** `reportingController` (default `ecsops.io/controller`). */
  reportingController?: string;
  /** `reportingInstance`, ≤ 128 (default `<controller name part>-<hostname>`). */
  reportingInstance?: string;
  logger?: Logger;
  clock?: Clock;
  /** Same (object, type, reason, action, note) within this window is folded into `series` (default 10 min). */
  aggregationWindowMs?: number;
  /** Per-(object, reason) token bucket: burst (default 25, client-go's spam filter). */
  burst?: number;
  /** Per-object token bucket: one token refills every this many ms (default 300 000 = 5 min). */
  refillIntervalMs?: number;
}

interface Aggregate {
  name: string;
  namespace: string;
  count: number;
  lastObserved: number;
  /** Serializes writes for this aggregate (create, then patches). */
  chain: Promise<void>;
}

interface Bucket {
  tokens: number;
  last: number;
}

const MAX_ENTRIES = 4096;

/**
 * Records `events.k8s.io/v1` Events:
 *
 * - required fields set as the API server validates them (`pkg/apis/core/validation/events.go`):
 *   `eventTime` as `V1MicroTime`, `reportingController`, `reportingInstance` ≤ 128, `action` and
 *   `reason` ≤ 128, `note` ≤ 1024, `type` Normal|Warning, a DNS-subdomain name
 *   `<object name>.<hex timestamp>`, created in the object's namespace (`default` if cluster-scoped);
 * - **aggregation**: a repeat of the same (object UID, type, reason, action, note) within the window
 *   patches `series: { count, lastObservedTime }` (merge patch) instead of creating an Event;
 * - **rate limit**: per (object UID, reason), a token bucket (burst 25, +1 per 5 min); excess Events
 *   are dropped with a debug log. Keyed by reason too, so a repeated reason (a batch Event per batch)
 *   never drops a lifecycle one (`RolloutSucceeded`, `RolledBack`) of the same object;
 * - errors are logged (sanitized), never thrown.
 *
 * RBAC: `events.k8s.io` `events`: `create`, `patch`.
 */
export class EventRecorder implements EventSink {
  private readonly api: EventsV1Api;
  private readonly clock: Clock;
  private readonly log: Logger | undefined;
  private readonly controller: string;
  private readonly instance: string;
  private readonly windowMs: number;
  private readonly burst: number;
  private readonly refillMs: number;
  private readonly aggregates = new Map<string, Aggregate>();
  private readonly buckets = new Map<string, Bucket>();
  private seq = 0;

  constructor(opts: EventRecorderOptions) {
    this.api = opts.kubeConfig.makeApiClient(EventsV1Api);
    this.clock = opts.clock ?? realClock;
    this.log = opts.logger;
    this.controller = opts.reportingController ?? 'ecsops.io/controller';
    const short = this.controller.split('/').pop() ?? 'controller';
    this.instance = truncateBytes(opts.reportingInstance ?? `${short}-${hostname()}`, 128);
    this.windowMs = opts.aggregationWindowMs ?? 10 * 60_000;
    this.burst = opts.burst ?? 25;
    this.refillMs = opts.refillIntervalMs ?? 300_000;
  }

  event(
    regarding: KubernetesObject,
    type: EventType,
    reason: string,
    action: string,
    note: string,
  ): Promise<void> {
    try {
      return this.record(
        regarding,
        type,
        truncateBytes(reason, 128),
        truncateBytes(action, 128),
        truncateBytes(note, 1024),
      );
    } catch (err) {
      this.log?.warn({ error: sanitizeError(err), reason }, 'failed to record event');
      return Promise.resolve();
    }
  }

  private record(
    regarding: KubernetesObject,
    type: EventType,
    reason: string,
    action: string,
    note: string,
  ): Promise<void> {
    const meta = regarding.metadata ?? {};
    const objName = meta.name ?? '';
    const uid = meta.uid ?? `${meta.namespace ?? ''}/${objName}`;
    const now = this.clock.now();
    const key = [uid, type, reason, action, note].join('\u0000');
    // Keyed by (object, reason): a chatty reason never starves a rare lifecycle one.
    if (!this.take(`${uid}\u0000${reason}`, now)) {
      this.log?.debug({ reason, object: objName }, 'event dropped by the per-(object, reason) rate limit');
      return Promise.resolve();
    }
    this.prune(now);
    const existing = this.aggregates.get(key);
    if (existing && now - existing.lastObserved <= this.windowMs) {
      existing.count++;
      existing.lastObserved = now;
      const count = existing.count;
      existing.chain = existing.chain.then(() => this.patchSeries(existing, count, now, reason));
      return existing.chain;
    }
    const agg: Aggregate = {
      name: this.eventName(objName, now),
      namespace: meta.namespace || 'default',
      count: 1,
      lastObserved: now,
      chain: Promise.resolve(),
    };
    this.aggregates.set(key, agg);
    const body: EventsV1Event = {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { name: agg.name, namespace: agg.namespace },
      eventTime: new V1MicroTime(now),
      reportingController: this.controller,
      reportingInstance: this.instance,
      action,
      reason,
      type,
      note,
      regarding: this.reference(regarding),
    };
    agg.chain = this.create(body, reason);
    return agg.chain;
  }

  private async create(body: EventsV1Event, reason: string): Promise<void> {
    try {
      await this.api.createNamespacedEvent({ namespace: body.metadata?.namespace ?? 'default', body });
    } catch (err) {
      this.log?.warn({ error: sanitizeError(err), reason }, 'failed to create event');
    }
  }

  private async patchSeries(agg: Aggregate, count: number, now: number, reason: string): Promise<void> {
    try {
      await this.api.patchNamespacedEvent(
        {
          name: agg.name,
          namespace: agg.namespace,
          body: { series: { count, lastObservedTime: new V1MicroTime(now) } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    } catch (err) {
      this.log?.warn({ error: sanitizeError(err), reason }, 'failed to update event series');
    }
  }

  /** Token bucket of one (object, reason) key; true when a token was taken. */
  private take(key: string, now: number): boolean {
    const b = this.buckets.get(key) ?? { tokens: this.burst, last: now };
    b.tokens = Math.min(this.burst, b.tokens + (now - b.last) / this.refillMs);
    b.last = now;
    this.buckets.set(key, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Bounds memory: drops expired aggregates and full buckets once the maps grow large. */
  private prune(now: number): void {
    if (this.aggregates.size > MAX_ENTRIES) {
      for (const [k, a] of this.aggregates)
        if (now - a.lastObserved > this.windowMs) this.aggregates.delete(k);
    }
    if (this.buckets.size > MAX_ENTRIES) {
      for (const [k, b] of this.buckets) {
        if (b.tokens + (now - b.last) / this.refillMs >= this.burst) this.buckets.delete(k);
      }
    }
  }

  /** `<object name>.<hex of ms·10⁶ + sequence>`: unique per process, a valid DNS subdomain. */
  private eventName(objName: string, now: number): string {
    const suffix = (BigInt(now) * 1_000_000n + BigInt(this.seq++ % 1_000_000)).toString(16);
    const base = (objName || 'object').slice(0, 253 - suffix.length - 1);
    return `${base}.${suffix}`;
  }

  private reference(obj: KubernetesObject): V1ObjectReference {
    const meta = obj.metadata ?? {};
    return {
      apiVersion: obj.apiVersion,
      kind: obj.kind,
      name: meta.name,
      namespace: meta.namespace,
      uid: meta.uid,
      resourceVersion: meta.resourceVersion,
    };
  }
}
