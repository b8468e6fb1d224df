/**
 * The controller as a process: SIGKILL + restart without duplicate executions, two replicas
 * with Lease leader election, kubectl printer columns and `kubectl wait`, and /metrics.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { CoordinationV1Api } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { OWNER_UID_TAG } from '../../../src/api/common.js';
import {
  createEcsExtension,
  instanceIds as ids,
  emulatorEnv,
  fleetSeed,
  getEcsExtension,
  patchEcsExtension,
  spawnController,
  startStack,
  testControllerArgs,
  waitFor,
  waitForReady,
  type Stack,
} from '../../harness/stack.js';

const execFileAsync = promisify(execFile);

/** Collects JSON log lines of a child controller; resolves the metrics port from the start line. */
function watchLogs(child: ChildProcess) {
  const lines: Array<Record<string, unknown>> = [];
  let onPort: (p: number) => void = () => undefined;
  const metricsPort = new Promise<number>((r) => (onPort = r));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      const rec = JSON.parse(line) as Record<string, unknown>;
      lines.push(rec);
      if (typeof rec.metricsPort === 'number') onPort(rec.metricsPort);
    } catch {
      // not JSON
    }
  });
  return { lines, metricsPort };
}

async function metricValue(port: number, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => child.once('exit', () => r()));
}

