/**
 * Traffic control with REAL HTTP traffic (issue 24): the fixture and scenarios shared by
 * test/integration/traffic/traffic-e2e.test.ts and test/bench/traffic.bench.ts.
 *
 * The fixture: the real API server (a vitest global setup's, or a bench's own control plane), the
 * emulator in SANDBOX mode, the real controller in process, and the demo application
 * (deploy/examples/artifacts/web-*: a python3 HTTP server per instance on its own loopback address,
 * port 8080, graceful on SIGTERM) on `instances` instances tagged `app=web`, installed by an
 * AppRelease (`web`) from an {@link ArtifactServer}. Every instance is a backend of ONE emulated ALB
 * (src/emulator/lb-proxy.ts: a real listener on 127.0.0.1, wrr over the weights, its own
 * `/healthz` checks, keep-alive connections pinned to their backend) with weights
 * {@link FIXTURE_WEIGHTS}; each instance has the boot hook (`<sandbox>/<id>/boot.sh`,
 * `appReleaseBootScript`) that starts the current revision again after a patch reboot. Every
 * instance also misses 3 patches, one of which (kernel) needs a reboot.
 *
 * A scenario runs {@link startLoad} against the ALB for its whole run: an AppRelease rollout
 * ({@link runRollout}) or a PatchPolicy install with reboots in a maintenance window open now
 * ({@link runPatch}), with or without `spec.trafficControl`; it keeps sending until the change is
 * done AND `minRequests` were answered (bounded in requests and time).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { APP_RELEASE_PLURAL, type AppRelease, type AppReleaseSpec } from '../../src/api/apprelease.js';
import { GROUP, OWNER_UID_TAG, VERSION } from '../../src/api/common.js';
import {
  APPLY_PATCH_BASELINE_TEMPLATE,
  PATCH_POLICY_PLURAL,
  SCAN_REQUESTED_ANNOTATION,
  type PatchPolicy,
} from '../../src/api/patchpolicy.js';
import type { TrafficControlSpec } from '../../src/api/traffic.js';
import { appReleaseBootScript, BOOT_HOOK_FILE } from '../../src/emulator/index.js';
import type { CreatedLoadBalancer, LoadBalancerView } from '../../src/emulator/control-client.js';
import { ArtifactServer, type Artifact } from './fast-apprelease.js';
import { startLoad, type LoadResult, type LoadRun } from './load.js';
import { REPO_ROOT } from './paths.js';
import { REGION, startStack, waitFor, type Stack } from './stack.js';

export const APP_PORT = 8080;
/** Emulator time scale of the fixture (ALB changes applied in 0.15 s, a reboot's Stopping 0.15 s). */
export const FIXTURE_TIME_SCALE = 0.05;
/**
 * The ALB's health check interval, model seconds: 10 = every 0.5 s real at
 * {@link FIXTURE_TIME_SCALE} (the products' default is 2 s real; the model default 2 s would be 0.1 s
 * here, faster than the app restarts, and would hide most of what a batch without traffic control
 * breaks). 3 passes → healthy, 3 failures → unhealthy.
 */
export const FIXTURE_HEALTH_CHECK_INTERVAL_SECONDS = 10;
/** The ALB weights of the instances, in instance order (wrr honours them). */
export const FIXTURE_WEIGHTS = [100, 90, 80, 70, 60, 50, 100, 90, 80, 70, 60, 50];
const PATCHES = 3;

/** The demo app's web.sh of `version`: web-1.4.2 / web-1.4.3 as shipped, others from web-1.4.3. */
export function webScript(version: string): string {
  const shipped = ['1.4.2', '1.4.3'].includes(version) ? version : '1.4.3';
  const text = readFileSync(join(REPO_ROOT, 'deploy/examples/artifacts', `web-${shipped}`, 'web.sh'), 'utf8');
  return text.replace(/^APP_VERSION=\S+/m, `APP_VERSION=${version}`);
}

