/**
 * Metric-gated AppRelease rollouts end to end (issue 22): the real API server with the CRD from
 * crds/, the real controller (in process, its production Prometheus client), the emulator in
 * SANDBOX mode running the demo application (deploy/examples/artifacts/web-*: a real HTTP server per
 * instance on its own loopback address, port 8080), a REAL Prometheus (the binary
 * test/tools/build.sh builds; test/harness/prometheus.ts) scraping every instance each second, and
 * a bounded traffic loop (test/harness/traffic.ts) so the app's error counter moves.
 *
 * 12 instances, batches of 4, a gate after every batch on the batch's error ratio. In order:
 * 1. the good build (web-1.4.3) reaches Succeeded through three passed gates;
 * 2. the bad build (web-1.4.3-bad: health checks pass, every request answers 500) fails the gate of
 *    its first batch: no RunCommand for the other 8 instances, AnalysisFailed with the measured
 *    value, rolled back to 1.4.3;
 * 3. the bad build under a fleet-wide error ratio (< 0.5) passes the gate of batch 1 (4 of 12 bad)
 *    and fails that of batch 2 (8 of 12): no RunCommand for batch 3, rolled back, AnalysisFailed;
 * 4. Prometheus stopped mid-rollout: the rollout waits as inconclusive (no next batch), then fails
 *    at inconclusiveLimit and rolls back.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnalysisSpec } from '../../../src/api/analysis.js';
import { APP_RELEASE_PLURAL, type AppRelease, type AppReleaseSpec } from '../../../src/api/apprelease.js';
import { GROUP, OWNER_UID_TAG, VERSION } from '../../../src/api/common.js';
import { ArtifactServer, type Artifact } from '../../harness/fast-apprelease.js';
import { REPO_ROOT } from '../../harness/paths.js';
import {
  emulatorTargets,
  prometheusTool,
  startPrometheus,
  type RunningPrometheus,
} from '../../harness/prometheus.js';
import { fleetSeed, REGION, startStack, waitFor, type Stack } from '../../harness/stack.js';
import { startTraffic, type TrafficRun } from '../../harness/traffic.js';
import { toolPath, toolTitle } from '../../tools/tools.js';

const PORT = 8080;
const prometheus = prometheusTool();
const webScript = (dir: string) =>
  readFileSync(join(REPO_ROOT, 'deploy/examples/artifacts', dir, 'web.sh'), 'utf8');

/** The batch's error ratio over the last 5 s; no traffic at all counts as 0. */
const ERROR_RATIO =
  '(sum(rate(web_request_errors_total{instance_id=~"{{instanceIdsRegex}}"}[5s]))' +
  ' / sum(rate(web_requests_total{instance_id=~"{{instanceIdsRegex}}"}[5s]))) or vector(0)';

