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
 */
import { createHash } from 'node:crypto';
import type { TrackedExecution } from '../../api/common.js';
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
}

/** The per-instance lock of one controller process; see the module comment. */
export class InstanceLock {
  private readonly sources = new Map<string, ObjectReader<Resource>>();
  private readonly local = new Map<string, { holder: LockHolder; keys: Set<string> }>();

  /**
   * Adds the informer cache of a kind whose `status.executions[].lockKeys` hold instances (every
   * kind on the kit: `registerKind` calls this when given the lock).
   */
  addSource(kind: string, objects: ObjectReader<Resource>): void {
    this.sources.set(kind, objects);
  }

  /**
   * Records, in this process, the instances `owner` has work in flight on (replacing what it held
   * before). Call right after starting work, and with the remaining in-flight batches at the end
   * of each reconcile; an empty list releases.
   */
  hold(owner: Resource, instanceIds: readonly string[]): void {
    const uid = owner.metadata.uid ?? '';
    if (instanceIds.length === 0) {
      this.local.delete(uid);
      return;
    }
    this.local.set(uid, { holder: holderOf(owner), keys: new Set(instanceIds.map(instanceLockKey)) });
  }

  /** Drops the process-local hold of a resource that is gone. */
  release(uid: string): void {
    this.local.delete(uid);
  }

  /**
   * Splits `instanceIds` into those no other resource holds and those another one holds (from the
   * status of every source kind, and the process-local holds). Synchronous: call it and
   * {@link hold} in the same turn as the start decision.
   */
  check(owner: Resource, instanceIds: readonly string[]): LockCheck {
    const self = owner.metadata.uid ?? '';
    const byKey = new Map<string, LockHolder>();
    for (const [uid, h] of this.local) {
      if (uid === self) continue;
      for (const k of h.keys) if (!byKey.has(k)) byKey.set(k, h.holder);
    }
    for (const objects of this.sources.values()) {
      for (const obj of objects.list()) {
        if ((obj.metadata.uid ?? '') === self) continue;
        const executions = (obj.status as { executions?: TrackedExecution[] } | undefined)?.executions;
        if (!executions || executions.length === 0) continue;
        const holder = holderOf(obj);
        for (const e of executions) {
          for (const k of decodeLockKeys(e.lockKeys)) if (!byKey.has(k)) byKey.set(k, holder);
        }
      }
    }
    const out: LockCheck = { free: [], held: [] };
    for (const id of instanceIds) {
      const holder = byKey.get(instanceLockKey(id));
      if (holder) out.held.push({ instanceId: id, holder });
      else out.free.push(id);
    }
    return out;
  }
}

/**
 * True when the status `next` holds an instance (a `status.executions[].lockKeys` key) that
 * `published` does not: writing it publishes a lock acquisition, which must not wait (another
 * process, e.g. the next leader after a crash, sees holds only in the API server's status).
 */
export function acquiresLocks(published: unknown, next: unknown): boolean {
  const keys = (status: unknown): Set<string> =>
    new Set(
      ((status as { executions?: TrackedExecution[] } | undefined)?.executions ?? []).flatMap((e) =>
        decodeLockKeys(e.lockKeys),
      ),
    );
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

/** `Kind namespace/name` of a holder, for status messages. */
export function describeHolder(h: LockHolder): string {
  return `${h.kind} ${h.namespace}/${h.name}`;
}
