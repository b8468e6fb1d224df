/**
 * Metric-gated AppRelease batches (issue 22) on the fast tier: the real reconciler and cloud layer
 * against the emulator in sandbox mode (the wrapper and the app's hooks really run with bash per
 * instance directory), and a tiny Prometheus HTTP API on 127.0.0.1 (test/harness/fake-prometheus.ts)
 * queried by the controller's real Prometheus client. What a query measures comes from the hosts:
 * the error ratio of the queried instances is the share of them that run version 2 AND carry an
 * `erroring` flag file, so "the metric turns bad in batch 2" means batch 2's hosts are flagged.
 *
 * 12 instances per application, batches of 4 (indexes 0, 1, 2), an error-rate gate after every batch.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnalysisSpec } from '../../src/api/analysis.js';
import type { AppRelease, AppReleaseSpec } from '../../src/api/apprelease.js';
import { OWNER_UID_TAG } from '../../src/api/common.js';
import { revisionOf } from '../../src/controllers/apprelease/wrapper.js';
import { REGION } from '../harness/fast.js';
import { REPO_ROOT } from '../harness/paths.js';
import { appSpec, readyOf, startAppReleaseStack, type AppReleaseStack } from '../harness/fast-apprelease.js';
import { FakePrometheus, matchedInstanceIds } from '../harness/fake-prometheus.js';

const APPS = ['ga', 'gb', 'gc', 'gd'];
const idsOf = (app: string): string[] =>
  Array.from({ length: 12 }, (_, i) => `i-${app}${String(i + 1).padStart(4, '0')}`);

let s: AppReleaseStack;
let prom: FakePrometheus;

const hostFile = (id: string, name: string): string => join(s.appDir(id), '..', name);
const running = (id: string): string | undefined =>
  existsSync(hostFile(id, 'running')) ? readFileSync(hostFile(id, 'running'), 'utf8').trim() : undefined;

/** The error ratio Prometheus would see for the queried instances (see the module comment). */
function errorRatio(query: string): number {
  const ids = matchedInstanceIds(query);
  if (ids.length === 0) return 0;
  const bad = ids.filter((id) => running(id) === '2' && existsSync(hostFile(id, 'erroring')));
  return bad.length / ids.length;
}

/** app.sh of a version: start records the running version; health is always fine. */
function appScript(version: string): string {
  return [
    '#!/bin/bash',
    'case "$1" in',
    `  start) echo "${version}" > "$APP_DIR/../running" ;;`,
    '  health) exit 0 ;;',
    'esac',
  ].join('\n');
}

const QUERY = 'sum(web_request_error_ratio{instance_id=~"{{instanceIdsRegex}}"}) or vector(0)';

function gate(
  url: string,
  over: Partial<AnalysisSpec['metrics'][number]> = {},
  bakeTime = '30s',
): AnalysisSpec {
  return {
    prometheus: { url, timeoutSeconds: 2 },
    bakeTime,
    metrics: [
      {
        name: 'error-rate',
        query: QUERY,
        interval: '10s',
        count: 3,
        successCondition: 'result < 0.05',
        ...over,
      },
    ],
  };
}

function specOf(app: string, version: string, over: Partial<AppReleaseSpec> = {}): AppReleaseSpec {
  const art = s.artifacts.add(`${app}-${version}`, { 'app.sh': appScript(version) }, s.root);
  return appSpec(s, art, {
    application: app,
    version: `${version}.0.0`,
    targets: { tags: [{ key: 'app', value: app }] },
    strategy: { batchSize: 4, maxErrors: 0 },
    ...over,
  });
}

/** Version 1 of `app` on all 12 instances, Ready, without analysis. */
async function stableV1(app: string): Promise<void> {
  s.apply(app, specOf(app, '1', { strategy: { batchSize: '50%' } }));
  await s.until(app, (o) => readyOf(o)?.status === 'True' && o?.status?.stableRevision !== undefined);
}

/** Instance IDs each deploy RunCommand of revision `rev` of `obj` went to. */
async function deployedTo(obj: AppRelease, rev: string): Promise<string[]> {
  const all = await s.emu.control.listInvocations();
  return all
    .filter((v) => v.tags[OWNER_UID_TAG] === obj.metadata.uid)
    .filter((v) => v.parameters.action === 'deploy' && v.parameters.revision === rev)
    .flatMap((v) => v.instances.map((i) => i.instanceId))
    .sort();
}

async function analysisRuns(result: string): Promise<number> {
  const m = await s.registry.getSingleMetric('ecsops_analysis_runs_total')?.get();
  return m?.values.find((v) => v.labels.kind === 'AppRelease' && v.labels.result === result)?.value ?? 0;
}

const eventsOf = (app: string, reason: string) =>
  s.events.events.filter((e) => e.name === app && e.reason === reason);

