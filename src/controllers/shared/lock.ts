/**
 * The cross-kind per-instance lock (DESIGN §1): an EcsExtension execution, a PatchPolicy install
 * and an AppRelease batch never act on one instance at once. The one that would start waits and
 * says so in its status (`WaitingForInstanceLock`, naming the holder).
 *
 * The lock is DERIVED, never stored on its own: what a resource holds is the in-flight work in its
 * `status.executions`. Each tracked item carries `lockKeys` while it is in flight — one compact
 * key per instance of its batch (8 characters: 48 bits of SHA-256 of the instance ID, Base64URL),
 * at most 100 per item. Instance IDs themselves are not stored (they would make a 20,000-instance
 * EcsExtension round ~0.5 MiB of status); keys are about a third of that, exact enough (a false
 * match, ~1 in 10^8 per pair, only makes a resource wait longer), and they disappear with the item
 * when its work finishes. Because the record is in status, the lock survives restarts: a restarted
 * controller sees every holder as soon as its informer caches are synced.
 *
 * Between a RunCommand / StartExecution and the status write that records it (and the informer
 * seeing that write), a process-local hold covers the gap: a kind calls {@link InstanceLock.hold}
 * with its in-flight batches right after starting them. Check and hold run in one synchronous turn
 * of the event loop, so two kinds' reconciles in one process cannot both pass the check.
 *
 * Waiters wake when a hold ends (issue 23): a {@link InstanceLock.check} that finds instances held
 * records the resource as a waiter on those keys ({@link InstanceLock.wait}); when a holder
 * releases keys — its process-local hold shrinks ({@link InstanceLock.hold},
 * {@link InstanceLock.release}) or its informer update shows keys gone from
 * `status.executions[].lockKeys` ({@link InstanceLock.observe}, wired by `registerKind` for every
 * kind's hold source) — every waiter on one of them is handed, once, to its kind's wake function
 * (`registerKind`: the kind's workqueue, at change priority). Keys the same holder still holds in
 * the other view (local hold vs. published status) wake nobody yet. One lock serves every kind, so
 * an AppRelease batch ending wakes an EcsExtension and vice versa. A waiter keeps a longer fallback
 * requeue for what a wake cannot see (a missed event).
 */
import { createHash } from 'node:crypto';
import type { TrackedExecution } from '../../api/common.js';
import type { DisruptionBudgets } from './budget.js';
import type { InformerEvents } from '../../runtime/informer.js';
import type { ObjectReader, Resource } from './deps.js';

/** Characters of one lock key. */
export const LOCK_KEY_LENGTH = 8;

/** The lock key of an instance ID: 48 bits of its SHA-256 as 8 Base64URL characters. */
export function instanceLockKey(instanceId: string): string {
  return createHash('sha256').update(instanceId).digest('base64url').slice(0, LOCK_KEY_LENGTH);
}

/** The `lockKeys` string of a batch: its instances' keys, sorted and concatenated (no separator). */
export function encodeLockKeys(instanceIds: readonly string[]): string {
  return [...new Set(instanceIds.map(instanceLockKey))].sort().join('');
}

/** The keys of a `lockKeys` string. */
export function decodeLockKeys(keys: string | undefined): string[] {
  const out: string[] = [];
  for (let i = 0; i + LOCK_KEY_LENGTH <= (keys ?? '').length; i += LOCK_KEY_LENGTH)
    out.push((keys as string).slice(i, i + LOCK_KEY_LENGTH));
  return out;
}

/** Who holds an instance. */
export interface LockHolder {
  kind: string;
  namespace: string;
  name: string;
  uid: string;
}

function holderOf(obj: Resource): LockHolder {
  return {
    kind: obj.kind,
    namespace: obj.metadata.namespace ?? '',
    name: obj.metadata.name ?? '',
    uid: obj.metadata.uid ?? '',
  };
}

/** What {@link InstanceLock.check} found for a set of instances. */
export interface LockCheck {
  /** Instances nobody else holds. */
  free: string[];
  /** Instances another resource holds, with the first holder found. */
  held: Array<{ instanceId: string; holder: LockHolder }>;
  /**
   * Every lock key another resource holds, with its first holder found: the map the check was
   * made from ({@link InstanceLock.holders} leaving out the owner).
   */
  others: Map<string, LockHolder>;
  /**
   * The lock keys the owner itself holds: its process-local hold and its published
   * `status.executions[].lockKeys` (as its kind's source shows it). With {@link others}: every
   * key held now by anyone (what a disruption budget counts).
   */
  own: Set<string>;
}

/** Enqueues the waiter `namespace/name` of one kind for a reconcile now. */
export type LockWake = (key: string) => void;

/**
 * The `lockKeys` of each item of `status.executions` (`''` for an item without), in item order;
 * empty when `status` has no executions. `status` is any kind's status (unchecked shape).
 */
