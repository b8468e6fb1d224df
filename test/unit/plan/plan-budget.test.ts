/**
 * `ecsops plan` with InstanceDisruptionBudgets in the manifest (issue 23): against the emulator, a
 * fleet of 6 instances in 2 zones. The budget document's plan says what it allows per zone; an
 * EcsExtension whose install the budget caps says how many may start at once and that the rest wait
 * (WaitingForDisruptionBudget); `maxUnavailable: 0` is the BudgetUnsatisfiable problem the
 * controller would report.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CloudClients } from '../../../src/cloud/index.js';
import { startCloudStack, type CloudStack } from '../../harness/fast.js';
import { formatPlans, planManifest, planExitCode } from '../../../src/plan/index.js';

const REGION = 'cn-hangzhou';
const PKG = 'ACS-Extension-agent';

describe('ecsops plan with disruption budgets', () => {
  let stack: CloudStack;
  let cloud: CloudClients;
  beforeAll(async () => {
    stack = await startCloudStack({
      seed: {
        regions: {
          [REGION]: {
            generate: [
              { count: 6, idPrefix: 'i-pb', zones: [`${REGION}-h`, `${REGION}-i`], tags: { fleet: 'pb' } },
            ],
          },
        },
        packageTemplates: [{ name: PKG, versions: [{ version: 'v1' }] }],
      },
      timeScale: 0.005,
    });
    cloud = stack.cloud;
  });
  afterAll(() => stack?.stop());

  const ext = {
    apiVersion: 'ecsops.io/v1alpha1',
    kind: 'EcsExtension',
    metadata: { name: 'agent', namespace: 'default' },
    spec: { regionId: REGION, targets: { tags: [{ key: 'fleet', value: 'pb' }] }, packageName: PKG },
  };
  const budget = (maxUnavailable: number | string, perZone = true) => ({
    apiVersion: 'ecsops.io/v1alpha1',
    kind: 'InstanceDisruptionBudget',
    metadata: { name: 'pb-zones' },
    spec: { regionId: REGION, selector: { tags: [{ key: 'fleet', value: 'pb' }] }, maxUnavailable, perZone },
  });

  it('lists the budget selecting the targets and how many may start at once', async () => {
    const plans = await planManifest([budget('34%'), ext], cloud);
    const [b, e] = plans;
    expect(b?.kind).toBe('InstanceDisruptionBudget');
    expect(b?.summary.targeted).toBe(6);
    expect(b?.notes).toEqual([
      `a disruption budget: allows 2 of 3 in ${REGION}-h, 2 of 3 in ${REGION}-i unavailable at once, across every kind`,
    ]);
    const install = e?.work.find((w) => w.action === 'install');
    expect(install?.instanceIds).toHaveLength(6);
    expect(install?.details).toMatchObject({ budgets: 'pb-zones', budgetAdmits: 4 });
    expect(e?.notes.join('\n')).toContain(
      `install: budget(s) pb-zones select these instances; 4 of 6 may start at once (2 instance(s) wait for budget pb-zones: 0/2 unavailable in ${REGION}-h`,
    );
    expect(formatPlans(plans)).toContain('budgetAdmits=4');
  });

  it('maxUnavailable 0 is the BudgetUnsatisfiable problem (exit code 1)', async () => {
    const plans = await planManifest([budget(0, false), ext], cloud);
    expect(plans[1]?.problems).toEqual([
      {
        reason: 'BudgetUnsatisfiable',
        message:
          '6 instance(s) can never start under budget pb-zones: 0/0 unavailable (maxUnavailable allows 0 of 6 selected)',
      },
    ]);
    expect(planExitCode(plans)).toBe(1);
  });

  it('a budget without a usable maxUnavailable is its own Stalled problem and caps nothing', async () => {
    const plans = await planManifest([budget('ten'), ext], cloud);
    expect(plans[0]?.problems[0]?.reason).toBe('InvalidSpec');
    expect(plans[1]?.problems).toEqual([]);
  });
});