export interface TrafficFixture {
  stack: Stack;
  root: string;
  artifacts: ArtifactServer;
  lb: CreatedLoadBalancer;
  ids: string[];
  /** AppRelease revision → version it was applied as (the app answers its revision). */
  versions: Map<string, string>;
  /** The AppRelease spec last applied. */
  spec?: AppReleaseSpec;
  stop(): Promise<void>;
}

/** Settings of a scenario run. */
export interface ScenarioSettings {
  /** Requests per second (autocannon overallRate). */
  rate: number;
  connections: number;
  /** Requests per connection before it is opened again (new connections are scheduled afresh). */
  reconnectEvery: number;
  /** Keep sending until at least this many requests ended (and the change is done). */
  minRequests: number;
  /** Hard bound of the load run, ms (the change must be done well within it). */
  maxDurationMs: number;
}

export const DEFAULT_SETTINGS: ScenarioSettings = {
  rate: 300,
  connections: 16,
  reconnectEvery: 20,
  minRequests: 10_000,
  maxDurationMs: 150_000,
};

/** What one scenario measured. */
export interface ScenarioResult {
  name: string;
  kind: 'AppRelease' | 'PatchPolicy';
  trafficControl: Partial<TrafficControlSpec> | null;
  settings: ScenarioSettings;
  load: LoadResult;
  /** From the spec change (or policy creation) to done, ms. */
  changeMs: number;
  /** Second of the load run at which the change was applied / was done. */
  changeStartSecond: number;
  changeDoneSecond: number;
  /** Version labels: before → after (AppRelease), or the serving version (PatchPolicy). */
  fromVersion: string;
  toVersion: string;
  /**
   * Seconds of the load run at which each batch started (AppRelease: status.rollout.batches[]
   * startTime, the intent before its drain — whole seconds; PatchPolicy: its install execution's
   * first item, after the drain), in order.
   */
  batchStartSeconds: number[];
  /** Every backend's weight after the change, in instance order. */
  weightsAfter: number[];
  /** Detail of the change (batches / install executions). */
  detail: string;
  /** PatchPolicy: its status.lastInstall counts at the end (to compare with the executions). */
  lastInstall?: { executionCount?: number; instances?: number; succeeded?: number; failed?: number };
}

/** Readable label of a revision (`1.4.3`), or the revision itself. */
export function versionOf(f: TrafficFixture, revision: string): string {
  return f.versions.get(revision) ?? revision;
}

/** The load's per-version counts with revisions replaced by version labels. */
export function labelled(f: TrafficFixture, byVersion: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [rev, n] of Object.entries(byVersion))
    out[versionOf(f, rev)] = (out[versionOf(f, rev)] ?? 0) + n;
  return out;
}

export async function getRelease(f: TrafficFixture): Promise<AppRelease> {
  return (await f.stack.api.getNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace: f.stack.namespace,
    plural: APP_RELEASE_PLURAL,
    name: 'web',
  })) as AppRelease;
}

async function getPolicy(f: TrafficFixture, name: string): Promise<PatchPolicy | undefined> {
  try {
    return (await f.stack.api.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: f.stack.namespace,
      plural: PATCH_POLICY_PLURAL,
      name,
    })) as PatchPolicy;
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined;
    throw err;
  }
}

/** The fixture's ALB server group as the emulator holds it. */
export async function albGroup(f: TrafficFixture): Promise<LoadBalancerView['groups'][number]> {
  const g = (await f.stack.emu.control.listLoadBalancers())
    .flatMap((l) => l.groups)
    .find((x) => x.serverGroupId === f.lb.serverGroupId);
  if (!g) throw new Error(`no server group ${f.lb.serverGroupId}`);
  return g;
}

/** Backend weights in instance order. */
export async function weights(f: TrafficFixture): Promise<number[]> {
  const g = await albGroup(f);
  return f.ids.map((id) => g.backends.find((b) => b.instanceId === id)?.weight ?? -1);
}

