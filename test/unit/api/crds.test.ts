import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { buildCrd, crdFileName, definitions } from '../../../src/api/crds.js';

const CRDS_DIR = fileURLToPath(new URL('../../../crds/', import.meta.url));

type Schema = Record<string, unknown>;

interface Crd {
  spec: {
    names: { kind: string; shortNames?: string[]; plural: string };
    scope: string;
    versions: Array<{
      name: string;
      served: boolean;
      storage: boolean;
      subresources?: { status?: unknown };
      additionalPrinterColumns?: Array<{ name: string; type: string; jsonPath: string }>;
      schema: { openAPIV3Schema: Schema };
    }>;
  };
}

function rootSchema(crd: Crd): Schema {
  const [version] = crd.spec.versions;
  if (!version) throw new Error('CRD has no versions');
  return version.schema.openAPIV3Schema;
}

/** Every schema node reachable through properties / items / additionalProperties, with its path. */
function* walk(node: Schema, path: string): Generator<[string, Schema]> {
  yield [path, node];
  for (const [name, child] of Object.entries((node.properties as Record<string, Schema> | undefined) ?? {})) {
    yield* walk(child, `${path}.${name}`);
  }
  if (node.items && typeof node.items === 'object') yield* walk(node.items as Schema, `${path}[]`);
  if (node.additionalProperties && typeof node.additionalProperties === 'object') {
    yield* walk(node.additionalProperties as Schema, `${path}{}`);
  }
}

/**
 * Violations of the Kubernetes structural-schema rules
 * (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema).
 */
function structuralProblems(root: Schema): string[] {
  const problems: string[] = [];
  for (const [path, node] of walk(root, '')) {
    const at = path || '<root>';
    const escapes =
      node['x-kubernetes-int-or-string'] === true || node['x-kubernetes-preserve-unknown-fields'] === true;
    if (typeof node.type !== 'string' && !escapes) problems.push(`${at}: no type`);
    if (node.properties && node.type !== 'object') problems.push(`${at}: properties without type: object`);
    if (node.properties && node.additionalProperties)
      problems.push(`${at}: properties and additionalProperties`);
    if ('patternProperties' in node) problems.push(`${at}: patternProperties`);
    for (const forbidden of ['$ref', '$id', '$schema', 'definitions', 'dependencies', 'const']) {
      if (forbidden in node) problems.push(`${at}: ${forbidden}`);
    }
    for (const junctor of ['anyOf', 'oneOf', 'allOf', 'not']) {
      const inner = node[junctor];
      if (inner === undefined) continue;
      for (const branch of Array.isArray(inner) ? (inner as Schema[]) : [inner as Schema]) {
        for (const key of ['type', 'description', 'default', 'additionalProperties', 'nullable']) {
          if (key in branch) problems.push(`${at}: ${junctor} branch with ${key}`);
        }
      }
    }
  }
  return problems;
}

/** Spec properties (recursively, through arrays) without a description — `kubectl explain` would be empty. */
function undocumented(spec: Schema): string[] {
  const out: string[] = [];
  const visit = (node: Schema, path: string) => {
    for (const [name, child] of Object.entries(
      (node.properties as Record<string, Schema> | undefined) ?? {},
    )) {
      const p = `${path}.${name}`;
      if (typeof child.description !== 'string' || child.description.trim() === '') out.push(p);
      visit(child, p);
    }
    if (node.items && typeof node.items === 'object') visit(node.items as Schema, `${path}[]`);
  };
  visit(spec, 'spec');
  return out;
}

describe('committed CRDs (crds/*.yaml)', () => {
  it('has one CustomResourceDefinition file per definition and no stale ones', () => {
    const files = readdirSync(CRDS_DIR)
      .filter((f) => f.endsWith('.yaml'))
      .filter(
        (f) =>
          (parse(readFileSync(join(CRDS_DIR, f), 'utf8')) as { kind?: string } | null)?.kind ===
          'CustomResourceDefinition',
      )
      .sort();
    expect(files, 'crds/ does not match src/api/crds.ts: run `npm run crds`').toEqual(
      definitions.map(crdFileName).sort(),
    );
  });

  it('lists every CRD file in crds/kustomization.yaml (when present)', () => {
    let text: string;
    try {
      text = readFileSync(join(CRDS_DIR, 'kustomization.yaml'), 'utf8');
    } catch {
      return; // no kustomization in crds/: nothing to keep in sync
    }
    const resources = (parse(text) as { resources?: string[] }).resources ?? [];
    for (const def of definitions) {
      expect(resources, `add ${crdFileName(def)} to crds/kustomization.yaml`).toContain(crdFileName(def));
    }
  });

  for (const def of definitions) {
    it(`${crdFileName(def)} equals buildCrd(${def.kind}) — run \`npm run crds\` if this fails`, () => {
      const file = join(CRDS_DIR, crdFileName(def));
      const committed: unknown = parse(readFileSync(file, 'utf8'));
      expect(
        committed,
        `crds/${crdFileName(def)} is out of date with src/api: run \`npm run crds\` and commit the result`,
      ).toEqual(buildCrd(def));
    });
  }
});

