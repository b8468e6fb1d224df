/**
 * R4 fuzzer: fast-check generates EcsExtension specs that the CRD schema admits but that are odd
 * (unknown templates and versions, undeclared or oddly typed parameters, unicode tags, excluded
 * targets, instances that do not exist or are stopped / offline, percent rate controls, Observe
 * mode, suspension) and runs each through the fast tier (test/harness/fast.ts: the real
 * reconciler and cloud layer against the emulator over HTTP), a few reconciles per case, half of
 * them deleted afterwards. Oracles: every error a reconcile returns is a classified
 * one (ReconcileError / CloudError — anything else, a TypeError say, is an unhandled error);
 * every status written conforms to the status schema the API server enforces; a Ready condition
 * exists after the first reconcile; a deleted object goes away. fast-check's seed is the
 * scenario seed, so a failure replays with the same `--seed`.
 */
import fc from 'fast-check';
import { FormatRegistry, TypeRegistry } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { EcsExtensionStatusSchema, type EcsExtensionSpec } from '../../src/api/ecsextension.js';
import { isCloudError } from '../../src/cloud/errors.js';
import { ReconcileError } from '../../src/runtime/errors.js';
import { fleetIds, NODE_PACKAGE, startFastStack } from '../harness/fast.js';
import { kubeRequestRaw } from '../harness/kube-raw.js';
import { API, createNamespace, type Figure } from './lib.js';
import type { ChaosContext } from './run.js';

const FLEET = fleetIds('fz', 1, 30);

const instanceId = fc.oneof(fc.constantFrom(...FLEET), fc.stringMatching(/^i-[a-z0-9]{1,24}$/));
const oddString = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'grapheme', maxLength: 12 }),
  fc.constantFrom('', ' ', '$(id)', '{{ACS::InstanceId}}', '名前🚀', '\u202e'),
);
const targets = fc.oneof(
  fc.record({ instanceIds: fc.uniqueArray(instanceId, { minLength: 1, maxLength: 40 }) }),
  fc.record({
    tags: fc.array(
      fc.record(
        {
          key: fc.oneof(fc.constantFrom('fleet', 'env'), fc.string({ minLength: 1, maxLength: 20 })),
          value: fc.oneof(fc.constantFrom('fz', 'prod'), oddString),
        },
        { requiredKeys: ['key'] },
      ),
      { minLength: 1, maxLength: 3 },
    ),
  }),
);
const countOrPercent = (min: number) =>
  fc.oneof(
    fc.integer({ min, max: 500 }),
    fc.integer({ min: Math.max(min, 1), max: 100 }).map((n) => `${n}%`),
  );
const specArb = fc
  .record(
    {
      targets,
      exclude: fc.uniqueArray(instanceId, { maxLength: 10 }),
      packageName: fc.oneof(
        fc.constant(NODE_PACKAGE),
        fc.constant('ACS-Extension-missing-1'),
        fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,40}$/),
      ),
      packageVersion: fc.constantFrom('v1', 'v2', 'v0', 'v999'),
      parameters: fc.oneof(
        fc.record({
          version: fc.oneof(
            fc.constantFrom('16', '18', '20'),
            oddString,
            fc.integer(),
            fc.boolean(),
            fc.constant(null),
          ),
        }),
        fc.dictionary(oddString, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 5 }),
      ),
      rateControl: fc.record(
        { concurrency: countOrPercent(1), maxErrors: countOrPercent(0) },
        { requiredKeys: [] },
      ),
      suspend: fc.boolean(),
      interval: fc.constantFrom('10s', '90s', '1m', '1h30m', '24h'),
      deletionPolicy: fc.constantFrom('Orphan', 'Uninstall'),
      mode: fc.constantFrom('Enforce', 'Observe'),
      deleteAfter: fc.boolean(),
      steps: fc.integer({ min: 1, max: 5 }),
    },
    { requiredKeys: ['targets', 'packageName', 'deleteAfter', 'steps'] },
  )
  .map((r) => {
    const spec: Record<string, unknown> = {
      regionId: 'cn-hangzhou',
      packageName: r.packageName,
      targets: { ...r.targets },
    };
    if (r.exclude?.length) (spec.targets as Record<string, unknown>).excludeInstanceIds = r.exclude;
    for (const k of [
      'packageVersion',
      'parameters',
      'rateControl',
      'suspend',
      'interval',
      'deletionPolicy',
      'mode',
    ] as const) {
      if (r[k] !== undefined) spec[k] = r[k];
    }
    return { spec: spec as EcsExtensionSpec, deleteAfter: r.deleteAfter, steps: r.steps };
  });

/**
 * TypeBox checks `Type.Unsafe` schemas only through the registry: the two the API types use are
 * int-or-string and free-form objects (preserve-unknown-fields).
 */
function registerUnsafe(): void {
  if (!FormatRegistry.Has('date-time')) {
    FormatRegistry.Set('date-time', (v) =>
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(v),
    );
  }
  if (TypeRegistry.Has('Unsafe')) return;
  TypeRegistry.Set('Unsafe', (schema: Record<string, unknown>, value) => {
    if (schema['x-kubernetes-int-or-string']) return Number.isInteger(value) || typeof value === 'string';
    if (schema.type === 'object') return typeof value === 'object' && value !== null && !Array.isArray(value);
    return true;
  });
}