function releaseSpec(f: TrafficFixture, art: Artifact, version: string): AppReleaseSpec {
  return {
    regionId: REGION,
    targets: { tags: [{ key: 'app', value: 'web' }] },
    interval: '10s',
    application: 'web',
    version,
    artifact: art,
    install: {
      appDir: `${f.root}/{{ACS::InstanceId}}/web`,
      keepReleases: 3,
      env: { PORT: String(APP_PORT) },
    },
    hooks: {
      stop: { script: 'bash web.sh stop', timeoutSeconds: 30 },
      start: { script: 'bash web.sh start', timeoutSeconds: 30 },
    },
    healthCheck: { exec: { script: 'bash web.sh health' }, periodSeconds: 1, failureThreshold: 3 },
    strategy: { batchSize: 3, maxErrors: 0 },
    rollback: { automatic: true },
    progressDeadlineSeconds: 300,
  };
}

/** Creates or merge-patches the AppRelease `web`. */
export async function applyRelease(f: TrafficFixture, spec: AppReleaseSpec): Promise<void> {
  f.spec = spec;
  const exists = await getRelease(f).then(
    () => true,
    () => false,
  );
  if (!exists) {
    await f.stack.api.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: f.stack.namespace,
      plural: APP_RELEASE_PLURAL,
      body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'AppRelease', metadata: { name: 'web' }, spec },
    });
    return;
  }
  // A merge patch: `trafficControl: null` removes the field.
  await f.stack.api.patchNamespacedCustomObject(
    {
      group: GROUP,
      version: VERSION,
      namespace: f.stack.namespace,
      plural: APP_RELEASE_PLURAL,
      name: 'web',
      body: { spec: { ...spec, trafficControl: spec.trafficControl ?? null, suspend: spec.suspend ?? null } },
    },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
}

/** Waits until the AppRelease observed its generation and `ok` holds. @throws Error with its status after `timeoutMs`. */
export function untilRelease(
  f: TrafficFixture,
  what: string,
  ok: (o: AppRelease) => boolean,
  timeoutMs = 180_000,
): Promise<AppRelease> {
  return waitFor(
    what,
    async () => {
      const o = await getRelease(f);
      return o.status?.observedGeneration === o.metadata.generation && ok(o) ? o : undefined;
    },
    timeoutMs,
    100,
  ).catch(async (err: unknown) => {
    const st = (await getRelease(f)).status;
    throw new Error(
      `${String(err)}; status: ${JSON.stringify({ phase: st?.phase, conditions: st?.conditions, batches: st?.rollout?.batches, trafficControl: st?.trafficControl })}`,
    );
  });
}

/**
 * Starts the fixture (see the module doc) with `web` 1.4.2 Succeeded on every instance and every
 * ALB backend Healthy.
 * @param kubeconfigPath a control plane's kubeconfig; default the vitest global setup's.
 */
