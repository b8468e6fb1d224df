/**
 * Whole-daemon benchmark:
 * `npx tsx test/bench/daemon.bench.ts [--slow] [--only name,...] [--controller-dir DIR]
 *   [--out DIR] [--emulator-in-process] [--keep-request-log] [--reaction-big N] [--reaction-samples N]`
 * (the last two shrink `reaction` for a quick try).
 *
 * The COMPILED controller (`npm run build` → dist/src/cli.js; with `--controller-dir DIR`, DIR is
 * compiled with `tsc -p tsconfig.build.json` and DIR/dist/src/cli.js runs, e.g. an export of a
 * commit) runs as its own OS process against a real kube-apiserver + etcd
 * (test/harness/controlplane.ts) and the emulator with an injected per-call latency. The emulator
 * is its own OS process too (`ecsops emulator` of this working tree, run from source with the tsx
 * loader, `--request-log`): every request's time is `receivedAtMs`, taken on arrival in the
 * emulator's process, so a busy bench process (watch, applies, parsing) cannot bunch them up.
 * `--emulator-in-process` runs it inside this process as before (for comparison); times are then
 * taken on arrival in this process. `--keep-request-log` keeps the emulator's seed and request log
 * (the directory is printed). Readiness is taken from a watch on the EcsExtensions (event arrival
 * time, no polling).
 *
 * Converge scenarios (`10x100`, `100x100`, `1000x10`, `20-same-500`, `20-pkg-500`; `--slow`:
 * `100x100-qps20`, `1000x10-qps20`: the API-quota-bound case, bar all Ready ≤ 1.2 × floor)
 * report: time until every resource is Ready and per-resource Ready p50/p99, cloud calls by action,
 * calls per (resource, instance) pair, idle RSS (`VmRSS` once `/readyz` answers, before any
 * resource exists) next to the peak (`VmHWM`), CPU seconds, status writes (the API server's own
 * request counter), the most calls of one product started in any sliding 1 s window, ratios to the
 * floor — ceil(instances/50) StartExecutions per resource plus one state read per distinct
 * instance, at the configured qps — and the finished-execution visibility lag: per resource, the
 * first Ready watch event minus the end of its last execution (the emulator's per-item end times).
 *
 * `20-pkg-500` (issue 23): 20 EcsExtensions of 20 different packages over the same 500 instances,
 * which the per-instance lock serialises. One round is measured first in the same run (a single
 * EcsExtension `one` of a 21st package over the 500 instances: apply → Ready); the report gives the
 * serialised floor = 20 × that round and convergence ÷ floor (bar: ≤ 1.5).
 *
 * Further scenarios, each runnable alone with `--only NAME`:
 * - `steady-100x100` (`spec.interval: 30s`): once all are Ready, cloud calls by action and status
 *   writes over exactly 3 intervals (90 s), per instance per interval (floor: 1 state read).
 * - `poll-100`: 100 resources × 50 instances whose executions run ≈ 2 min (timeScale 6,
 *   concurrency 50): ListExecutions calls in a window where all 100 run and every resource's poll
 *   delay is at `--execution-poll-max` (5 s), per poll round.
 * - `reaction` (`--slow`; qps 20): time from a spec change of a 10-instance resource (PATCH
 *   returned) to the emulator receiving its first StartExecution, 20 samples idle and 20 while a
 *   5,000-instance resource (package already installed, `interval: 30s`) reads its states.
 *
 * Results: bench/results/daemon.md and .json (`daemon-<names>.*` with `--only`; `--out DIR` writes
 * them to DIR instead). Bounded: every scenario and wait has a time cap, and every process it
 * starts is stopped by PID.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { get } from 'node:http';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig, Watch } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { ECS_ACTIONS } from '../../src/cloud/ecs.js';
import { OOS_ACTIONS } from '../../src/cloud/oos.js';
import {
  DEMO_ACCESS_KEY,
  EmulatorControl,
  startEmulator,
  type ExecutionRecord,
  type Seed,
} from '../../src/emulator/index.js';
import { freePort, startControlPlane, type ControlPlane } from '../harness/controlplane.js';
import { applyYaml as applyManifests, kubeRequestRaw } from '../harness/kube-raw.js';
import { REPO_ROOT } from '../harness/paths.js';

const REGION = 'cn-hangzhou';
const PKG = 'ACS-Extension-node-1853370294850618';
const LATENCY_MS = 20;
const POLL_MIN = '1s';
const POLL_MAX_MS = 5_000;
const OWNER_TAG = 'ecsops.io/owner';
const GROUP_PATH = '/apis/ecsops.io/v1alpha1';

type Kind = 'converge' | 'steady' | 'poll' | 'reaction';

interface Scenario {
  name: string;
  kind: Kind;
  resources: number;
  instancesPerResource: number;
  /** All resources target the same instances. */
  overlap?: boolean;
  /**
   * Distinct packages (default 1: every resource installs {@link PKG}): resource `r` installs
   * package `r % packages`. With more than one, the bench first measures one round — a single
   * EcsExtension `one` of a further package over the same instances — and reports the serialised
   * floor (resources × that round) and the ratio of the convergence time to it.
   */
  packages?: number;
  qps: number;
  capMs: number;
  /** `spec.interval` of every resource (default: unset = 10m). */
  interval?: string;
  /** Emulator timeScale (default 0.01: a 20 s package install takes 200 ms). */
  timeScale?: number;
  /** `spec.rateControl.concurrency` (default: unset = 10). */
  concurrency?: number;
  /** steady: intervals counted after all are Ready. */
  steadyIntervals?: number;
  /** reaction: instances of `big` and of `small`, and samples per case. */
  bigInstances?: number;
  smallInstances?: number;
  samples?: number;
  /**
   * Run the controller with the shipped poll delays (`--execution-poll-min 5s`, `--execution-poll-max
   * 60s`) instead of the bench's faster 1 s … 5 s.
   */
  shippedPolls?: boolean;
}

const SCENARIOS: Scenario[] = [
  { name: '10x100', kind: 'converge', resources: 10, instancesPerResource: 100, qps: 1000, capMs: 180_000 },
  {
    name: '100x100',
    kind: 'converge',
    resources: 100,
    instancesPerResource: 100,
    qps: 1000,
    capMs: 300_000,
  },
  {
    name: '1000x10',
    kind: 'converge',
    resources: 1000,
    instancesPerResource: 10,
    qps: 1000,
    capMs: 400_000,
  },
  {
    name: '20-same-500',
    kind: 'converge',
    resources: 20,
    instancesPerResource: 500,
    overlap: true,
    qps: 1000,
    capMs: 180_000,
  },
  {
    // Issue 23: 20 packages over the same instances, serialised by the per-instance lock.
    name: '20-pkg-500',
    kind: 'converge',
    resources: 20,
    instancesPerResource: 500,
    overlap: true,
    packages: 20,
    qps: 1000,
    capMs: 300_000,
  },
  {
    name: 'steady-100x100',
    kind: 'steady',
    resources: 100,
    instancesPerResource: 100,
    qps: 1000,
    capMs: 300_000,
    interval: '30s',
    steadyIntervals: 3,
  },
  {
    name: 'poll-100',
    kind: 'poll',
    resources: 100,
    instancesPerResource: 50,
    qps: 1000,
    capMs: 420_000,
    timeScale: 6,
    concurrency: 50,
  },
];
const SLOW: Scenario[] = [
  {
    name: '100x100-qps20',
    kind: 'converge',
    resources: 100,
    instancesPerResource: 100,
    qps: 20,
    capMs: 900_000,
  },
  {
    // Issue 25: the same 10,000 instances as 1,000 resources × 10 at qps 20 (floor 550 s).
    name: '1000x10-qps20',
    kind: 'converge',
    resources: 1000,
    instancesPerResource: 10,
    qps: 20,
    capMs: 1_000_000,
  },
  {
    name: '1000x10-qps20-shipped-polls',
    kind: 'converge',
    resources: 1000,
    instancesPerResource: 10,
    qps: 20,
    capMs: 1_000_000,
    shippedPolls: true,
  },
  {
    name: '100x100-qps20-shipped-polls',
    kind: 'converge',
    resources: 100,
    instancesPerResource: 100,
    qps: 20,
    capMs: 1_000_000,
    shippedPolls: true,
  },
  {
    name: 'reaction',
    kind: 'reaction',
    resources: 2,
    instancesPerResource: 0,
    qps: 20,
    capMs: 2_400_000,
    interval: '30s',
    bigInstances: 5000,
    smallInstances: 10,
    samples: 20,
  },
];

const ECS = new Set(Object.keys(ECS_ACTIONS));
/** OOS actions: the sliding-second maximum counts these only (ActionTrail LookupEvents has its own quota). */
const OOS = new Set(Object.keys(OOS_ACTIONS));

