/**
 * Secret-sourced env values of an AppRelease (`install.envVars[].valueFrom.secretKeyRef`).
 *
 * Values never enter a command, status, Event, log, metric or the revision ID. They travel:
 *
 *   Secret (GET, the resource's namespace only) → controller memory → ONE OOS encrypted parameter
 *   per AppRelease (`CreateSecretParameter` / `UpdateSecretParameter`, Parameter Store) → the
 *   instance, where the Cloud Assistant agent resolves `{{oos-secret:NAME}}` right before the
 *   wrapper runs (the wrapper's `SECRET_ENV`, decoded on the host).
 *
 * One parameter, not one per variable: a command takes at most 20 custom parameters, built-ins
 * included (docs/emulator.md, "Encrypted parameters"). Its value is the secret document
 * ({@link encodeSecretDocument}), at most 4,096 characters.
 *
 * Status records the parameter name before it is created (intent), the Secrets' resourceVersions
 * the parameter holds once OOS confirmed a write (`secretVersions`), and the versions the current
 * revision's instances were deployed with (`redeployedVersions`): a rotated Secret is written to
 * the parameter and then re-deployed (secret-delivery.ts `refreshSecrets`). The parameter is deleted in the
 * delete path (delete.ts, `OosApi.deleteSecretParameter`); a failed delete keeps the finalizer.
 *
 * Secrets are read with the shared reader (src/controllers/shared/secrets.ts: GET only, RBAC the
 * admin opts into per namespace with ClusterRole `ecsops-secret-reader`; a 403 is Stalled
 * `SecretForbidden`, a missing Secret or key `SecretNotFound`; both, and `InvalidSecretValue`, are
 * re-checked on the driver's slow period: reconciler.ts `recheckedStalledReasons`).
 */
import { createHash } from 'node:crypto';
import type { AppRelease, AppReleaseSpec, EnvVar } from '../../api/apprelease.js';
import { InvalidSecretValueReason } from '../../api/conditions.js';
import { CloudError } from '../../cloud/errors.js';
import type { OosApi } from '../../cloud/types.js';
import { StalledError } from '../../runtime/errors.js';
import { sanitizeText } from '../../runtime/sanitize.js';
import { secretNotFound, secretValue, type SecretData, type SecretReader } from '../shared/secrets.js';

/** Secret values shorter than this are refused (redacting them would shred all output). */
export const MIN_SECRET_VALUE_LENGTH = 8;
/** Longest secret document (the OOS encrypted parameter's `Value` limit), characters. */
export const MAX_SECRET_DOCUMENT_LENGTH = 4096;
/** Inline env values shorter than this are not redacted (they would redact ordinary words). */
export const MIN_INLINE_REDACT_LENGTH = 4;

/** The `install.envVars` entries read from a Secret. */
export function secretEnvVars(
  spec: AppReleaseSpec,
): Array<EnvVar & { valueFrom: NonNullable<EnvVar['valueFrom']> }> {
  return (spec.install?.envVars ?? []).filter(
    (e): e is EnvVar & { valueFrom: NonNullable<EnvVar['valueFrom']> } => e.valueFrom !== undefined,
  );
}

/**
 * The OOS parameter name of an AppRelease: `ecsops-` + 32 hex characters of SHA-256 over
 * `namespace/name` (39 characters; letters, digits and `-` only, no reserved prefix
 * ALIYUN/ACS/ALIBABA/ALICLOUD/OOS; limit 180).
 */
export function secretParameterName(namespace: string, name: string): string {
  return `ecsops-${createHash('sha256').update(`${namespace}/${name}`).digest('hex').slice(0, 32)}`;
}

/**
 * The secret document: one line `KEY=<Base64 of the UTF-8 value>` per entry, in the given order,
 * joined by `\n` (no trailing newline). The wrapper decodes it on the host.
 */
export function encodeSecretDocument(entries: ReadonlyArray<{ name: string; value: string }>): string {
  return entries.map((e) => `${e.name}=${Buffer.from(e.value, 'utf8').toString('base64')}`).join('\n');
}

/** What {@link readSecretValues} read. */
export interface ResolvedSecrets {
  /** Env name → value, sorted by name. Memory only. */
  entries: Array<{ name: string; value: string }>;
  /**
   * `secret@resourceVersion` of every Secret read, sorted, comma-separated, then `;refs=` and 12 hex
   * of SHA-256 over the (env name, Secret, key) mapping. Names and versions only, never values.
   */
  versions: string;
}

/**
 * Reads the Secrets an AppRelease's `envVars` reference (each once, GET in its namespace).
 * @throws StalledError `SecretNotFound` (Secret or key missing), `SecretForbidden` (403),
 *   `InvalidSecretValue` (a value under 8 characters, or a document over 4,096 characters);
 *   the message names the Secret and key, never the value. TransientError on other failures.
 */
