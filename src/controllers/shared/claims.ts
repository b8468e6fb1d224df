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
  /**
   * What is claimed, e.g. the package name. Claims only conflict within one subject (or within
   * overlapping subjects, see {@link ClaimRegistryOptions.subjectsOverlap}).
   */
  subject: string;
  /** The desired state on the subject; equal fingerprints agree and never conflict. */
  fingerprint: string;
  instanceIds: ReadonlySet<string>;
  /** Instances this resource has work in flight on → the execution (or `pending` while starting). */
  inFlight?: ReadonlyMap<string, string>;
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

/** Options of a {@link ClaimRegistry}. */
export interface ClaimRegistryOptions {
  /**
   * Whether two subjects are the same thing (symmetric). Default: equal strings. A kind whose
   * subjects nest (e.g. directories) passes a predicate true for overlapping ones.
   */
  subjectsOverlap?: (a: string, b: string) => boolean;
}

/** The claims of one kind (one instance per kind per process; a kind may keep one per subject type). */
export class ClaimRegistry {
  private readonly claims = new Map<string, Claim>();
  private readonly sameSubject: (a: string, b: string) => boolean;

  constructor(opts: ClaimRegistryOptions = {}) {
    this.sameSubject = opts.subjectsOverlap ?? ((a, b) => a === b);
  }

  /** Records (replaces) the claim of `claim.uid`. */
  set(claim: Claim): void {
    this.claims.set(claim.uid, claim);
  }

  /**
   * Records the work `uid` has in flight (call synchronously before starting work, so a resource
   * reconciling concurrently sees it). No-op for an unknown UID.
   */
  setInFlight(uid: string, inFlight: ReadonlyMap<string, string>): void {
    const c = this.claims.get(uid);
    if (c) this.claims.set(uid, { ...c, inFlight });
  }

  /**
   * Instances of `claim` on which another resource that AGREES with it (same subject and
   * fingerprint) has work in flight → that work's ID. Overlap without waste: `claim`'s resource
   * waits for that work instead of starting the same thing again.
   */
  inFlightByAgreeing(claim: Claim): Map<string, string> {
    const out = new Map<string, string>();
    for (const other of this.claims.values()) {
      if (
        other.uid === claim.uid ||
        !this.sameSubject(other.subject, claim.subject) ||
        other.fingerprint !== claim.fingerprint
      )
        continue;
      for (const [id, work] of other.inFlight ?? [])
        if (claim.instanceIds.has(id) && !out.has(id)) out.set(id, work);
    }
    return out;
  }

  /** The claim of `uid`, if recorded. */
  get(uid: string): Claim | undefined {
    return this.claims.get(uid);
  }

  /** Drops the claim of a resource that is gone. */
  remove(uid: string): void {
    this.claims.delete(uid);
  }

  /**
   * The oldest claim that is older than `claim`, on the same (or an overlapping) subject with
   * another fingerprint, and shares instances with it; undefined when `claim` may act.
   */
  conflictFor(claim: Claim): Conflict | undefined {
    let best: Conflict | undefined;
    for (const other of this.claims.values()) {
      if (
        other.uid === claim.uid ||
        !this.sameSubject(other.subject, claim.subject) ||
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