/** The NODE_OPTIONS value the shipped Deployment sets. */
function shippedNodeOptions(): string {
  const text = readFileSync(join(REPO_ROOT, 'deploy/base/deployment.yaml'), 'utf8');
  // The whole value (it holds several flags), without YAML quotes.
  return (
    /name: NODE_OPTIONS\s+value: (.+)/
      .exec(text)?.[1]
      ?.trim()
      .replace(/^(['"])(.*)\1$/, '$2') ?? ''
  );
}

function pct(sorted: number[], p: number): number {
  return sorted.length === 0
    ? 0
    : (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0);
}

function stats(values: number[]): { n: number; p50: number; p99: number; max: number } {
  const s = [...values].sort((a, b) => a - b);
  return { n: s.length, p50: pct(s, 50), p99: pct(s, 99), max: s.at(-1) ?? 0 };
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

function procStatus(pid: number): { rssMb: number; hwmMb: number; cpuS: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    const ticks = Number(stat[11] ?? 0) + Number(stat[12] ?? 0);
    return { rssMb: kb('VmRSS'), hwmMb: kb('VmHWM'), cpuS: ticks / 100 };
  } catch {
    return { rssMb: 0, hwmMb: 0, cpuS: 0 };
  }
}

function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get(url, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.setTimeout(5_000, () => req.destroy(new Error(`GET ${url}: timeout`)));
  });
}

/** Sum of the controller's `controller_runtime_reconcile_total` for the ecsextension controller. */
async function reconciles(metricsPort: number): Promise<number> {
  const { body } = await httpGet(`http://127.0.0.1:${metricsPort}/metrics`);
  let n = 0;
  for (const line of body.split('\n')) {
    if (line.startsWith('controller_runtime_reconcile_total{') && /ecsextension/i.test(line))
      n += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return n;
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

/** Server-side applies every document as `ecsops-bench`; returns the applied objects. */
async function applyYaml(kc: KubeConfig, text: string): Promise<Array<Record<string, unknown>>> {
  return (await applyManifests(kc, text, 'ecsops-bench')).map((a) => a.result);
}

function extension(
  ns: string,
  name: string,
  ids: string[],
  o: { version?: string; interval?: string; concurrency?: number; packageName?: string } = {},
): string {
  return stringify({
    apiVersion: 'ecsops.io/v1alpha1',
    kind: 'EcsExtension',
    metadata: { name, namespace: ns },
    spec: {
      regionId: REGION,
      packageName: o.packageName ?? PKG,
      parameters: { version: o.version ?? '18' },
      targets: { instanceIds: ids },
      ...(o.interval ? { interval: o.interval } : {}),
      ...(o.concurrency ? { rateControl: { concurrency: o.concurrency } } : {}),
    },
  });
}

interface ExtObject {
  metadata: { name: string; generation?: number; resourceVersion?: string };
  status?: {
    observedGeneration?: number;
    conditions?: Array<{ type: string; status: string; observedGeneration?: number }>;
  };
}

/** True when Ready is True for the object's current generation. */
function isReady(o: ExtObject): boolean {
  const c = o.status?.conditions?.find((x) => x.type === 'Ready');
  if (c?.status !== 'True') return false;
  const observed = c.observedGeneration ?? o.status?.observedGeneration ?? o.metadata.generation ?? 0;
  return observed >= (o.metadata.generation ?? 0);
}

/**
 * Watches the namespace's EcsExtensions and records, per (name, generation), when the bench first
 * saw Ready True for that generation (watch event arrival, `Date.now()`). A closed watch is
 * re-established from the last resourceVersion seen; after an ERROR (410 Gone) from a fresh list
 * (objects found Ready by a list are stamped at list time; `stampedByList` counts them).
 */
class ReadyWatch {
  /** `name` → generation → first time seen Ready. */
  readonly readyAt = new Map<string, Map<number, number>>();
  readonly generation = new Map<string, number>();
  /** Watches re-established (client-node closes one after 30 s without events) and lists after a 410. */
  rewatches = 0;
  relists = 0;
  /** Objects first seen Ready in a list rather than a watch event (stamped at list time). */
  stampedByList = 0;
  private rv = '0';
  private abort: AbortController | undefined;
  private stopped = false;

  constructor(
    private readonly kc: KubeConfig,
    private readonly ns: string,
  ) {}

  private path(): string {
    return `${GROUP_PATH}/namespaces/${this.ns}/ecsextensions`;
  }

  private see(o: ExtObject, now: number, fromList: boolean): void {
    const gen = o.metadata.generation ?? 0;
    this.generation.set(o.metadata.name, gen);
    if (!isReady(o)) return;
    let m = this.readyAt.get(o.metadata.name);
    if (!m) this.readyAt.set(o.metadata.name, (m = new Map()));
    if (!m.has(gen)) {
      m.set(gen, now);
      if (fromList) this.stampedByList++;
    }
  }

  async start(): Promise<void> {
    const list = (await kubeRequestRaw(this.kc, 'GET', this.path())) as {
      metadata?: { resourceVersion?: string };
      items?: ExtObject[];
    };
    const now = Date.now();
    for (const o of list.items ?? []) this.see(o, now, true);
    this.rv = list.metadata?.resourceVersion ?? '0';
    await this.watchFrom();
  }

  /** Watches from the last resourceVersion seen, so a re-established watch misses no event. */
  private async watchFrom(): Promise<void> {
    if (this.stopped) return;
    let gone = false;
    const again = (): void => {
      if (this.stopped) return;
      this.rewatches++;
      const next = gone ? (this.relists++, () => this.start()) : () => this.watchFrom();
      void next().catch(() => sleep(200).then(again));
    };
    this.abort = await new Watch(this.kc).watch(
      this.path(),
      { resourceVersion: this.rv, allowWatchBookmarks: true },
      (phase, obj: ExtObject) => {
        if (phase === 'ERROR') {
          gone = true; // e.g. 410 Gone: list again
          return;
        }
        if (obj.metadata?.resourceVersion) this.rv = obj.metadata.resourceVersion;
        if (phase === 'ADDED' || phase === 'MODIFIED') this.see(obj, Date.now(), false);
      },
      // client-node ends a watch after 30 s without events; it is re-established at once.
      () => again(),
    );
  }

  /** First time `name` was seen Ready at `generation` (default: its first Ready of any generation). */
  at(name: string, generation?: number): number | undefined {
    const m = this.readyAt.get(name);
    if (!m) return undefined;
    if (generation !== undefined) return m.get(generation);
    return m.size === 0 ? undefined : Math.min(...m.values());
  }

  async waitFor(pred: () => boolean, capMs: number): Promise<boolean> {
    const end = Date.now() + capMs;
    while (Date.now() < end) {
      if (pred()) return true;
      await sleep(20);
    }
    return pred();
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
  }
}

/** One emulator request, from its request log. */
interface LogLine {
  /** When the request arrived in the emulator (its `receivedAtMs`), ms since the epoch. */
  t: number;
  action: string;
  status: number;
  instanceId?: string;
  executionId?: string;
}

/**
 * The emulator's request log as the bench sees it, in answer order. In process, the emulator's
 * `logger` appends to it; an emulator process's `--request-log` file is tailed every 100 ms and on
 * {@link sync}. Times are the emulator's `receivedAtMs` either way.
 */
class RequestLog {
  readonly lines: LogLine[] = [];
  private offset = 0;
  private rest = Buffer.alloc(0);
  private reading: Promise<void> = Promise.resolve();
  private failure: unknown;
  private readonly timer: NodeJS.Timeout | undefined;

  /** @param file the emulator process's `--request-log` file; none: in process. */
  constructor(private readonly file?: string) {
    if (file) this.timer = setInterval(() => void this.sync().catch(() => undefined), 100);
  }

  /** Records one logger line (`internalError` follow-up lines, without a status, are skipped). */
  add(raw: Record<string, unknown>): void {
    if (typeof raw.status !== 'number' || typeof raw.receivedAtMs !== 'number') return;
    this.lines.push({
      t: raw.receivedAtMs,
      action: typeof raw.action === 'string' ? raw.action : '',
      status: raw.status,
      ...(typeof raw.instanceId === 'string' ? { instanceId: raw.instanceId } : {}),
      ...(typeof raw.executionId === 'string' ? { executionId: raw.executionId } : {}),
    });
  }

  /**
   * Reads what the emulator process has written so far (in process: nothing to do).
   * @throws Error when the file could not be read (now or at an earlier poll).
   */
  async sync(): Promise<void> {
    const file = this.file;
    if (file) {
      this.reading = this.reading
        .then(() => this.readNew(file))
        .catch((e: unknown) => void (this.failure ??= e));
    }
    await this.reading;
    if (this.failure !== undefined) throw this.failure;
  }

  /**
   * Waits until requests received up to now are in the log: a line is written when its request is
   * answered (after the injected latency), so an emulator process's file is read after 500 ms.
   */
  async settle(): Promise<void> {
    if (!this.file) return;
    await sleep(500);
    await this.sync();
  }

  /** Drops every line seen so far. */
  async clear(): Promise<void> {
    await this.sync();
    this.lines.length = 0;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async readNew(file: string): Promise<void> {
    const fh = await open(file, 'r');
    try {
      const { size } = await fh.stat();
      if (size <= this.offset) return;
      const buf = Buffer.alloc(size - this.offset);
      const { bytesRead } = await fh.read(buf, 0, buf.length, this.offset);
      this.offset += bytesRead;
      const data = Buffer.concat([this.rest, buf.subarray(0, bytesRead)]);
      const end = data.lastIndexOf(0x0a);
      // A line the emulator is still writing stays for the next read.
      this.rest = Buffer.from(data.subarray(end + 1));
      if (end < 0) return;
      for (const text of data.subarray(0, end).toString('utf8').split('\n')) {
        if (text !== '') this.add(JSON.parse(text) as Record<string, unknown>);
      }
    } finally {
      await fh.close();
    }
  }
}

/** What the bench runs with, besides the scenario. */
interface RunOptions {
  /** The compiled controller's cli.js. */
  cli: string;
  /** Run the emulator inside the bench process (the old mode) instead of as its own process. */
  emulatorInProcess: boolean;
  /** Keep the emulator process's seed and request log (their directory is printed). */
  keepRequestLog: boolean;
}

/** The emulator of one scenario: its API endpoint, control API client and request log. */
interface CloudEmulator {
  endpoint: string;
  control: EmulatorControl;
  log: RequestLog;
  stop(): Promise<void>;
}

/** SIGTERM, then SIGKILL after 15 s; resolves once the process has exited. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(15_000)]);
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await exited;
  }
}

/**
 * Starts the emulator with `seed`: in this process with `run.emulatorInProcess`, else as
 * `ecsops emulator --port 0 --control-port 0 --seed <file> --time-scale X --request-log <file>`
 * (node with the tsx loader on this working tree's src/cli.ts, so the PID is the emulator's own and
 * the flag exists whatever `--controller-dir` builds), reached through the URLs it prints.
 * @throws Error when the process exits or prints no endpoint within 60 s (it is stopped first).
 */
async function startCloudEmulator(seed: Seed, timeScale: number, run: RunOptions): Promise<CloudEmulator> {
  if (run.emulatorInProcess) {
    const log = new RequestLog();
    const emu = await startEmulator({
      seed,
      timeScale,
      logger: (line) => log.add(line as Record<string, unknown>),
    });
    return { endpoint: emu.endpoint, control: emu.control, log, stop: () => emu.stop() };
  }
  const dir = mkdtempSync(join(tmpdir(), 'ecsops-bench-emulator-'));
  const seedFile = join(dir, 'seed.yaml');
  const logFile = join(dir, 'requests.jsonl');
  writeFileSync(seedFile, stringify(seed));
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(REPO_ROOT, 'src/cli.ts'),
      'emulator',
      '--port',
      '0',
      '--control-port',
      '0',
      '--seed',
      seedFile,
      '--time-scale',
      String(timeScale),
      '--request-log',
      logFile,
    ],
    { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const cleanUp = (): void => {
    if (run.keepRequestLog) process.stdout.write(`[bench] emulator seed and request log kept in ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  };
  let urls: { endpoint: string; controlUrl: string };
  try {
    urls = await new Promise((resolve, reject) => {
      let out = '';
      const onData = (c: Buffer): void => {
        out += c.toString();
        const endpoint = /emulator endpoint:\s+(\S+)/.exec(out)?.[1];
        const controlUrl = /control API:\s+(\S+)/.exec(out)?.[1];
        if (endpoint && controlUrl) done(undefined, { endpoint, controlUrl });
      };
      const onExit = (code: number | null): void =>
        done(new Error(`emulator exited (${code}) before printing its endpoint`));
      const timer = setTimeout(() => done(new Error('emulator printed no endpoint within 60 s')), 60_000);
      const done = (err?: Error, v?: { endpoint: string; controlUrl: string }): void => {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.off('exit', onExit);
        child.stdout?.resume(); // later output is drained, not kept
        if (v) resolve(v);
        else reject(err);
      };
      child.stdout?.on('data', onData);
      child.once('exit', onExit);
    });
  } catch (e) {
    await stopChild(child);
    cleanUp();
    throw e;
  }
  const log = new RequestLog(logFile);
  return {
    endpoint: urls.endpoint,
    control: new EmulatorControl(urls.controlUrl),
    log,
    async stop() {
      await stopChild(child);
      log.stop();
      cleanUp();
    },
  };
}

class Controller {
  readonly pid: number;
  private constructor(
    readonly child: ChildProcess,
    readonly metricsPort: number,
    readonly probePort: number,
  ) {
    this.pid = child.pid as number;
  }

  static async start(
    cp: ControlPlane,
    emu: CloudEmulator,
    ns: string,
    qps: number,
    cli: string,
    shippedPolls = false,
  ): Promise<Controller> {
    const metricsPort = await freePort();
    const probePort = await freePort();
    // The controller's own log (warn and above: transient errors, retries) for tracing outliers.
    const logPath = join(tmpdir(), `ecsops-bench-controller-${ns}-${Date.now()}.log`);
    const logFd = openSync(logPath, 'a');
    console.log(
      `[bench] controller log (${process.env.ECSOPS_BENCH_LOG_LEVEL ?? 'warn'} and above): ${logPath}`,
    );
    const child: ChildProcess = spawn(
      process.execPath,
      [
        cli,
        'controller',
        '--kubeconfig',
        cp.kubeconfigPath,
        '--namespace',
        ns,
        '--leader-elect',
        'false',
        '--metrics-bind-address',
        `127.0.0.1:${metricsPort}`,
        '--health-probe-bind-address',
        `127.0.0.1:${probePort}`,
        '--oos-endpoint',
        emu.endpoint,
        '--ecs-endpoint',
        emu.endpoint,
        '--cloud-protocol',
        'HTTP',
        '--cloud-qps',
        String(qps),
        ...(shippedPolls
          ? []
          : ['--execution-poll-min', POLL_MIN, '--execution-poll-max', `${POLL_MAX_MS / 1000}s`]),
        '--log-level',
        // ECSOPS_BENCH_LOG_LEVEL (e.g. debug: every reconcile's end and duration) for tracing a tail.
        process.env.ECSOPS_BENCH_LOG_LEVEL ?? 'warn',
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
        stdio: ['ignore', logFd, 'inherit'],
      },
    );
    closeSync(logFd); // the child holds its own descriptor
    return new Controller(child, metricsPort, probePort);
  }

  /** Waits until `/readyz` answers 200 (every informer synced); returns how long that took, ms. */
  async waitReady(capMs: number): Promise<number> {
    const t0 = Date.now();
    while (Date.now() - t0 < capMs) {
      if (this.child.exitCode !== null) throw new Error(`controller exited with ${this.child.exitCode}`);
      const r = await httpGet(`http://127.0.0.1:${this.probePort}/readyz`).catch(() => undefined);
      if (r?.status === 200) return Date.now() - t0;
      await sleep(100);
    }
    throw new Error(`controller /readyz not 200 within ${capMs} ms`);
  }

  stop(): Promise<void> {
    return stopChild(this.child);
  }
}

/** Everything one scenario starts: emulator, namespace, controller, watch. */
interface Rig {
  emu: CloudEmulator;
  ns: string;
  ctl: Controller;
  watch: ReadyWatch;
  log: RequestLog;
  /** ms until /readyz answered 200. */
  syncMs: number;
  /** VmRSS 2 s after /readyz answered 200, before any resource was applied. */
  idleRssMb: number;
}

async function withRig<T>(
  cp: ControlPlane,
  kc: KubeConfig,
  sc: Scenario,
  seed: Seed,
  run: RunOptions,
  body: (rig: Rig) => Promise<T>,
): Promise<T> {
  const emu = await startCloudEmulator(seed, sc.timeScale ?? 0.01, run);
  let ctl: Controller | undefined;
  let watch: ReadyWatch | undefined;
  const ns = `bench-${sc.name.toLowerCase().replace(/[^a-z0-9-]/g, '-')}`;
  try {
    await emu.control.setFaults({ actions: { '*': { latencyMs: LATENCY_MS } } });
    await applyYaml(kc, stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }));
    ctl = await Controller.start(cp, emu, ns, sc.qps, run.cli, sc.shippedPolls === true);
    const syncMs = await ctl.waitReady(60_000);
    await sleep(2_000);
    const idleRssMb = procStatus(ctl.pid).rssMb;
    watch = new ReadyWatch(kc, ns);
    await watch.start();
    return await body({ emu, ns, ctl, watch, log: emu.log, syncMs, idleRssMb });
  } finally {
    watch?.stop();
    await ctl?.stop();
    await kubeRequestRaw(kc, 'DELETE', `/api/v1/namespaces/${ns}`).catch(() => undefined);
    await emu.stop();
  }
}

function countBy(lines: LogLine[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of lines) out[l.action] = (out[l.action] ?? 0) + 1;
  return out;
}

/** End of an execution, ms since the epoch: its last item's end (ms), else its EndDate (s). */
function executionEnd(e: ExecutionRecord): number | undefined {
  const ends = e.items.map((i) => i.endedAtMs ?? 0).filter((x) => x > 0);
  if (ends.length > 0 && ends.length === e.items.length) return Math.max(...ends);
  return e.endDate ? Date.parse(e.endDate) : undefined;
}

interface Visibility {
  /** Resources with an execution and a Ready event after its end. */
  n: number;
  p50S: number;
  p99S: number;
  maxS: number;
  /** Resources that were first seen Ready before their last execution ended (should be 0). */
  readyBeforeEnd: number;
  /** The three largest lags with their resource and its last execution's end (s after the first end), for tracing a tail. */
  worst: Array<{ name: string; lagS: number; endS: number }>;
}

function visibility(executions: ExecutionRecord[], ns: string, watch: ReadyWatch): Visibility {
  const lastEnd = new Map<string, number>();
  for (const e of executions) {
    const owner = e.tags[OWNER_TAG] ?? '';
    if (!owner.startsWith(`${ns}.`)) continue;
    const end = executionEnd(e);
    if (end === undefined) continue;
    const name = owner.slice(ns.length + 1);
    lastEnd.set(name, Math.max(lastEnd.get(name) ?? 0, end));
  }
  const lags: number[] = [];
  const byName: Array<{ name: string; lag: number; end: number }> = [];
  let readyBeforeEnd = 0;
  for (const [name, end] of lastEnd) {
    const ready = watch.at(name);
    if (ready === undefined) continue;
    if (ready < end) readyBeforeEnd++;
    else {
      lags.push(ready - end);
      byName.push({ name, lag: ready - end, end });
    }
  }
  const s = stats(lags);
  const firstEnd = Math.min(...lastEnd.values());
  const worst = byName
    .sort((a, b) => b.lag - a.lag)
    .slice(0, 3)
    .map((w) => ({ name: w.name, lagS: w.lag / 1000, endS: (w.end - firstEnd) / 1000 }));
  return { n: s.n, p50S: s.p50 / 1000, p99S: s.p99 / 1000, maxS: s.max / 1000, readyBeforeEnd, worst };
}

interface SteadyResult {
  windowS: number;
  intervalS: number;
  intervals: number;
  calls: Record<string, number>;
  totalCalls: number;
  instances: number;
  callsPerInstancePerInterval: number;
  stateReadsPerInstancePerInterval: number;
  /** Distinct instances read at least once in the window. */
  distinctInstancesRead: number;
  /** Time between consecutive state reads of one instance in the window (effective drift period), s. */
  readGapP50S: number;
  readGapP99S: number;
  statusWrites: number;
  startExecution: number;
  rssEndMb: number;
}

interface PollResult {
  /** Window during which all executions ran and every resource's poll delay was at the 5 s cap. */
  windowS: number;
  windowStartMs: number;
  windowEndMs: number;
  /** Earliest end of any execution, s after the window end (negative: one ended inside the window). */
  firstEndAfterWindowS?: number;
  executionsRunning: number;
  allRunningThroughout: boolean;
  listExecutions: number;
  /** Of which by ExecutionId (one execution) and by tag (region-wide listings, all pages). */
  listExecutionsById: number;
  listExecutionsByTag: number;
  listExecutionsPerSecond: number;
  /** window / 5 s. */
  nominalRounds: number;
  listExecutionsPerNominalRound: number;
  /** Δ controller_runtime_reconcile_total / resources. */
  measuredRounds: number;
  listExecutionsPerMeasuredRound: number;
  callsInWindow: Record<string, number>;
  skipped?: string;
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
  idleRssMb: number;
  peakRssMb: number;
  cpuS: number;
  statusWrites: number;
  statusWritesPerResource: number;
  maxOosPerSecond: number;
  maxEcsPerSecond: number;
  visibility: Visibility;
  syncS: number;
  watchRelists: number;
  /** Resources whose Ready time came from a list (after the initial one: 0 expected). */
  readyFromList: number;
  steady?: SteadyResult;
  poll?: PollResult;
  /** Scenarios with several packages: one round, the serialised floor and the ratio. */
  serial?: SerialResult;
}

interface SerialResult {
  packages: number;
  /** A single EcsExtension of another package over the same instances: apply → Ready, s. */
  oneRoundS: number;
  /** resources × oneRoundS. */
  serialFloorS: number;
  /** All Ready ÷ serialFloorS (null when not all became Ready). */
  ratio: number | null;
  /**
   * Lock handoffs: per instance, the time from the end of one execution acting on it (its last
   * item's end) to the next StartExecution (receipt in the emulator) of an execution that
   * includes it — what a waiter loses after a hold ends. s.
   */
  handoff: { n: number; p50S: number; p99S: number; meanS: number };
}

/** Per instance: next StartExecution including it − end of the previous execution including it, ms. */
function handoffGaps(executions: ExecutionRecord[], lines: LogLine[]): number[] {
  const startAt = new Map<string, number>();
  for (const l of lines) {
    if (l.action === 'StartExecution' && l.status === 200 && l.executionId && !startAt.has(l.executionId))
      startAt.set(l.executionId, l.t);
  }
  const byInstance = new Map<string, Array<{ start: number; end: number }>>();
  for (const e of executions) {
    const start = startAt.get(e.executionId);
    const end = executionEnd(e);
    if (start === undefined || end === undefined) continue;
    for (const it of e.items) {
      let list = byInstance.get(it.instanceId);
      if (!list) byInstance.set(it.instanceId, (list = []));
      list.push({ start, end });
    }
  }
  const gaps: number[] = [];
  for (const list of byInstance.values()) {
    list.sort((a, b) => a.start - b.start);
    for (let i = 1; i < list.length; i++) {
      const prev = list[i - 1] as { end: number };
      gaps.push(Math.max(0, (list[i] as { start: number }).start - prev.end));
    }
  }
  return gaps;
}

/** Package `i` of a several-package scenario (each one an emulator package template). */
function packageName(i: number): string {
  return `ACS-Extension-bench${String(i).padStart(2, '0')}-1853370294850618`;
}

async function runScenario(cp: ControlPlane, kc: KubeConfig, sc: Scenario, run: RunOptions): Promise<Result> {
  const distinct = sc.overlap ? sc.instancesPerResource : sc.resources * sc.instancesPerResource;
  const packages = sc.packages ?? 1;
  const width = Math.max(4, String(distinct).length);
  const id = (i: number): string => `i-bench${String(i).padStart(width, '0')}`;
  const seed: Seed = {
    regions: {
      [REGION]: {
        generate: [{ count: distinct, idPrefix: 'i-bench', tags: [{ key: 'fleet', value: 'bench' }] }],
      },
    },
    // Several packages: package i for resource r (i = r % packages), and one more for the round.
    packageTemplates: (packages > 1
      ? Array.from({ length: packages + 1 }, (_, i) => packageName(i))
      : [PKG]
    ).map((name) => ({
      name,
      versions: [
        {
          version: 'v1',
          parameters: { version: { Type: 'String', Default: '18', AllowedValues: ['18'] } },
        },
      ],
    })),
  };
  return withRig(cp, kc, sc, seed, run, async ({ emu, ns, ctl, watch, log, syncMs, idleRssMb }) => {
    let oneRoundMs: number | undefined;
    if (packages > 1) {
      // One round: a single EcsExtension of another package over the same instances, alone.
      const ids = Array.from({ length: sc.instancesPerResource }, (_, k) => id(1 + k));
      const r0 = Date.now();
      await applyYaml(kc, extension(ns, 'one', ids, { packageName: packageName(packages) }));
      if (!(await watch.waitFor(() => watch.at('one') !== undefined, 120_000)))
        throw new Error('one round: `one` not Ready within 120 s');
      oneRoundMs = (watch.at('one') as number) - r0;
      process.stdout.write(`[bench] ${sc.name}: one round ${oneRoundMs / 1000} s\n`);
    }
    const writes0 = await statusWrites(cp);
    const docs = Array.from({ length: sc.resources }, (_, r) => {
      const from = sc.overlap ? 1 : r * sc.instancesPerResource + 1;
      const ids = Array.from({ length: sc.instancesPerResource }, (_, k) => id(from + k));
      return extension(ns, `r${r}`, ids, {
        ...(sc.interval ? { interval: sc.interval } : {}),
        ...(sc.concurrency ? { concurrency: sc.concurrency } : {}),
        ...(packages > 1 ? { packageName: packageName(r % packages) } : {}),
      });
    });
    await emu.control.resetRequestCounts();
    await log.clear();
    const t0 = Date.now();
    const pollTask = sc.kind === 'poll' ? measurePolling(sc, ctl, log, t0) : undefined;
    await applyYaml(kc, docs.join('---\n'));
    // `one` (several packages) was Ready before t0 and is not counted.
    const readyNames = (): string[] => [...watch.readyAt.keys()].filter((n) => n !== 'one');
    await watch.waitFor(() => readyNames().length >= sc.resources, sc.capMs - (Date.now() - t0));
    const elapsed = Date.now() - t0;
    const poll = await pollTask;
    const { hwmMb, cpuS } = procStatus(ctl.pid);
    const executions = (await emu.control.listExecutions({ tagKey: OWNER_TAG })).filter(
      (e) => (e.tags[OWNER_TAG] ?? '').startsWith(`${ns}.`) && e.tags[OWNER_TAG] !== `${ns}.one`,
    );
    if (poll && !poll.skipped) {
      const ends = executions.map((e) => executionEnd(e) ?? Infinity);
      const firstEnd = Math.min(...ends);
      poll.firstEndAfterWindowS = (firstEnd - poll.windowEndMs) / 1000;
      poll.allRunningThroughout = executions.length >= poll.executionsRunning && firstEnd >= poll.windowEndMs;
    }
    const calls = await emu.control.requestCounts();
    const writes = (await statusWrites(cp)) - writes0;
    const readyTimes = readyNames().map((n) => (watch.at(n) ?? t0) - t0);
    const sorted = readyTimes.sort((a, b) => a - b);
    const totalCalls = Object.values(calls).reduce((a, b) => a + b, 0);
    const startFloor = sc.resources * Math.ceil(sc.instancesPerResource / 50);
    // Overlapping resources of one package share executions; of several packages they do not.
    const effectiveStartFloor =
      sc.overlap && packages === 1 ? Math.ceil(sc.instancesPerResource / 50) : startFloor;
    const stateFloor = distinct;
    const allReady = readyNames().length >= sc.resources;
    await log.settle();
    const gaps = oneRoundMs !== undefined ? handoffGaps(executions, log.lines) : [];
    const gapStats = stats(gaps);
    const oosTimes = log.lines.filter((l) => OOS.has(l.action)).map((l) => l.t);
    const ecsTimes = log.lines.filter((l) => ECS.has(l.action)).map((l) => l.t);
    const result: Result = {
      scenario: sc,
      ready: readyNames().length,
      toAllReadyS: allReady ? elapsed / 1000 : null,
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
      idleRssMb,
      peakRssMb: hwmMb,
      cpuS,
      statusWrites: writes,
      statusWritesPerResource: writes / sc.resources,
      maxOosPerSecond: maxPerSecond(oosTimes.sort((a, b) => a - b)),
      maxEcsPerSecond: maxPerSecond(ecsTimes.sort((a, b) => a - b)),
      visibility: visibility(executions, ns, watch),
      syncS: syncMs / 1000,
      watchRelists: watch.relists,
      readyFromList: watch.stampedByList,
      ...(poll ? { poll } : {}),
      ...(oneRoundMs !== undefined
        ? {
            serial: {
              packages,
              oneRoundS: oneRoundMs / 1000,
              serialFloorS: (sc.resources * oneRoundMs) / 1000,
              ratio: allReady ? elapsed / (sc.resources * oneRoundMs) : null,
              handoff: {
                n: gapStats.n,
                p50S: gapStats.p50 / 1000,
                p99S: gapStats.p99 / 1000,
                meanS: gaps.length > 0 ? gaps.reduce((a, b) => a + b, 0) / gaps.length / 1000 : 0,
              },
            },
          }
        : {}),
    };
    if (sc.kind === 'steady' && result.toAllReadyS !== null) {
      result.steady = await measureSteady(cp, sc, emu, ctl, log, distinct);
      result.peakRssMb = procStatus(ctl.pid).hwmMb;
    }
    return result;
  });
}

/** steady: calls and status writes over exactly `steadyIntervals` × interval once all are Ready. */
async function measureSteady(
  cp: ControlPlane,
  sc: Scenario,
  emu: CloudEmulator,
  ctl: Controller,
  log: RequestLog,
  instances: number,
): Promise<SteadyResult> {
  const intervalMs = durationMs(sc.interval ?? '10m');
  const intervals = sc.steadyIntervals ?? 3;
  const windowMs = intervalMs * intervals;
  const before = await emu.control.requestCounts();
  const w0 = await statusWrites(cp);
  const t0 = Date.now();
  await sleep(windowMs);
  const after = await emu.control.requestCounts();
  const writes = (await statusWrites(cp)) - w0;
  const t1 = Date.now();
  const windowS = (t1 - t0) / 1000;
  await log.settle();
  const calls: Record<string, number> = {};
  for (const [a, n] of Object.entries(after)) {
    const d = n - (before[a] ?? 0);
    if (d > 0) calls[a] = d;
  }
  const totalCalls = Object.values(calls).reduce((a, b) => a + b, 0);
  // Per instance: receipt times of its state reads in the window; gaps between consecutive ones
  // are the effective drift-check period as the cloud sees it.
  const reads = new Map<string, number[]>();
  for (const l of log.lines) {
    if (l.action !== 'ListInstancePackageStates' || !l.instanceId || l.t < t0 || l.t >= t1) continue;
    const list = reads.get(l.instanceId);
    if (list) list.push(l.t);
    else reads.set(l.instanceId, [l.t]);
  }
  const gaps: number[] = [];
  for (const times of reads.values()) {
    times.sort((a, b) => a - b);
    for (let i = 1; i < times.length; i++) gaps.push((times[i] as number) - (times[i - 1] as number));
  }
  const gap = stats(gaps);
  return {
    windowS,
    intervalS: intervalMs / 1000,
    intervals,
    calls,
    totalCalls,
    instances,
    callsPerInstancePerInterval: totalCalls / (instances * intervals),
    stateReadsPerInstancePerInterval: (calls.ListInstancePackageStates ?? 0) / (instances * intervals),
    distinctInstancesRead: reads.size,
    readGapP50S: gap.p50 / 1000,
    readGapP99S: gap.p99 / 1000,
    statusWrites: writes,
    startExecution: calls.StartExecution ?? 0,
    rssEndMb: procStatus(ctl.pid).rssMb,
  };
}

function durationMs(s: string): number {
  let ms = 0;
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) {
    const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
    ms += Number(m[1]) * unit;
  }
  return ms;
}

/**
 * poll: once every resource has started its execution, a window that begins 25 s after the last
 * StartExecution (every execution is then ≥ 20 s old, so every resource's poll delay —
 * a quarter of the oldest execution's age within [poll-min, poll-max] — is at the 5 s cap) and
 * ends 5 s before the first execution can end (its modelled duration after its StartExecution).
 */
async function measurePolling(
  sc: Scenario,
  ctl: Controller,
  log: RequestLog,
  t0: number,
): Promise<PollResult> {
  const expected = sc.resources * Math.ceil(sc.instancesPerResource / 50);
  const ts = sc.timeScale ?? 0.01;
  const waves = Math.ceil(50 / (sc.concurrency ?? 10));
  const durationMsModel = (500 + waves * 20_000) * ts; // startToRunning + install waves (engine.ts DURATIONS)
  const starts = (): LogLine[] => {
    const seen = new Set<string>();
    return log.lines.filter(
      (l) =>
        l.action === 'StartExecution' &&
        l.status === 200 &&
        l.executionId !== undefined &&
        !seen.has(l.executionId) &&
        seen.add(l.executionId),
    );
  };
  const empty = (skipped: string): PollResult => ({
    windowS: 0,
    windowStartMs: 0,
    windowEndMs: 0,
    executionsRunning: 0,
    allRunningThroughout: false,
    listExecutions: 0,
    listExecutionsById: 0,
    listExecutionsByTag: 0,
    listExecutionsPerSecond: 0,
    nominalRounds: 0,
    listExecutionsPerNominalRound: 0,
    measuredRounds: 0,
    listExecutionsPerMeasuredRound: 0,
    callsInWindow: {},
    skipped,
  });
  while (starts().length < expected) {
    if (Date.now() - t0 > sc.capMs / 2)
      return empty(`only ${starts().length}/${expected} executions started`);
    await sleep(100);
  }
  const s = starts();
  const first = s[0]?.t ?? 0;
  const last = s.at(-1)?.t ?? 0;
  const ws = last + 25_000;
  const we = first + durationMsModel - 5_000;
  if (we - ws < 10_000)
    return empty(
      `starts spread over ${((last - first) / 1000).toFixed(1)} s: no 10 s window with all running`,
    );
  await sleep(ws - Date.now());
  const r0 = await reconciles(ctl.metricsPort);
  await sleep(we - Date.now());
  const r1 = await reconciles(ctl.metricsPort);
  await log.settle();
  const inWindow = log.lines.filter((l) => l.t >= ws && l.t < we);
  const lists = inWindow.filter((l) => l.action === 'ListExecutions');
  const byId = lists.filter((l) => l.executionId !== undefined).length;
  const windowS = (we - ws) / 1000;
  const nominalRounds = (we - ws) / POLL_MAX_MS;
  const measuredRounds = (r1 - r0) / sc.resources;
  return {
    windowS,
    executionsRunning: s.length,
    allRunningThroughout: true, // checked by the caller against the emulator's end times
    windowStartMs: ws,
    windowEndMs: we,
    listExecutions: lists.length,
    listExecutionsById: byId,
    listExecutionsByTag: lists.length - byId,
    listExecutionsPerSecond: lists.length / windowS,
    nominalRounds,
    listExecutionsPerNominalRound: lists.length / nominalRounds,
    measuredRounds,
    listExecutionsPerMeasuredRound: measuredRounds > 0 ? lists.length / measuredRounds : 0,
    callsInWindow: countBy(inWindow),
  };
}

interface ReactionSample {
  /** PATCH returned → first StartExecution for `small` received by the emulator, ms (null: none within the cap). */
  toStartMs: number | null;
  /** PATCH returned → `small` Ready at the new generation (watch), ms. */
  toReadyMs: number | null;
  /** `big`'s state reads received between the PATCH and small's StartExecution (or the cap). */
  bigReadsDuring: number;
  /** small's state reads received in the same span. */
  smallReadsDuring: number;
}

/**
 * idle: `big` absent; first-pass: `big`'s first reconcile (not yet Ready) reads its states;
 * drift: `big` was Ready once and a periodic drift check reads its states again.
 */
type CaseName = 'idle' | 'first-pass' | 'drift';

interface ReactionCase {
  case: CaseName;
  samples: ReactionSample[];
  startP50S: number | null;
  startP99S: number | null;
  startMaxS: number | null;
  readyP50S: number | null;
  readyP99S: number | null;
  missed: number;
  /** big's state reads per second over the case (0 when idle). */
  bigReadsPerS: number;
}

interface ReactionResult {
  scenario: Scenario;
  cases: ReactionCase[];
  idleRssMb: number;
  peakRssMb: number;
  cpuS: number;
  syncS: number;
  /** Calls by action from big's apply to the end. */
  callsWithBig: Record<string, number>;
  bigStartExecutions: number;
  bigReady: boolean;
  bigReadyAfterS: number | null;
  note?: string;
}

async function runReaction(
  cp: ControlPlane,
  kc: KubeConfig,
  sc: Scenario,
  run: RunOptions,
): Promise<ReactionResult> {
  const big = sc.bigInstances ?? 5000;
  const small = sc.smallInstances ?? 10;
  const samples = sc.samples ?? 20;
  const installed = [{ name: PKG, version: 'v1', parameters: { version: '18' } }];
  const seed: Seed = {
    regions: {
      [REGION]: {
        generate: [
          { count: big, idPrefix: 'i-big', installed },
          { count: small, idPrefix: 'i-small', installed },
        ],
      },
    },
    packageTemplates: [
      {
        name: PKG,
        versions: [
          {
            version: 'v1',
            parameters: { version: { Type: 'String', Default: '18', AllowedValues: ['18', '20'] } },
          },
        ],
      },
    ],
  };
  const bigIds = Array.from(
    { length: big },
    (_, i) => `i-big${String(i + 1).padStart(Math.max(4, String(big).length), '0')}`,
  );
  const smallIds = Array.from(
    { length: small },
    (_, i) => `i-small${String(i + 1).padStart(Math.max(4, String(small).length), '0')}`,
  );
  const bigSet = new Set(bigIds);
  const smallSet = new Set(smallIds);
  const deadline = Date.now() + sc.capMs;
  return withRig(cp, kc, sc, seed, run, async ({ emu, ns, ctl, watch, log, syncMs, idleRssMb }) => {
    const owners = new Map<string, string>();
    const ownerOf = async (executionId: string): Promise<string> => {
      let o = owners.get(executionId);
      if (o === undefined) {
        o = (await emu.control.getExecution(executionId))?.tags[OWNER_TAG] ?? '';
        owners.set(executionId, o);
      }
      return o;
    };
    let version = '18';
    const applySmall = async (): Promise<number> => {
      const [obj] = await applyYaml(kc, extension(ns, 'small', smallIds, { version }));
      return (obj as unknown as ExtObject).metadata.generation ?? 0;
    };
    // Receipt times of big's / small's state reads, indexed incrementally from the log.
    const bigReads: number[] = [];
    const smallReads: number[] = [];
    let indexed = 0;
    const index = (): void => {
      for (; indexed < log.lines.length; indexed++) {
        const l = log.lines[indexed] as LogLine;
        if (l.action !== 'ListInstancePackageStates' || !l.instanceId) continue;
        if (bigSet.has(l.instanceId)) bigReads.push(l.t);
        else if (smallSet.has(l.instanceId)) smallReads.push(l.t);
      }
    };
    const countIn = (times: number[], from: number, until = Infinity): number => {
      index();
      let n = 0;
      for (let i = times.length - 1; i >= 0; i--) {
        const t = times[i] as number;
        if (t >= from && t < until) n++;
        // Receipt times are nearly sorted (the log is in answer order): stop well before `from`.
        else if (t < from - 10_000) break;
      }
      return n;
    };
    const bigReadsSince = (t: number, until = Infinity): number => countIn(bigReads, t, until);

    let gen = await applySmall();
    if (!(await watch.waitFor(() => watch.at('small', gen) !== undefined, 120_000)))
      throw new Error('small not Ready within 120 s');

    const sample = async (): Promise<ReactionSample> => {
      version = version === '18' ? '20' : '18';
      const sent = Date.now();
      gen = await applySmall();
      const applied = Date.now();
      const capMs = 120_000;
      let startAt: number | undefined;
      let scanned = 0;
      while (Date.now() - applied < capMs && startAt === undefined) {
        const lines = log.lines.slice(scanned);
        scanned += lines.length;
        for (const l of lines) {
          if (l.action !== 'StartExecution' || l.status !== 200 || !l.executionId || l.t < sent) continue;
          if ((await ownerOf(l.executionId)) === `${ns}.small`) {
            startAt = l.t;
            break;
          }
        }
        if (startAt === undefined) await sleep(10);
      }
      const until = startAt ?? Date.now();
      const smallReadsDuring = countIn(smallReads, sent, until);
      await watch.waitFor(() => watch.at('small', gen) !== undefined, 180_000);
      const readyAt = watch.at('small', gen);
      return {
        toStartMs: startAt === undefined ? null : startAt - applied,
        toReadyMs: readyAt === undefined ? null : readyAt - applied,
        bigReadsDuring: bigReadsSince(sent, until),
        smallReadsDuring,
      };
    };
    const summarize = (
      c: CaseName,
      list: ReactionSample[],
      spanS: number,
      bigReads: number,
    ): ReactionCase => {
      const starts = list.filter((s) => s.toStartMs !== null).map((s) => s.toStartMs as number);
      const readies = list.filter((s) => s.toReadyMs !== null).map((s) => s.toReadyMs as number);
      const st = stats(starts);
      const rd = stats(readies);
      return {
        case: c,
        samples: list,
        startP50S: st.n ? st.p50 / 1000 : null,
        startP99S: st.n ? st.p99 / 1000 : null,
        startMaxS: st.n ? st.max / 1000 : null,
        readyP50S: rd.n ? rd.p50 / 1000 : null,
        readyP99S: rd.n ? rd.p99 / 1000 : null,
        missed: list.length - starts.length,
        bigReadsPerS: spanS > 0 ? bigReads / spanS : 0,
      };
    };

    // Idle: big absent.
    const idle: ReactionSample[] = [];
    const i0 = Date.now();
    for (let i = 0; i < samples && Date.now() < deadline; i++) idle.push(await sample());
    const cases = [summarize('idle', idle, (Date.now() - i0) / 1000, 0)];
    process.stdout.write(`[bench] reaction idle: ${JSON.stringify({ ...cases[0], samples: undefined })}\n`);

    // With big reading its 5,000 states.
    const bigApplied = Date.now();
    const [bigObj] = await applyYaml(kc, extension(ns, 'big', bigIds, { interval: sc.interval ?? '30s' }));
    const bigGen = (bigObj as unknown as ExtObject).metadata.generation ?? 1;
    const flowing = (): boolean => bigReadsSince(Date.now() - 2_000) >= 10;
    const bigReady = (): boolean => watch.at('big', bigGen) !== undefined;
    const notes: string[] = [];
    if (!(await watch.waitFor(flowing, 180_000)))
      notes.push('big never read its states at ≥ 5/s within 180 s');
    // First pass: samples while big's first reconcile reads (stops when big is Ready).
    const first: ReactionSample[] = [];
    const f0 = Date.now();
    while (first.length < samples && Date.now() < deadline && !bigReady() && flowing())
      first.push(await sample());
    const f1 = Date.now();
    cases.push(summarize('first-pass', first, (f1 - f0) / 1000, bigReadsSince(f0, f1)));
    process.stdout.write(
      `[bench] reaction first-pass: ${JSON.stringify({ ...cases[1], samples: undefined })}\n`,
    );
    if (!(await watch.waitFor(bigReady, Math.max(0, Math.min(900_000, deadline - Date.now())))))
      notes.push('big not Ready within 900 s: drift samples taken during its first pass');
    // Drift: samples only while a periodic drift check of big reads (not in the gap between two).
    const drift: ReactionSample[] = [];
    const d0 = Date.now();
    for (let i = 0; i < samples && Date.now() < deadline; i++) {
      if (!(await watch.waitFor(flowing, 300_000))) {
        notes.push(`big's state reads stopped for 300 s before drift sample ${i + 1}`);
        break;
      }
      drift.push(await sample());
    }
    const d1 = Date.now();
    cases.push(summarize('drift', drift, (d1 - d0) / 1000, bigReadsSince(d0, d1)));
    const note = notes.length > 0 ? notes.join('; ') : undefined;
    await log.settle();
    const withBig = log.lines.filter((l) => l.t >= bigApplied);
    const bigStarts = withBig.filter(
      (l) => l.action === 'StartExecution' && l.status === 200 && l.executionId,
    );
    let bigStartExecutions = 0;
    for (const l of bigStarts)
      if ((await ownerOf(l.executionId as string)) === `${ns}.big`) bigStartExecutions++;
    const bigReadyAt = watch.at('big', bigGen);
    const { hwmMb, cpuS } = procStatus(ctl.pid);
    return {
      scenario: sc,
      cases,
      idleRssMb,
      peakRssMb: hwmMb,
      cpuS,
      syncS: syncMs / 1000,
      callsWithBig: countBy(withBig),
      bigStartExecutions,
      bigReady: bigReadyAt !== undefined,
      bigReadyAfterS: bigReadyAt === undefined ? null : (bigReadyAt - bigApplied) / 1000,
      ...(note ? { note } : {}),
    };
  });
}

type AnyResult = Result | ReactionResult;

function isReaction(r: AnyResult): r is ReactionResult {
  return r.scenario.kind === 'reaction';
}

/** Where the emulator ran, and so where its request times were taken (for the report). */
function emulatorNote(inProcess: boolean): string {
  return inProcess
    ? 'Emulator: inside the bench process (`--emulator-in-process`); request times (sliding-window maxima, reaction receipts) are taken on arrival in the bench process, which also runs the watch and the applies, so requests it is too busy to accept in time show up in bunches.'
    : "Emulator: its own OS process (`ecsops emulator --request-log`); request times (sliding-window maxima, reaction receipts) are taken at arrival in the emulator's own process (`receivedAtMs`, before the body is read and before the injected latency).";
}

function report(results: AnyResult[], meta: { controller: string; emulatorInProcess: boolean }): string {
  const r2 = (n: number): string => (Math.round(n * 100) / 100).toString();
  const s2 = (n: number | null): string => (n === null ? '—' : r2(n));
  const converge = results.filter((r): r is Result => !isReaction(r));
  const lines = [
    '# Whole-daemon benchmark (compiled controller process, real API server, emulator)',
    '',
    `Generated by \`npx tsx test/bench/daemon.bench.ts\` on ${new Date().toISOString()} against ${meta.controller} (controller NODE_OPTIONS \`${process.env.ECSOPS_BENCH_NODE_OPTIONS ?? shippedNodeOptions()}\`, \`--execution-poll-min ${POLL_MIN} --execution-poll-max ${POLL_MAX_MS / 1000}s\`; the 2-core machine was shared with other work, so times are noisy: compare ratios). Emulator latency ${LATENCY_MS} ms per call, timeScale 0.01 unless stated. Floor = ceil(instances/50) StartExecutions per resource (per distinct instance set when resources overlap) + one state read per distinct instance, at the configured qps. Ready times come from a watch on the EcsExtensions (event arrival in the bench; no polling). Idle RSS = the controller's VmRSS 2 s after its /readyz first answered 200 (informers synced), before any resource was applied; peak = VmHWM at the end.`,
    '',
    emulatorNote(meta.emulatorInProcess),
    '',
    'Steady-state drift detection at 10,000 instances (issue 25: OOS calls per instance per interval with the change feed and the full resync amortised, status writes, lags of foreign changes) is measured in the fast tier: [drift.md](drift.md) (`npx tsx test/bench/drift.bench.ts`). Quota-bound convergence at `--cloud-qps 20` (bar: all Ready ≤ 1.2 × floor): `--only 100x100-qps20` and `--only 1000x10-qps20` ([daemon-100x100-qps20.md](daemon-100x100-qps20.md), [daemon-1000x10-qps20.md](daemon-1000x10-qps20.md)).',
    '',
  ];
  if (converge.length > 0) {
    lines.push(
      '| scenario | qps | all Ready (s) | Ready p50 / p99 (s) | floor (s) | all Ready ÷ floor | calls per (resource, instance) | StartExecution (floor) | state reads (floor) | status writes per resource | max OOS / ECS calls in a sliding 1 s | idle / peak RSS (MiB) | CPU (s) | finished → Ready seen p50 / p99 (s) |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    );
    for (const r of converge) {
      lines.push(
        `| ${r.scenario.name} | ${r.scenario.qps} | ${r.toAllReadyS === null ? `not all (${r.ready}/${r.scenario.resources})` : r2(r.toAllReadyS)} | ${r2(r.readyP50S)} / ${r2(r.readyP99S)} | ${r2(r.floorS)} | ${r.toAllReadyS === null || r.floorS <= 0 ? '—' : r2(r.toAllReadyS / r.floorS)} | ${r2(r.callsPerPair)} | ${r.startExecution} (${r.startFloor}) | ${r.stateReads} (${r.stateFloor}) | ${r2(r.statusWritesPerResource)} | ${r.maxOosPerSecond} / ${r.maxEcsPerSecond} | ${Math.round(r.idleRssMb)} / ${Math.round(r.peakRssMb)} | ${r2(r.cpuS)} | ${r2(r.visibility.p50S)} / ${r2(r.visibility.p99S)} |`,
      );
    }
    lines.push(
      '',
      '## Finished execution → Ready visible',
      '',
      `Per resource: the first watch event showing Ready True minus the end of its last execution (the emulator's last loop-item end, ms). Resolution: watch event arrival (no polling). Configured poll delay: \`--execution-poll-min ${POLL_MIN}\` (a quarter of the execution's age, within ${POLL_MIN} … ${POLL_MAX_MS / 1000}s); target: within poll delay + 2 s.`,
      '',
      '| scenario | resources measured | p50 (s) | p99 (s) | max (s) | Ready before its execution ended | largest lags: resource lag (s) @ its end (s after the first end) |',
      '|---|---|---|---|---|---|---|',
    );
    for (const r of converge) {
      const v = r.visibility;
      const worst = (v.worst ?? []).map((w) => `${w.name} ${r2(w.lagS)} @ ${r2(w.endS)}`).join(', ');
      lines.push(
        `| ${r.scenario.name} | ${v.n} | ${r2(v.p50S)} | ${r2(v.p99S)} | ${r2(v.maxS)} | ${v.readyBeforeEnd} | ${worst} |`,
      );
    }
  }
  const serial = converge.filter((r) => r.serial);
  if (serial.length > 0) {
    lines.push(
      '',
      '## Several packages over the same instances (lock handoffs)',
      '',
      "Resource r installs package r mod N over the same instances; the per-instance lock lets one package's execution act on an instance at a time, so the work is serialised. One round = a single EcsExtension `one` of a further package over the same instances, applied alone first in the same run (apply → Ready seen). Serialised floor = resources × one round. Bar (issue 23): all Ready ≤ 1.5 × the floor. Handoff = per instance, the next StartExecution that includes it (receipt in the emulator) minus the end of the previous execution that included it (its last item's end): the idle time of an instance between two holders.",
      '',
      '| scenario | packages | one round (s) | serialised floor (s) | all Ready (s) | all Ready ÷ floor | handoffs | handoff p50 / p99 / mean (s) |',
      '|---|---|---|---|---|---|---|---|',
    );
    for (const r of serial) {
      const x = r.serial as SerialResult;
      lines.push(
        `| ${r.scenario.name} | ${x.packages} | ${r2(x.oneRoundS)} | ${r2(x.serialFloorS)} | ${r.toAllReadyS === null ? `not all (${r.ready}/${r.scenario.resources})` : r2(r.toAllReadyS)} | ${x.ratio === null ? '—' : r2(x.ratio)} | ${x.handoff.n} | ${r2(x.handoff.p50S)} / ${r2(x.handoff.p99S)} / ${r2(x.handoff.meanS)} |`,
      );
    }
  }
  const steady = converge.filter((r) => r.steady);
  if (steady.length > 0) {
    lines.push(
      '',
      '## Steady state',
      '',
      'Once every resource is Ready: cloud calls (emulator request counters) and status writes (API server counter) over exactly `intervals` × `spec.interval` (±5 % jitter per resource, so a resource may do one check more or less). Floor: 1 state read per distinct instance per interval, 0 status writes when nothing changed. Below 1 read per interval means fewer checks than `spec.interval` implies in this window: the resources became Ready within seconds of each other, so their checks are phase-aligned, and a 90 s window that starts at all-Ready holds only 2 checks of most instances when the period is slightly above 30 s. The time between two reads of one instance is the phase-independent measure of the drift period.',
      '',
      '| scenario | window (s) | instances | calls per instance per interval | state reads per instance per interval (floor 1) | distinct instances read | time between two reads of one instance p50 / p99 (s) | StartExecution | status writes (floor 0) | RSS at end (MiB) | calls by action |',
      '|---|---|---|---|---|---|---|---|---|---|---|',
    );
    for (const r of steady) {
      const s = r.steady as SteadyResult;
      lines.push(
        `| ${r.scenario.name} | ${r2(s.windowS)} (${s.intervals} × ${s.intervalS} s) | ${s.instances} | ${r2(s.callsPerInstancePerInterval)} | ${r2(s.stateReadsPerInstancePerInterval)} | ${s.distinctInstancesRead} | ${r2(s.readGapP50S)} / ${r2(s.readGapP99S)} | ${s.startExecution} | ${s.statusWrites} | ${Math.round(s.rssEndMb)} | ${Object.entries(
          s.calls,
        )
          .sort()
          .map(([a, n]) => `${a} ${n}`)
          .join(', ')} |`,
      );
    }
  }
  const poll = converge.filter((r) => r.poll);
  if (poll.length > 0) {
    lines.push(
      '',
      '## Polling cost',
      '',
      `Each resource's one execution (50 instances, \`rateControl.concurrency: 50\`: one wave) runs ≈ ${r2(((500 + 20_000) * (poll[0]?.scenario.timeScale ?? 1)) / 1000)} s (the emulator's modelled 0.5 s start + 20 s install × timeScale ${poll[0]?.scenario.timeScale ?? 1}). Window: from 25 s after the last StartExecution (every execution ≥ 20 s old, so every resource's poll delay is at the ${POLL_MAX_MS / 1000} s cap) to 5 s before the first execution can end. Nominal rounds = window ÷ ${POLL_MAX_MS / 1000} s; measured rounds = Δ controller_runtime_reconcile_total (ecsextension) ÷ resources. ListExecutions by ID = one execution; by tag = the region-wide listing (one call per page). Target: ≤ 2 ListExecutions per poll round.`,
      '',
      '| scenario | executions running | all running throughout (first end, s after the window) | window (s) | ListExecutions (by ID / by tag) | per s | nominal rounds | per nominal round | measured rounds | per measured round | calls in window |',
      '|---|---|---|---|---|---|---|---|---|---|---|',
    );
    for (const r of poll) {
      const p = r.poll as PollResult;
      lines.push(
        p.skipped
          ? `| ${r.scenario.name} | ${p.skipped} | | | | | | | | | |`
          : `| ${r.scenario.name} | ${p.executionsRunning} | ${p.allRunningThroughout ? 'yes' : 'NO'} (${s2(p.firstEndAfterWindowS ?? null)}) | ${r2(p.windowS)} | ${p.listExecutions} (${p.listExecutionsById} / ${p.listExecutionsByTag}) | ${r2(p.listExecutionsPerSecond)} | ${r2(p.nominalRounds)} | ${r2(p.listExecutionsPerNominalRound)} | ${r2(p.measuredRounds)} | ${r2(p.listExecutionsPerMeasuredRound)} | ${Object.entries(
              p.callsInWindow,
            )
              .sort()
              .map(([a, n]) => `${a} ${n}`)
              .join(', ')} |`,
      );
    }
  }
  for (const r of results.filter(isReaction)) {
    lines.push(
      '',
      `## Reaction latency (${r.scenario.name})`,
      '',
      `\`small\` (${r.scenario.smallInstances} instances) alternates \`parameters.version\` between 18 and 20 (both AllowedValues), so every change needs a reinstall. Per sample: PATCH returned → the emulator receives the first StartExecution whose execution is tagged \`${OWNER_TAG}=<ns>.small\` (receipt = the request's arrival in the emulator, before the ${LATENCY_MS} ms latency), then the bench waits for Ready at the new generation (watch) before the next change. Cases: idle = \`big\` absent; first-pass = \`big\` (${r.scenario.bigInstances} instances, package already installed via the emulator seed, \`interval: ${r.scenario.interval}\`) applied and its first reconcile reading its states (samples stop when it is Ready); drift = \`big\` was Ready and a periodic drift check reads its states again. Samples with \`big\` are taken only while its ListInstancePackageStates flow (≥ 10 received in the last 2 s). qps ${r.scenario.qps}. Target: < 2 s while the drift check runs.`,
      '',
      '| case | samples | → StartExecution p50 / p99 / max (s) | no StartExecution within 120 s | → Ready p50 / p99 (s) | big state reads per s during the case |',
      '|---|---|---|---|---|---|',
    );
    for (const c of r.cases) {
      lines.push(
        `| ${c.case} | ${c.samples.length} | ${s2(c.startP50S)} / ${s2(c.startP99S)} / ${s2(c.startMaxS)} | ${c.missed} | ${s2(c.readyP50S)} / ${s2(c.readyP99S)} | ${r2(c.bigReadsPerS)} |`,
      );
    }
    lines.push(
      '',
      ...r.cases
        .filter((c) => c.case !== 'idle')
        .map(
          (c) =>
            `Per sample (${c.case}): → StartExecution s [big reads / small reads received meanwhile]: ${c.samples
              .map(
                (s) =>
                  `${s.toStartMs === null ? '—' : r2(s.toStartMs / 1000)} [${s.bigReadsDuring}/${s.smallReadsDuring}]`,
              )
              .join(', ')}`,
        )
        .flatMap((line) => [line, '']),
      `big: ${r.bigStartExecutions} StartExecution(s) (its package was already installed: floor 0), Ready ${r.bigReady ? `after ${s2(r.bigReadyAfterS)} s` : 'not within the run'}. Idle / peak RSS ${Math.round(r.idleRssMb)} / ${Math.round(r.peakRssMb)} MiB, CPU ${r2(r.cpuS)} s. Calls from big's apply to the end: ${Object.entries(
        r.callsWithBig,
      )
        .sort()
        .map(([a, n]) => `${a} ${n}`)
        .join(', ')}.${r.note ? ` Note: ${r.note}.` : ''}`,
    );
  }
  if (converge.length > 0) {
    lines.push('', '## Calls by action', '');
    for (const r of converge) {
      lines.push(
        `- **${r.scenario.name}**: ${Object.entries(r.calls)
          .sort()
          .map(([a, n]) => `${a} ${n}`)
          .join(', ')}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

/** Compiles the controller and returns its cli.js and a description of what was built. */
function buildController(dir: string): { cli: string; describe: string } {
  const build =
    dir === REPO_ROOT
      ? spawnSync('npm', ['run', '--silent', 'build'], { cwd: dir, stdio: 'inherit' })
      : spawnSync(
          process.execPath,
          [join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
          {
            cwd: dir,
            stdio: 'inherit',
          },
        );
  if (build.status !== 0) throw new Error(`building the controller in ${dir} failed`);
  // What `npm run build` copies besides tsc's output (e.g. the AppRelease wrapper.sh), if any.
  if (dir !== REPO_ROOT)
    cpSync(join(dir, 'src'), join(dir, 'dist/src'), {
      recursive: true,
      filter: (p) => statSync(p).isDirectory() || p.endsWith('.sh'),
    });
  const cli = join(dir, 'dist/src/cli.js');
  if (!existsSync(cli)) throw new Error(`${cli} missing after the build`);
  let describe = dir === REPO_ROOT ? 'the working tree' : `\`${dir}\``;
  if (dir === REPO_ROOT) {
    const head = spawnSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: dir,
      encoding: 'utf8',
    }).stdout.trim();
    const dirty = spawnSync('git', ['status', '--porcelain', '--', 'src'], {
      cwd: dir,
      encoding: 'utf8',
    }).stdout.trim();
    describe = `the working tree at ${head}${dirty ? ' with uncommitted changes under src/' : ''}`;
  } else if (existsSync(join(dir, '.bench-commit'))) {
    describe = `commit ${readFileSync(join(dir, '.bench-commit'), 'utf8').trim()} (exported to ${dir})`;
  }
  return { cli, describe };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const arg = (name: string): string | undefined =>
    args.includes(name) ? args[args.indexOf(name) + 1] : undefined;
  const only = arg('--only')?.split(',');
  const all = [...SCENARIOS, ...SLOW];
  if (only) {
    const unknown = only.filter((n) => !all.some((s) => s.name === n));
    if (unknown.length > 0)
      throw new Error(
        `unknown scenario(s) ${unknown.join(', ')}; known: ${all.map((s) => s.name).join(', ')}`,
      );
  }
  // --only picks from every scenario (slow ones too); without it: the default set, plus SLOW with --slow.
  const bigOverride = arg('--reaction-big');
  const samplesOverride = arg('--reaction-samples');
  const scenarios = (
    only ? all.filter((s) => only.includes(s.name)) : [...SCENARIOS, ...(args.includes('--slow') ? SLOW : [])]
  ).map((s) =>
    s.kind === 'reaction'
      ? {
          ...s,
          ...(bigOverride ? { bigInstances: Number(bigOverride) } : {}),
          ...(samplesOverride ? { samples: Number(samplesOverride) } : {}),
        }
      : s,
  );
  const controllerDir = resolve(arg('--controller-dir') ?? REPO_ROOT);
  const outDir = resolve(arg('--out') ?? join(REPO_ROOT, 'bench/results'));
  const { cli, describe } = buildController(controllerDir);
  const run: RunOptions = {
    cli,
    emulatorInProcess: args.includes('--emulator-in-process'),
    keepRequestLog: args.includes('--keep-request-log'),
  };
  const meta = { controller: describe, emulatorInProcess: run.emulatorInProcess };
  const cp = await startControlPlane();
  try {
    const kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    // Every kind's CRD: the controller starts its workers only once every informer has synced.
    for (const f of readdirSync(join(REPO_ROOT, 'crds')).filter((x) => x.startsWith('ecsops.io_'))) {
      await applyYaml(kc, readFileSync(join(REPO_ROOT, 'crds', f), 'utf8'));
    }
    await sleep(2_000);
    const results: AnyResult[] = [];
    for (const sc of scenarios) {
      process.stdout.write(`[bench] ${sc.name} …\n`);
      const r =
        sc.kind === 'reaction' ? await runReaction(cp, kc, sc, run) : await runScenario(cp, kc, sc, run);
      process.stdout.write(`[bench] ${sc.name}: ${JSON.stringify({ ...r, calls: undefined })}\n`);
      results.push(r);
    }
    mkdirSync(outDir, { recursive: true });
    const suffix = only ? `-${only.join('_')}` : '';
    const emulator = run.emulatorInProcess ? 'in the bench process' : 'own process';
    writeFileSync(
      join(outDir, `daemon${suffix}.json`),
      `${JSON.stringify(
        results.map((r) => ({ ...r, controller: describe, emulator })),
        null,
        2,
      )}\n`,
    );
    writeFileSync(join(outDir, `daemon${suffix}.md`), report(results, meta));
    process.stdout.write(report(results, meta));
  } finally {
    await cp.stop();
  }
}

await main();