export async function readSecretValues(reader: SecretReader, obj: AppRelease): Promise<ResolvedSecrets> {
  const ns = obj.metadata.namespace ?? 'default';
  const refs = secretEnvVars(obj.spec);
  const secrets = new Map<string, SecretData>();
  for (const secretName of [...new Set(refs.map((e) => e.valueFrom.secretKeyRef.name))].sort()) {
    const s = await reader.read(ns, secretName);
    if (!s) throw secretNotFound(ns, secretName);
    secrets.set(secretName, s);
  }
  const entries: ResolvedSecrets['entries'] = [];
  for (const e of [...refs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const { name: secretName, key } = e.valueFrom.secretKeyRef;
    const value = secretValue(secrets.get(secretName), ns, e.valueFrom.secretKeyRef);
    if (value.length < MIN_SECRET_VALUE_LENGTH)
      throw new StalledError(
        InvalidSecretValueReason,
        `Secret ${ns}/${secretName} key ${key} (env ${e.name}) is shorter than ${MIN_SECRET_VALUE_LENGTH} characters; short values cannot be redacted from output`,
      );
    entries.push({ name: e.name, value });
  }
  const doc = encodeSecretDocument(entries);
  if (doc.length > MAX_SECRET_DOCUMENT_LENGTH)
    throw new StalledError(
      InvalidSecretValueReason,
      `the Secret-sourced env values encode to ${doc.length} characters, above the ${MAX_SECRET_DOCUMENT_LENGTH}-character limit of an OOS encrypted parameter`,
    );
  // The mapping (env name → Secret/key) is part of what the parameter holds: a spec that maps
  // another key of the same Secret rewrites it too.
  const mapping = createHash('sha256')
    .update(
      JSON.stringify(
        refs.map((e) => [e.name, e.valueFrom.secretKeyRef.name, e.valueFrom.secretKeyRef.key]).sort(),
      ),
    )
    .digest('hex')
    .slice(0, 12);
  const versions = `${[...secrets.entries()].map(([n, s]) => `${n}@${s.resourceVersion}`).join(',')};refs=${mapping}`;
  return { entries, versions };
}

/** ClientToken of a create: the object UID and the versions written (≤ 64 characters). */
function createToken(uid: string, versions: string): string {
  return `ecsops-sp-${createHash('sha256').update(`${uid}/${versions}`).digest('hex').slice(0, 40)}`;
}

function alreadyExists(err: unknown): boolean {
  return err instanceof CloudError && /AlreadyExist/i.test(err.code);
}

function notFound(err: unknown): boolean {
  return err instanceof CloudError && err.category === 'notFound';
}

/**
 * Writes the secret document to the parameter: create when status has never confirmed a write,
 * else update; an `AlreadyExists` answer to a create (a lost earlier answer, or a restart after
 * the intent) becomes an update, a `NotFound` answer to an update (deleted outside) a create.
 * @throws CloudError from OOS (classified by the caller's table).
 */
export async function writeSecretParameter(
  oos: OosApi,
  req: { name: string; uid: string; owner: string; document: string; versions: string; created: boolean },
): Promise<void> {
  const create = () =>
    oos.createSecretParameter({
      name: req.name,
      value: req.document,
      description: `ecsops AppRelease ${req.owner}`.slice(0, 200),
      clientToken: createToken(req.uid, req.versions),
      tags: { 'ecsops.io/owner-uid': req.uid },
    });
  if (!req.created) {
    try {
      await create();
      return;
    } catch (err) {
      if (!alreadyExists(err)) throw err;
    }
    await oos.updateSecretParameter(req.name, req.document);
    return;
  }
  try {
    await oos.updateSecretParameter(req.name, req.document);
  } catch (err) {
    if (!notFound(err)) throw err;
    await create();
  }
}

/**
 * Replaces, in `text`, every secret value (any length: only ≥ 8 are accepted) and every inline
 * env value of 4+ characters with `[REDACTED]`, longest first, then sanitizes (credentials,
 * signatures). Call it on the WHOLE output before cutting a tail (a cut value no longer matches).
 */
export function redactValues(
  text: string,
  secretValues: readonly string[],
  inlineValues: readonly string[],
): string {
  const all = [...secretValues, ...inlineValues.filter((v) => v.length >= MIN_INLINE_REDACT_LENGTH)]
    .filter((v) => v.length > 0)
    .sort((a, b) => b.length - a.length);
  let out = text;
  for (const v of all) if (out.includes(v)) out = out.split(v).join('[REDACTED]');
  return sanitizeText(out);
}

/**
 * Secret values last read per object UID, in this process's memory only: the redactor of outputs
 * folded before this reconcile's read (a restart reads again first, see reconciler.ts).
 */
const lastValues = new Map<string, string[]>();

/** Remembers the secret values of `uid` for {@link knownSecretValues}. */
export function rememberSecretValues(uid: string, values: string[]): void {
  if (values.length === 0) lastValues.delete(uid);
  else lastValues.set(uid, values);
}

/** The secret values last read for `uid` (empty when none). */
export function knownSecretValues(uid: string | undefined): readonly string[] {
  return (uid && lastValues.get(uid)) || [];
}

/** Forgets `uid`'s values (object gone). */
export function forgetSecretValues(uid: string): void {
  lastValues.delete(uid);
}
