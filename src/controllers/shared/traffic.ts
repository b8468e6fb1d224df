/**
 * Traffic control (spec.trafficControl, issue 24; DESIGN §8): the part of the kit's one start path
 * (start.ts) that takes a batch's instances out of their load balancers before the batch acts and
 * puts them back, healthy, after. The order of one batch is
 *
 *   lock → budget → capacity guard → record originals (intent write) → drain → wait drainSeconds
 *   → act → restore originals → wait until the load balancer reports healthy → release.
 *
 * - **Originals first.** Every backend's original weight (and description, for a re-add) is
 *   recorded in `status.trafficControl.backends` in the same intent write that records the batch,
 *   before the first drain write; a backend already recorded keeps its record (a second drain
 *   never records the 0 it wrote). Restore writes exactly those values back.
 * - **Drain.** Weight 0 where the group's scheduler honours weights; otherwise (see
 *   `weightZeroDrains`: only wrr and wlc weigh backends) the backend is removed and later re-added. CLB writes apply
 *   at once; ALB writes are asynchronous, so `drainSeconds` starts only once
 *   `ListServerGroupServers` shows every drained server `Available` again (`phaseSince`).
 * - **Restore** is a safety write: it runs whatever `writesAllowed` says (suspend: true, deletion,
 *   deletionPolicy Orphan, a spec without trafficControl any more). Every reconcile restores each
 *   recorded backend no in-flight item holds ({@link TrafficControl.restoreIdle}), so a controller
 *   killed mid-drain restores them after restart, and a dropped start never strands a drained
 *   instance. A record leaves status only once the load balancer shows the original back.
 * - **Health.** A batch whose work ended stays in flight (`trafficPhase: Restoring`, holding its
 *   lock and budget) until the load balancer itself reports each restored instance healthy
 *   (CLB `DescribeHealthStatus`, ALB `GetListenerHealthStatus`); after `healthyTimeoutSeconds`
 *   each instance still not healthy fails its batch ("load balancer … did not report … healthy").
 * - **Capacity guard.** Per group at most `maxDrained` backends out of rotation (weight 0 or removed
 *   by this resource), and never fewer than `minHealthyBackends` healthy backends left in rotation;
 *   starts are cut to fit (the rest waits, `WaitingForDrainCapacity`).
 * - **ACK.** A load balancer tagged `ack.aliyun.com…` or `kubernetes.do.not.delete` (created by
 *   ACK's cloud controller manager)
 *   is refused: Stalled `LoadBalancerManagedByACK` (the cluster would revert the weights).
 *
 * API facts: docs/reference-load-balancers.md.
 */
import type { DrainedBackend, TrafficControlSpec } from '../../api/traffic.js';
import {
  DEFAULT_DRAIN_SECONDS,
  DEFAULT_HEALTHY_TIMEOUT_SECONDS,
  DEFAULT_MAX_DRAINED,
  DEFAULT_MIN_HEALTHY_BACKENDS,
} from '../../api/traffic.js';
import { DrainCapacityUnsatisfiableReason, LoadBalancerManagedByACKReason } from '../../api/conditions.js';
import {
  BackendsDrainedEvent,
  BackendsRestoredEvent,
  BackendUnhealthyEvent,
  TrafficControlAction,
} from '../../api/events.js';
import type {
  BackendHealthState,
  LoadBalancerApi,
  LoadBalancerType,
  ServerGroupView,
} from '../../cloud/types.js';
import { weightZeroDrains } from '../../cloud/lb-common.js';
import { toMetaTime } from '../../runtime/conditions.js';
import { StalledError } from '../../runtime/errors.js';
import { sanitizeText } from '../../runtime/sanitize.js';
import { listIds } from './targets.js';
import { isNotFound } from './cloud-errors.js';
import { isCloudError } from '../../cloud/errors.js';
import type { Resource } from './deps.js';
import type { FinishedWork, StartReporting, WorkItem } from './work.js';

/**
 * Tag keys of load balancers ACK's cloud controller manager created or manages (the cluster ID
 * under `ack.aliyun.com`, and `kubernetes.do.not.delete`; docs/reference-load-balancers.md).
 */
