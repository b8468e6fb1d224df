/**
 * Shared parts of the chaos suite (test/chaos/run.ts): the compiled controller as an OS process
 * (`dist/src/cli.js`), raw Kubernetes helpers, a seeded PRNG, the duplicate-execution count from
 * the emulator's records, a TCP proxy that can cut the controller off the API server, and the
 * report lines. No vitest: the suite runs as a plain script, outside `npm test`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig } from '@kubernetes/client-node';
import { OWNER_UID_TAG } from '../../src/api/common.js';
import type { Emulator, ExecutionRecord, Seed } from '../../src/emulator/index.js';
import { mulberry32 } from '../../src/emulator/rng.js';
import type { ControlPlane } from '../harness/controlplane.js';
import { kubeRequestRaw } from '../harness/kube-raw.js';
import { REPO_ROOT } from '../harness/paths.js';

export const REGION = 'cn-hangzhou';
export const PKG = 'ACS-Extension-node-1853370294850618';
export const API = '/apis/ecsops.io/v1alpha1';

/** A seeded random source: floats, integers and picks, all replayable from `seed`. */
export class Rng {
  private readonly next: () => number;
  constructor(readonly seed: number) {
    this.next = mulberry32(seed);
  }
  /** Uniform float in [lo, hi). */
  float(lo = 0, hi = 1): number {
    return lo + this.next() * (hi - lo);
  }
  /** Uniform integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return Math.floor(this.float(lo, hi + 1));
  }
  /** One element of `xs`. */
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)] as T;
  }
}

/** A seed of `count` instances `i-<prefix>NNNN` tagged `fleet=<prefix>`. */
export function fleetSeed(prefix: string, count: number): Seed {
  return {
    regions: {
      [REGION]: { generate: [{ count, idPrefix: `i-${prefix}`, tags: [{ key: 'fleet', value: prefix }] }] },
    },
  };
}

/** {@link fleetSeed} with a package template whose `version` parameter takes any string (one per round). */
export function chaosSeed(prefix: string, count: number): Seed {
  return {
    ...fleetSeed(prefix, count),
    packageTemplates: [
      {
        name: PKG,
        versions: [{ version: 'v1', parameters: { version: { Type: 'String', Default: 'r0' } } }],
      },
    ],
  };
}

/** Instance IDs `i-<prefix>NNNN` for `from..to`, as the emulator generates them. */
export function ids(prefix: string, from: number, to: number): string[] {
  return Array.from({ length: to - from + 1 }, (_, i) => `i-${prefix}${String(from + i).padStart(4, '0')}`);
}

/** A KubeConfig loaded from `path` (admin context). */
export function kubeConfig(path: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

/** Kubernetes object as the chaos scripts read it. */
export interface Obj {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    generation?: number;
    finalizers?: string[];
    deletionTimestamp?: string;
  };
  spec?: Record<string, unknown>;
  status?: {
    observedGeneration?: number;
    conditions?: Array<{ type: string; status: string; reason?: string; message?: string }>;
    summary?: Record<string, number>;
  } & Record<string, unknown>;
}

/** Lists `plural` in `ns` (throws on API errors). */
export async function list(kc: KubeConfig, ns: string, plural: string): Promise<Obj[]> {
  const res = (await kubeRequestRaw(kc, 'GET', `${API}/namespaces/${ns}/${plural}`)) as { items?: Obj[] };
  return res.items ?? [];
}

/** Creates a namespace (ignores AlreadyExists). */
export async function createNamespace(kc: KubeConfig, ns: string): Promise<void> {
  await kubeRequestRaw(kc, 'POST', '/api/v1/namespaces', { metadata: { name: ns } }).catch((e: unknown) => {
    if ((e as { code?: number }).code !== 409) throw e;
  });
}

/** Creates an EcsExtension `name` in `ns` over `targets`, package parameter `version`. */
export async function createExtension(
  kc: KubeConfig,
  ns: string,
  name: string,
  instanceIds: string[],
  version: string,
  extra: Record<string, unknown> = {},
): Promise<Obj> {
  return (await kubeRequestRaw(kc, 'POST', `${API}/namespaces/${ns}/ecsextensions`, {
    apiVersion: 'ecsops.io/v1alpha1',
    kind: 'EcsExtension',
    metadata: { name },
    spec: {
      regionId: REGION,
      packageName: PKG,
      parameters: { version },
      targets: { instanceIds },
      ...extra,
    },
  })) as unknown as Obj;
}