beforeAll(async () => {
  s = await startAppReleaseStack({
    seed: {
      regions: {
        [REGION]: {
          generate: APPS.map((app) => ({
            count: app === 'gd' ? 2 : 12,
            idPrefix: `i-${app}`,
            tags: [{ key: 'app', value: app }],
          })),
        },
      },
    },
  });
  prom = new FakePrometheus(errorRatio);
  await prom.up();
});
afterAll(async () => {
  await prom?.down();
  await s?.stop();
});

describe('the wrapper and servers started by a hook', () => {
  it('a start hook that leaves a server running (the demo app) does not hold the appDir lock: the next revision deploys', async () => {
    // Found by the real-Prometheus e2e test: the wrapper's lock (fd 9) was inherited by the demo
    // app's server, so every later deploy on the host waited 600 s for it (flock -w 600 9).
    const web = (d: string) =>
      readFileSync(join(REPO_ROOT, 'deploy/examples/artifacts', d, 'web.sh'), 'utf8');
    const spec = (name: string): AppReleaseSpec =>
      appSpec(s, s.artifacts.add(name, { 'web.sh': web(name) }, s.root), {
        application: 'gd',
        version: name,
        targets: { tags: [{ key: 'app', value: 'gd' }] },
        install: { appDir: `${s.root}/{{ACS::InstanceId}}/web`, env: { PORT: '8080' } },
        hooks: {
          stop: { script: 'bash web.sh stop', timeoutSeconds: 30 },
          start: { script: 'bash web.sh start', timeoutSeconds: 30 },
        },
        healthCheck: { exec: { script: 'bash web.sh health' }, periodSeconds: 1, failureThreshold: 3 },
        strategy: { batchSize: 2 },
      });
    s.apply('gd', spec('web-1.4.2'));
    await s.until('gd', (o) => o?.status?.phase === 'Succeeded');
    const next = s.apply('gd', spec('web-1.4.3'));
    // One batch: its invocation ends (it does not wait for the lock) and the new server answers.
    const o = await s.until(
      'gd',
      (x) => x?.status?.phase === 'Succeeded' || x?.status?.phase === 'RolledBack',
      200,
    );
    expect(o?.status?.phase).toBe('Succeeded');
    const ips = (await s.emu.control.listInstances(REGION)).filter((i) => i.tags.app === 'gd');
    for (const i of ips) {
      const res = await fetch(`http://${i.privateIpAddress}:8080/healthz`);
      expect(await res.text()).toBe(`ok ${revisionOf(next.spec)}\n`);
    }
  });
});