const ACK_TAG_KEYS = ['ack.aliyun.com', 'kubernetes.do.not.delete'];

/** `InstanceOutcome.step` of an instance its load balancer did not report healthy in time. */
export const LB_HEALTH_STEP = 'loadBalancerHealth';

/** How often a waiting batch re-checks the load balancer, milliseconds. */
export const TRAFFIC_RECHECK_MS = 2_000;

/** What the kit needs to run traffic control for one resource's reconcile. */
export interface TrafficScope {
  /** spec.trafficControl; absent when the spec dropped it (recorded backends are still restored). */
  spec?: TrafficControlSpec;
  /** The load balancer client of the resource's region. */
  lb(type: LoadBalancerType): LoadBalancerApi;
  /** `status.trafficControl.backends` as read; changed in place, the kind writes it back. */
  backends: DrainedBackend[];
  /** Whether work of `action` acts on the instance (takes it out of rotation first). */
  drains(action: string): boolean;
  /** Set by the kit: why a batch waits (Draining / WaitingForLoadBalancerHealth / capacity). */
  wait?: { reason: string; message: string };
  /** Set by the kit: when the next check is due (ms since the epoch). */
  wakeAtMs?: number;
}

/** The groups of one reconcile, read once. */
export interface GroupReads {
  views: Map<string, ServerGroupView>;
  health: Map<string, Map<string, BackendHealthState>>;
  /** Groups of recorded backends the load balancer no longer has (restore reads only). */
  gone: Set<string>;
}

/**
 * Backends (`instanceId:port`) admitted by the capacity guard, per server group ID, until their
 * records are forgotten (or their start was dropped): a second resource draining the same group in
 * the same moment counts them as out before the load balancer shows it. Process memory only: after
 * a restart the load balancer's own view (weight 0) and the recorded backends carry the same
 * information. One per process: {@link reservationsOf} the process's instance lock.
 */
export type Reservations = Map<string, Set<string>>;

const RESERVATIONS = new WeakMap<object, Reservations>();

/** The reservations shared by every kit holding the same `key` (the process's instance lock). */
export function reservationsOf(key: object): Reservations {
  let r = RESERVATIONS.get(key);
  if (!r) RESERVATIONS.set(key, (r = new Map()));
  return r;
}

const keyOf = (instanceId: string, port: number): string => `${instanceId}:${port}`;

function sinceMs(iso: string | undefined): number | undefined {
  const t = iso ? Date.parse(iso) : NaN;
  return Number.isFinite(t) ? t : undefined;
}

/** `maxDrained` of a group of `total` backends: an integer, or a percentage rounded down, at least 1. */
export function maxDrainedOf(v: number | string | undefined, total: number): number {
  const spec = v ?? DEFAULT_MAX_DRAINED;
  if (typeof spec === 'number') return Math.max(1, spec);
  const pct = Number(spec.replace('%', ''));
  return Math.max(1, Math.floor((pct / 100) * total));
}

/** See the module comment. Stateless apart from the scope it is given and its reservations. */
export class TrafficControl {
  /** @param reserved the process's reservations ({@link reservationsOf}); default: its own. */
  constructor(private readonly reserved: Reservations = new Map()) {}

