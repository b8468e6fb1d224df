/**
 * Sharding on Kubernetes itself (Flux's --watch-label-selector): two controller processes, each
 * with its own Lease and label selector, split the resources; each resource is reconciled by
 * exactly one shard.
 */
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OWNER_UID_TAG } from '../../../src/api/common.js';
import {
  createEcsExtension,
  emulatorEnv,
  fleetSeed,
  instanceIds as ids,
  spawnController,
  startStack,
  testControllerArgs,
  waitFor,
  waitForReady,
  type Stack,
} from '../../harness/stack.js';

function metricsPort(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const rec = JSON.parse(line) as { metricsPort?: unknown };
        if (typeof rec.metricsPort === 'number') resolve(rec.metricsPort);
      } catch {
        // not JSON
      }
    });
  });
}

/** Resource names with a series in a controller's /metrics (`ecsops_resource_instances`). */
async function reconciledNames(port: number): Promise<Set<string>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const names = new Set<string>();
  for (const m of text.matchAll(/^ecsops_resource_instances\{[^}]*name="([^"]+)"/gm))
    names.add(m[1] as string);
  return names;
}

describe('sharding by label selector', () => {
  let stack: Stack;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    stack = await startStack({ seed: fleetSeed('shard', 20), prefix: 'shard', controller: false });
  });
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await stack?.stop();
  });

  it('reconciles each resource in exactly one shard', async () => {
    const shard = (n: string) => [
      ...testControllerArgs(stack.namespace, stack.emu),
      '--leader-elect',
      'true',
      '--leader-election-id',
      `ecsops-${n}`,
      '--leader-election-namespace',
      stack.namespace,
      '--log-level',
      'info',
      '--watch-label-selector',
      `sharding.ecsops.io/key in (${n})`,
    ];
    const a = spawnController(shard('shard1'), { ...emulatorEnv(), POD_NAME: 'shard1-a' });
    const b = spawnController(shard('shard2'), { ...emulatorEnv(), POD_NAME: 'shard2-a' });
    children.push(a, b);
    const [portA, portB] = await Promise.all([metricsPort(a), metricsPort(b)]);

    const one = await createEcsExtension(
      stack,
      'in-shard1',
      { targets: { instanceIds: ids('shard', 1, 5) } },
      {
        'sharding.ecsops.io/key': 'shard1',
      },
    );
    const two = await createEcsExtension(
      stack,
      'in-shard2',
      { targets: { instanceIds: ids('shard', 6, 10) } },
      {
        'sharding.ecsops.io/key': 'shard2',
      },
    );
    await createEcsExtension(stack, 'unsharded', { targets: { instanceIds: ids('shard', 11, 12) } });
    await waitForReady(stack, 'in-shard1', 'True', 60_000);
    await waitForReady(stack, 'in-shard2', 'True', 60_000);

    const seenA = await waitFor('shard1 reports in-shard1', async () => {
      const s = await reconciledNames(portA);
      return s.has('in-shard1') ? s : undefined;
    });
    const seenB = await waitFor('shard2 reports in-shard2', async () => {
      const s = await reconciledNames(portB);
      return s.has('in-shard2') ? s : undefined;
    });
    expect([...seenA]).toEqual(['in-shard1']);
    expect([...seenB]).toEqual(['in-shard2']);
    // Each resource's work was started once, by its own shard.
    for (const obj of [one, two]) {
      const execs = await stack.emu.control.listExecutions({
        tagKey: OWNER_UID_TAG,
        tagValue: obj.metadata.uid,
      });
      expect(execs).toHaveLength(1);
    }
    // A resource without the shard label belongs to no shard (give one shard `!sharding.ecsops.io/key`).
    expect((await reconciledNames(portA)).has('unsharded')).toBe(false);
    expect((await reconciledNames(portB)).has('unsharded')).toBe(false);

    // A MaintenanceWindow carries no shard label (policies of every shard may share it): a policy
    // of shard1 referencing it finds it.
    const create = (
      plural: string,
      kind: string,
      name: string,
      spec: object,
      labels?: Record<string, string>,
    ) =>
      stack.api.createNamespacedCustomObject({
        group: 'ecsops.io',
        version: 'v1alpha1',
        namespace: stack.namespace,
        plural,
        body: {
          apiVersion: 'ecsops.io/v1alpha1',
          kind,
          metadata: { name, ...(labels ? { labels } : {}) },
          spec,
        },
      });
    await create('maintenancewindows', 'MaintenanceWindow', 'shared', {
      schedule: '0 1 * * SAT',
      duration: '4h',
      timeZone: 'UTC',
    });
    await create(
      'patchpolicies',
      'PatchPolicy',
      'patch-shard1',
      {
        regionId: 'cn-hangzhou',
        targets: { instanceIds: ids('shard', 13, 14) },
        install: { maintenanceWindowRef: { name: 'shared' } },
      },
      { 'sharding.ecsops.io/key': 'shard1' },
    );
    const policy = await waitFor('patch-shard1 reconciled', async () => {
      const p = (await stack.api.getNamespacedCustomObject({
        group: 'ecsops.io',
        version: 'v1alpha1',
        namespace: stack.namespace,
        plural: 'patchpolicies',
        name: 'patch-shard1',
      })) as {
        status?: {
          observedGeneration?: number;
          conditions?: Array<{ type: string; status: string; reason: string }>;
        };
      };
      const ready = p.status?.conditions?.find((c) => c.type === 'Ready');
      return ready && ready.status !== 'Unknown' ? p : undefined;
    });
    expect(policy.status?.conditions?.find((c) => c.type === 'Stalled')?.status).not.toBe('True');
    expect(policy.status?.conditions?.find((c) => c.type === 'Ready')?.reason).not.toBe(
      'MaintenanceWindowNotFound',
    );
  });
});
