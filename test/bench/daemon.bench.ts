/**
 * Whole-daemon benchmark: `npx tsx test/bench/daemon.bench.ts [--slow] [--only name,...]`.
 *
 * The COMPILED controller (`npm run build` → dist/src/cli.js) runs as its own OS process against a
 * real kube-apiserver + etcd (test/harness/controlplane.ts) and the emulator (this process, with
 * an injected per-call latency). Per scenario it reports: time until every resource is Ready and
 * per-resource Ready p50/p99, cloud calls by action, calls per (resource, instance) pair, peak RSS
 * (`VmHWM`), CPU seconds, status writes (the API server's own request counter), the most calls of
 * one product started in any sliding 1 s window, and ratios to the floor — ceil(instances/50)
 * StartExecutions per resource plus one state read per distinct instance, at the configured qps.
 * Results: bench/results/daemon.md and .json. Bounded: every scenario has a time cap, and every
 * process it starts is stopped by PID.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig } from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import { ECS_ACTIONS } from '../../src/cloud/ecs.js';
import { DEMO_ACCESS_KEY, startEmulator, type Seed } from '../../src/emulator/index.js';
import { startControlPlane, type ControlPlane } from '../harness/controlplane.js';
import { kubeRequestRaw } from '../harness/kube-raw.js';
import { REPO_ROOT } from '../harness/paths.js';

const REGION = 'cn-hangzhou';
const PKG = 'ACS-Extension-node-1853370294850618';
const LATENCY_MS = 20;

interface Scenario {
  name: string;
  resources: number;
  instancesPerResource: number;
  /** All resources target the same instances. */
  overlap?: boolean;
  qps: number;
  capMs: number;
}

const SCENARIOS: Scenario[] = [
  { name: '10x100', resources: 10, instancesPerResource: 100, qps: 1000, capMs: 180_000 },
  { name: '100x100', resources: 100, instancesPerResource: 100, qps: 1000, capMs: 300_000 },
  { name: '1000x10', resources: 1000, instancesPerResource: 10, qps: 1000, capMs: 400_000 },
  { name: '20-same-500', resources: 20, instancesPerResource: 500, overlap: true, qps: 1000, capMs: 180_000 },
];
const SLOW: Scenario[] = [
  { name: '100x100-qps20', resources: 100, instancesPerResource: 100, qps: 20, capMs: 900_000 },
];

const ECS = new Set(Object.keys(ECS_ACTIONS));

/** The NODE_OPTIONS value the shipped Deployment sets. */
function shippedNodeOptions(): string {
  const text = readFileSync(join(REPO_ROOT, 'deploy/base/deployment.yaml'), 'utf8');
  return /name: NODE_OPTIONS\s+value: (\S+)/.exec(text)?.[1] ?? '';
}

function pct(sorted: number[], p: number): number {
  return sorted.length === 0
    ? 0
    : (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0);
}

/** The most entries of `times` (ms, sorted) within any 1,000 ms window. */
function maxPerSecond(times: number[]): number {
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < times.length; hi++) {
    while ((times[hi] ?? 0) - (times[lo] ?? 0) >= 1000) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}

function procStatus(pid: number): { hwmMb: number; cpuS: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    const ticks = Number(stat[11] ?? 0) + Number(stat[12] ?? 0);
    return { hwmMb: hwm, cpuS: ticks / 100 };
  } catch {
    return { hwmMb: 0, cpuS: 0 };
  }
}