  /**
   * Reads groups once: views and, when `health`, the load balancers' health reports. `scope:
   * 'start'` reads every group of the spec and refuses ACK-managed load balancers; `scope:
   * 'restore'` reads only the groups with recorded backends (`only` narrows further), never refuses
   * (a restore is a safety write), and leaves a group that no longer exists out of `views` (its
   * records are then dropped by {@link restore}: nothing to put back).
   * @throws StalledError `LoadBalancerManagedByACK` (start) for a group of an ACK-managed load balancer.
   * @throws CloudError from the reads (start: a group that does not exist too).
   */
  async read(
    t: TrafficScope,
    opts: { health: boolean; scope: 'start' | 'restore'; only?: ReadonlySet<string> },
  ): Promise<GroupReads> {
    const refs = new Map<string, LoadBalancerType>();
    if (opts.scope === 'start') for (const g of t.spec?.serverGroups ?? []) refs.set(g.serverGroupId, g.type);
    for (const b of t.backends) refs.set(b.serverGroupId, b.type);
    const views = new Map<string, ServerGroupView>();
    const health = new Map<string, Map<string, BackendHealthState>>();
    const gone = new Set<string>();
    for (const [id, type] of refs) {
      if (opts.only && !opts.only.has(id)) continue;
      let view: ServerGroupView;
      try {
        view = await t.lb(type).describeGroup(id);
      } catch (err) {
        if (opts.scope === 'restore' && isNotFound(err)) {
          gone.add(id);
          continue;
        }
        throw err;
      }
      const ack = Object.keys(view.loadBalancerTags).find((k) => ACK_TAG_KEYS.some((a) => k.startsWith(a)));
      if (opts.scope === 'start' && ack !== undefined) {
        throw new StalledError(
          LoadBalancerManagedByACKReason,
          `server group ${id} belongs to load balancer ${view.loadBalancerIds.join(', ')}, tagged ${ack} (created by ACK's cloud controller manager, which would revert the weights); remove it from spec.trafficControl and drain through the Kubernetes Service instead`,
        );
      }
      views.set(id, view);
      if (opts.health) health.set(id, await t.lb(type).backendHealth(view));
    }
    return { views, health, gone };
  }

  /**
   * The capacity guard: which of `candidates` (in order) may go out of rotation now. Out of
   * rotation: backends at weight 0 (anyone's), whose change is still being applied (ALB status
   * other than `Available`), removed by this resource, or admitted by any resource of this process
   * whose drain is not yet visible (reservations). Each backend counts (an instance with two
   * ports in a group takes two). Admitted backends are reserved in the same synchronous turn.
   * @returns the admitted IDs (instances in no group are always admitted) and, when some wait, why.
   * @throws StalledError `DrainCapacityUnsatisfiable` when nothing is admitted and nothing is out of
   *   rotation in the blocking groups (nothing can free room: e.g. a group with fewer healthy
   *   backends than `minHealthyBackends` + 1).
   */
  admit(
    t: TrafficScope,
    reads: GroupReads,
    candidates: readonly string[],
    opts: { reserve?: boolean } = {},
  ): { admitted: string[]; waiting?: string } {
    const spec = t.spec;
    if (!spec) return { admitted: [...candidates] };
    const minHealthy = spec.minHealthyBackends ?? DEFAULT_MIN_HEALTHY_BACKENDS;
    interface Member {
      /** Backends (ports) of the instance in the group still in rotation. */
      inRotation: string[];
      /** Of those, the ones the load balancer reports healthy. */
      healthy: number;
    }
    interface Room {
      out: number;
      max: number;
      healthy: number;
      members: Map<string, Member>;
    }
    const rooms = new Map<string, Room>();
    for (const g of spec.serverGroups) {
      const view = reads.views.get(g.serverGroupId);
      if (!view) continue;
      const health = reads.health.get(g.serverGroupId) ?? new Map<string, BackendHealthState>();
      const reserved = this.reserved.get(g.serverGroupId) ?? new Set<string>();
      const ours = new Set(
        t.backends.filter((b) => b.serverGroupId === g.serverGroupId).map((b) => keyOf(b.instanceId, b.port)),
      );
      const present = new Set(view.backends.map((b) => keyOf(b.instanceId, b.port)));
      const outKeys = new Set([...ours, ...reserved].filter((k) => !present.has(k)));
      const members = new Map<string, Member>();
      let healthy = 0;
      for (const b of view.backends) {
        const key = keyOf(b.instanceId, b.port);
        const inRotation = b.weight > 0 && b.status === 'Available' && !ours.has(key) && !reserved.has(key);
        if (!inRotation) {
          outKeys.add(key);
          continue;
        }
        // No health check on the group: nothing tells healthy from not; count it healthy.
        const ok = view.healthCheck === false || health.get(key) === 'Healthy';
        if (ok) healthy += 1;
        const m = members.get(b.instanceId) ?? { inRotation: [], healthy: 0 };
        m.inRotation.push(key);
        if (ok) m.healthy += 1;
        members.set(b.instanceId, m);
      }
      const total = new Set([...present, ...outKeys]).size;
      rooms.set(g.serverGroupId, {
        out: outKeys.size,
        max: maxDrainedOf(spec.maxDrained, total),
        healthy,
        members,
      });
    }
    const admitted: string[] = [];
    const blocked = new Map<string, string>();
    for (const id of candidates) {
      const groups = [...rooms.entries()].filter(([, r]) => r.members.has(id));
      // Taking out a backend that is not healthy costs no healthy capacity (a first deployment:
      // nothing serves yet).
      const full = groups.find(([, r]) => {
        const m = r.members.get(id) as Member;
        return r.out + m.inRotation.length > r.max || (m.healthy > 0 && r.healthy - m.healthy < minHealthy);
      });
      if (full) {
        const [gid, r] = full;
        blocked.set(
          gid,
          `${gid}: ${r.out} of at most ${r.max} backend(s) out of rotation, ${r.healthy} healthy in rotation (minHealthyBackends ${minHealthy})`,
        );
        continue;
      }
      for (const [gid, r] of groups) {
        const m = r.members.get(id) as Member;
        r.out += m.inRotation.length;
        r.healthy -= m.healthy;
        if (opts.reserve !== false) {
          const set = this.reserved.get(gid) ?? new Set<string>();
          for (const k of m.inRotation) set.add(k);
          this.reserved.set(gid, set);
        }
        r.members.delete(id);
      }
      admitted.push(id);
    }
    if (blocked.size === 0) return { admitted };
    const waiting = `capacity guard keeps ${candidates.length - admitted.length} instance(s) in rotation: ${[...blocked.values()].join('; ')}`;
    const blockers = [...blocked.keys()].map((gid) => rooms.get(gid) as Room);
    if (admitted.length === 0 && blockers.every((r) => r.out === 0))
      throw new StalledError(DrainCapacityUnsatisfiableReason, waiting);
    return { admitted, waiting };
  }