export async function startTrafficFixture(
  opts: { kubeconfigPath?: string; instances?: number; prefix?: string } = {},
): Promise<TrafficFixture> {
  const n = opts.instances ?? 12;
  const root = mkdtempSync(join(tmpdir(), 'ecsops-traffic-'));
  const artifacts = new ArtifactServer();
  await artifacts.start();
  let stack: Stack | undefined;
  try {
    stack = await startStack({
      seed: {
        regions: {
          [REGION]: {
            generate: [
              { count: n, idPrefix: 'i-web', tags: [{ key: 'app', value: 'web' }], patches: PATCHES },
            ],
          },
        },
      },
      prefix: opts.prefix ?? 'traffic',
      timeScale: FIXTURE_TIME_SCALE,
      controller: false,
      sandbox: { rootDir: root },
      ...(opts.kubeconfigPath ? { kubeconfigPath: opts.kubeconfigPath } : {}),
    });
    const ids = (await stack.emu.control.listInstances(REGION)).map((i) => i.instanceId).sort();
    // The boot hook of each instance (docs/emulator.md "Load balancers"): the sandbox runs it
    // when a patch reboot brings the instance back, as systemd would start the app.
    for (const id of ids) {
      mkdirSync(join(root, id), { recursive: true });
      writeFileSync(join(root, id, BOOT_HOOK_FILE), appReleaseBootScript(join(root, id, 'web'), 'web'));
    }
    const lb = await stack.emu.control.createLoadBalancer({
      type: 'ALB',
      regionId: REGION,
      listenerPort: 80,
      healthCheck: { intervalSeconds: FIXTURE_HEALTH_CHECK_INTERVAL_SECONDS },
      backends: ids.map((instanceId, i) => ({
        instanceId,
        port: APP_PORT,
        weight: FIXTURE_WEIGHTS[i % FIXTURE_WEIGHTS.length] ?? 100,
      })),
    });
    const f: TrafficFixture = {
      stack,
      root,
      artifacts,
      lb,
      ids,
      versions: new Map(),
      async stop() {
        await stack?.stop();
        await artifacts.stop();
        rmSync(root, { recursive: true, force: true });
      },
    };
    await stack.startController();
    await applyRelease(
      f,
      releaseSpec(f, artifacts.add('web-1.4.2', { 'web.sh': webScript('1.4.2') }, root), '1.4.2'),
    );
    const o = await untilRelease(
      f,
      '1.4.2 on every instance',
      (x) => x.status?.phase === 'Succeeded' && x.status.summary?.updated === n,
    );
    f.versions.set(o.status?.currentRevision ?? '', '1.4.2');
    await waitFor(
      'every ALB backend Healthy',
      async () => (await albGroup(f)).backends.every((b) => b.health === 'Healthy'),
      60_000,
      100,
    );
    return f;
  } catch (err) {
    await stack?.stop();
    await artifacts.stop();
    rmSync(root, { recursive: true, force: true });
    throw err;
  }
}

/** The `spec.trafficControl` of the fixture's ALB group with `over`. */
export function trafficControlOf(
  f: TrafficFixture,
  over: Partial<TrafficControlSpec> = {},
): TrafficControlSpec {
  return {
    serverGroups: [{ type: 'ALB', serverGroupId: f.lb.serverGroupId }],
    drainSeconds: 2,
    healthyTimeoutSeconds: 60,
    ...over,
  };
}

/** Starts the scenario's load against the ALB. */
export function loadOn(f: TrafficFixture, s: ScenarioSettings): LoadRun {
  return startLoad({
    url: f.lb.url,
    rate: s.rate,
    connections: s.connections,
    reconnectEvery: s.reconnectEvery,
    maxRequests: Math.max(s.minRequests * 3, s.rate * Math.ceil(s.maxDurationMs / 1000)),
    maxDurationMs: s.maxDurationMs,
  });
}

/** Keeps `run` going until it ended `min` requests (or its own bounds), then stops it. */
async function finish(run: LoadRun, min: number): Promise<LoadResult> {
  let ended = false;
  void run.done.then(() => (ended = true));
  while (!ended && run.result.requests < min) await sleep(100);
  return run.stop();
}

/**
 * An AppRelease rollout of `version` (web.sh of {@link webScript}) under load, with
 * `trafficControl` (null: without). Resolves once the rollout is Succeeded and at least
 * `settings.minRequests` requests ended.
 * @throws Error when the rollout does not succeed within the load's time bound.
 */