describe('AppRelease with spec.analysis', () => {
  it('the metric turns bad in batch 2: batch 3 never starts, the rollback starts at once, AnalysisFailed with the value', async () => {
    const app = 'ga';
    const ids = idsOf(app);
    await stableV1(app);
    for (const id of ids.slice(4, 8)) writeFileSync(hostFile(id, 'erroring'), ''); // batch 2's hosts
    const failedBefore = await analysisRuns('Failed');
    const obj = s.apply(app, specOf(app, '2', { analysis: gate(prom.url) }));
    const v2 = revisionOf(obj.spec);
    let atFailure: AppRelease | undefined;
    let waitedWithNextBatch = false;
    const o = await s.until(app, (x) => {
      const a = x?.status?.analysis;
      if (a && a.phase !== 'Successful' && a.phase !== 'Failed')
        waitedWithNextBatch ||= (x?.status?.executions ?? []).some((e) => e.action === 'deploy');
      if (a?.phase === 'Failed' && !atFailure) atFailure = structuredClone(x);
      return x?.status?.phase === 'RolledBack';
    });
    // No RunCommand for batch 3 (the last 4 instances): only batches 1 and 2 got revision 2.
    expect(await deployedTo(obj, v2)).toEqual(ids.slice(0, 8));
    expect(waitedWithNextBatch).toBe(false);
    // The same status write that recorded the failure recorded the rollback's start (its intent).
    expect(atFailure?.status?.phase).toBe('RollingBack');
    expect(atFailure?.status?.rollout?.rollback?.remaining).toEqual(ids.slice(0, 8));
    expect(atFailure?.status?.executions?.some((e) => e.action === 'rollback')).toBe(true);
    // Ready says why, with the metric, the rendered query, the measured value and the condition.
    const ready = readyOf(o);
    expect(ready).toMatchObject({ status: 'False', reason: 'AnalysisFailed' });
    expect(ready?.message).toContain('analysis after batch 1 failed');
    expect(ready?.message).toContain('error-rate');
    expect(ready?.message).toContain(`instance_id=~"${ids.slice(4, 8).join('|')}"`);
    expect(ready?.message).toContain(' = 1;');
    expect(ready?.message).toContain('successCondition result < 0.05');
    expect(o?.status?.analysis).toMatchObject({
      runId: `${v2}/${o?.status?.rollout?.sequence}/batch-1`,
      phase: 'Failed',
      failure: { metric: 'error-rate', value: '1' },
    });
    expect(eventsOf(app, 'AnalysisSucceeded')).toHaveLength(1); // after batch 1 (index 0)
    const warning = eventsOf(app, 'AnalysisFailed');
    expect(warning).toHaveLength(1);
    expect(warning[0]).toMatchObject({ type: 'Warning', action: 'Analysis' });
    expect(eventsOf(app, 'RolledBack')).toHaveLength(1);
    expect(await analysisRuns('Failed')).toBe(failedBefore + 1);
    // Every host runs version 1 again; batch 3's hosts never left it.
    for (const id of ids) expect(running(id), id).toBe('1');
  });

  it('a good version with the same gate reaches Succeeded; a restart mid-analysis resumes it (no measurement lost or repeated)', async () => {
    const app = 'gb';
    const ids = idsOf(app);
    await stableV1(app);
    const mine = () => prom.queries.filter((q) => ids.includes(matchedInstanceIds(q)[0] ?? ''));
    const before = mine().length;
    const successBefore = await analysisRuns('Successful');
    const obj = s.apply(app, specOf(app, '2', { analysis: gate(prom.url) }));
    let restarted = false;
    let bakingQueries: number | undefined;
    const o = await s.until(app, (x) => {
      const a = x?.status?.analysis;
      if (a?.bakeUntil && Date.parse(a.bakeUntil) > s.clock.now().getTime() && bakingQueries === undefined)
        bakingQueries = mine().length - before;
      if (!restarted && a?.runId.endsWith('batch-1') && a.metrics[0]?.measurements === 1) {
        restarted = true;
        s.restart(); // a new controller process: only status remains
      }
      return readyOf(x)?.status === 'True' && x?.status?.stableRevision === revisionOf(obj.spec);
    });
    expect(restarted).toBe(true);
    expect(bakingQueries).toBe(0); // nothing is measured before bakeTime passed
    expect(o?.status?.phase).toBe('Succeeded');
    expect(readyOf(o)?.reason).toBe('RolloutSucceeded');
    expect(o?.status?.analysis).toMatchObject({ phase: 'Successful' });
    expect(o?.status?.analysis?.runId.endsWith('/batch-2')).toBe(true);
    // 3 batches × 3 measurements, one query each, each over its own batch's instances.
    const queries = mine().slice(before);
    expect(queries).toHaveLength(9);
    expect(new Set(queries.map((q) => matchedInstanceIds(q).join(',')))).toEqual(
      new Set([0, 4, 8].map((i) => ids.slice(i, i + 4).join(','))),
    );
    expect(eventsOf(app, 'AnalysisSucceeded')).toHaveLength(3);
    expect(await analysisRuns('Successful')).toBe(successBefore + 3);
    for (const id of ids) expect(running(id), id).toBe('2');
  });

  it('Prometheus unreachable: the rollout waits as inconclusive (no next batch), then fails at inconclusiveLimit', async () => {
    const app = 'gc';
    const ids = idsOf(app);
    await stableV1(app);
    const gone = new FakePrometheus(() => 0);
    await gone.up();
    await gone.down(); // connection refused from now on
    const inconclusiveBefore = await analysisRuns('Inconclusive');
    const obj = s.apply(
      app,
      specOf(app, '2', { analysis: gate(gone.url, { count: 1, inconclusiveLimit: 2 }, '0s') }),
    );
    const reasons = new Set<string>();
    let waited: AppRelease | undefined;
    const o = await s.until(app, (x) => {
      const reason = readyOf(x)?.reason;
      if (reason) reasons.add(reason);
      if (reason === 'AnalysisInconclusive' && x?.status?.analysis?.metrics[0]?.inconclusives === 2)
        waited = structuredClone(x);
      return x?.status?.phase === 'RolledBack';
    });
    expect(reasons.has('AnalysisInconclusive')).toBe(true);
    // While it waited: inconclusive, Reconciling, and nothing after batch 1 was started.
    expect(waited?.status?.analysis?.phase).toBe('Inconclusive');
    expect(waited?.status?.analysis?.metrics[0]?.lastError).toMatch(/unreachable|ECONNREFUSED/);
    expect(waited?.status?.conditions?.find((c) => c.type === 'Reconciling')?.reason).toBe(
      'AnalysisInconclusive',
    );
    expect(waited?.status?.rollout?.batches.map((b) => b.index)).toEqual([0]);
    expect(await deployedTo(obj, revisionOf(obj.spec))).toEqual(ids.slice(0, 4));
    const ready = readyOf(o);
    expect(ready?.reason).toBe('AnalysisFailed');
    expect(ready?.message).toContain('inconclusiveLimit 2 exceeded (3 inconclusive measurement(s))');
    expect(await analysisRuns('Inconclusive')).toBe(inconclusiveBefore + 1);
    for (const id of ids) expect(running(id), id).toBe('1');
  });
});
