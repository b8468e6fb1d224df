/**
 * Pure helpers for starting OOS executions idempotently (DESIGN §3): deterministic
 * ClientTokens, owner tags, batching, and rate control in the OOS wire form.
 */
import { createHash } from 'node:crypto';
import { OWNER_KIND_TAG, OWNER_NAME_TAG, OWNER_UID_TAG, type RateControl } from '../../api/common.js';

/** OOS caps targets per bulky execution at 50 in the seed workflow; RunCommand takes 100. */
export const OOS_BATCH_SIZE = 50;

/**
 * A deterministic OOS/ECS `ClientToken` (≤64 ASCII characters) derived from the owner's UID,
 * generation, execution sequence, action and the SORTED instance batch. The same inputs always
 * give the same token, so a controller that crashed after StartExecution but before writing
 * status gets the same execution back instead of a duplicate.
 * @returns `ecsops-` + 40 hex characters (47 characters).
 */
export function clientToken(parts: {
  uid: string;
  generation: number;
  /** Replaces the generation when set (a kind whose work outlives generations, e.g. an AppRelease revision). */
  scope?: string;
  sequence: number;
  action: string;
  instanceIds: readonly string[];
}): string {
  const batch = [...parts.instanceIds].sort().join(',');
  const scope = parts.scope !== undefined ? `s:${parts.scope}` : String(parts.generation);
  const digest = createHash('sha256')
    .update(`${parts.uid}|${scope}|${parts.sequence}|${parts.action}|${batch}`)
    .digest('hex');
  return `ecsops-${digest.slice(0, 40)}`;
}

/** OOS execution tags naming the owning resource (filterable with ListExecutions `Tags`). */
export function ownerTags(
  kind: string,
  namespace: string,
  name: string,
  uid: string,
): Record<string, string> {
  return {
    [OWNER_UID_TAG]: uid,
    [OWNER_KIND_TAG]: kind,
    [OWNER_NAME_TAG]: `${namespace}.${name}`.slice(0, 128),
  };
}

/**
 * The bulky templates' `rateControl` parameter (`{"Mode":"Concurrency","Concurrency":..,"MaxErrors":..}`)
 * from `spec.rateControl` with the DESIGN defaults (concurrency 10, maxErrors 0). Percent strings
 * pass through unchanged (OOS accepts "25%").
 */
export function oosRateControl(rc: RateControl | undefined): Record<string, unknown> {
  return { Mode: 'Concurrency', Concurrency: rc?.concurrency ?? 10, MaxErrors: rc?.maxErrors ?? 0 };
}

export { retryDelayMs } from './retry.js';

/** ECS RunCommand takes at most 100 instances per call. */
export const RUN_COMMAND_BATCH_SIZE = 100;
