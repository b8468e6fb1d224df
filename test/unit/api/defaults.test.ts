/**
 * `withSpecDefaults` (what `ecsops plan` applies to a manifest) covers every `default` of every
 * generated CRD schema: the schema the API server defaults with (crds/*.yaml is generated from the
 * same TypeBox schemas, see crds.test.ts). For each defaulted field, a skeleton spec with its
 * parents present and the field absent gets the CRD's default value at exactly that path. The
 * API server's own defaulting of the examples is compared in test/integration/plan/.
 */
import { describe, expect, it } from 'vitest';
import { buildCrd, definitions } from '../../../src/api/crds.js';
import { withSpecDefaults } from '../../../src/api/defaults.js';

interface JsonSchema {
  type?: string;
  default?: unknown;
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  additionalProperties?: JsonSchema | boolean;
}

/** A path step: an object property, or `[]` for "the first item of an array". */
type Step = string;

/** Every (path under spec, default value) of a structural schema. */
function defaultsOf(s: JsonSchema, path: Step[] = []): Array<{ path: Step[]; value: unknown }> {
  const out: Array<{ path: Step[]; value: unknown }> = [];
  if (s.default !== undefined && path.length > 0) out.push({ path, value: s.default });
  for (const [k, p] of Object.entries(s.properties ?? {})) out.push(...defaultsOf(p, [...path, k]));
  if (s.items) out.push(...defaultsOf(s.items, [...path, '[]']));
  return out;
}

/** A spec with every parent of `path` present (objects `{}`, arrays one `{}` item), the leaf absent. */
function skeleton(path: Step[]): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  let cur: Record<string, unknown> | unknown[] = root;
  for (let i = 0; i < path.length - 1; i++) {
    const next: Record<string, unknown> | unknown[] = path[i + 1] === '[]' ? [] : {};
    if (Array.isArray(cur)) cur.push(next);
    else cur[path[i]!] = next;
    cur = next;
  }
  if (Array.isArray(cur)) cur.push({}); // the leaf is an array item without a value: never generated
  return root;
}

function at(v: unknown, path: Step[]): unknown {
  let cur = v;
  for (const step of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = step === '[]' ? (cur as unknown[])[0] : (cur as Record<string, unknown>)[step];
  }
  return cur;
}

describe('withSpecDefaults covers every default of the generated CRDs', () => {
  for (const def of definitions) {
    const crd = buildCrd(def) as {
      spec: { versions: Array<{ schema: { openAPIV3Schema: JsonSchema } }> };
    };
    const spec = crd.spec.versions[0]!.schema.openAPIV3Schema.properties!.spec!;
    const all = defaultsOf(spec);
    it(`${def.kind}: ${all.length} defaulted field(s)`, () => {
      if (def.kind === 'AppRelease') expect(all.length).toBeGreaterThan(10); // the walk finds them
      for (const { path, value } of all) {
        const got = withSpecDefaults(def.kind, skeleton(path));
        expect(at(got, path), `spec.${path.join('.')}`).toEqual(value);
      }
    });
  }

  it('leaves set fields, non-objects and other kinds alone, and never mutates its input', () => {
    const input = { healthCheck: { timeoutSeconds: 9 } };
    const out = withSpecDefaults('AppRelease', input) as { healthCheck: { timeoutSeconds: number } };
    expect(out.healthCheck.timeoutSeconds).toBe(9);
    expect(input).toEqual({ healthCheck: { timeoutSeconds: 9 } });
    expect(withSpecDefaults('AppRelease', 'x')).toBe('x');
    expect(withSpecDefaults('Deployment', { a: 1 })).toEqual({ a: 1 });
  });
});