/** Runs the fuzzer for the profile's number of cases; see the module comment. */
export async function r4Fuzz(ctx: ChaosContext): Promise<Figure> {
  const t0 = Date.now();
  const seed = ctx.seed('R4b');
  const numRuns = Math.ceil(ctx.profile.r4FuzzCases * 1.5);
  registerUnsafe();
  const ns = 'chaos-r4-fuzz';
  await createNamespace(ctx.kc, ns);
  let rejected = 0;
  const stack = await startFastStack({
    seed: {
      regions: {
        'cn-hangzhou': {
          generate: [{ count: 30, idPrefix: 'i-fz', tags: [{ key: 'fleet', value: 'fz' }] }],
          instances: [],
        },
      },
      packageTemplates: [
        {
          name: NODE_PACKAGE,
          versions: [
            {
              version: 'v1',
              parameters: { version: { Type: 'String', Default: '16', AllowedValues: ['16', '18'] } },
            },
            {
              version: 'v2',
              parameters: { version: { Type: 'String', Default: '18', AllowedValues: ['16', '18', '20'] } },
            },
          ],
        },
      ],
    },
  });
  await stack.emu.control.updateInstance('cn-hangzhou', 'i-fz0002', { status: 'Stopped' });
  await stack.emu.control.updateInstance('cn-hangzhou', 'i-fz0003', { cloudAssistantOnline: false });
  await stack.emu.control.setFaults({ seed, failInstances: { 'i-fz0004': 'injected failure' } });
  const unhandled: string[] = [];
  const badStatus: string[] = [];
  const noReady: string[] = [];
  const notDeleted: string[] = [];
  let cases = 0;
  let reconciles = 0;
  const classified = (e: Error): boolean =>
    e instanceof ReconcileError || isCloudError(e) || e.name === 'AbortError';
  try {
    await fc.assert(
      fc.asyncProperty(specArb, async (c) => {
        // "Admitted" is the real API server's answer (CRD schema + CEL), asked with a dry run.
        const admitted = await kubeRequestRaw(
          ctx.kc,
          'POST',
          `${API}/namespaces/${ns}/ecsextensions?dryRun=All`,
          {
            apiVersion: 'ecsops.io/v1alpha1',
            kind: 'EcsExtension',
            metadata: { name: 'dry-run' },
            spec: c.spec,
          },
        ).then(
          () => true,
          (e: { code?: number }) => {
            if ((e.code ?? 0) >= 500 || !e.code) throw e;
            return false;
          },
        );
        if (!admitted) {
          rejected++;
          return true;
        }
        const name = `fz-${cases++}`;
        const shown = JSON.stringify(c.spec).slice(0, 300);
        stack.apply(name, c.spec);
        for (let i = 0; i < c.steps; i++) {
          const step = await stack.reconcile(name);
          reconciles++;
          if (step.error && !classified(step.error))
            unhandled.push(`${name} ${shown}: ${step.error.stack?.slice(0, 400)}`);
          const obj = stack.get(name);
          if (obj?.status && !Value.Check(EcsExtensionStatusSchema, obj.status)) {
            const first = [...Value.Errors(EcsExtensionStatusSchema, obj.status)][0];
            badStatus.push(`${name} ${shown}: ${first?.path} ${first?.message}`);
          }
          if (!step.error && !obj?.status?.conditions?.some((x) => x.type === 'Ready'))
            noReady.push(`${name} ${shown}`);
          stack.clock.advance(step.result?.requeueAfterMs ?? 1000);
          await new Promise((r) => setTimeout(r, 2));
        }
        if (c.deleteAfter) {
          stack.store.delete('default', name);
          for (let i = 0; i < 30 && stack.get(name); i++) {
            const step = await stack.reconcile(name);
            reconciles++;
            if (step.error && !classified(step.error))
              unhandled.push(`${name} (deleting) ${shown}: ${step.error.stack?.slice(0, 400)}`);
            stack.clock.advance(step.result?.requeueAfterMs ?? 1000);
            await new Promise((r) => setTimeout(r, 5));
          }
          if (stack.get(name)) notDeleted.push(`${name} ${shown}`);
        } else {
          stack.store.purge('default', name);
        }
        return true;
      }),
      { seed, numRuns, endOnFailure: true },
    );
  } finally {
    await stack.stop();
    await ctx.deleteNamespace(ns);
  }
  const pass =
    unhandled.length === 0 &&
    badStatus.length === 0 &&
    noReady.length === 0 &&
    cases >= ctx.profile.r4FuzzCases;
  return {
    id: 'R4b',
    title: 'fuzzer (fast tier)',
    pass,
    seed,
    seconds: (Date.now() - t0) / 1000,
    line: `R4 fuzzer: ${cases} admitted-but-odd EcsExtension specs (fast-check seed ${seed}; ${rejected} more generated specs the API server's dry run rejected were skipped), ${reconciles} reconciles through the real reconciler and cloud layer: unhandled errors ${unhandled.length}, statuses the schema would reject ${badStatus.length}, reconciles leaving no Ready condition ${noReady.length}, deleted objects not gone after 30 reconciles ${notDeleted.length}`,
    details: [...unhandled, ...badStatus, ...noReady, ...notDeleted].slice(0, 6),
  };
}
