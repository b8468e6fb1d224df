/**
 * `ecsops plan` and metric gates (issue 22): with `spec.analysis`, an AppRelease plan names the gate
 * after every batch (the canary and the last one included) and a PatchPolicy plan the gate between
 * its install executions (one at a time), e.g. `batch 2 (4) → analysis error-rate (bake 30s, 3 ×
 * 10s)`; without it, no gate line. Against the emulator (reads only).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APPLY_PATCH_BASELINE_TEMPLATE } from '../../../src/api/patchpolicy.js';
import { describeGate, formatPlans, planManifest } from '../../../src/plan/index.js';
import { startCloudStack, type CloudStack } from '../../harness/fast.js';

const REGION = 'cn-hangzhou';
const GATE = {
  prometheus: { url: 'http://prometheus.monitoring:9090' },
  bakeTime: '30s',
  metrics: [
    {
      name: 'error-rate',
      query: 'sum(rate(web_request_errors_total{instance_id=~"{{instanceIdsRegex}}"}[1m])) or vector(0)',
      interval: '10s',
      count: 3,
      successCondition: 'result < 0.05',
    },
  ],
};

describe('ecsops plan with spec.analysis', () => {
  let stack: CloudStack;
  beforeAll(async () => {
    stack = await startCloudStack({
      seed: {
        regions: {
          [REGION]: { generate: [{ count: 60, idPrefix: 'i-pa', tags: { fleet: 'pa' }, patches: 2 }] },
        },
      },
      timeScale: 0.005,
    });
  });
  afterAll(() => stack?.stop());

  const doc = (kind: string, spec: Record<string, unknown>) => ({
    apiVersion: 'ecsops.io/v1alpha1',
    kind,
    metadata: { name: kind.toLowerCase(), namespace: 'default' },
    spec: { regionId: REGION, targets: { tags: [{ key: 'fleet', value: 'pa' }] }, ...spec },
  });
  const app = (extra: Record<string, unknown> = {}) =>
    doc('AppRelease', {
      application: 'shop',
      version: '1.0.0',
      artifact: { url: 'https://example.com/shop.tar.gz', sha256: 'a'.repeat(64) },
      hooks: { start: { script: 'true' } },
      strategy: { batchSize: 20, canary: { instances: 1, pause: true } },
      ...extra,
    });

  it('describeGate: names, bake time and cadence', () => {
    expect(describeGate(GATE)).toBe('analysis error-rate (bake 30s, 3 × 10s)');
    expect(
      describeGate({
        prometheus: GATE.prometheus,
        metrics: [
          { name: 'a', query: 'vector(0)' },
          { name: 'b', query: 'vector(0)', interval: '1m', count: 2 },
        ],
      }),
    ).toBe('analysis a 1 × 30s, b 2 × 1m (bake 0s)');
  });

  it('AppRelease: a gate after every batch, the canary and the last one included', async () => {
    const [gated, plain] = await planManifest([app({ analysis: GATE }), app()], stack.cloud);
    const work = gated?.work[0];
    expect(work?.batches).toEqual([1, 20, 20, 19]);
    expect(work?.gates).toEqual([
      'batch 0 (1, canary) → analysis error-rate (bake 30s, 3 × 10s)',
      'batch 1 (20) → analysis error-rate (bake 30s, 3 × 10s)',
      'batch 2 (20) → analysis error-rate (bake 30s, 3 × 10s)',
      'batch 3 (19) → analysis error-rate (bake 30s, 3 × 10s)',
    ]);
    expect(formatPlans([gated!])).toContain('    batch 2 (20) → analysis error-rate (bake 30s, 3 × 10s)\n');
    expect(plain?.work[0]?.gates).toBeUndefined();
    expect(formatPlans([plain!])).not.toContain('→ analysis');
  });

  it('PatchPolicy install: executions one at a time, a gate between them (not after the last)', async () => {
    const install = {
      maintenanceWindow: { schedule: '0 1 * * SAT', duration: '4h' },
      parallelBatches: 2,
    };
    // Patch states exist only after a scan: run one (OOS StartExecution through the real cloud layer).
    const ids = Array.from({ length: 60 }, (_, i) => `i-pa${String(i + 1).padStart(4, '0')}`);
    const oos = stack.cloud.oos(REGION, { owner: 'test' });
    for (const batch of [ids.slice(0, 50), ids.slice(50)]) {
      await oos.startExecution({
        templateName: APPLY_PATCH_BASELINE_TEMPLATE,
        parameters: {
          action: 'scan',
          targets: { Type: 'ResourceIds', RegionId: REGION, ResourceIds: batch },
        },
        clientToken: `plan-analysis-scan-${batch[0]}`,
      });
    }
    for (let i = 0; i < 400; i++) {
      const states = await oos.listInstancePatchStates(ids);
      if (states.filter((st) => st.operationEndTime).length === ids.length) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const [pp] = await planManifest([doc('PatchPolicy', { install, analysis: GATE })], stack.cloud);
    const inst = pp?.work.find((w) => w.action === 'install');
    expect(inst).toBeDefined();
    if (!inst) return;
    expect(inst.batches).toEqual([50, 10]);
    expect(inst.details.parallelBatches).toBe(1);
    expect(inst.gates).toEqual(['execution 0 (50) → analysis error-rate (bake 30s, 3 × 10s)']);
  });
});
