/**
 * Reading Kubernetes Secrets the resources point at (one mechanism for every kind): AppRelease
 * `install.envVars[].valueFrom.secretKeyRef` (src/controllers/apprelease/secrets.ts) and
 * `spec.analysis.prometheus.bearerTokenSecretRef` / `caSecretRef` of AppRelease and PatchPolicy
 * (src/controllers/shared/analysis/prometheus.ts).
 *
 * Only GET of a named Secret in the resource's own namespace, never LIST or WATCH: the controller
 * needs no access to Secrets it is not pointed at. The RBAC is opted into per namespace (ClusterRole
 * `ecsops-secret-reader`, bound with a RoleBinding; docs/deploy.md): a 403 is Stalled
 * `SecretForbidden`, a missing Secret or key `SecretNotFound`, both re-checked on the driver's slow
 * period (the kinds list them in `recheckedStalledReasons`; src/controllers/shared/driver.ts).
 * Values live in memory only; messages name the Secret and key, never the value.
 */
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { SecretForbiddenReason, SecretNotFoundReason } from '../../api/conditions.js';
import { StalledError, TransientError } from '../../runtime/errors.js';
import { httpStatusOf, sanitizeError } from '../../runtime/sanitize.js';

/** One Secret as the controller needs it: its resourceVersion and `data` (Base64 values). */
export interface SecretData {
  resourceVersion: string;
  data: Record<string, string>;
}

/** Reads one Secret by name (GET, never LIST or WATCH). */
export interface SecretReader {
  /**
   * @returns the Secret, or undefined when it does not exist (404).
   * @throws StalledError `SecretForbidden` on 403; TransientError on any other failure.
   */
  read(namespace: string, name: string): Promise<SecretData | undefined>;
}

/** A {@link SecretReader} over the Kubernetes API (`CoreV1Api.readNamespacedSecret`). */
export function kubeSecretReader(kc: KubeConfig): SecretReader {
  const api = kc.makeApiClient(CoreV1Api);
  return {
    async read(namespace, name) {
      try {
        const s = await api.readNamespacedSecret({ namespace, name });
        return { resourceVersion: s.metadata?.resourceVersion ?? '', data: s.data ?? {} };
      } catch (err) {
        const code = httpStatusOf(err);
        if (code === 404) return undefined;
        if (code === 403) throw secretForbidden(namespace, name);
        throw new TransientError(
          'SecretReadFailed',
          `reading Secret ${namespace}/${name}: ${sanitizeError(err)}`,
          {
            cause: err,
          },
        );
      }
    },
  };
}

/** Stalled `SecretForbidden`: the controller may not read `namespace/name`, with the fix. */
function secretForbidden(namespace: string, name: string): StalledError {
  return new StalledError(
    SecretForbiddenReason,
    `the controller may not read Secret ${namespace}/${name}: bind ClusterRole ecsops-secret-reader to its ServiceAccount in namespace ${namespace} (RoleBinding)`,
  );
}

/** Stalled `SecretNotFound`: the Secret (or, with `key`, its key) does not exist. */
export function secretNotFound(namespace: string, name: string, key?: string): StalledError {
  return new StalledError(
    SecretNotFoundReason,
    key === undefined
      ? `Secret ${namespace}/${name} does not exist`
      : `Secret ${namespace}/${name} has no key ${key}`,
  );
}

/**
 * The value of key `ref.key` of Secret `namespace/ref.name`, decoded (Base64 → UTF-8).
 * @param secret what {@link SecretReader.read} answered for `ref.name` (undefined: no such Secret).
 * @throws StalledError `SecretNotFound` when the Secret or the key does not exist.
 */
export function secretValue(
  secret: SecretData | undefined,
  namespace: string,
  ref: { name: string; key: string },
): string {
  if (!secret) throw secretNotFound(namespace, ref.name);
  const raw = secret.data[ref.key];
  if (raw === undefined) throw secretNotFound(namespace, ref.name, ref.key);
  return Buffer.from(raw, 'base64').toString('utf8');
}