  /**
   * Ends the reservations of `instanceIds` in every group (their backends are back, or their start
   * was dropped before any drain): see {@link Reservations}.
   */
  unreserve(instanceIds: Iterable<string>): void {
    const ids = new Set(instanceIds);
    for (const set of this.reserved.values())
      for (const k of [...set]) if (ids.has(k.slice(0, k.lastIndexOf(':')))) set.delete(k);
  }

  /**
   * Records the originals of every backend of `instanceIds` in the spec's groups (a backend already
   * recorded keeps its record; one already at weight 0 that this resource did not drain is left
   * alone). Call before the intent write.
   * @returns whether any instance of the batch is a backend to drain.
   */
  record(t: TrafficScope, reads: GroupReads, instanceIds: readonly string[], now: Date): boolean {
    const ids = new Set(instanceIds);
    let any = false;
    for (const g of t.spec?.serverGroups ?? []) {
      const view = reads.views.get(g.serverGroupId);
      if (!view) continue;
      // Weight 0 drains only where the scheduler weighs backends (wrr, wlc); otherwise remove + re-add.
      const mode = weightZeroDrains(g.type, view.scheduler) ? 'Weight' : 'Remove';
      for (const b of view.backends) {
        if (!ids.has(b.instanceId)) continue;
        const known = t.backends.some(
          (r) => r.serverGroupId === g.serverGroupId && r.instanceId === b.instanceId && r.port === b.port,
        );
        if (known) continue; // a second drain never records the 0 it wrote
        if (b.weight === 0) continue; // out of rotation already, by someone else
        t.backends.push({
          type: g.type,
          serverGroupId: g.serverGroupId,
          instanceId: b.instanceId,
          port: b.port,
          weight: b.weight,
          ...(b.description ? { description: b.description.slice(0, 256) } : {}),
          mode,
          since: toMetaTime(now),
        });
      }
      // Recorded now or before (a Remove-mode backend already removed is still this batch's).
      if (t.backends.some((r) => r.serverGroupId === g.serverGroupId && ids.has(r.instanceId))) any = true;
    }
    return any;
  }