describe.each(definitions)('CRD $kind', (def) => {
  const crd = buildCrd(def) as unknown as Crd;
  const root = rootSchema(crd);
  const version = crd.spec.versions[0];

  it('is a structural schema', () => {
    expect(structuralProblems(root)).toEqual([]);
  });

  it('keeps metadata a bare object (ObjectMeta validation by the API server)', () => {
    expect((root.properties as Record<string, Schema>).metadata).toEqual({ type: 'object' });
  });

  it('documents every spec property, recursively', () => {
    const spec = (root.properties as Record<string, Schema>).spec;
    expect(spec).toBeDefined();
    expect(undocumented(spec as Schema)).toEqual([]);
    expect(typeof spec?.description).toBe('string');
  });

  it('requires spec', () => {
    expect(root.required).toContain('spec');
  });

  it("has printer columns Ready, the kind's counts and Age", () => {
    const names = (version?.additionalPrinterColumns ?? []).map((c) => c.name);
    const counts: Record<string, string[]> = {
      EcsExtension: ['Installed', 'Targeted'],
      PatchPolicy: ['Compliant', 'NonCompliant', 'Targeted', 'Next Window'],
      MaintenanceWindow: ['Open', 'Next Open', 'Next Close'],
      InstanceDisruptionBudget: ['Selected', 'Allowed', 'Unavailable'],
    };
    for (const n of ['Ready', ...(counts[def.kind] ?? []), 'Age']) expect(names).toContain(n);
    const ready = version?.additionalPrinterColumns?.find((c) => c.name === 'Ready');
    expect(ready?.jsonPath).toBe('.status.conditions[?(@.type=="Ready")].status');
    const age = version?.additionalPrinterColumns?.find((c) => c.name === 'Age');
    expect(age).toMatchObject({ type: 'date', jsonPath: '.metadata.creationTimestamp' });
  });

  it('points printer columns at fields that exist in the schema', () => {
    for (const col of version?.additionalPrinterColumns ?? []) {
      const path = col.jsonPath
        .replace(/\[\?.*$/, '')
        .split('.')
        .filter(Boolean);
      if (path[0] === 'metadata') continue;
      let node: Schema | undefined = root;
      for (const seg of path) {
        node = node?.type === 'array' ? (node.items as Schema) : node;
        node = (node?.properties as Record<string, Schema> | undefined)?.[seg];
      }
      expect(node, `${col.name}: ${col.jsonPath}`).toBeDefined();
    }
  });

  it('has the status subresource, is namespaced (InstanceDisruptionBudget: cluster-scoped), served and stored as v1alpha1', () => {
    expect(version?.subresources?.status).toEqual({});
    expect(crd.spec.scope).toBe(def.kind === 'InstanceDisruptionBudget' ? 'Cluster' : 'Namespaced');
    expect(version).toMatchObject({ name: 'v1alpha1', served: true, storage: true });
  });
});

describe('EcsExtension names', () => {
  it('has the short name ecsext', () => {
    const def = definitions.find((d) => d.kind === 'EcsExtension');
    expect(def).toBeDefined();
    const crd = buildCrd(def!) as unknown as Crd;
    expect(crd.spec.names.shortNames).toEqual(['ecsext']);
    expect(crd.spec.names.plural).toBe('ecsextensions');
  });
});

describe.each(['EcsExtension', 'PatchPolicy'])('%s drift detection fields (issue 25)', (kind) => {
  const def = definitions.find((d) => d.kind === kind)!;
  const root = rootSchema(buildCrd(def) as unknown as Crd);
  const props = (node: Schema | undefined) => (node?.properties ?? {}) as Record<string, Schema>;
  const spec = props(root).spec;
  const status = props(root).status;

  it('has spec.driftDetection: enum ChangeFeed | PerInstance, default ChangeFeed, saying what each costs', () => {
    const field = props(spec).driftDetection;
    expect(field).toMatchObject({
      type: 'string',
      enum: ['ChangeFeed', 'PerInstance'],
      default: 'ChangeFeed',
    });
    expect(field?.description).toMatch(/--full-resync-period/);
    expect(field?.description).toMatch(
      /PerInstance: every instance's state is re-read one by one each interval/,
    );
  });

  it('says in spec.interval that the change feed is read each interval and every instance each full-resync period', () => {
    expect(props(spec).interval?.description).toMatch(/change feed.*--full-resync-period/);
  });

  it('has status.stateFreshness { driftDetection, lastFullResyncTime (date-time) }, the same schema in both kinds', () => {
    const field = props(status).stateFreshness;
    expect(field).toMatchObject({ type: 'object', required: ['driftDetection'] });
    expect(props(field).driftDetection).toMatchObject({ enum: ['ChangeFeed', 'PerInstance'] });
    expect(props(field).lastFullResyncTime).toMatchObject({ type: 'string', format: 'date-time' });
    const other = definitions.find(
      (d) => d.kind === (kind === 'EcsExtension' ? 'PatchPolicy' : 'EcsExtension'),
    )!;
    expect(props(props(rootSchema(buildCrd(other) as unknown as Crd)).status).stateFreshness).toEqual(field);
  });
});
