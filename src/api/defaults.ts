/**
 * The structural schema's defaults, applied offline: what the API server stores for a manifest.
 *
 * The API server fills every absent field that has a `default` in the CRD's OpenAPI v3 schema,
 * when its parent object is present, and recurses into a value it just defaulted (Kubernetes
 * "Defaulting", apiextensions.k8s.io/v1 structural schemas). The CRDs are generated from the
 * TypeBox schemas in this directory (`npm run crds`), so TypeBox's `Value.Default` over the same
 * schema gives the same result without a cluster. Tools that read a manifest instead of the stored
 * object (`ecsops plan`) apply it first: a revision hashed without `healthCheck.timeoutSeconds: 5`
 * differs from the controller's.
 */
import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { definitions } from './crds.js';

/** The spec schema of an ecsops kind (`EcsExtension`, ...), or undefined for another kind. */
export function specSchemaOf(kind: string): TSchema | undefined {
  return definitions.find((d) => d.kind === kind)?.spec;
}

/**
 * `spec` with the CRD schema's defaults of `kind` applied, as the API server would store it. The
 * input is not modified (a deep copy is defaulted). A spec that is not an object, and a kind that
 * is not an ecsops kind, come back unchanged (a copy). Never throws.
 */
export function withSpecDefaults(kind: string, spec: unknown): unknown {
  const copy: unknown = spec === undefined ? undefined : structuredClone(spec);
  const schema = specSchemaOf(kind);
  if (!schema || typeof copy !== 'object' || copy === null) return copy;
  return Value.Default(schema, copy);
}