describe('controller process', () => {
  let stack: Stack;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    // Slower executions (install ≈ 20 s × 0.03 per instance) so a kill lands mid-flight.
    stack = await startStack({
      seed: fleetSeed('proc', 160),
      prefix: 'proc',
      timeScale: 0.03,
      controller: false,
    });
  });
  afterEach(async () => {
    for (const c of children.splice(0)) {
      c.kill('SIGKILL');
      await exited(c);
    }
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('SIGKILL right after StartExecution and a restart start no duplicate execution', async () => {
    const args = testControllerArgs(stack.namespace, stack.emu);
    const first = spawnController(args);
    children.push(first);
    const obj = await createEcsExtension(stack, 'crash', {
      targets: { instanceIds: ids('proc', 1, 100) },
      rateControl: { concurrency: 10 },
    });
    const owned = () =>
      stack.emu.control.listExecutions({ tagKey: OWNER_UID_TAG, tagValue: obj.metadata.uid });
    await waitFor('first StartExecution', async () => (await owned()).length > 0, 60_000, 10);
    first.kill('SIGKILL');
    await exited(first);
    expect(() => process.kill(first.pid!, 0)).toThrow(); // really gone, no orphan
    const atKill = await owned();
    expect(atKill.length).toBeGreaterThan(0);

    const second = spawnController(args);
    children.push(second);
    const ready = await waitForReady(stack, 'crash', 'True', 120_000);
    expect(ready.status?.summary?.installed).toBe(100);
    const all = await owned();
    // 100 instances in batches of 50 → exactly 2 executions, whatever the crash timing.
    expect(all).toHaveLength(2);
    const covered = all
      .flatMap((e) => (e.parameters.targets as { ResourceIds: string[] }).ResourceIds)
      .sort();
    expect(covered).toEqual(ids('proc', 1, 100));
  });

  it('runs two replicas with leader election: only the leader reconciles, and a stopped leader hands over within the lease duration', async () => {
    const leaseName = 'ecsops-le-test';
    const common = [
      ...testControllerArgs(stack.namespace, stack.emu),
      '--leader-elect',
      'true',
      '--leader-election-id',
      leaseName,
      '--leader-election-namespace',
      stack.namespace,
      '--lease-duration',
      '4s',
      '--renew-deadline',
      '3s',
      '--retry-period',
      '500ms',
      '--log-level',
      'info',
    ];
    const env = (name: string) => ({ ...emulatorEnv(), POD_NAME: name });
    const a = spawnController(common, env('replica-a'));
    const b = spawnController(common, env('replica-b'));
    children.push(a, b);
    const logs = { 'replica-a': watchLogs(a), 'replica-b': watchLogs(b) };
    const procs = { 'replica-a': a, 'replica-b': b };
    const leases = stack.kc.makeApiClient(CoordinationV1Api);
    const holder = async () =>
      (await leases.readNamespacedLease({ name: leaseName, namespace: stack.namespace })).spec
        ?.holderIdentity;
    const leader = (await waitFor('a leader', holder, 30_000)) as 'replica-a' | 'replica-b';
    const follower = leader === 'replica-a' ? 'replica-b' : 'replica-a';

    const obj = await createEcsExtension(stack, 'ha', { targets: { instanceIds: ids('proc', 101, 130) } });
    await waitForReady(stack, 'ha', 'True', 60_000);
    const leaderPort = await logs[leader].metricsPort;
    const followerPort = await logs[follower].metricsPort;
    expect(
      await metricValue(leaderPort, 'controller_runtime_reconcile_total', { controller: 'ecsextension' }),
    ).toBeGreaterThan(0);
    expect(
      await metricValue(followerPort, 'controller_runtime_reconcile_total', { controller: 'ecsextension' }),
    ).toBe(0);
    expect(await metricValue(leaderPort, 'leader_election_master_status')).toBe(1);
    expect(await metricValue(followerPort, 'leader_election_master_status')).toBe(0);

    // Graceful stop of the leader releases the Lease; the follower takes over within the lease duration.
    const stoppedAt = Date.now();
    procs[leader].kill('SIGTERM');
    await waitFor('follower leads', async () => (await holder()) === follower, 10_000, 100);
    const handover = Date.now() - stoppedAt;
    expect(handover).toBeLessThan(4_000 + 2_000); // lease duration + one retry period of slack
    await exited(procs[leader]);

    // The new leader acts on a spec change; nothing was executed twice.
    await patchEcsExtension(stack, 'ha', { spec: { targets: { instanceIds: ids('proc', 101, 140) } } });
    const ready = await waitFor(
      'ha has 40 installed',
      async () => {
        const o = await getEcsExtension(stack, 'ha');
        return o?.status?.summary?.installed === 40 && o.status.observedGeneration === o.metadata.generation
          ? o
          : undefined;
      },
      60_000,
    );
    expect(ready.status?.summary?.targeted).toBe(40);
    const execs = await stack.emu.control.listExecutions({
      tagKey: OWNER_UID_TAG,
      tagValue: obj.metadata.uid,
    });
    expect(execs).toHaveLength(2); // 30 by the first leader, 10 by the second
    const covered = execs.flatMap((e) => (e.parameters.targets as { ResourceIds: string[] }).ResourceIds);
    expect(new Set(covered).size).toBe(covered.length);
  });

  it('SIGTERM during a 2,000-instance drift check stops cloud calls within --shutdown-timeout, before the Lease is released', async () => {
    const big = Array.from({ length: 2000 }, (_, i) => ({
      instanceId: `i-term${String(i + 1).padStart(4, '0')}`,
      tags: { fleet: 'term' },
    }));
    await stack.emu.control.addInstances('cn-hangzhou', big);
    const leaseName = 'ecsops-term-test';
    const args = [
      ...testControllerArgs(stack.namespace, stack.emu),
      '--leader-elect',
      'true',
      '--leader-election-id',
      leaseName,
      '--leader-election-namespace',
      stack.namespace,
      '--cloud-qps',
      '50',
      '--shutdown-timeout',
      '2s',
    ];
    const child = spawnController(args, { ...emulatorEnv(), POD_NAME: 'term-a' });
    children.push(child);
    const leases = stack.kc.makeApiClient(CoordinationV1Api);
    const holder = async () =>
      (await leases.readNamespacedLease({ name: leaseName, namespace: stack.namespace })).spec
        ?.holderIdentity;
    await waitFor('term-a leads', async () => (await holder()) === 'term-a', 30_000, 100);
    await createEcsExtension(stack, 'term', { targets: { tags: [{ key: 'fleet', value: 'term' }] } });
    const reads = async () => (await stack.emu.control.requestCounts()).ListInstancePackageStates ?? 0;
    const base = await reads();
    await waitFor('the drift check is reading states', async () => (await reads()) > base + 100, 60_000, 50);

    // Sample the request counter and the Lease every 50 ms from SIGTERM until the process exits.
    const samples: Array<{ t: number; reads: number; holder: string | undefined }> = [];
    const sigterm = Date.now();
    child.kill('SIGTERM');
    let done = false;
    void exited(child).then(() => (done = true));
    while (!done && Date.now() - sigterm < 20_000) {
      samples.push({ t: Date.now() - sigterm, reads: await reads(), holder: await holder() });
      await new Promise((r) => setTimeout(r, 50));
    }
    const exitMs = Date.now() - sigterm;
    expect(done).toBe(true);
    expect(exitMs).toBeLessThan(2_000 + 5_000); // shutdown timeout + abort grace, with slack
    const total = await reads();
    expect(total).toBeLessThan(base + 2000); // the drift check did not run to the end
    const released = samples.find((x) => x.holder === '');
    const lastRise = samples.filter((x, i) => i > 0 && x.reads > (samples[i - 1]?.reads ?? 0)).pop();
    if (released && lastRise) expect(lastRise.t).toBeLessThanOrEqual(released.t);
    // Nothing after the release: the final count equals the count when the Lease was given up.
    if (released) expect(total).toBe(released.reads);
    expect(await holder()).toBe('');
  });

  it('kubectl shows the printer columns and kubectl wait --for=condition=Ready works; /metrics exposes the series', async () => {
    const running = await stack.startController();
    try {
      await createEcsExtension(stack, 'kubectl', { targets: { instanceIds: ids('proc', 141, 145) } });
      const kubectl = inject('kubectlPath');
      const kubeconfig = inject('kubeconfigPath');
      const wait = await execFileAsync(kubectl, [
        '--kubeconfig',
        kubeconfig,
        '-n',
        stack.namespace,
        'wait',
        '--for=condition=Ready',
        'ecsextension/kubectl',
        '--timeout=90s',
      ]);
      expect(wait.stdout).toContain('condition met');

      const get = await execFileAsync(kubectl, [
        '--kubeconfig',
        kubeconfig,
        '-n',
        stack.namespace,
        'get',
        'ecsext',
      ]);
      const [header, ...rows] = get.stdout.trim().split('\n');
      expect(header?.split(/\s+/)).toEqual(['NAME', 'READY', 'REASON', 'INSTALLED', 'TARGETED', 'AGE']);
      expect(
        rows
          .find((r) => r.startsWith('kubectl '))
          ?.split(/\s+/)
          .slice(0, 5),
      ).toEqual(['kubectl', 'True', 'Installed', '5', '5']);

      const explain = await execFileAsync(kubectl, [
        '--kubeconfig',
        kubeconfig,
        'explain',
        'ecsextension.spec.rateControl',
      ]);
      expect(explain.stdout).toContain('maxErrors');

      const port = running.probes.metricsPort;
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      for (const name of [
        'controller_runtime_reconcile_total',
        'controller_runtime_reconcile_errors_total',
        'controller_runtime_reconcile_time_seconds_bucket',
        'controller_runtime_active_workers',
        'workqueue_depth',
        'workqueue_adds_total',
        'workqueue_queue_duration_seconds_bucket',
        'workqueue_work_duration_seconds_bucket',
        'workqueue_retries_total',
        'workqueue_unfinished_work_seconds',
        'workqueue_longest_running_processor_seconds',
        'ecsops_cloud_api_requests_total',
        'ecsops_cloud_api_request_duration_seconds_bucket',
        'ecsops_executions_started_total',
        'ecsops_executions_finished_total',
        'ecsops_resource_instances',
      ]) {
        expect(text, name).toMatch(new RegExp(`^${name}[{ ]`, 'm'));
      }
      expect(text).toMatch(
        /ecsops_resource_instances\{kind="EcsExtension",namespace="[^"]+",name="kubectl",state="installed"\} 5/,
      );
      expect(text).toMatch(
        /ecsops_cloud_api_requests_total\{product="oos",action="StartExecution",code="OK"\} [1-9]/,
      );
      const probe = await fetch(`http://127.0.0.1:${running.probes.probePort}/readyz`);
      expect(probe.status).toBe(200);
    } finally {
      await stack.stopController();
    }
  });
});