function statusLockKeys(status: unknown): string[] {
  const executions = (status as { executions?: TrackedExecution[] } | undefined)?.executions;
  return (executions ?? []).map((e) => e.lockKeys ?? '');
}

/** The keys `status.executions[].lockKeys` of `obj` hold, concatenated in item order. */
function publishedKeys(obj: Resource): string {
  return statusLockKeys(obj.status).join('');
}

/** A resource waiting for instances another resource holds. */
interface Waiter {
  kind: string;
  /** Its workqueue key, `namespace/name`. */
  key: string;
  /** The lock keys it found held. */
  keys: Set<string>;
}

/** The per-instance lock of one controller process; see the module comment. */
export class InstanceLock {
  private readonly sources = new Map<string, ObjectReader<Resource>>();
  private readonly local = new Map<string, { holder: LockHolder; keys: Set<string> }>();
  private readonly wakes = new Map<string, LockWake>();
  /** Per UID: the lockKeys its status held when its informer last showed it (non-empty only). */
  private readonly published = new Map<string, string>();
  /** Per UID: resources waiting for keys another resource holds. */
  private readonly waiters = new Map<string, Waiter>();
  /**
   * The process's disruption budgets (InstanceDisruptionBudget): set once at wiring, so every kind
   * given this lock consults them in its start path (start.ts) after the lock check.
   */
  budgets: DisruptionBudgets | undefined;

  /**
   * Adds the informer cache of a kind whose `status.executions[].lockKeys` hold instances (every
   * kind on the kit: `registerKind` calls this when given the lock). With `wake`, this kind's
   * waiters are enqueued through it when a hold they wait on ends; when `objects` also has
   * informer events (an informer cache), the lock observes its objects' published holds.
   */
  addSource(
    kind: string,
    objects: ObjectReader<Resource> & Partial<InformerEvents<Resource>>,
    wake?: LockWake,
  ): void {
    this.sources.set(kind, objects);
    if (wake) this.wakes.set(kind, wake);
    objects.onAdd?.((obj) => this.observe(obj));
    objects.onUpdate?.((obj) => this.observe(obj));
    objects.onDelete?.((obj) => this.observe(obj, true));
  }

  /**
   * Takes what an informer shows of a holder (`deleted`: its last state before deletion): keys
   * gone from its `status.executions[].lockKeys` since the last observation, and not still held
   * process-locally by it, wake their waiters. One string comparison when its keys did not change.
   */
  observe(obj: Resource, deleted = false): void {
    const uid = obj.metadata.uid ?? '';
    const before = this.published.get(uid) ?? '';
    const now = deleted ? '' : publishedKeys(obj);
    if (deleted) this.waiters.delete(uid);
    if (now === before) return;
    if (now === '') this.published.delete(uid);
    else this.published.set(uid, now);
    if (before === '' || this.waiters.size === 0) return;
    const still = new Set(decodeLockKeys(now));
    const local = this.local.get(uid)?.keys;
    this.wakeWaiters(
      decodeLockKeys(before).filter((k) => !still.has(k) && !local?.has(k)),
      uid,
    );
  }

  /**
   * Records `owner` as waiting for `keys` (lock keys, {@link instanceLockKey}) another resource
   * holds, added to what it already waits for: when one of them is released, the owner's kind's
   * wake enqueues it, once. {@link check} calls this for the instances it finds held.
   */
  wait(owner: Resource, keys: readonly string[]): void {
    if (keys.length === 0) return;
    const uid = owner.metadata.uid ?? '';
    const w = this.waiters.get(uid);
    if (w) {
      for (const k of keys) w.keys.add(k);
      return;
    }
    this.waiters.set(uid, {
      kind: owner.kind,
      key: `${owner.metadata.namespace ?? ''}/${owner.metadata.name ?? ''}`,
      keys: new Set(keys),
    });
  }

  /** How many resources wait for a hold to end. */
  waiting(): number {
    return this.waiters.size;
  }

  /**
   * Records, in this process, the instances `owner` has work in flight on (replacing what it held
   * before). Call right after starting work, and with the remaining in-flight batches at the end
   * of each reconcile; an empty list releases.
   */
  hold(owner: Resource, instanceIds: readonly string[]): void {
    const uid = owner.metadata.uid ?? '';
    const before = this.local.get(uid)?.keys;
    if (instanceIds.length === 0) {
      this.local.delete(uid);
      if (before) this.releasedLocally(uid, before, new Set());
      return;
    }
    const keys = new Set(instanceIds.map(instanceLockKey));
    this.local.set(uid, { holder: holderOf(owner), keys });
    if (before) this.releasedLocally(uid, before, keys);
  }