describe.skipIf(prometheus.skip)(`AppRelease gated by a real Prometheus ${toolTitle(prometheus)}`, () => {
  let stack: Stack;
  let root: string;
  let prom: RunningPrometheus;
  let traffic: TrafficRun | undefined;
  let ips: Map<string, string>;
  const artifacts = new ArtifactServer();
  let uid = '';

  const get = async (): Promise<AppRelease> =>
    (await stack.api.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: stack.namespace,
      plural: APP_RELEASE_PLURAL,
      name: 'web',
    })) as AppRelease;
  const ready = (o: AppRelease | undefined) => o?.status?.conditions?.find((c) => c.type === 'Ready');
  const until = (what: string, ok: (o: AppRelease) => boolean, timeoutMs = 120_000) =>
    waitFor(
      what,
      async () => {
        const o = await get();
        return o.status?.observedGeneration === o.metadata.generation && ok(o) ? o : undefined;
      },
      timeoutMs,
      100,
    ).catch(async (err: unknown) => {
      const st = (await get()).status;
      const last = (await stack.emu.control.listInvocations())
        .filter((v) => v.tags[OWNER_UID_TAG] === uid)
        .at(-1);
      const out = last?.instances
        .map((i) => `${i.instanceId} ${i.status}: ${i.output.slice(-600)}`)
        .join('\n');
      throw new Error(
        `last invocation ${last?.invokeId ?? '-'}:\n${out ?? ''}\n` +
          `${String(err)}; status: ${JSON.stringify({ phase: st?.phase, conditions: st?.conditions, analysis: st?.analysis, batches: st?.rollout?.batches })}`,
      );
    });
  /** Instances each deploy RunCommand of `version` went to (the wrapper's revision parameter is per spec). */
  /** Instances a deploy RunCommand of `revision` went to (only invocations not in `except`). */
  const deployedTo = async (revision: string, except: ReadonlySet<string> = new Set()): Promise<string[]> =>
    (await stack.emu.control.listInvocations())
      .filter((v) => v.tags[OWNER_UID_TAG] === uid && !except.has(v.invokeId))
      .filter((v) => v.parameters.action === 'deploy' && v.parameters.revision === revision)
      .flatMap((v) => v.instances.map((i) => i.instanceId))
      .sort();
  /** What each instance's server answers on /healthz (`ok <revision>`), or `down`. */
  const serving = async (): Promise<Record<string, string>> => {
    const out: Record<string, string> = {};
    for (const [id, ip] of ips) {
      out[id] = await fetch(`http://${ip}:${PORT}/healthz`, { signal: AbortSignal.timeout(2000) }).then(
        async (r) => (await r.text()).trim(),
        () => 'down',
      );
    }
    return out;
  };

  function spec(a: Artifact, version: string, analysis?: AnalysisSpec): AppReleaseSpec {
    return {
      regionId: REGION,
      targets: { tags: [{ key: 'app', value: 'web' }] },
      interval: '10s',
      application: 'web',
      version,
      artifact: a,
      install: { appDir: `${root}/{{ACS::InstanceId}}/web`, keepReleases: 3, env: { PORT: String(PORT) } },
      hooks: {
        stop: { script: 'bash web.sh stop', timeoutSeconds: 30 },
        start: { script: 'bash web.sh start', timeoutSeconds: 30 },
      },
      healthCheck: { exec: { script: 'bash web.sh health' }, periodSeconds: 1, failureThreshold: 3 },
      strategy: { batchSize: 4, maxErrors: 0 },
      rollback: { automatic: true },
      progressDeadlineSeconds: 300,
      ...(analysis ? { analysis } : {}),
    };
  }

  const gate = (over: Partial<AnalysisSpec['metrics'][number]> = {}): AnalysisSpec => ({
    prometheus: { url: prom.url, timeoutSeconds: 2 },
    bakeTime: '6s', // the [5s] rate window then holds only the new build's requests
    metrics: [
      {
        name: 'error-rate',
        query: ERROR_RATIO,
        interval: '2s',
        count: 2,
        successCondition: 'isNaN(result) || result < 0.05',
        ...over,
      },
    ],
  });

  async function apply(s: AppReleaseSpec): Promise<AppRelease> {
    const body = {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'AppRelease',
      metadata: { name: 'web' },
      spec: s,
    };
    if (!uid) {
      const created = (await stack.api.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: stack.namespace,
        plural: APP_RELEASE_PLURAL,
        body,
      })) as AppRelease;
      uid = created.metadata.uid ?? '';
      return created;
    }
    await stack.api.patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        namespace: stack.namespace,
        plural: APP_RELEASE_PLURAL,
        name: 'web',
        body: { spec: s },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    return get();
  }

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'ecsops-gate-e2e-'));
    await artifacts.start();
    stack = await startStack({
      seed: {
        ...fleetSeed('unused', 0),
        regions: {
          [REGION]: { generate: [{ count: 12, idPrefix: 'i-gate', tags: [{ key: 'app', value: 'web' }] }] },
        },
      },
      prefix: 'gatee2e',
      timeScale: 0.05,
      controller: false,
      sandbox: { rootDir: root },
    });
    const instances = await stack.emu.control.listInstances(REGION);
    ips = new Map(instances.map((i) => [i.instanceId, i.privateIpAddress]));
    prom = await startPrometheus({
      binary: toolPath(prometheus),
      targets: await emulatorTargets(stack.emu.control, REGION, PORT),
      scrapeIntervalSeconds: 1,
      parentDir: root,
    });
    await stack.startController();
    // The stable release, without a gate.
    await apply(spec(artifacts.add('web-1.4.2', { 'web.sh': webScript('web-1.4.2') }, root), '1.4.2'));
    await until(
      '1.4.2 on all 12',
      (o) => o.status?.phase === 'Succeeded' && o.status.summary?.updated === 12,
    );
    traffic = startTraffic({
      targets: [...ips.values()].map((ip) => `http://${ip}:${PORT}`),
      maxRequests: 500_000,
      durationMs: 600_000,
      intervalMs: 20,
    });
  }, 240_000);
  afterAll(async () => {
    await traffic?.stop();
    await prom?.stop();
    await stack?.stop();
    await artifacts.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('the good build passes every gate and reaches Succeeded', async () => {
    await apply(
      spec(artifacts.add('web-1.4.3', { 'web.sh': webScript('web-1.4.3') }, root), '1.4.3', gate()),
    );
    const done = await until(
      '1.4.3 Succeeded',
      (o) => o.status?.phase === 'Succeeded' && o.status.stableVersion === '1.4.3',
    );
    expect(ready(done)?.reason).toBe('RolloutSucceeded');
    expect(done.status?.analysis).toMatchObject({ phase: 'Successful' });
    expect(done.status?.analysis?.runId).toMatch(/\/batch-2$/);
    expect(done.status?.rollout?.batches.map((b) => b.index)).toEqual([0, 1, 2]);
    const rev = done.status?.currentRevision ?? '';
    expect(Object.values(await serving())).toEqual(Array(12).fill(`ok ${rev}`));
    expect(await deployedTo(rev)).toHaveLength(12);
  });

  it('the bad build fails the gate of its first batch: the other 8 never get it, rolled back, AnalysisFailed with the value', async () => {
    const stable = (await get()).status?.stableRevision ?? '';
    await apply(
      spec(
        artifacts.add('web-1.4.3-bad', { 'web.sh': webScript('web-1.4.3-bad') }, root),
        '1.4.3-bad',
        gate(),
      ),
    );
    const o = await until('rolled back', (x) => x.status?.phase === 'RolledBack');
    const bad = o.status?.currentRevision ?? '';
    expect(await deployedTo(bad)).toHaveLength(4); // batch 0 only: no RunCommand for the other 8
    const r = ready(o);
    expect(r?.reason).toBe('AnalysisFailed');
    expect(r?.message).toContain('analysis after batch 0 failed');
    expect(r?.message).toContain('error-rate');
    expect(r?.message).toContain('web_request_errors_total{instance_id=~"i-gate');
    expect(r?.message).toContain('successCondition isNaN(result) || result < 0.05 not met');
    expect(Number(o.status?.analysis?.failure?.value)).toBeGreaterThan(0.05);
    expect(Object.values(await serving())).toEqual(Array(12).fill(`ok ${stable}`));
  });

  it('a fleet-wide error ratio that turns bad in batch 2: batch 3 gets no RunCommand, rolled back, AnalysisFailed with the value', async () => {
    const stable = (await get()).status?.stableRevision ?? '';
    const earlier = new Set((await stack.emu.control.listInvocations()).map((v) => v.invokeId));
    // Over all 12 instances: 4 bad of 12 after batch 1 (≈ 0.33, passes), 8 of 12 after batch 2 (≈ 0.67).
    const fleetRatio =
      '(sum(rate(web_request_errors_total[5s])) / sum(rate(web_requests_total[5s]))) or vector(0)';
    await apply(
      spec(
        artifacts.add('web-1.4.3-bad', { 'web.sh': webScript('web-1.4.3-bad') }, root),
        '1.4.3-bad',
        gate({ query: fleetRatio, successCondition: 'isNaN(result) || result < 0.5' }),
      ),
    );
    const o = await until('rolled back', (x) => x.status?.phase === 'RolledBack');
    const bad = o.status?.currentRevision ?? '';
    // Batches 1 and 2 only (this rollout's invocations): no RunCommand for batch 3.
    expect(await deployedTo(bad, earlier)).toHaveLength(8);
    const r = ready(o);
    expect(r?.reason).toBe('AnalysisFailed');
    expect(r?.message).toContain('analysis after batch 1 failed');
    expect(r?.message).toContain('successCondition isNaN(result) || result < 0.5 not met');
    const value = Number(o.status?.analysis?.failure?.value);
    expect(value).toBeGreaterThan(0.5);
    expect(value).toBeLessThan(0.9);
    expect(Object.values(await serving())).toEqual(Array(12).fill(`ok ${stable}`));
  });

  it('Prometheus stopped mid-rollout: waits as inconclusive, never proceeds, fails at inconclusiveLimit', async () => {
    const stable = (await get()).status?.stableRevision ?? '';
    await apply(
      spec(
        artifacts.add(
          'web-1.4.3b',
          { 'web.sh': webScript('web-1.4.3').replace('APP_VERSION=1.4.3', 'APP_VERSION=1.4.3b') },
          root,
        ),
        '1.4.3b',
        gate({ inconclusiveLimit: 2 }),
      ),
    );
    // Once the first batch finished (its gate baking), Prometheus goes away.
    await until(
      'batch 0 done',
      (x) => x.status?.rollout?.batches.some((b) => b.index === 0 && b.phase !== 'Running') === true,
    );
    await prom.stop();
    const waiting = await until('inconclusive', (x) => ready(x)?.reason === 'AnalysisInconclusive');
    expect(waiting.status?.analysis?.phase).toBe('Inconclusive');
    expect(waiting.status?.rollout?.batches.map((b) => b.index)).toEqual([0]);
    const o = await until('rolled back', (x) => x.status?.phase === 'RolledBack');
    const rev = o.status?.currentRevision ?? '';
    expect(await deployedTo(rev)).toHaveLength(4);
    expect(ready(o)?.reason).toBe('AnalysisFailed');
    expect(ready(o)?.message).toContain('inconclusiveLimit 2 exceeded (3 inconclusive measurement(s))');
    expect(o.status?.analysis?.failure?.value).toMatch(/unreachable|ECONNREFUSED/);
    expect(Object.values(await serving())).toEqual(Array(12).fill(`ok ${stable}`));
  });
});