  /**
   * Takes the recorded backends of `instanceIds` out of rotation (idempotent: only what is still in
   * rotation is written).
   * @returns true once every one is out AND the load balancer shows the change applied (CLB at once;
   *   ALB when each server reads `Available`, or is gone for a removal).
   * @throws CloudError from a read or write (the records stay; the next reconcile writes again).
   */
  async drain(t: TrafficScope, reads: GroupReads, instanceIds: readonly string[]): Promise<boolean> {
    const ids = new Set(instanceIds);
    let applied = true;
    for (const [gid, recs] of this.byGroup(t.backends.filter((b) => ids.has(b.instanceId)))) {
      const view = reads.views.get(gid);
      const first = recs[0];
      if (!view || !first) continue;
      const lb = t.lb(first.type);
      const current = new Map(view.backends.map((b) => [keyOf(b.instanceId, b.port), b]));
      // A server whose earlier change is still being applied (ALB) is not written again: confirmed later.
      const settled = (r: DrainedBackend) => current.get(keyOf(r.instanceId, r.port))?.status === 'Available';
      const toZero = recs.filter(
        (r) =>
          r.mode === 'Weight' && settled(r) && (current.get(keyOf(r.instanceId, r.port))?.weight ?? 0) > 0,
      );
      const toRemove = recs.filter((r) => r.mode === 'Remove' && settled(r));
      if (toZero.length > 0)
        await lb.setWeights(
          gid,
          toZero.map((r) => ({ instanceId: r.instanceId, port: r.port, weight: 0 })),
        );
      if (toRemove.length > 0)
        await lb.removeBackends(
          gid,
          toRemove.map((r) => ({ instanceId: r.instanceId, port: r.port })),
        );
      if (toZero.length + toRemove.length > 0) {
        if (first.type === 'ALB') applied = false; // asynchronous: confirmed by a later read
        continue;
      }
      const settling = recs.some((r) => {
        const b = current.get(keyOf(r.instanceId, r.port));
        return b !== undefined && b.status !== 'Available';
      });
      if (settling) applied = false;
    }
    return applied;
  }

  /**
   * Puts the recorded backends of `instanceIds` back with their original weight (re-added with
   * port, weight and description when removed). Idempotent. Groups are handled one by one: one
   * group's failure does not keep the others from being restored (the first error is rethrown
   * after all were tried). A record with nothing left to restore is dropped and named in `lost`:
   * its group no longer exists, or the load balancer refuses to re-add the backend (a permanent
   * not-found or invalid-parameter answer: its instance was released).
   * @returns `applied`: the load balancer shows every remaining original back and applied
   *   (`Available`).
   * @throws CloudError from a read or write (records stay; retried next reconcile).
   */
  async restore(
    t: TrafficScope,
    reads: GroupReads,
    instanceIds: ReadonlySet<string>,
  ): Promise<{ applied: boolean; lost: string[] }> {
    let applied = true;
    let failure: unknown;
    const lost: DrainedBackend[] = [];
    for (const [gid, recs] of this.byGroup(t.backends.filter((b) => instanceIds.has(b.instanceId)))) {
      if (reads.gone.has(gid)) {
        lost.push(...recs);
        continue;
      }
      const view = reads.views.get(gid);
      const first = recs[0];
      if (!view || !first) continue;
      const lb = t.lb(first.type);
      const current = new Map(view.backends.map((b) => [keyOf(b.instanceId, b.port), b]));
      const reweigh = recs.filter((r) => {
        const b = current.get(keyOf(r.instanceId, r.port));
        return b !== undefined && b.status === 'Available' && b.weight !== r.weight;
      });
      const readd = recs.filter((r) => !current.has(keyOf(r.instanceId, r.port)));
      try {
        if (reweigh.length > 0)
          await lb.setWeights(
            gid,
            reweigh.map((r) => ({ instanceId: r.instanceId, port: r.port, weight: r.weight })),
          );
        if (readd.length > 0) {
          try {
            await lb.addBackends(
              gid,
              readd.map((r) => ({
                instanceId: r.instanceId,
                port: r.port,
                weight: r.weight,
                ...(r.description !== undefined ? { description: r.description } : {}),
              })),
            );
          } catch (err) {
            const refused =
              isCloudError(err) &&
              err.kind === 'permanent' &&
              (err.category === 'notFound' || err.category === 'invalidParameter');
            if (!refused) throw err;
            lost.push(...readd);
          }
        }
      } catch (err) {
        failure ??= err;
        continue;
      }
      if (reweigh.length + readd.length > 0) {
        if (first.type === 'ALB') applied = false;
        continue;
      }
      if (recs.some((r) => current.get(keyOf(r.instanceId, r.port))?.status !== 'Available')) applied = false;
    }
    if (lost.length > 0) {
      const drop = new Set(lost);
      t.backends.splice(0, t.backends.length, ...t.backends.filter((b) => !drop.has(b)));
    }
    if (failure !== undefined) throw failure;
    return {
      applied,
      lost: lost.map((r) => `${r.serverGroupId} ${r.instanceId}:${r.port}`),
    };
  }

