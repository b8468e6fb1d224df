/**
 * The AppRelease phase that delivers Secret-sourced env values (see secrets.ts): read the
 * referenced Secrets, record the parameter name (intent), then create or update the one OOS
 * encrypted parameter, and record which Secret versions it holds once OOS confirmed.
 */
import { createHash } from 'node:crypto';
import { SecretForbiddenReason } from '../../api/conditions.js';
import { RolloutAction, SecretsRotatedEvent } from '../../api/events.js';
import { StalledError } from '../../runtime/errors.js';
import { startWork } from './lifecycle.js';
import type { StepOutcome } from './progress.js';
import { batchSizeOf, emit, type AppContext, type AppScope } from './scope.js';
import {
  encodeSecretDocument,
  readSecretValues,
  rememberSecretValues,
  secretEnvVars,
  secretParameterName,
  writeSecretParameter,
} from './secrets.js';
import type { SecretReader } from '../shared/secrets.js';

function noReader(s: AppScope): StalledError {
  return new StalledError(
    SecretForbiddenReason,
    `${s.obj.metadata.namespace ?? ''}/${s.obj.metadata.name ?? ''} references Secrets but this controller reads none (no Secret reader configured)`,
  );
}

/**
 * Best effort, before the work fold: reads the Secret values so the fold's redactor knows them
 * (after a restart nothing is remembered yet). Failures are left to {@link reconcileSecrets}.
 */
export async function preloadSecrets(reader: SecretReader | undefined, s: AppScope): Promise<void> {
  if (!reader || secretEnvVars(s.obj.spec).length === 0) return;
  try {
    s.readSecrets = await readSecretValues(reader, s.obj);
    rememberSecretValues(
      s.obj.metadata.uid ?? '',
      s.readSecrets.entries.map((e) => e.value),
    );
  } catch {
    // reported by the phase
  }
}

/**
 * Phase: when the spec has `envVars[].valueFrom`, reads the Secrets (unless {@link preloadSecrets}
 * read them in this reconcile) and, when writes are allowed
 * and the parameter does not hold these versions yet, records the parameter name in status
 * (intent write), then creates or updates the parameter; `secretVersions` records the versions
 * OOS confirmed. Without secret env vars, nothing (a parameter left by an earlier spec stays
 * until the object is deleted: it is named in status).
 * @throws StalledError SecretNotFound / SecretForbidden / InvalidSecretValue; CloudError from OOS.
 */
export async function reconcileSecrets(s: AppScope, reader: SecretReader | undefined): Promise<void> {
  if (secretEnvVars(s.obj.spec).length === 0) return;
  if (!reader) throw noReader(s);
  const { obj } = s;
  const resolved = s.readSecrets ?? (await readSecretValues(reader, obj));
  const uid = obj.metadata.uid ?? '';
  rememberSecretValues(
    uid,
    resolved.entries.map((e) => e.value),
  );
  if (!s.writesAllowed) return;
  const ns = obj.metadata.namespace ?? 'default';
  const name = s.secretParameter?.name ?? secretParameterName(ns, obj.metadata.name ?? '');
  const prev = s.secretParameter;
  if (prev?.secretVersions === resolved.versions) return;
  // Intent: the parameter is named in status before it can exist (the delete path finds it).
  if (!prev) {
    s.secretParameter = { name };
    await s.recordIntent?.();
  }
  const oos = s.oos();
  await writeSecretParameter(oos, {
    name,
    uid,
    owner: `${ns}/${obj.metadata.name ?? ''}`,
    document: encodeSecretDocument(resolved.entries),
    versions: resolved.versions,
    created: prev?.secretVersions !== undefined,
  });
  // What the instances run with: the first write is what every deploy carries; after a change,
  // the versions written before it (until refreshSecrets re-deployed the new ones).
  const redeployed = prev?.redeployedVersions ?? prev?.secretVersions ?? resolved.versions;
  s.secretParameter = {
    ...s.secretParameter,
    name,
    secretVersions: resolved.versions,
    redeployedVersions: redeployed,
  };
}

/**
 * Rollout step (after retryDownloads, before complete): a Secret change reaches the instances of
 * the current revision. When the revision is stable and Succeeded and the parameter holds other
 * Secret versions than those the instances were deployed with, the current revision's deploy is
 * sent again (the wrapper's deploy of a revision on disk skips the download, rewrites the env and
 * restarts the hooks) to the reachable instances carrying it, in batches of `strategy.batchSize`,
 * one batch per reconcile once the previous one finished (`redeployedVersions` is kept by
 * {@link reconcileSecrets}: what the instances were deployed with).
 */
export async function refreshSecrets(k: AppContext, s: AppScope): Promise<StepOutcome> {
  const p = s.secretParameter;
  const r = s.rollout;
  if (!p?.secretVersions || !r || r.revision !== s.revision || s.stable !== s.revision) return 'next';
  if (s.phase !== 'Succeeded' || s.inFlight.length > 0) return 'next';
  if (secretEnvVars(s.obj.spec).length === 0) return 'next';
  if (p.redeployedVersions === p.secretVersions && !p.refresh) return 'next';
  // The reachable instances that carry the current revision.
  const carrying = s.targets
    .filter((t) => t.reachable && s.tags.get(t.instanceId) === s.revision)
    .map((t) => t.instanceId);
  if (!p.refresh || p.refresh.secretVersions !== p.secretVersions) {
    const ids = carrying;
    p.refresh = { secretVersions: p.secretVersions, pending: ids };
    emit(
      k,
      s,
      'Normal',
      SecretsRotatedEvent,
      RolloutAction,
      `Secret(s) changed (${p.secretVersions}): re-deploying revision ${s.revision} on ${ids.length} instance(s)`,
    );
  }
  const refresh = p.refresh;
  const reachable = new Set(carrying);
  refresh.pending = refresh.pending.filter((id) => reachable.has(id));
  if (refresh.pending.length === 0) {
    p.redeployedVersions = refresh.secretVersions;
    delete p.refresh;
    return 'next';
  }
  const { spec } = s.obj;
  const size = batchSizeOf(spec, s.targets.length);
  const ids = refresh.pending.slice(0, size);
  const digest = createHash('sha256').update(refresh.secretVersions).digest('hex').slice(0, 12);
  const left = refresh.pending.length - ids.length;
  await startWork(
    k,
    s,
    {
      action: 'deploy',
      ids,
      round: r.nextBatch,
      tokenScope: `${s.revision}/secrets-${digest}/${left}`,
      describe: `re-deploy ${spec.application} ${spec.version} with rotated Secret values`,
    },
    { limit: size, onIntent: () => (refresh.pending = refresh.pending.filter((id) => !ids.includes(id))) },
  );
  return 'stop';
}