  /** Drops the process-local hold (and any wait) of a resource that is gone. */
  release(uid: string): void {
    const before = this.local.get(uid)?.keys;
    this.local.delete(uid);
    this.waiters.delete(uid);
    if (before) this.releasedLocally(uid, before, new Set());
  }

  /** Wakes the waiters of keys `uid` held locally and now holds neither locally nor in its published status. */
  private releasedLocally(uid: string, before: Set<string>, after: Set<string>): void {
    if (this.waiters.size === 0) return;
    const published = this.published.get(uid);
    const still = published ? new Set(decodeLockKeys(published)) : undefined;
    const gone: string[] = [];
    for (const k of before) if (!after.has(k) && !still?.has(k)) gone.push(k);
    this.wakeWaiters(gone, uid);
  }

  /** Hands every waiter on one of `keys` (other than the holder `holderUid`) to its kind's wake, once. */
  private wakeWaiters(keys: readonly string[], holderUid: string): void {
    if (keys.length === 0) return;
    for (const [uid, w] of this.waiters) {
      if (uid === holderUid || !keys.some((k) => w.keys.has(k))) continue;
      this.waiters.delete(uid);
      this.wakes.get(w.kind)?.(w.key);
    }
  }

  /**
   * Splits `instanceIds` into those no other resource holds and those another one holds (from the
   * status of every source kind, and the process-local holds). Synchronous: call it and
   * {@link hold} in the same turn as the start decision. Instances found held make `owner` a
   * waiter on them ({@link wait}): it is woken when one of those holds ends.
   */
  check(owner: Resource, instanceIds: readonly string[]): LockCheck {
    const own = new Set<string>();
    const byKey = this.scan(owner.metadata.uid ?? '', own);
    const out: LockCheck = { free: [], held: [], others: byKey, own };
    const waitingFor: string[] = [];
    for (const id of instanceIds) {
      const key = instanceLockKey(id);
      const holder = byKey.get(key);
      if (holder) {
        out.held.push({ instanceId: id, holder });
        waitingFor.push(key);
      } else out.free.push(id);
    }
    this.wait(owner, waitingFor);
    return out;
  }

  /**
   * Every held lock key with its first holder found (process-local holds first, then the status
   * of every source kind), leaving out the resource with UID `except` (undefined: nobody is left
   * out — a disruption budget counts the starting resource's own holds too). Synchronous.
   */
  holders(except?: string): Map<string, LockHolder> {
    return this.scan(except);
  }

  /**
   * {@link holders}`(except)` in one pass over the holds; with `own`, the keys `except` itself
   * holds (process-local and published) are added to it instead of being skipped.
   */
  private scan(except: string | undefined, own?: Set<string>): Map<string, LockHolder> {
    const byKey = new Map<string, LockHolder>();
    for (const [uid, h] of this.local) {
      if (uid === except) {
        if (own) for (const k of h.keys) own.add(k);
        continue;
      }
      for (const k of h.keys) if (!byKey.has(k)) byKey.set(k, h.holder);
    }
    for (const objects of this.sources.values()) {
      for (const obj of objects.list()) {
        const mine = except !== undefined && (obj.metadata.uid ?? '') === except;
        if (mine && !own) continue;
        const lockKeys = statusLockKeys(obj.status);
        if (lockKeys.length === 0) continue;
        if (mine) {
          for (const keys of lockKeys) for (const k of decodeLockKeys(keys)) own?.add(k);
          continue;
        }
        const holder = holderOf(obj);
        for (const keys of lockKeys) {
          for (const k of decodeLockKeys(keys)) if (!byKey.has(k)) byKey.set(k, holder);
        }
      }
    }
    return byKey;
  }
}

/**
 * True when the status `next` holds an instance (a `status.executions[].lockKeys` key) that
 * `published` does not: writing it publishes a lock acquisition, which must not wait (another
 * process, e.g. the next leader after a crash, sees holds only in the API server's status).
 */
export function acquiresLocks(published: unknown, next: unknown): boolean {
  const keys = (status: unknown): Set<string> =>
    new Set(statusLockKeys(status).flatMap((k) => decodeLockKeys(k)));
  const before = keys(published);
  for (const k of keys(next)) if (!before.has(k)) return true;
  return false;
}

/**
 * What a kind's status says about instances another resource holds (`WaitingForInstanceLock`):
 * how many, and the first holder as `Kind namespace/name`; undefined when none is held.
 */
export function lockWaitOf(held: LockCheck['held']): { count: number; holder: string } | undefined {
  const first = held[0];
  return first ? { count: held.length, holder: describeHolder(first.holder) } : undefined;
}

/** `Kind namespace/name` of a holder (or any row naming one), for status messages. */
export function describeHolder(h: Pick<LockHolder, 'kind' | 'namespace' | 'name'>): string {
  return `${h.kind} ${h.namespace}/${h.name}`;
}