/** Sum of the API server's `apiserver_request_total` for status PATCHes of ecsextensions. */
function statusWrites(cp: ControlPlane): Promise<number> {
  return new Promise((resolve, reject) => {
    const url = new URL('/metrics', cp.server);
    const req = request(
      url,
      { headers: { authorization: `Bearer ${cp.tokens.admin}` }, ca: readFileSync(cp.caFile) },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => {
          let n = 0;
          for (const line of body.split('\n')) {
            if (
              line.startsWith('apiserver_request_total{') &&
              line.includes('resource="ecsextensions"') &&
              line.includes('subresource="status"') &&
              line.includes('verb="PATCH"')
            )
              n += Number(line.slice(line.lastIndexOf(' ') + 1));
          }
          resolve(n);
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function applyYaml(kc: KubeConfig, text: string): Promise<void> {
  for (const doc of parseAllDocuments(text)) {
    const obj = doc.toJS() as {
      apiVersion: string;
      kind: string;
      metadata: { name: string; namespace?: string };
    } | null;
    if (!obj?.kind || obj.kind === 'Kustomization') continue;
    const [group, version] = obj.apiVersion.includes('/') ? obj.apiVersion.split('/') : ['', obj.apiVersion];
    const base = group ? `/apis/${group}/${version}` : `/api/${version}`;
    const plural =
      obj.kind === 'CustomResourceDefinition'
        ? 'customresourcedefinitions'
        : obj.kind === 'Namespace'
          ? 'namespaces'
          : `${obj.kind.toLowerCase()}s`;
    const ns = obj.metadata.namespace ? `/namespaces/${obj.metadata.namespace}` : '';
    await kubeRequestRaw(
      kc,
      'PATCH',
      `${base}${ns}/${plural}/${obj.metadata.name}?fieldManager=ecsops-bench&force=true`,
      obj,
      'application/apply-patch+yaml',
    );
  }
}

interface Result {
  scenario: Scenario;
  ready: number;
  toAllReadyS: number | null;
  readyP50S: number;
  readyP99S: number;
  calls: Record<string, number>;
  totalCalls: number;
  callsPerPair: number;
  startExecution: number;
  startFloor: number;
  stateReads: number;
  stateFloor: number;
  floorS: number;
  peakRssMb: number;
  cpuS: number;
  statusWrites: number;
  statusWritesPerResource: number;
  maxOosPerSecond: number;
  maxEcsPerSecond: number;
}

async function runScenario(cp: ControlPlane, kc: KubeConfig, sc: Scenario): Promise<Result> {
  const distinct = sc.overlap ? sc.instancesPerResource : sc.resources * sc.instancesPerResource;
  const width = Math.max(4, String(distinct).length);
  const id = (i: number): string => `i-bench${String(i).padStart(width, '0')}`;
  const seed: Seed = {
    regions: {
      [REGION]: {
        generate: [{ count: distinct, idPrefix: 'i-bench', tags: [{ key: 'fleet', value: 'bench' }] }],
      },
    },
    packageTemplates: [
      {
        name: PKG,
        versions: [
          {
            version: 'v1',
            parameters: { version: { Type: 'String', Default: '18', AllowedValues: ['18'] } },
          },
        ],
      },
    ],
  };
  const oosTimes: number[] = [];
  const ecsTimes: number[] = [];
  const emu = await startEmulator({
    seed,
    timeScale: 0.01,
    logger: (line) => {
      const action = (line as { action?: string }).action ?? '';
      (ECS.has(action) ? ecsTimes : oosTimes).push(Date.now());
    },
  });
  await emu.control.setFaults({ actions: { '*': { latencyMs: LATENCY_MS } } });
  const ns = `bench-${sc.name.toLowerCase().replace(/[^a-z0-9-]/g, '-')}`;
  await applyYaml(kc, stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }));
  const child: ChildProcess = spawn(
    process.execPath,
    [
      join(REPO_ROOT, 'dist/src/cli.js'),
      'controller',
      '--kubeconfig',
      cp.kubeconfigPath,
      '--namespace',
      ns,
      '--leader-elect',
      'false',
      '--metrics-bind-address',
      '127.0.0.1:0',
      '--health-probe-bind-address',
      '127.0.0.1:0',
      '--oos-endpoint',
      emu.endpoint,
      '--ecs-endpoint',
      emu.endpoint,
      '--cloud-protocol',
      'HTTP',
      '--cloud-qps',
      String(sc.qps),
      '--execution-poll-min',
      '1s',
      '--execution-poll-max',
      '5s',
      '--log-level',
      'warn',
    ],
    {
      env: {
        ...process.env,
        // As shipped: the Deployment's V8 heap cap (deploy/base/deployment.yaml), unless overridden.
        NODE_OPTIONS: process.env.ECSOPS_BENCH_NODE_OPTIONS ?? shippedNodeOptions(),
        ALIBABA_CLOUD_ACCESS_KEY_ID: DEMO_ACCESS_KEY.id,
        ALIBABA_CLOUD_ACCESS_KEY_SECRET: DEMO_ACCESS_KEY.secret,
        ALIBABA_CLOUD_ECS_METADATA_DISABLED: 'true',
        ALIBABA_CLOUD_CLI_PROFILE_DISABLED: 'true',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  const pid = child.pid as number;
  try {
    await sleep(3_000); // informers synced
    const writes0 = await statusWrites(cp);
    const docs = Array.from({ length: sc.resources }, (_, r) => {
      const from = sc.overlap ? 1 : r * sc.instancesPerResource + 1;
      const ids = Array.from({ length: sc.instancesPerResource }, (_, k) => id(from + k));
      return stringify({
        apiVersion: 'ecsops.io/v1alpha1',
        kind: 'EcsExtension',
        metadata: { name: `r${r}`, namespace: ns },
        spec: {
          regionId: REGION,
          packageName: PKG,
          parameters: { version: '18' },
          targets: { instanceIds: ids },
        },
      });
    });
    await emu.control.resetRequestCounts();
    oosTimes.length = 0;
    ecsTimes.length = 0;
    const t0 = Date.now();
    await applyYaml(kc, docs.join('---\n'));
    const readyAt = new Map<string, number>();
    while (Date.now() - t0 < sc.capMs && readyAt.size < sc.resources) {
      const list = (await kubeRequestRaw(
        kc,
        'GET',
        `/apis/ecsops.io/v1alpha1/namespaces/${ns}/ecsextensions`,
      )) as {
        items?: Array<{
          metadata: { name: string; generation?: number };
          status?: { conditions?: Array<{ type: string; status: string; observedGeneration?: number }> };
        }>;
      };
      for (const o of list.items ?? []) {
        const ready = o.status?.conditions?.find((c) => c.type === 'Ready');
        if (ready?.status === 'True' && !readyAt.has(o.metadata.name))
          readyAt.set(o.metadata.name, Date.now() - t0);
      }
      await sleep(500);
    }
    const elapsed = Date.now() - t0;
    const { hwmMb, cpuS } = procStatus(pid);
    const calls = await emu.control.requestCounts();
    const writes = (await statusWrites(cp)) - writes0;
    const sorted = [...readyAt.values()].sort((a, b) => a - b);
    const totalCalls = Object.values(calls).reduce((a, b) => a + b, 0);
    const startFloor = sc.resources * Math.ceil(sc.instancesPerResource / 50);
    const effectiveStartFloor = sc.overlap ? Math.ceil(sc.instancesPerResource / 50) : startFloor;
    const stateFloor = distinct;
    return {
      scenario: sc,
      ready: readyAt.size,
      toAllReadyS: readyAt.size === sc.resources ? elapsed / 1000 : null,
      readyP50S: pct(sorted, 50) / 1000,
      readyP99S: pct(sorted, 99) / 1000,
      calls,
      totalCalls,
      callsPerPair: totalCalls / (sc.resources * sc.instancesPerResource),
      startExecution: calls.StartExecution ?? 0,
      startFloor: effectiveStartFloor,
      stateReads: calls.ListInstancePackageStates ?? 0,
      stateFloor,
      floorS: (effectiveStartFloor + stateFloor) / sc.qps,
      peakRssMb: hwmMb,
      cpuS,
      statusWrites: writes,
      statusWritesPerResource: writes / sc.resources,
      maxOosPerSecond: maxPerSecond(oosTimes),
      maxEcsPerSecond: maxPerSecond(ecsTimes),
    };
  } finally {
    child.kill('SIGTERM');
    await Promise.race([new Promise((r) => child.once('exit', r)), sleep(15_000)]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await kubeRequestRaw(kc, 'DELETE', `/api/v1/namespaces/${ns}`).catch(() => undefined);
    await emu.stop();
  }
}

function report(results: Result[]): string {
  const r2 = (n: number): string => (Math.round(n * 100) / 100).toString();
  const lines = [
    '# Whole-daemon benchmark (compiled controller process, real API server, emulator)',
    '',
    `Generated by \`npx tsx test/bench/daemon.bench.ts\` on ${new Date().toISOString()} (controller NODE_OPTIONS \`${process.env.ECSOPS_BENCH_NODE_OPTIONS ?? shippedNodeOptions()}\`; the 2-core machine was shared with other test runs, so times are noisy: compare ratios). Emulator latency ${LATENCY_MS} ms per call, timeScale 0.01. Floor = ceil(instances/50) StartExecutions per resource (per distinct instance set when resources overlap) + one state read per distinct instance, at the configured qps.`,
    '',
    '| scenario | qps | all Ready (s) | Ready p50 / p99 (s) | floor (s) | calls per (resource, instance) | StartExecution (floor) | state reads (floor) | status writes per resource | max OOS / ECS calls in a sliding 1 s | peak RSS (MiB) | CPU (s) |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of results) {
    lines.push(
      `| ${r.scenario.name} | ${r.scenario.qps} | ${r.toAllReadyS === null ? `not all (${r.ready}/${r.scenario.resources})` : r2(r.toAllReadyS)} | ${r2(r.readyP50S)} / ${r2(r.readyP99S)} | ${r2(r.floorS)} | ${r2(r.callsPerPair)} | ${r.startExecution} (${r.startFloor}) | ${r.stateReads} (${r.stateFloor}) | ${r2(r.statusWritesPerResource)} | ${r.maxOosPerSecond} / ${r.maxEcsPerSecond} | ${Math.round(r.peakRssMb)} | ${r2(r.cpuS)} |`,
    );
  }
  lines.push('', '## Calls by action', '');
  for (const r of results) {
    lines.push(
      `- **${r.scenario.name}**: ${Object.entries(r.calls)
        .sort()
        .map(([a, n]) => `${a} ${n}`)
        .join(', ')}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const only = args.includes('--only') ? (args[args.indexOf('--only') + 1] ?? '').split(',') : undefined;
  const scenarios = [...SCENARIOS, ...(args.includes('--slow') ? SLOW : [])].filter(
    (s) => !only || only.includes(s.name),
  );
  const build = spawnSync('npm', ['run', '--silent', 'build'], { cwd: REPO_ROOT, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('npm run build failed');
  const cp = await startControlPlane();
  try {
    const kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    // Every kind's CRD: the controller starts its workers only once every informer has synced.
    for (const f of readdirSync(join(REPO_ROOT, 'crds')).filter((x) => x.startsWith('ecsops.io_'))) {
      await applyYaml(kc, readFileSync(join(REPO_ROOT, 'crds', f), 'utf8'));
    }
    await sleep(2_000);
    const results: Result[] = [];
    for (const sc of scenarios) {
      process.stdout.write(`[bench] ${sc.name} …\n`);
      const r = await runScenario(cp, kc, sc);
      process.stdout.write(`[bench] ${sc.name}: ${JSON.stringify({ ...r, calls: undefined })}\n`);
      results.push(r);
    }
    mkdirSync(join(REPO_ROOT, 'bench/results'), { recursive: true });
    const suffix = only ? `-${only.join('_')}` : '';
    writeFileSync(
      join(REPO_ROOT, `bench/results/daemon${suffix}.json`),
      `${JSON.stringify(results, null, 2)}\n`,
    );
    writeFileSync(join(REPO_ROOT, `bench/results/daemon${suffix}.md`), report(results));
    process.stdout.write(report(results));
  } finally {
    await cp.stop();
  }
}

await main();
