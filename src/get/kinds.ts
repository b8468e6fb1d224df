/**
 * Which ecsops kind a `ecsops get <kind>` argument names. Accepts what `kubectl get` accepts for
 * the CRDs of src/api/crds.ts: the kind (`AppRelease`, any case), the singular (`apprelease`),
 * the plural (`appreleases`), a short name (`apprel`), and any of these qualified with the group
 * (`appreleases.ecsops.io`).
 */
import { GROUP, VERSION } from '../api/common.js';
import { definitions } from '../api/crds.js';

/** An ecsops kind as `ecsops get` addresses it on the API server. */
export interface GetKind {
  /** `AppRelease`, `PatchPolicy`, `EcsExtension` or `MaintenanceWindow`. */
  kind: string;
  /** Lower-case plural of the API path, e.g. `appreleases`. */
  plural: string;
  group: string;
  version: string;
  /** Every name the argument may use (lower case, unqualified). */
  names: string[];
}

/**
 * Every namespaced ecsops kind with the names the CRDs declare. InstanceDisruptionBudget
 * (cluster-scoped, no tree to draw) is left out: `kubectl get idb` prints its usage columns.
 */
export const GET_KINDS: readonly GetKind[] = definitions
  .filter((d) => d.scope !== 'Cluster')
  .map((d) => ({
    kind: d.kind,
    plural: d.plural,
    group: GROUP,
    version: VERSION,
    names: [d.kind.toLowerCase(), d.singular, d.plural, ...d.shortNames],
  }));

/**
 * The kind named by `arg` (case-insensitive; `.ecsops.io` or `.v1alpha1.ecsops.io` may follow).
 * @throws Error naming the accepted forms when `arg` names no ecsops kind.
 */
export function resolveKind(arg: string): GetKind {
  let name = arg.trim().toLowerCase();
  for (const suffix of [`.${VERSION}.${GROUP}`, `.${GROUP}`]) {
    if (name.endsWith(suffix)) {
      name = name.slice(0, -suffix.length);
      break;
    }
  }
  const found = GET_KINDS.find((k) => k.names.includes(name));
  if (found) return found;
  const accepted = GET_KINDS.map((k) => k.names.filter((n, i, all) => all.indexOf(n) === i).join('|'));
  throw new Error(`unknown kind "${arg}"; one of: ${accepted.join(', ')}`);
}