  /** Drops the records of `instanceIds` (their originals are back) and their reservations. */
  forget(t: TrafficScope, instanceIds: ReadonlySet<string>): void {
    const keep = t.backends.filter((b) => !instanceIds.has(b.instanceId));
    t.backends.splice(0, t.backends.length, ...keep);
    this.unreserve(instanceIds);
  }

  /** Whether any of `instanceIds` has a recorded backend. */
  holds(t: TrafficScope, instanceIds: readonly string[]): boolean {
    return instanceIds.some((id) => t.backends.some((b) => b.instanceId === id));
  }

  /**
   * The health verdict of a restored batch: the instances whose recorded backends the load
   * balancer does not (yet) report `Healthy`.
   */
  unhealthy(
    t: TrafficScope,
    reads: GroupReads,
    instanceIds: readonly string[],
  ): Array<{ instanceId: string; detail: string }> {
    const out: Array<{ instanceId: string; detail: string }> = [];
    for (const id of instanceIds) {
      // A group without health checks has nothing to wait for.
      const bad = t.backends.find(
        (b) =>
          b.instanceId === id &&
          reads.views.get(b.serverGroupId)?.healthCheck !== false &&
          reads.health.get(b.serverGroupId)?.get(keyOf(b.instanceId, b.port)) !== 'Healthy',
      );
      if (bad) {
        const state =
          reads.health.get(bad.serverGroupId)?.get(keyOf(bad.instanceId, bad.port)) ?? 'no report';
        out.push({ instanceId: id, detail: `${bad.serverGroupId} ${bad.instanceId}:${bad.port} ${state}` });
      }
    }
    return out;
  }