/**
 * Creates `count` EcsExtensions `r0…r<count-1>` in `ns`, resource r over the instances
 * `i-<prefix>` numbered `r·per+1 … r·per+per`, all at `version`.
 * @returns the UIDs of the created objects (the owner tags of their executions).
 */
export async function createExtensions(
  kc: KubeConfig,
  ns: string,
  prefix: string,
  count: number,
  per: number,
  version: string,
): Promise<Set<string>> {
  return createOwners(count, (r) =>
    createExtension(kc, ns, `r${r}`, ids(prefix, r * per + 1, r * per + per), version),
  );
}

/**
 * Creates `count` objects, `create(r)` for r = 0…count−1, one after the other.
 * @returns their UIDs (the owner tags of their cloud calls).
 */
export async function createOwners(count: number, create: (r: number) => Promise<Obj>): Promise<Set<string>> {
  const owners = new Set<string>();
  for (let r = 0; r < count; r++) owners.add((await create(r)).metadata.uid ?? '');
  return owners;
}

/** Merge-patches an object's spec. */
export async function patchSpec(
  kc: KubeConfig,
  ns: string,
  plural: string,
  name: string,
  spec: Record<string, unknown>,
): Promise<void> {
  await kubeRequestRaw(
    kc,
    'PATCH',
    `${API}/namespaces/${ns}/${plural}/${name}`,
    { spec },
    'application/merge-patch+json',
  );
}

/** The condition `type` of `o`. */
export function cond(o: Obj | undefined, type: string) {
  return o?.status?.conditions?.find((c) => c.type === type);
}

/** Ready=True for the current generation. */
export function isReady(o: Obj): boolean {
  return cond(o, 'Ready')?.status === 'True' && o.status?.observedGeneration === o.metadata.generation;
}

/**
 * Polls `fn` until it returns a truthy value. @throws naming `what` after `timeoutMs`; API errors
 * while polling (an outage) are retried.
 */