export async function runRollout(
  f: TrafficFixture,
  name: string,
  version: string,
  trafficControl: Partial<TrafficControlSpec> | null,
  settings: ScenarioSettings = DEFAULT_SETTINGS,
): Promise<ScenarioResult> {
  const before = await getRelease(f);
  const fromVersion = versionOf(f, before.status?.currentRevision ?? '');
  const art = f.artifacts.add(`web-${version}-${name}`, { 'web.sh': webScript(version) }, f.root);
  const spec = releaseSpec(f, art, version);
  if (trafficControl) spec.trafficControl = trafficControlOf(f, trafficControl);
  const run = loadOn(f, settings);
  await sleep(2_000); // traffic settled on the old version first
  const changeStartSecond = run.second();
  const t0 = Date.now();
  await applyRelease(f, spec);
  const done = await untilRelease(
    f,
    `${version} Succeeded`,
    (o) => o.status?.phase === 'Succeeded' && o.status.stableRevision === o.status.currentRevision,
    settings.maxDurationMs,
  );
  const changeMs = Date.now() - t0;
  const changeDoneSecond = run.second();
  f.versions.set(done.status?.currentRevision ?? '', version);
  const load = await finish(run, settings.minRequests);
  return {
    name,
    kind: 'AppRelease',
    trafficControl: spec.trafficControl ?? null,
    settings,
    load,
    changeMs,
    changeStartSecond,
    changeDoneSecond,
    fromVersion,
    toVersion: version,
    batchStartSeconds: (done.status?.rollout?.batches ?? []).map(
      (b) => (Date.parse(b.startTime ?? '') - load.startedAtMs) / 1000,
    ),
    weightsAfter: await weights(f),
    detail: `batches ${JSON.stringify(done.status?.rollout?.batches.map((b) => b.size))}`,
  };
}

/**
 * A PatchPolicy `name` over the fleet (scan on creation, install in an inline maintenance window
 * open now, `rebootIfNeeded: true`) under load, with `trafficControl` (null: without). The
 * AppRelease is suspended first (its instances are the policy's); every instance is given its
 * missing patches again first (a replaced emulator instance keeps its address and processes).
 * Resolves once the install Succeeded on every instance, none is still draining, and at least
 * `settings.minRequests` requests ended; the policy is deleted afterwards.
 * @throws Error when the install does not finish within the load's time bound.
 */
