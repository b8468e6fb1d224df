/**
 * Host safety of an AppRelease, at runtime (DESIGN §1: what admission cannot judge is Stalled with a
 * precise reason):
 *  - the appDir and env names are checked again before any command is rendered: the CRD's CEL and
 *    patterns are the admission copy, but an object stored before a rule existed is never
 *    validated again, and appDir and env names reach bash (appDir is what uninstall removes);
 *  - two AppReleases whose appDirs overlap (equal, or one inside the other) on an instance are a
 *    `ConflictingResource`, through the shared claims (the older one keeps the instances).
 */
import { appDirProblem, envNameProblem, type AppReleaseSpec } from '../../api/apprelease.js';
import { ConflictingResourceReason, InvalidSpecReason } from '../../api/conditions.js';
import { StalledError } from '../../runtime/errors.js';
import type { ClaimRegistryOptions } from '../shared/claims.js';
import type { AppContext, AppScope } from './scope.js';
import { appDirOf } from './wrapper.js';

/** Every env variable name the wrapper may see: `install.env` keys and `install.envVars` names. */
function envNames(spec: AppReleaseSpec): string[] {
  const install = (spec.install ?? {}) as { env?: unknown; envVars?: unknown };
  const names = install.env && typeof install.env === 'object' ? Object.keys(install.env) : [];
  if (Array.isArray(install.envVars))
    for (const e of install.envVars as ({ name?: unknown } | null)[]) names.push(String(e?.name ?? ''));
  return names;
}

/**
 * Why `spec` must not reach a host (its appDir or an env name breaks the CRD's rules), or
 * undefined when it may. Pure.
 */
export function hostInputProblem(spec: AppReleaseSpec): string | undefined {
  const dir = appDirProblem(appDirOf(spec));
  if (dir) return dir;
  for (const name of envNames(spec)) {
    const problem = envNameProblem(name);
    if (problem) return problem;
  }
  return undefined;
}

/**
 * Throws `StalledError(InvalidSpec)` when `spec` must not reach a host (see
 * {@link hostInputProblem}); called before any command is rendered.
 * @throws StalledError with reason `InvalidSpec` and the rule's readable message.
 */
export function checkHostInput(spec: AppReleaseSpec): void {
  const problem = hostInputProblem(spec);
  if (problem)
    throw new StalledError(
      InvalidSpecReason,
      `${problem}; this object was stored before the rule existed: fix the spec (or delete it with deletionPolicy Orphan)`,
    );
}

const INSTANCE_ID_PLACEHOLDER = '{{ACS::InstanceId}}';

function segments(dir: string): string[] {
  return dir.split('/').filter((x) => x !== '');
}

/** Whether two appDir segments can name the same directory once `{{ACS::InstanceId}}` is substituted. */
function segmentsMatch(a: string, b: string): boolean {
  if (a === b) return true;
  const ta = a.includes(INSTANCE_ID_PLACEHOLDER);
  const tb = b.includes(INSTANCE_ID_PLACEHOLDER);
  if (ta === tb) return false; // both literal and different; or both templates, substituted alike
  const [template, literal] = ta ? [a, b] : [b, a];
  const pattern = template
    .split(INSTANCE_ID_PLACEHOLDER)
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('[A-Za-z0-9-]+');
  return new RegExp(`^${pattern}$`).test(literal);
}

/**
 * Whether two appDirs overlap: equal, or one inside the other (by segments, so `/opt/app` and
 * `/opt/app2` do not). A `{{ACS::InstanceId}}` segment matches any instance ID, so a template and a
 * literal path that coincide on some instance overlap (conservative: counted on every shared
 * instance).
 */
export function appDirsOverlap(a: string, b: string): boolean {
  const [sa, sb] = [segments(a), segments(b)];
  const n = Math.min(sa.length, sb.length);
  for (let i = 0; i < n; i++) if (!segmentsMatch(sa[i] ?? '', sb[i] ?? '')) return false;
  return true;
}

/** The claim registry options of appDir claims (subjects are appDirs). */
export const APP_DIR_CLAIMS: ClaimRegistryOptions = { subjectsOverlap: appDirsOverlap };

/**
 * reconcileAppDirConflicts records this resource's appDir on its targets and stalls it with
 * `ConflictingResource` when an older AppRelease's appDir overlaps it on a shared instance (the
 * older one keeps them): one's uninstall would remove the other's releases.
 * @throws StalledError (ConflictingResource) naming the older resource and both appDirs.
 */
export function reconcileAppDirConflicts(k: AppContext, s: AppScope): void {
  const { obj } = s;
  const appDir = appDirOf(obj.spec);
  const claim = {
    uid: obj.metadata.uid ?? '',
    namespace: obj.metadata.namespace ?? '',
    name: obj.metadata.name ?? '',
    createdAt: String(obj.metadata.creationTimestamp ?? ''),
    subject: appDir,
    fingerprint: obj.metadata.uid ?? '', // two resources never share an appDir, even with equal specs
    instanceIds: new Set(s.targets.map((t) => t.instanceId)),
  };
  k.appDirClaims.set(claim);
  const conflict = k.appDirClaims.conflictFor(claim);
  if (conflict) {
    const h = conflict.holder;
    throw new StalledError(
      ConflictingResourceReason,
      `AppRelease ${h.namespace}/${h.name} (older) installs into appDir ${h.subject}, which overlaps appDir ${appDir} (equal or nested) on ${conflict.overlap} of the same instance(s); it keeps them. Give each AppRelease its own appDir, neither inside the other, or make the targets disjoint.`,
    );
  }
}
