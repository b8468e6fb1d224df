/**
 * Detects resources that fight over instances (DESIGN §1): two resources of a kind that declare a
 * different desired state for the same thing (e.g. one OOS package at two versions) on
 * overlapping instances. The older resource (by creationTimestamp, then namespace/name) keeps the
 * instances; the newer one is reported `Stalled` with reason `ConflictingResource`.
 *
 * In-process: each reconcile records the instances it resolved. After a restart a conflict is seen
 * once both resources have reconciled in this process.
 */

/** What one resource claims. */
export interface Claim {
  uid: string;
  namespace: string;
  name: string;
  /** RFC 3339 creationTimestamp. */
  createdAt: string;
  /** What is claimed, e.g. the package name. Claims only conflict within one subject. */
  subject: string;
  /** The desired state on the subject; equal fingerprints agree and never conflict. */
  fingerprint: string;
  instanceIds: ReadonlySet<string>;
}

/** A conflict found for a claim. */
export interface Conflict {
  holder: Claim;
  /** Instances both claim. */
  overlap: number;
}

function older(a: Claim, b: Claim): boolean {
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt;
  const ka = `${a.namespace}/${a.name}`;
  const kb = `${b.namespace}/${b.name}`;
  return ka !== kb ? ka < kb : a.uid < b.uid;
}

/** The claims of one kind (one instance per kind per process). */
export class ClaimRegistry {
  private readonly claims = new Map<string, Claim>();

  /** Records (replaces) the claim of `claim.uid`. */
  set(claim: Claim): void {
    this.claims.set(claim.uid, claim);
  }

  /** Drops the claim of a resource that is gone. */
  remove(uid: string): void {
    this.claims.delete(uid);
  }

  /**
   * The oldest claim that is older than `claim`, on the same subject with another fingerprint,
   * and overlaps it; undefined when `claim` may act.
   */
  conflictFor(claim: Claim): Conflict | undefined {
    let best: Conflict | undefined;
    for (const other of this.claims.values()) {
      if (
        other.uid === claim.uid ||
        other.subject !== claim.subject ||
        other.fingerprint === claim.fingerprint
      )
        continue;
      if (!older(other, claim)) continue;
      let overlap = 0;
      const [small, large] =
        other.instanceIds.size < claim.instanceIds.size
          ? [other.instanceIds, claim.instanceIds]
          : [claim.instanceIds, other.instanceIds];
      for (const id of small) if (large.has(id)) overlap++;
      if (overlap === 0) continue;
      if (!best || older(other, best.holder)) best = { holder: other, overlap };
    }
    return best;
  }
}
