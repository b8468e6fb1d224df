/**
 * The stable revision, kept redeployable (DESIGN §3 AppRelease): when a rollout completes, what its
 * revision was built from is recorded in `status.stableRelease` — artifact (URL without its query
 * string, sha256, format), hooks, health check, install settings and the NAMES of the env
 * variables — so a rollback can deploy it on an instance that never had it on disk (one enrolled
 * mid-rollout, or one whose releases were pruned).
 *
 * Nothing secret is kept: env values and a pre-signed URL's query string are represented by a
 * SHA-256 digest salted with the object UID. They are taken from the current spec while it still
 * carries the same values (the usual case: a failed rollout changed the artifact, not the env); when
 * it does not, the stable release can still be swapped back on hosts that have it on disk, and the
 * others are reported as not redeployable.
 */
import { createHash } from 'node:crypto';
import type { AppRelease, AppReleaseSpec, StableRelease } from '../../api/apprelease.js';

function digest(uid: string, value: string): string {
  return createHash('sha256').update(`${uid}\0${value}`).digest('hex');
}

function envDigest(uid: string, env: Record<string, string>): string {
  const entries = Object.entries(env).sort(([a], [b]) => (a < b ? -1 : 1));
  return digest(uid, JSON.stringify(entries));
}

/** The URL without query string or fragment (a pre-signed signature is dropped). */
function bareUrl(url: string): string {
  const cut = url.search(/[?#]/);
  return cut < 0 ? url : url.slice(0, cut);
}

/**
 * The record of `spec` as the stable revision `revision` of `obj` (no env value, no query string).
 * @returns the value of `status.stableRelease`.
 */
export function snapshotStable(obj: AppRelease, spec: AppReleaseSpec, revision: string): StableRelease {
  const uid = obj.metadata.uid ?? '';
  const { url } = spec.artifact;
  const bare = bareUrl(url);
  const env = spec.install?.env ?? {};
  const install: StableRelease['install'] = {};
  if (spec.install?.appDir !== undefined) install.appDir = spec.install.appDir;
  if (spec.install?.user !== undefined) install.user = spec.install.user;
  if (spec.install?.keepReleases !== undefined) install.keepReleases = spec.install.keepReleases;
  if (Object.keys(env).length > 0) {
    install.envNames = Object.keys(env).sort();
    install.envDigest = envDigest(uid, env);
  }
  const envVars = spec.install?.envVars ?? [];
  if (envVars.length > 0) install.envVarsDigest = digest(uid, JSON.stringify(envVars));
  return {
    revision,
    version: spec.version,
    artifact: {
      url: bare,
      ...(bare !== url ? { urlDigest: digest(uid, url) } : {}),
      sha256: spec.artifact.sha256,
      format: spec.artifact.format ?? 'tar.gz',
    },
    install,
    hooks: structuredClone(spec.hooks),
    ...(spec.healthCheck ? { healthCheck: structuredClone(spec.healthCheck) } : {}),
  };
}

/** What a rollback command is rendered from. */
export type StableMaterial =
  /** The full spec of the stable revision (secrets taken from the current spec). */
  | { spec: AppReleaseSpec; fetchable: true }
  /** Hooks and settings only: hosts without the release on disk cannot get it. */
  | { spec: AppReleaseSpec; fetchable: false; why: string };

/**
 * The spec a rollback to `stable` renders: the stable revision's artifact, hooks, health check and
 * install settings; env values and a pre-signed URL from `current` when their digests match.
 * @returns `fetchable: false` with the reason when a host lacking the release could not get it.
 */
export function stableMaterial(obj: AppRelease, stable: StableRelease): StableMaterial {
  const uid = obj.metadata.uid ?? '';
  const current = obj.spec;
  const spec: AppReleaseSpec = {
    ...current,
    artifact: {
      url: stable.artifact.url,
      sha256: stable.artifact.sha256,
      format: stable.artifact.format as NonNullable<AppReleaseSpec['artifact']['format']>,
    },
    hooks: stable.hooks,
    install: {
      ...(stable.install.appDir !== undefined ? { appDir: stable.install.appDir } : {}),
      ...(stable.install.user !== undefined ? { user: stable.install.user } : {}),
      ...(stable.install.keepReleases !== undefined ? { keepReleases: stable.install.keepReleases } : {}),
    },
  };
  if (stable.healthCheck) spec.healthCheck = stable.healthCheck;
  else delete spec.healthCheck;
  const problems: string[] = [];
  if (stable.artifact.urlDigest !== undefined) {
    if (digest(uid, current.artifact.url) === stable.artifact.urlDigest)
      spec.artifact.url = current.artifact.url;
    else problems.push('its pre-signed artifact URL is no longer in the spec');
  }
  if (stable.install.envDigest !== undefined) {
    const env = current.install?.env ?? {};
    if (envDigest(uid, env) === stable.install.envDigest) spec.install = { ...spec.install, env: { ...env } };
    else
      problems.push(
        `its env values (${(stable.install.envNames ?? []).join(', ')}) are no longer in the spec`,
      );
  }
  if (stable.install.envVarsDigest !== undefined) {
    const envVars = current.install?.envVars ?? [];
    if (digest(uid, JSON.stringify(envVars)) === stable.install.envVarsDigest)
      spec.install = { ...spec.install, envVars: structuredClone(envVars) };
    else problems.push('its install.envVars are no longer in the spec');
  }
  if (problems.length === 0) return { spec, fetchable: true };
  return {
    spec,
    fetchable: false,
    why: `revision ${stable.revision} cannot be downloaded again: ${problems.join('; ')}`,
  };
}
