/**
 * Spec announcements of kinds other kinds depend on (a MaintenanceWindow its PatchPolicies, an
 * InstanceDisruptionBudget every start path): once per generation per process, and once more when
 * the object is forgotten, so dependants re-plan without being edited.
 */
import type { Resource } from './deps.js';

/** Calls `onChange(namespace, name)` for each new generation of an object and for its removal. */
export class SpecAnnouncer {
  /** Generation last announced per UID, and the object's key (to announce its removal). */
  private readonly announced = new Map<string, { generation: number; namespace: string; name: string }>();

  constructor(private readonly onChange: (namespace: string, name: string) => void) {}

  /** Announces `obj` unless its current `metadata.generation` was already announced. */
  announce(obj: Resource): void {
    const uid = obj.metadata.uid ?? '';
    const generation = obj.metadata.generation ?? 0;
    if (this.announced.get(uid)?.generation === generation) return;
    const namespace = obj.metadata.namespace ?? '';
    const name = obj.metadata.name ?? '';
    this.announced.set(uid, { generation, namespace, name });
    this.onChange(namespace, name);
  }

  /** Forgets `uid`; announces the removal when it had been announced. */
  forget(uid: string): void {
    const a = this.announced.get(uid);
    if (!a) return;
    this.announced.delete(uid);
    this.onChange(a.namespace, a.name);
  }
}
