/**
 * Manager + leader election against the real API server: caches run on every replica, workers only
 * on the leader; a released Lease hands the work over; a leader that cannot renew stops its workers
 * and calls onLeadershipLost.
 */
import { CustomObjectsApi } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/runtime/logger.js';
import { Manager } from '../../../src/runtime/manager.js';
import { applyCrd, testCrd, createTestNamespace, getTestKubeConfig } from '../../harness/env.js';
import { TcpProxy, eventually } from './tcp-proxy.js';

const group = 'runtime-test.ecsops.io';
const version = 'v1';
const plural = 'gizmos';

const crd = testCrd(group, version, 'Gizmo', {
  type: 'object',
  'x-kubernetes-preserve-unknown-fields': true,
});

let kc: KubeConfig;
const cleanups: Array<() => Promise<void>> = [];
const logger = createLogger({ level: 'silent' });

beforeAll(async () => {
  kc = getTestKubeConfig('admin');
  await applyCrd(kc, crd);
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function replica(id: string, namespace: string, lease: string, kubeConfig: KubeConfig = kc) {
  const reconciled: string[] = [];
  let lost = 0;
  const registry = new Registry();
  const manager = new Manager({
    kubeConfig,
    registry,
    logger,
    leaderElection: {
      namespace,
      name: lease,
      identity: id,
      leaseDurationMs: 5000,
      renewDeadlineMs: 3000,
      retryPeriodMs: 500,
    },
    onLeadershipLost: () => lost++,
  });
  manager.addController({
    name: 'gizmo',
    group,
    version,
    plural,
    kind: 'Gizmo',
    namespace,
    workers: 1,
    reconciler: {
      reconcile: async (req) => {
        reconciled.push(req.name);
        return {};
      },
    },
  });
  cleanups.push(() => manager.stop(1000));
  return { manager, reconciled, registry, lost: () => lost };
}

async function createGizmo(namespace: string, name: string) {
  await kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
    group,
    version,
    namespace,
    plural,
    body: { apiVersion: `${group}/${version}`, kind: 'Gizmo', metadata: { name }, spec: {} },
  });
}

describe('Manager with leader election', () => {
  it('runs workers only on the leader and hands over on stop', async () => {
    const namespace = await createTestNamespace(kc, 'rt-mle');
    await createGizmo(namespace, 'one');
    const a = replica('replica-a', namespace, 'gizmo-leader');
    await a.manager.start();
    await eventually(() => a.manager.isLeader(), 15_000, 'a to lead');
    const b = replica('replica-b', namespace, 'gizmo-leader');
    await b.manager.start();
    // Standby is ready (caches synced) but does not reconcile.
    expect(b.manager.ready()).toBe(true);
    await eventually(() => a.reconciled.includes('one'), 15_000, 'a to reconcile');
    await createGizmo(namespace, 'two');
    await eventually(() => a.reconciled.includes('two'), 15_000, 'a to reconcile two');
    await new Promise((r) => setTimeout(r, 1000));
    expect(b.manager.isLeader()).toBe(false);
    expect(b.reconciled).toEqual([]);

    await a.manager.stop(1000);
    expect(a.lost()).toBe(0);
    await eventually(() => b.manager.isLeader(), 15_000, 'b to take over');
    // b's queue was filled by its own informer: it reconciles everything once it leads.
    await eventually(
      () => b.reconciled.includes('one') && b.reconciled.includes('two'),
      15_000,
      'b to reconcile',
    );
    const gauge = await b.registry.getSingleMetricAsString('leader_election_master_status');
    expect(gauge).toContain('leader_election_master_status{name="gizmo-leader"} 1');
  });

  it('stops workers and calls onLeadershipLost when renewals fail', async () => {
    const namespace = await createTestNamespace(kc, 'rt-mle');
    const proxy = TcpProxy.forKubeConfig(kc);
    await proxy.resume();
    cleanups.push(() => proxy.pause());
    const a = replica('cut-a', namespace, 'gizmo-cut', proxy.kubeConfigFor(kc));
    await a.manager.start();
    await eventually(() => a.manager.isLeader(), 15_000, 'a to lead');
    await proxy.pause();
    await eventually(() => a.lost() === 1, 15_000, 'onLeadershipLost');
    expect(a.manager.isLeader()).toBe(false);
  });
});