export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | false | null>,
  timeoutMs: number,
  intervalMs = 300,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (err) {
      last = err instanceof Error ? err.message : err;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${String(last).slice(0, 500)}`);
}

/** The NODE_OPTIONS value the shipped Deployment sets (its V8 heap cap). */
export function shippedNodeOptions(): string {
  const text = readFileSync(join(REPO_ROOT, 'deploy/base/deployment.yaml'), 'utf8');
  // The whole value (it holds several flags), without YAML quotes.
  return (
    /name: NODE_OPTIONS\s+value: (.+)/
      .exec(text)?.[1]
      ?.trim()
      .replace(/^(['"])(.*)\1$/, '$2') ?? ''
  );
}

/** Options of {@link ControllerProc}. */
export interface ControllerOptions {
  kubeconfig: string;
  namespace: string;
  emu: Emulator;
  /** Replica identity (POD_NAME). */
  name?: string;
  /** Flags added after the defaults (later flags win). */
  extraArgs?: string[];
  /** Environment added over the defaults (credentials of the demo key unless given). */
  env?: NodeJS.ProcessEnv;
  logLevel?: string;
  /** Credentials for the emulator; default the demo pair. */
  accessKey?: { id: string; secret: string };
}

/**
 * The compiled controller (`node dist/src/cli.js controller`) as an OS process: JSON log lines
 * kept in memory, the metrics port from the start line, and a crash flag (any exit the script
 * did not ask for).
 */
export class ControllerProc {
  /** Every controller started and not yet reaped, so an interrupted run can stop them by PID. */
  static readonly live = new Set<ControllerProc>();
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  readonly metricsPort: Promise<number>;
  readonly startedAt = Date.now();
  private expected = false;
  private readonly exitP: Promise<{ code: number | null; signal: string | null }>;
  exit: { code: number | null; signal: string | null } | undefined;

  constructor(readonly opts: ControllerOptions) {
    const key = opts.accessKey ?? {
      id: 'emulator-demo-access-key-id',
      secret: 'emulator-demo-access-key-secret-not-real',
    };
    const args = [
      join(REPO_ROOT, 'dist/src/cli.js'),
      'controller',
      '--kubeconfig',
      opts.kubeconfig,
      '--namespace',
      opts.namespace,
      '--leader-elect',
      'false',
      '--metrics-bind-address',
      '127.0.0.1:0',
      '--health-probe-bind-address',
      '127.0.0.1:0',
      '--oos-endpoint',
      opts.emu.endpoint,
      '--ecs-endpoint',
      opts.emu.endpoint,
      '--cloud-protocol',
      'HTTP',
      '--execution-poll-min',
      '300ms',
      '--execution-poll-max',
      '2s',
      '--retry-base',
      '1s',
      '--retry-max',
      '4s',
      '--log-level',
      opts.logLevel ?? 'info',
      '--shutdown-timeout',
      '5s',
      ...(opts.extraArgs ?? []),
    ];
    this.child = spawn(process.execPath, args, {
      cwd: REPO_ROOT,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        NODE_OPTIONS: shippedNodeOptions(),
        ALIBABA_CLOUD_ACCESS_KEY_ID: key.id,
        ALIBABA_CLOUD_ACCESS_KEY_SECRET: key.secret,
        ALIBABA_CLOUD_ECS_METADATA_DISABLED: 'true',
        ALIBABA_CLOUD_CLI_PROFILE_DISABLED: 'true',
        ...(opts.name ? { POD_NAME: opts.name } : {}),
        ...opts.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let onPort: (p: number) => void = () => undefined;
    this.metricsPort = new Promise<number>((r) => (onPort = r));
    const take = (line: string): void => {
      this.lines.push(line);
      if (line.includes('"metricsPort"')) {
        try {
          const rec = JSON.parse(line) as { metricsPort?: number };
          if (typeof rec.metricsPort === 'number') onPort(rec.metricsPort);
        } catch {
          // not JSON
        }
      }
    };
    createInterface({ input: this.child.stdout! }).on('line', take);
    createInterface({ input: this.child.stderr! }).on('line', take);
    ControllerProc.live.add(this);
    this.exitP = new Promise((r) =>
      this.child.once('exit', (code, signal) => {
        ControllerProc.live.delete(this);
        this.exit = { code, signal };
        r(this.exit);
      }),
    );
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** True while the process runs. */
  get alive(): boolean {
    return this.exit === undefined;
  }

  /** True when the process exited without being asked to. */
  get crashed(): boolean {
    return this.exit !== undefined && !this.expected;
  }

  /** Sends `signal` and waits for the exit (SIGKILL after `graceMs`). */
  async kill(signal: NodeJS.Signals = 'SIGKILL', graceMs = 15_000): Promise<void> {
    this.expected = true;
    if (!this.alive) return;
    this.child.kill(signal);
    const t = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exitP;
    clearTimeout(t);
  }

  /** Waits for the exit. */
  exited(): Promise<{ code: number | null; signal: string | null }> {
    return this.exitP;
  }

  /** The last `n` log lines (for failure reports). */
  tail(n = 20): string {
    return this.lines.slice(-n).join('\n');
  }
}

/** GET /metrics of a controller. */
export async function metricsText(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
}

/** Sum of the samples of `name` whose labels include `labels`. */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

/** Peak RSS (VmHWM) of a live process in MiB, 0 when it is gone. */
export function peakRssMb(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

/** What a count of run keys found (one key per instance run). */
export interface RunTally {
  /** Instance runs (keys counted). */
  itemsRun: number;
  /** Keys run more than once, with the extra runs. */
  duplicates: number;
  examples: string[];
}

/** Counts run keys: a key seen n > 1 times is n − 1 duplicates. */
export function tallyRuns(keys: Iterable<string>): RunTally {
  const seen = new Map<string, number>();
  let itemsRun = 0;
  for (const key of keys) {
    itemsRun++;
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  const dups = [...seen.entries()].filter(([, n]) => n > 1);
  return {
    itemsRun,
    duplicates: dups.reduce((a, [, n]) => a + n - 1, 0),
    examples: dups.slice(0, 3).map(([k, n]) => `${k} ×${n}`),
  };
}

/** What the duplicate count found. */
export interface DuplicateReport extends RunTally {
  executions: number;
  /** Distinct ClientTokens among the executions (equal to `executions` unless OOS deduped wrongly). */
  tokens: number;
}

/** The run key of one execution item (an instance the execution ran on). */
export type RunKey = (e: ExecutionRecord, instanceId: string) => string;

/** (owner, action, package parameters, instance): one round of an EcsExtension is one parameter set. */
const byPackageParameters: RunKey = (e, instanceId) => {
  const p = e.parameters as { action?: string; parameters?: unknown };
  return `${e.tags[OWNER_UID_TAG]}|${p.action}|${JSON.stringify(p.parameters)}|${instanceId}`;
};

/**
 * Counts executions per run key (default: owner tag, action, package parameters, instance) from
 * the emulator's own records: each round (a spec generation with its own parameters) must run
 * every instance at most once, whatever the crashes. Loop items that were Skipped did not run;
 * failed items are not expected in these scenarios, so every repeat counts as a duplicate.
 */
export async function countDuplicates(
  emu: Emulator,
  owners?: Set<string>,
  keyOf: RunKey = byPackageParameters,
): Promise<DuplicateReport> {
  const all: ExecutionRecord[] = await emu.control.listExecutions({});
  const mine = all.filter((e) => {
    const o = e.tags[OWNER_UID_TAG];
    return o !== undefined && (!owners || owners.has(o));
  });
  const runs = mine.flatMap((e) =>
    e.items.filter((item) => item.status !== 'Skipped').map((item) => keyOf(e, item.instanceId)),
  );
  return {
    executions: mine.length,
    tokens: new Set(mine.map((e) => e.clientToken)).size,
    ...tallyRuns(runs),
  };
}

/**
 * A TCP proxy in front of the API server. `cut()` resets every open connection and refuses new
 * ones (a partition: watches drop, requests fail); `heal()` lets connections through again.
 */
export class TcpProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private blocked = false;
  port = 0;

  constructor(
    private readonly host: string,
    private readonly upstreamPort: number,
  ) {}

  /** Starts listening on an ephemeral port. */
  async start(): Promise<void> {
    this.server = createServer((client) => {
      if (this.blocked) {
        client.resetAndDestroy();
        return;
      }
      const up = connect(this.upstreamPort, this.host);
      this.sockets.add(client).add(up);
      const drop = (): void => {
        client.destroy();
        up.destroy();
        this.sockets.delete(client);
        this.sockets.delete(up);
      };
      client.on('error', drop).on('close', drop);
      up.on('error', drop).on('close', drop);
      client.pipe(up);
      up.pipe(client);
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as { port: number }).port;
  }

  /** Resets every connection and refuses new ones. */
  cut(): void {
    this.blocked = true;
    for (const s of this.sockets) s.resetAndDestroy();
    this.sockets.clear();
  }

  /** Accepts connections again. */
  heal(): void {
    this.blocked = false;
  }

  /** Closes the proxy and every connection. */
  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

/** A kubeconfig like `cp`'s whose server is `https://127.0.0.1:<port>` (the proxy). */
export function proxiedKubeconfig(cp: ControlPlane, port: number): string {
  const text = readFileSync(cp.kubeconfigPath, 'utf8');
  return text.replace(cp.server, `https://127.0.0.1:${port}`);
}

/** Compacts etcd at its current revision, so watches resuming from older versions get 410 Gone. */
export async function compactEtcd(cp: ControlPlane): Promise<number> {
  const head = (await (
    await fetch(`${cp.etcdUrl}/v3/kv/range`, {
      method: 'POST',
      body: JSON.stringify({ key: Buffer.from('/').toString('base64') }),
    })
  ).json()) as { header: { revision: string } };
  const revision = Number(head.header.revision);
  const res = await fetch(`${cp.etcdUrl}/v3/kv/compaction`, {
    method: 'POST',
    body: JSON.stringify({ revision: String(revision), physical: true }),
  });
  if (!res.ok) throw new Error(`etcd compaction failed: ${res.status} ${await res.text()}`);
  return revision;
}

/** One figure of the report. */
export interface Figure {
  id: string;
  title: string;
  /** The human-readable result line. */
  line: string;
  /** Gates the exit code: duplicates, leaks, crashes, no convergence. */
  pass: boolean;
  /** Shortfalls reported in the table without failing the run (targets the design cannot meet yet). */
  findings?: string[];
  seed: number;
  /** Seconds the scenario took. */
  seconds: number;
  details?: string[];
}
