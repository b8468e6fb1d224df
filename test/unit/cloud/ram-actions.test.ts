/**
 * The RAM action table (src/cloud/ram-actions.ts) against the cloud layer and the docs:
 * - every action the cloud layer can call (`OOS_ACTIONS`, `ECS_ACTIONS`, and every
 *   `caller.call('Action'` in src/cloud/*.ts) has a table row, and every row but the `pending`
 *   ones is an action of the cloud layer — a call added without a row (or a row left behind by a
 *   removed call) fails here; pending rows pass whether or not their calls have landed;
 * - every OOS template the controller starts has a template list with its sources;
 * - docs/deploy.md §4 and the Helm chart README hold exactly the generated text (`npm run ram-policy`).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateRamPolicyDocs } from '../../../scripts/gen-ram-policy.js';
import { CONFIGURE_PACKAGE_TEMPLATE } from '../../../src/api/ecsextension.js';
import { APPLY_PATCH_BASELINE_TEMPLATE } from '../../../src/api/patchpolicy.js';
import { ACTIONTRAIL_ACTIONS } from '../../../src/cloud/actiontrail.js';
import { ALB_ACTIONS } from '../../../src/cloud/alb.js';
import { ECS_ACTIONS } from '../../../src/cloud/ecs.js';
import { OOS_ACTIONS } from '../../../src/cloud/oos.js';
import { SLB_ACTIONS } from '../../../src/cloud/slb.js';
import {
  ASSOCIATED_ACTIONS,
  CONTROLLER_ACTIONS,
  dependentActionsOf,
  instanceRolePolicyFor,
  RAM_KINDS,
  ramActionName,
  ramActionsFor,
  ramPolicyFor,
  TEMPLATE_ACTIONS,
} from '../../../src/cloud/ram-actions.js';
import { REPO_ROOT } from '../../harness/paths.js';

/** `product:Action` of every action the cloud layer declares or calls, at test time. */
function cloudLayerActions(): Set<string> {
  const out = new Set([
    ...Object.keys(OOS_ACTIONS).map((a) => `oos:${a}`),
    ...Object.keys(ECS_ACTIONS).map((a) => `ecs:${a}`),
    ...Object.keys(ACTIONTRAIL_ACTIONS).map((a) => `actiontrail:${a}`),
    ...Object.keys(SLB_ACTIONS).map((a) => `slb:${a}`),
    ...Object.keys(ALB_ACTIONS).map((a) => `alb:${a}`),
  ]);
  const dir = join(REPO_ROOT, 'src/cloud');
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.ts'))) {
    const product = {
      'oos.ts': 'oos',
      'ecs.ts': 'ecs',
      'actiontrail.ts': 'actiontrail',
      'slb.ts': 'slb',
      'alb.ts': 'alb',
    }[f];
    const text = readFileSync(join(dir, f), 'utf8');
    for (const m of text.matchAll(/caller\.call\(\s*'([A-Za-z]+)'/g)) {
      if (!product)
        throw new Error(
          `${f} calls ${m[1]}: the table test knows only oos.ts, ecs.ts, actiontrail.ts, slb.ts and alb.ts`,
        );
      out.add(`${product}:${m[1]}`);
    }
  }
  return out;
}

