/**
 * Lease leader election against the real API server: exclusivity, fast hand-over on release,
 * hand-over only after the lease duration when the leader dies, and a leader whose renewals fail
 * past the renew deadline stops leading.
 */
import { CoordinationV1Api } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LeaderElector } from '../../../src/runtime/leader-election.js';
import { createTestNamespace, getTestKubeConfig } from '../../harness/env.js';
import { TcpProxy, eventually } from './tcp-proxy.js';

const LEASE_MS = 5000;
const RENEW_MS = 3000;
const RETRY_MS = 500;

interface Candidate {
  elector: LeaderElector;
  abort: AbortController;
  run: Promise<void>;
  startedAt: number | undefined;
  stoppedAt: number | undefined;
  leaders: string[];
}

let kc: KubeConfig;
let namespace: string;
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  kc = getTestKubeConfig('admin');
  namespace = await createTestNamespace(kc, 'rt-le');
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function candidate(
  identity: string,
  lease: string,
  opts: { kubeConfig?: KubeConfig; release?: boolean; registry?: Registry } = {},
): Candidate {
  const abort = new AbortController();
  const c: Candidate = {
    abort,
    startedAt: undefined,
    stoppedAt: undefined,
    leaders: [],
  } as unknown as Candidate;
  c.elector = new LeaderElector({
    kubeConfig: opts.kubeConfig ?? kc,
    namespace,
    name: lease,
    identity,
    leaseDurationMs: LEASE_MS,
    renewDeadlineMs: RENEW_MS,
    retryPeriodMs: RETRY_MS,
    releaseOnCancel: opts.release ?? true,
    registry: opts.registry,
    callbacks: {
      onStartedLeading: () => {
        c.startedAt = Date.now();
      },
      onStoppedLeading: () => {
        c.stoppedAt = Date.now();
      },
      onNewLeader: (id) => c.leaders.push(id),
    },
  });
  c.run = c.elector.run(abort.signal);
  cleanups.push(async () => {
    abort.abort();
    await c.run;
  });
  return c;
}

async function readLease(name: string) {
  return kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ name, namespace });
}

describe('LeaderElector', () => {
  it('lets exactly one of two candidates lead and records the Lease fields', async () => {
    const registry = new Registry();
    const a = candidate('cand-a', 'exclusive', { registry });
    const b = candidate('cand-b', 'exclusive');
    await eventually(() => a.elector.isLeader() || b.elector.isLeader(), 15_000, 'a leader');
    // Several renew periods later, still exactly one leader.
    await new Promise((r) => setTimeout(r, 3 * RETRY_MS));
    expect([a.elector.isLeader(), b.elector.isLeader()].filter(Boolean)).toHaveLength(1);
    const leader = a.elector.isLeader() ? a : b;
    const follower = leader === a ? b : a;
    expect(follower.startedAt).toBeUndefined();
    expect(follower.elector.getLeader()).toBe(leader.elector.identity);
    expect(follower.leaders).toContain(leader.elector.identity);

    const lease = await readLease('exclusive');
    expect(lease.spec?.holderIdentity).toBe(leader.elector.identity);
    expect(lease.spec?.leaseDurationSeconds).toBe(LEASE_MS / 1000);
    expect(lease.spec?.renewTime).toBeDefined();
    expect(lease.spec?.acquireTime).toBeDefined();
    const metrics = await registry.getSingleMetricAsString('leader_election_master_status');
    expect(metrics).toContain(
      `leader_election_master_status{name="exclusive"} ${a.elector.isLeader() ? 1 : 0}`,
    );
  });

  it('hands over quickly when the leader releases the Lease', async () => {
    const a = candidate('rel-a', 'release');
    await eventually(() => a.elector.isLeader(), 15_000, 'a to lead');
    const b = candidate('rel-b', 'release');
    await eventually(() => b.leaders.includes('rel-a'), 15_000, 'b to observe a');
    const before = (await readLease('release')).spec?.leaseTransitions ?? 0;

    const releasedAt = Date.now();
    a.abort.abort();
    await a.run;
    expect(a.stoppedAt).toBeDefined();
    expect((await readLease('release')).spec?.holderIdentity ?? '').not.toBe('rel-a');

    await eventually(() => b.elector.isLeader(), 15_000, 'b to lead');
    // A released Lease is free at once: b takes it on its next retry, well before the lease duration.
    expect(b.startedAt! - releasedAt).toBeLessThan(LEASE_MS);
    const lease = await readLease('release');
    expect(lease.spec?.holderIdentity).toBe('rel-b');
    expect(lease.spec?.leaseTransitions).toBe(before + 1);
  });

  it('hands over only after the lease duration when the leader dies without releasing', async () => {
    const a = candidate('kill-a', 'killed', { release: false });
    await eventually(() => a.elector.isLeader(), 15_000, 'a to lead');
    const b = candidate('kill-b', 'killed');
    await eventually(() => b.leaders.includes('kill-a'), 15_000, 'b to observe a');

    const killedAt = Date.now();
    a.abort.abort();
    await a.run;
    expect((await readLease('killed')).spec?.holderIdentity).toBe('kill-a');

    await eventually(() => b.elector.isLeader(), 20_000, 'b to lead');
    // a's last renewal was at most one retry period before the kill; b saw it no earlier.
    expect(b.startedAt! - killedAt).toBeGreaterThanOrEqual(LEASE_MS - RETRY_MS - 100);
    expect((await readLease('killed')).spec?.holderIdentity).toBe('kill-b');
  });

  it('stops leading when renewals fail past the renew deadline', async () => {
    const proxy = TcpProxy.forKubeConfig(kc);
    await proxy.resume();
    cleanups.push(() => proxy.pause());
    const a = candidate('cut-a', 'cut', { kubeConfig: proxy.kubeConfigFor(kc) });
    await eventually(() => a.elector.isLeader(), 15_000, 'a to lead');
    const b = candidate('cut-b', 'cut');
    await eventually(() => b.leaders.includes('cut-a'), 15_000, 'b to observe a');

    const cutAt = Date.now();
    await proxy.pause();
    await eventually(() => a.stoppedAt !== undefined, 15_000, 'a to stop leading');
    expect(a.elector.isLeader()).toBe(false);
    // a gives up after the renew deadline (measured from its last successful renewal).
    expect(a.stoppedAt! - cutAt).toBeGreaterThanOrEqual(RENEW_MS - RETRY_MS - 100);
    await a.run;

    await eventually(() => b.elector.isLeader(), 20_000, 'b to take over');
    // The leader stopped before the successor could take over: never two leaders at once.
    expect(a.stoppedAt!).toBeLessThanOrEqual(b.startedAt!);
  });
});