  /**
   * The traffic step of the kit's tracked-work reconcile, after the poll (see the module comment):
   * finished work that drained instances moves to `Restoring` (originals written back) and is held
   * back from `finished` until the load balancer reports it healthy or `healthyTimeoutSeconds`
   * passed (then its unhealthy instances' outcomes fail); recorded backends no item holds are
   * restored (safety write).
   * @returns the finished work to hand to the kind now.
   * @throws CloudError from the load balancer calls (held work stays held; retried).
   */
  async afterPoll(
    t: TrafficScope,
    owner: Resource,
    reporting: StartReporting,
    inFlight: WorkItem[],
    finished: FinishedWork[],
    now: Date,
  ): Promise<{ inFlight: WorkItem[]; finished: FinishedWork[] }> {
    const released: FinishedWork[] = [];
    for (const f of finished) {
      if (this.holds(t, f.work.instanceIds)) {
        // A Restoring item polled again after a restart keeps the time its originals came back.
        if (f.work.trafficPhase !== 'Restoring') delete f.work.phaseSince;
        f.work.trafficPhase = 'Restoring';
        f.work.finished = f;
        inFlight.push(f.work);
      } else released.push(f);
    }
    const restoring = inFlight.filter((w) => w.trafficPhase === 'Restoring' && w.finished);
    const held = new Set(inFlight.filter((w) => !restoring.includes(w)).flatMap((w) => w.instanceIds));
    const idle = new Set(t.backends.map((b) => b.instanceId).filter((id) => !held.has(id)));
    if (idle.size === 0 && restoring.length === 0) return { inFlight, finished: released };
    const reads = await this.read(t, {
      health: restoring.length > 0,
      scope: 'restore',
      only: new Set(t.backends.map((b) => b.serverGroupId)),
    });
    const warnLost = (lost: string[]) => {
      if (lost.length === 0) return;
      this.event(
        owner,
        reporting,
        'Warning',
        BackendsRestoredEvent,
        `nothing to put back for ${lost.length} backend(s) (server group gone, or the instance was released): ${lost.slice(0, 5).join(', ')}`,
      );
    };
    // Restore what no item holds any more (dropped drains, suspended, a restart after a kill).
    const idleOnly = new Set([...idle].filter((id) => !restoring.some((w) => w.instanceIds.includes(id))));
    if (idleOnly.size > 0) {
      const { applied, lost } = await this.restore(t, reads, idleOnly);
      warnLost(lost);
      if (applied) {
        this.event(
          owner,
          reporting,
          'Normal',
          BackendsRestoredEvent,
          `put ${idleOnly.size} instance(s) back into rotation with their original weights: ${listIds([...idleOnly])}`,
        );
        this.forget(t, idleOnly);
      } else t.wakeAtMs = Math.min(t.wakeAtMs ?? Infinity, now.getTime() + TRAFFIC_RECHECK_MS);
    }
    const timeoutMs = (t.spec?.healthyTimeoutSeconds ?? DEFAULT_HEALTHY_TIMEOUT_SECONDS) * 1000;
    let keep = inFlight;
    for (const w of restoring) {
      const f = w.finished as FinishedWork;
      const ids = new Set(w.instanceIds);
      const { applied, lost } = await this.restore(t, reads, ids);
      warnLost(lost);
      if (!applied) {
        t.wakeAtMs = Math.min(t.wakeAtMs ?? Infinity, now.getTime() + TRAFFIC_RECHECK_MS);
        continue;
      }
      const okIds = f.outcomes.filter((o) => o.ok).map((o) => o.instanceId);
      const since = sinceMs(w.phaseSince);
      if (since === undefined) {
        w.phaseSince = toMetaTime(now);
        this.event(
          owner,
          reporting,
          'Normal',
          BackendsRestoredEvent,
          `put ${ids.size} instance(s) back into rotation with their original weights after ${w.action}: ${listIds([...ids])}`,
        );
        // Health is judged from a later read than the one that saw the weights still at 0 (a
        // batch that failed on every host has none to wait for).
        if (okIds.length > 0) {
          t.wakeAtMs = Math.min(t.wakeAtMs ?? Infinity, now.getTime() + TRAFFIC_RECHECK_MS);
          continue;
        }
      }
      const bad = this.unhealthy(t, reads, okIds);
      if (bad.length > 0 && now.getTime() - (since ?? now.getTime()) < timeoutMs) {
        t.wait = {
          reason: 'WaitingForLoadBalancerHealth',
          message: `waiting for the load balancer to report ${bad.length} instance(s) healthy: ${bad
            .slice(0, 5)
            .map((b) => b.detail)
            .join(', ')}`,
        };
        t.wakeAtMs = Math.min(t.wakeAtMs ?? Infinity, now.getTime() + TRAFFIC_RECHECK_MS);
        continue;
      }
      if (bad.length > 0) {
        const seconds = Math.round(timeoutMs / 1000);
        f.outcomes = f.outcomes.map((o) => {
          const b = bad.find((x) => x.instanceId === o.instanceId);
          if (!b) return o;
          const message = sanitizeText(
            `load balancer did not report the instance healthy within ${seconds}s (healthyTimeoutSeconds): ${b.detail}`,
          ).slice(0, 512);
          // The host's output is not the failure: the message is what a kind shows.
          return { instanceId: o.instanceId, ok: false, step: LB_HEALTH_STEP, message, output: message };
        });
        this.event(
          owner,
          reporting,
          'Warning',
          BackendUnhealthyEvent,
          `the load balancer did not report ${bad.length} instance(s) healthy within ${seconds}s after ${w.action}: ${bad
            .slice(0, 5)
            .map((b) => b.detail)
            .join(', ')}`,
        );
      }
      // The item keeps its phase and verdict: a kind that puts it back in flight (its fold failed)
      // hands the same outcomes over again, not the cloud's ok ones.
      this.forget(t, ids);
      keep = keep.filter((x) => x !== w);
      released.push(f);
    }
    return { inFlight: keep, finished: released };
  }