describe('RAM action table', () => {
  it('has a row for every action the cloud layer can call, and no row for an action it lacks (pending rows excepted)', () => {
    const layer = cloudLayerActions();
    const rows = new Map(CONTROLLER_ACTIONS.map((a) => [ramActionName(a), a]));
    expect(rows.size).toBe(CONTROLLER_ACTIONS.length); // no duplicate rows
    const missing = [...layer].filter((a) => !rows.has(a));
    expect(missing, 'cloud-layer actions without a row in src/cloud/ram-actions.ts').toEqual([]);
    const stale = [...rows.values()].filter((a) => !a.pending && !layer.has(ramActionName(a)));
    expect(stale.map(ramActionName), 'rows for actions the cloud layer does not call').toEqual([]);
    // Not vacuous: the source scan finds the calls.
    expect(layer.has('oos:StartExecution') && layer.has('ecs:TagResources')).toBe(true);
  });

  it('names only known kinds, and the issue’s missing demo actions are in the policy', () => {
    for (const a of CONTROLLER_ACTIONS) {
      for (const k of Object.keys(a.kinds)) expect(RAM_KINDS as readonly string[]).toContain(k);
    }
    const all = ramActionsFor();
    for (const a of ['oos:ListInstancePatchStates', 'oos:ListInstancePatches', 'ecs:TagResources'])
      expect(all).toContain(a);
    expect(ramPolicyFor(['MaintenanceWindow']).Statement).toEqual([]);
    expect(ramActionsFor(['AppRelease'])).toEqual(
      expect.arrayContaining([
        'oos:CreateSecretParameter',
        'oos:UpdateSecretParameter',
        'oos:DeleteSecretParameter',
      ]),
    );
  });

  it('secretEnv: controller rows are live (not pending), KMS dependents in the controller policy, instance-side reads in the instance role only', () => {
    const secret = CONTROLLER_ACTIONS.filter((a) => a.kinds.AppRelease?.includes('secretEnv'));
    expect(secret.map(ramActionName).sort()).toEqual([
      'oos:CreateSecretParameter',
      'oos:DeleteSecretParameter',
      'oos:UpdateSecretParameter',
    ]);
    expect(CONTROLLER_ACTIONS.filter((a) => a.pending).map(ramActionName)).toEqual([]);
    expect(dependentActionsOf('oos:CreateSecretParameter')).toEqual(['kms:CreateSecret']);
    expect(dependentActionsOf('OOS:updateSecretParameter')).toEqual(['kms:PutSecretValue']);
    expect(dependentActionsOf('oos:DeleteSecretParameter')).toEqual(['kms:DeleteSecret']);
    expect(dependentActionsOf('oos:GetSecretParameter')).toEqual(['kms:GetSecretValue']);
    expect(dependentActionsOf('ecs:RunCommand')).toEqual([]);
    const controller = ramActionsFor(['AppRelease']);
    for (const d of ASSOCIATED_ACTIONS) {
      expect(controller).toContain(ramActionName(d));
      expect(controller).toContain(d.of);
      expect(d.source).toMatch(/^https:\/\//);
    }
    const instance = instanceRolePolicyFor().Statement.flatMap((st) => st.Action);
    expect(instance).toEqual(['kms:GetSecretValue', 'oos:GetSecretParameter']);
    for (const a of instance) expect(ramActionsFor()).not.toContain(a);
    expect(instanceRolePolicyFor(['PatchPolicy', 'EcsExtension']).Statement).toEqual([]);
  });

  it('lists, with sources, the actions of every template the controller starts', () => {
    for (const t of [CONFIGURE_PACKAGE_TEMPLATE, APPLY_PATCH_BASELINE_TEMPLATE]) {
      expect(TEMPLATE_ACTIONS[t]?.actions.length, t).toBeGreaterThan(0);
      expect(TEMPLATE_ACTIONS[t]?.sources.length, t).toBeGreaterThan(0);
    }
    // Every template name used in src/controllers and src/api has a list.
    const started = new Set<string>();
    for (const dir of ['src/api', 'src/controllers']) {
      const walk = (d: string): void => {
        for (const e of readdirSync(join(REPO_ROOT, d), { withFileTypes: true })) {
          if (e.isDirectory()) walk(join(d, e.name));
          else if (e.name.endsWith('.ts'))
            for (const m of readFileSync(join(REPO_ROOT, d, e.name), 'utf8').matchAll(
              /TEMPLATE\s*=\s*'(ACS-[A-Za-z-]+)'/g,
            ))
              started.add(m[1]!);
        }
      };
      walk(dir);
    }
    expect(started.size).toBeGreaterThan(0);
    for (const t of started) expect(Object.keys(TEMPLATE_ACTIONS), t).toContain(t);
  });

  it('`ecsops ram-policy --kinds` prints the generated policy of those kinds', () => {
    const out = execFileSync(
      process.execPath,
      ['--import', 'tsx', join(REPO_ROOT, 'src/cli.ts'), 'ram-policy', '--kinds', 'patchpolicy,AppRelease'],
      { cwd: REPO_ROOT, encoding: 'utf8' },
    );
    expect(JSON.parse(out)).toEqual(ramPolicyFor(['PatchPolicy', 'AppRelease']));
  });

  it('docs/deploy.md §4 and the chart README hold the generated policies (npm run ram-policy)', () => {
    expect(generateRamPolicyDocs(REPO_ROOT, true)).toEqual([]);
  });
});
