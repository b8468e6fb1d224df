import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { DomainMetrics } from '../../../src/controllers/shared/metrics.js';

type Sample = { labels: Record<string, string | number>; value: number };

async function samples(registry: Registry, name: string): Promise<Sample[]> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`metric ${name} not registered`);
  return (await metric.get()).values as Sample[];
}

function valueOf(list: Sample[], labels: Record<string, string>): number | undefined {
  return list.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

const TEMPLATE = 'ACS-ECS-BulkyConfigureOOSPackageWithTemporaryURL';

describe('DomainMetrics', () => {
  it('pre-initialises execution counters to 0 for every known template, action and terminal status', async () => {
    const registry = new Registry();
    new DomainMetrics(registry, { [TEMPLATE]: ['install', 'uninstall', 'update'] });
    const started = await samples(registry, 'ecsops_executions_started_total');
    expect(started.map((s) => [s.labels.action, s.value]).sort()).toEqual([
      ['install', 0],
      ['uninstall', 0],
      ['update', 0],
    ]);
    const finished = await samples(registry, 'ecsops_executions_finished_total');
    expect(finished.map((s) => [s.labels.status, s.value]).sort()).toEqual([
      ['Cancelled', 0],
      ['Failed', 0],
      ['Success', 0],
    ]);
    const text = await registry.metrics();
    expect(text).toContain(`ecsops_executions_started_total{template="${TEMPLATE}",action="install"} 0`);
  });

  it('counts started and finished executions', async () => {
    const registry = new Registry();
    const m = new DomainMetrics(registry, { [TEMPLATE]: ['install'] });
    m.executionStarted(TEMPLATE, 'install');
    m.executionStarted(TEMPLATE, 'install');
    m.executionFinished(TEMPLATE, 'Failed');
    expect(valueOf(await samples(registry, 'ecsops_executions_started_total'), { action: 'install' })).toBe(
      2,
    );
    const finished = await samples(registry, 'ecsops_executions_finished_total');
    expect(valueOf(finished, { status: 'Failed' })).toBe(1);
    expect(valueOf(finished, { status: 'Success' })).toBe(0);
  });

  it('sets per-resource instance gauges for every state (missing counts → 0) and removes them on deleteResource', async () => {
    const registry = new Registry();
    const m = new DomainMetrics(registry);
    m.setInstanceCounts('EcsExtension', 'fleet', 'node-agent', { targeted: 5, installed: 3, failed: 2 });
    m.setInstanceCounts('EcsExtension', 'fleet', 'other', { targeted: 1, installed: 1 });
    const one = { kind: 'EcsExtension', namespace: 'fleet', name: 'node-agent' };
    let gauge = await samples(registry, 'ecsops_resource_instances');
    expect(
      Object.fromEntries(
        gauge.filter((s) => s.labels.name === 'node-agent').map((s) => [s.labels.state, s.value]),
      ),
    ).toEqual({ targeted: 5, installed: 3, pending: 0, inProgress: 0, failed: 2, unreachable: 0 });
    expect(valueOf(gauge, { ...one, state: 'targeted' })).toBe(5);

    m.setInstanceCounts('EcsExtension', 'fleet', 'node-agent', { targeted: 5, installed: 5 });
    gauge = await samples(registry, 'ecsops_resource_instances');
    expect(valueOf(gauge, { ...one, state: 'installed' })).toBe(5);
    expect(valueOf(gauge, { ...one, state: 'failed' })).toBe(0);

    m.deleteResource('EcsExtension', 'fleet', 'node-agent');
    gauge = await samples(registry, 'ecsops_resource_instances');
    expect(gauge.filter((s) => s.labels.name === 'node-agent')).toEqual([]);
    expect(gauge.filter((s) => s.labels.name === 'other')).toHaveLength(6);
  });

  it('sets ecsops_resource_condition per kstatus condition (1 on its status, 0 on the others; absent = Unknown) and removes it on deleteResource', async () => {
    const registry = new Registry();
    const m = new DomainMetrics(registry);
    m.setConditions('PatchPolicy', 'ops', 'web', [
      { type: 'Ready', status: 'False' },
      { type: 'Stalled', status: 'True' },
    ]);
    const got = await samples(registry, 'ecsops_resource_condition');
    const at = (type: string, status: string) =>
      valueOf(got, { kind: 'PatchPolicy', namespace: 'ops', name: 'web', type, status });
    expect([at('Ready', 'False'), at('Ready', 'True'), at('Ready', 'Unknown')]).toEqual([1, 0, 0]);
    expect([at('Stalled', 'True'), at('Stalled', 'False')]).toEqual([1, 0]);
    expect([at('Reconciling', 'Unknown'), at('Reconciling', 'True')]).toEqual([1, 0]);
    expect(got).toHaveLength(9);
    m.deleteResource('PatchPolicy', 'ops', 'web');
    expect(await samples(registry, 'ecsops_resource_condition')).toEqual([]);
  });

  it('sets ecsops_state_oldest_read_age_seconds per resource, removes it for an unknown age and on deleteResource', async () => {
    const registry = new Registry();
    const m = new DomainMetrics(registry);
    m.setOldestReadAge('EcsExtension', 'fleet', 'node-agent', 3_600);
    m.setOldestReadAge('PatchPolicy', 'fleet', 'web', 60);
    const name = 'ecsops_state_oldest_read_age_seconds';
    expect(valueOf(await samples(registry, name), { kind: 'EcsExtension', name: 'node-agent' })).toBe(3_600);
    m.setOldestReadAge('PatchPolicy', 'fleet', 'web', undefined);
    expect((await samples(registry, name)).map((s) => s.labels.name)).toEqual(['node-agent']);
    m.deleteResource('EcsExtension', 'fleet', 'node-agent');
    expect(await samples(registry, name)).toEqual([]);
  });

  it('sets ecsops_drained_backends per resource, removes it for undefined and on deleteResource', async () => {
    const registry = new Registry();
    const m = new DomainMetrics(registry);
    m.setDrainedBackends('AppRelease', 'shop', 'web', 2);
    m.setDrainedBackends('PatchPolicy', 'shop', 'os', 0);
    const name = 'ecsops_drained_backends';
    expect(valueOf(await samples(registry, name), { kind: 'AppRelease', name: 'web' })).toBe(2);
    m.setDrainedBackends('PatchPolicy', 'shop', 'os', undefined);
    expect((await samples(registry, name)).map((s) => s.labels.name)).toEqual(['web']);
    m.deleteResource('AppRelease', 'shop', 'web');
    expect(await samples(registry, name)).toEqual([]);
  });

  it('registers only on the given registry (private, no global default)', async () => {
    const a = new Registry();
    const b = new Registry();
    new DomainMetrics(a);
    new DomainMetrics(b);
    expect(a.getSingleMetric('ecsops_resource_instances')).toBeDefined();
    expect(b.getSingleMetric('ecsops_resource_instances')).toBeDefined();
  });
});