export async function runPatch(
  f: TrafficFixture,
  name: string,
  trafficControl: Partial<TrafficControlSpec> | null,
  settings: ScenarioSettings = DEFAULT_SETTINGS,
): Promise<ScenarioResult> {
  const rel = await getRelease(f);
  if (!rel.spec.suspend && f.spec) {
    await applyRelease(f, { ...f.spec, suspend: true });
    await untilRelease(f, 'AppRelease suspended', () => true);
  }
  await f.stack.emu.control.addInstances(
    REGION,
    f.ids.map((instanceId) => ({ instanceId, tags: { app: 'web' }, patches: PATCHES })),
  );
  const tc = trafficControl ? trafficControlOf(f, trafficControl) : undefined;
  const run = loadOn(f, settings);
  await sleep(2_000);
  const changeStartSecond = run.second();
  const t0 = Date.now();
  const created = (await f.stack.api.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace: f.stack.namespace,
    plural: PATCH_POLICY_PLURAL,
    body: {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'PatchPolicy',
      metadata: { name, annotations: { [SCAN_REQUESTED_ANNOTATION]: 'now' } },
      spec: {
        regionId: REGION,
        targets: { tags: [{ key: 'app', value: 'web' }] },
        install: {
          // A window open right now: every minute, for an hour.
          maintenanceWindow: { schedule: '* * * * *', duration: '1h' },
          rebootIfNeeded: true,
        },
        ...(tc ? { trafficControl: tc } : {}),
      },
    },
  })) as PatchPolicy;
  const done = await waitFor(
    `${name}: install Succeeded on all ${f.ids.length}`,
    async () => {
      const o = await getPolicy(f, name);
      const s = o?.status;
      return s?.lastInstall?.result === 'Succeeded' &&
        s.summary?.compliant === f.ids.length &&
        (s.executions ?? []).length === 0 &&
        s.trafficControl === undefined
        ? o
        : undefined;
    },
    settings.maxDurationMs,
    100,
  ).catch(async (err: unknown) => {
    const s = (await getPolicy(f, name))?.status;
    throw new Error(
      `${String(err)}; status: ${JSON.stringify({ conditions: s?.conditions, lastInstall: s?.lastInstall, summary: s?.summary, executions: s?.executions })}`,
    );
  });
  const changeMs = Date.now() - t0;
  const changeDoneSecond = run.second();
  const load = await finish(run, settings.minRequests);
  const serving = versionOf(f, rel.status?.currentRevision ?? '');
  const installs = (
    await f.stack.emu.control.listExecutions({
      tagKey: OWNER_UID_TAG,
      tagValue: created.metadata.uid ?? '',
      templateName: APPLY_PATCH_BASELINE_TEMPLATE,
    })
  )
    .filter((e) => e.parameters.action === 'install')
    .map((e) => ({
      size: e.items.length,
      at: Math.min(...e.items.map((i) => i.startedAtMs ?? Date.parse(e.createDate))),
    }))
    .sort((a, b) => a.at - b.at);
  await f.stack.api.deleteNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace: f.stack.namespace,
    plural: PATCH_POLICY_PLURAL,
    name,
  });
  await waitFor(`${name} deleted`, async () => (await getPolicy(f, name)) === undefined, 60_000, 100);
  return {
    name,
    kind: 'PatchPolicy',
    trafficControl: tc ?? null,
    settings,
    load,
    changeMs,
    changeStartSecond,
    changeDoneSecond,
    fromVersion: serving,
    toVersion: serving,
    batchStartSeconds: installs.map((e) => (e.at - load.startedAtMs) / 1000),
    weightsAfter: await weights(f),
    detail: `install executions ${JSON.stringify(installs.map((e) => e.size))} (rebootIfNeed)`,
    lastInstall: {
      executionCount: done.status?.lastInstall?.executionCount,
      instances: done.status?.lastInstall?.instances,
      succeeded: done.status?.lastInstall?.succeeded,
      failed: done.status?.lastInstall?.failed,
    },
  };
}

/**
 * Share of `version` among the answers of each window of `seconds` from `fromSecond` to
 * `toSecond` (inclusive; windows without answers are skipped).
 */
export function shares(
  f: TrafficFixture,
  load: LoadResult,
  version: string,
  fromSecond: number,
  toSecond: number,
  seconds = 1,
): number[] {
  const out: number[] = [];
  for (let t = fromSecond; t <= toSecond; t += seconds) {
    let hit = 0;
    let all = 0;
    for (const b of load.buckets.slice(t, Math.min(t + seconds, toSecond + 1))) {
      for (const [rev, n] of Object.entries(b.byVersion)) {
        all += n;
        if (versionOf(f, rev) === version) hit += n;
      }
    }
    if (all > 0) out.push(hit / all);
  }
  return out;
}

/**
 * The share of `version` among the answers of each step of a change: before its first batch
 * started, then from each batch's start to the next one's, the last up to the change's end; steps
 * without answers (shorter than a second) are left out.
 */
export function stepShares(f: TrafficFixture, r: ScenarioResult, version: string): number[] {
  const edges = [
    r.changeStartSecond,
    ...r.batchStartSeconds.map((s) => Math.floor(s)),
    r.changeDoneSecond + 1,
  ];
  const out: number[] = [];
  for (let i = 0; i + 1 < edges.length; i++) {
    let hit = 0;
    let all = 0;
    for (const b of r.load.buckets.slice(edges[i], edges[i + 1])) {
      for (const [rev, n] of Object.entries(b.byVersion)) {
        all += n;
        if (versionOf(f, rev) === version) hit += n;
      }
    }
    if (all > 0) out.push(hit / all);
  }
  return out;
}