  /**
   * A Draining item's turn (the kit's pending-start resolution): drains again what is still in
   * rotation, confirms the change applied, waits `drainSeconds` from then.
   * @returns 'send' when the batch may act now; 'wait' otherwise (`t.wait` / `t.wakeAtMs` set).
   * @throws CloudError from the load balancer calls.
   */
  async drainStep(
    t: TrafficScope,
    owner: Resource,
    reporting: StartReporting,
    item: WorkItem,
    now: Date,
  ): Promise<'send' | 'wait'> {
    const groups = new Set(
      t.backends.filter((b) => item.instanceIds.includes(b.instanceId)).map((b) => b.serverGroupId),
    );
    if (item.phaseSince === undefined) {
      const reads = await this.read(t, { health: false, scope: 'restore', only: groups });
      if (!(await this.drain(t, reads, item.instanceIds))) {
        t.wait = {
          reason: 'Draining',
          message: `taking ${item.instanceIds.length} instance(s) out of rotation: waiting for the load balancer to apply it`,
        };
        t.wakeAtMs = Math.min(t.wakeAtMs ?? Infinity, now.getTime() + TRAFFIC_RECHECK_MS);
        return 'wait';
      }
      item.phaseSince = toMetaTime(now);
      this.event(
        owner,
        reporting,
        'Normal',
        BackendsDrainedEvent,
        `took ${item.instanceIds.length} instance(s) out of rotation before ${item.action}: ${listIds(item.instanceIds)} (${[...groups].join(', ')})`,
      );
    }
    const readyAt =
      (sinceMs(item.phaseSince) ?? now.getTime()) + (t.spec?.drainSeconds ?? DEFAULT_DRAIN_SECONDS) * 1000;
    if (now.getTime() < readyAt) {
      t.wait = {
        reason: 'Draining',
        message: `draining ${item.instanceIds.length} instance(s) before ${item.action} until ${toMetaTime(new Date(readyAt))}: ${listIds(item.instanceIds)}`,
      };
      t.wakeAtMs = Math.min(t.wakeAtMs ?? Infinity, readyAt);
      return 'wait';
    }
    return 'send';
  }

  private byGroup(recs: readonly DrainedBackend[]): Map<string, DrainedBackend[]> {
    const m = new Map<string, DrainedBackend[]>();
    for (const r of recs) m.set(r.serverGroupId, [...(m.get(r.serverGroupId) ?? []), r]);
    return m;
  }

  private event(
    owner: Resource,
    r: StartReporting,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): void {
    void r.events.event(owner, type, reason, TrafficControlAction, sanitizeText(message).slice(0, 1024));
  }
}

/**
 * The {@link TrafficScope} of one reconcile, or undefined when the resource neither has
 * `spec.trafficControl` nor recorded backends to restore.
 * @param lb the cloud layer's load balancer client factory (absent in test doubles: then a
 *   resource with trafficControl fails its reads with a TypeError naming it).
 */
export function trafficScopeOf(o: {
  spec: TrafficControlSpec | undefined;
  status: { backends?: DrainedBackend[] } | undefined;
  regionId: string;
  lb: ((type: LoadBalancerType, regionId: string) => LoadBalancerApi) | undefined;
  drains: (action: string) => boolean;
}): TrafficScope | undefined {
  const backends = (o.status?.backends ?? []).map((b) => ({ ...b }));
  if (!o.spec && backends.length === 0) return undefined;
  return {
    ...(o.spec ? { spec: o.spec } : {}),
    backends,
    drains: o.drains,
    lb: (type) => {
      if (!o.lb) throw new TypeError('this cloud layer has no load balancer client (spec.trafficControl)');
      return o.lb(type, o.regionId);
    },
  };
}

/** `status.trafficControl` from the scope: present only while backends are recorded. */
export function trafficStatusOf(t: TrafficScope | undefined): { backends: DrainedBackend[] } | undefined {
  return t && t.backends.length > 0 ? { backends: t.backends.map((b) => ({ ...b })) } : undefined;
}
