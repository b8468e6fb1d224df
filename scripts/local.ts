/**
 * `npm run local`: the whole product on this machine with nothing installed.
 *
 * Starts a real kube-apiserver + etcd (built from Go modules, cached), the OOS/ECS emulator with
 * the demo fleet (deploy/emulator/fleet.yaml), and the real controller; applies crds/ and the
 * examples (deploy/examples/ecsextension.yaml, maintenancewindow.yaml, patchpolicy.yaml,
 * apprelease.yaml); prints progress
 * until each example is Ready; then keeps
 * running (kubeconfig path and metrics URL printed) until Ctrl-C, which cleans everything up.
 *
 * Everything of a run lives in its own temp dir, `ecsops-local-XXXXXX` in the OS temp dir: the
 * control plane's `ecsops-cp-*` dir and `sandbox/`. For the AppRelease example the emulator runs in
 * sandbox mode (RunShellScript commands really run with bash on this machine, one directory per
 * instance under `sandbox/`) and deploy/examples/artifacts/ is served on http://127.0.0.1:8090/
 * (--artifact-port). The example is applied with its artifact URL's port and its appDir's root
 * replaced by this run's, so concurrent runs do not share state and any port works.
 *
 * The AppRelease example is metric-gated (`spec.analysis`, issue 22): with this run's Prometheus
 * (see --prometheus) its `analysis.prometheus.url` on 127.0.0.1 is replaced by that Prometheus'
 * URL, and a light bounded traffic loop (test/harness/traffic.ts) sends requests to the demo app on
 * every instance so the error rate the gate measures is real; without Prometheus the example is
 * applied without `spec.analysis`, and the run says so.
 *
 * Ctrl-C (SIGINT) or SIGTERM at any moment stops whatever was started so far (controller,
 * emulator, etcd, kube-apiserver) and removes the run's temp dir; during start-up the exit code is
 * then 130 (143 for SIGTERM). Once everything is Ready, Ctrl-C is the normal way to stop (exit
 * code 0). A second signal more than a second after the first exits at once. Should this process
 * die without cleaning up (the `tsx` CLI SIGKILLs its child when the child does not acknowledge a
 * forwarded signal within about 60 ms, e.g. while start-up blocks the event loop), a guard process
 * kills what still runs from the run's temp dir and removes it.
 *
 * Flags: --exit-when-ready (stop once the example is Ready; used by CI), --time-scale N
 * (emulator speed, default 0.05), --metrics-port N (default 8080), --probe-port N (default 8081),
 * --artifact-port N (default 8090), --timeout SECONDS (give up waiting for Ready; default 300),
 * --ram-policy FILE|generated (the emulator enforces that RAM policy; `generated` = the policy of
 * src/cloud/ram-actions.ts, docs/deploy.md §4), --prometheus / --no-prometheus (a real Prometheus
 * scraping the demo app on the AppRelease example's instances every second, its URL printed;
 * default: on when `npm run tools:build` has built it, see test/harness/prometheus.ts).
 * A default port that is already taken (e.g. by another `npm run local`) is replaced by a free
 * one, and the run says so; a port given on the command line is used as given (0 = a free one).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, normalize } from 'node:path';
import { Command } from 'commander';
import { KubeConfig } from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import { parseConfig } from '../src/config.js';
import { loadRamPolicy } from '../src/emulator/cli.js';
import {
  appReleaseBootScript,
  DEMO_ACCESS_KEY,
  loadSeedFile,
  startEmulator,
  type EmulatorControl,
} from '../src/emulator/index.js';
import { startController, type RunningController } from '../src/main.js';
import { createLogger } from '../src/runtime/logger.js';
import { startControlPlane } from '../test/harness/controlplane.js';
import { applyYaml, kubeRequestRaw } from '../test/harness/kube-raw.js';
import { REPO_ROOT } from '../test/harness/paths.js';
import { emulatorTargets, prometheusTool, startPrometheus } from '../test/harness/prometheus.js';
import { startTraffic } from '../test/harness/traffic.js';

const say = (s: string): void => void process.stdout.write(`[local] ${s}\n`);

/** Why the run stops early: the signal it got. */
class Interrupted extends Error {
  constructor(readonly sig: NodeJS.Signals) {
    super(`interrupted by ${sig}`);
  }
}

const exitCodeOf = (sig: NodeJS.Signals): number => (sig === 'SIGTERM' ? 143 : 130);

/** Aborted by the first SIGINT/SIGTERM; start-up stops at its next step and cleans up. */
const interrupted = new AbortController();
/** Set once the run is tearing down (after Ready, a failure or an interruption). */
let stopping = false;
/** Host directories to remove even on a forced exit (the run's temp dir). */
const dirs: string[] = [];
let firstSignalAt = 0;
/**
 * Where the controller logs (stdout); muted once the run is interrupted, when its errors are only
 * about the control plane going away (a terminal's Ctrl-C stops etcd and kube-apiserver too).
 */
const controllerLog = {
  muted: false,
  write(line: string): void {
    if (!this.muted) process.stdout.write(line);
  },
};

/**
 * SIGINT/SIGTERM, installed before anything is started. The first one aborts the run: `main()`
 * stops at its next step and the stack is torn down in reverse order. A terminal's Ctrl-C reaches
 * every process of the group and `npm run` forwards it again, so a repeat within a second is the
 * same Ctrl-C; a later one forces the exit (the control plane's exit hook SIGKILLs etcd and
 * kube-apiserver and removes its dir; the exit hook below removes the run's temp dir).
 */
function onSignal(sig: NodeJS.Signals): void {
  if (!interrupted.signal.aborted) {
    firstSignalAt = Date.now();
    controllerLog.muted = true;
    if (!stopping) say(`${sig}: stopping and removing everything started so far`);
    interrupted.abort(new Interrupted(sig));
    return;
  }
  if (Date.now() - firstSignalAt < 1000) return;
  say(`${sig} again: exiting at once`);
  process.exit(exitCodeOf(sig));
}

process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
process.on('exit', () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/**
 * The guard: a detached plain-Node process that waits for this process to end (its stdin, a pipe
 * only this process holds, closes on any exit, SIGKILL included), then SIGKILLs every process whose
 * command line names `dir` (etcd, kube-apiserver; sandboxed scripts with their process groups),
 * waits until they are gone and removes `dir`. After a normal stop it finds nothing to do. Linux
 * only (/proc), as the project.
 */
const GUARD_SOURCE = `
const { readdirSync, readFileSync, rmSync } = require('node:fs');
const dir = process.argv[1];
const gone = (pid) => {
  try {
    const stat = readFileSync('/proc/' + pid + '/stat', 'utf8');
    return stat[stat.lastIndexOf(')') + 2] === 'Z';
  } catch {
    return true;
  }
};
process.on('SIGINT', () => undefined);
process.stdin.on('data', () => undefined);
process.stdin.on('close', () => {
  const pids = [];
  for (const p of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(p) || Number(p) === process.pid) continue;
    try {
      if (readFileSync('/proc/' + p + '/cmdline', 'utf8').includes(dir)) pids.push(Number(p));
    } catch {}
  }
  for (const pid of pids) {
    try {
      // a group leader (a sandboxed script) goes with its group (its children)
      const stat = readFileSync('/proc/' + pid + '/stat', 'utf8');
      const pgid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
      process.kill(pgid === pid ? -pid : pid, 'SIGKILL');
    } catch {}
  }
  const deadline = Date.now() + 5000;
  const finish = () => {
    if (pids.some((p) => !gone(p)) && Date.now() < deadline) return setTimeout(finish, 50);
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  };
  finish();
});
`;

/** Starts the guard of `dir` (best effort: without it only a SIGKILL of this process would leak). */
function guard(dir: string): void {
  const child = spawn(process.execPath, ['-e', GUARD_SOURCE, dir], {
    detached: true, // its own process group and session: a terminal's Ctrl-C does not reach it
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  child.on('error', () => undefined);
  child.stdin?.on('error', () => undefined);
  (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  child.unref();
}

/** `p`, or a rejection as soon as the run is interrupted (for steps that cannot be cancelled). */
function untilInterrupted<T>(p: Promise<T>): Promise<T> {
  const { signal } = interrupted;
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err as Error);
      },
    );
  });
}

const sleep = (ms: number): Promise<void> => untilInterrupted(new Promise((r) => setTimeout(r, ms)));

const program = new Command('local')
  .option('--exit-when-ready', 'stop once the example is Ready (CI smoke run)', false)
  .option('--time-scale <n>', 'emulator time scale (1 = real OOS durations)', '0.05')
  .option('--metrics-port <n>', 'controller metrics port (a free one when the default is taken)', '8080')
  .option(
    '--probe-port <n>',
    'controller /healthz /readyz port (a free one when the default is taken)',
    '8081',
  )
  .option('--artifact-port <n>', 'port serving deploy/examples/artifacts/ (AppRelease example)', '8090')
  .option('--timeout <seconds>', 'give up waiting for Ready after this many seconds', '300')
  .option('--ram-policy <file>', 'emulator enforces this RAM policy (JSON file, or "generated")')
  .option(
    '--prometheus',
    'start Prometheus scraping the demo app (default: when built by npm run tools:build)',
  )
  .option('--no-prometheus', 'do not start Prometheus')
  .parse(process.argv);
const opts = program.opts<{
  exitWhenReady: boolean;
  timeScale: string;
  metricsPort: string;
  probePort: string;
  artifactPort: string;
  timeout: string;
  ramPolicy?: string;
  /** undefined = when the binary is built; true = required; false = off. */
  prometheus?: boolean;
}>();
/** True when the port option was left at its default (so another free port may replace it). */
const defaulted = (name: 'metricsPort' | 'probePort' | 'artifactPort'): boolean =>
  program.getOptionValueSource(name) === 'default';

/**
 * The sandbox root deploy/examples/apprelease.yaml's appDir names. Each run has its own sandbox
 * directory and applies the example with this prefix replaced by it.
 */
const EXAMPLE_SANDBOX_DIR = '/tmp/ecsops-local';
/** The demo ALB in front of the AppRelease example's instances (fixed IDs, so manifests can name them). */
const DEMO_LOAD_BALANCER_ID = 'alb-ecsopsdemoweb';
/** The demo ALB's server group: deploy/examples/apprelease.yaml's spec.trafficControl names it. */
const DEMO_SERVER_GROUP_ID = 'sgp-ecsopsdemoweb';
/** Pause between two rounds of demo traffic (one request per instance per round), ms. */
const TRAFFIC_INTERVAL_MS = 500;
/** The traffic loop's time bound (it stops with the run anyway), ms. */
const TRAFFIC_MAX_MS = 24 * 3_600_000;
/** What the artifact server serves (URL path = path under this directory). */
const ARTIFACTS_DIR = join(REPO_ROOT, 'deploy/examples/artifacts');

const inUse = (err: unknown): boolean => (err as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE';

/**
 * Serves ARTIFACTS_DIR on 127.0.0.1:port (GET only, no directory listing, no path escape); when
 * `orFree` and the port is taken, on a free port instead.
 * @returns the port it listens on and a function that closes it.
 */
async function serveArtifacts(
  port: number,
  orFree: boolean,
): Promise<{ port: number; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    const rel = normalize(decodeURIComponent((req.url ?? '/').split('?')[0] ?? '/')).replace(/^\/+/, '');
    if (req.method !== 'GET' || rel.startsWith('..') || rel === '' || rel === '.') {
      res.writeHead(404).end();
      return;
    }
    try {
      res
        .writeHead(200, { 'content-type': 'application/octet-stream' })
        .end(readFileSync(join(ARTIFACTS_DIR, rel)));
    } catch {
      res.writeHead(404).end();
    }
  });
  const listen = (p: number): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(p, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  try {
    await listen(port);
  } catch (err) {
    if (!orFree || !inUse(err)) throw err;
    say(`port ${port} is taken (another npm run local?); serving the artifacts on a free port instead`);
    await listen(0);
  }
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : port,
    close: () =>
      new Promise((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

/** Server-side applies every document of YAML text (CRDs or custom resources). */
async function applyText(kc: KubeConfig, text: string): Promise<void> {
  for (const { doc } of await applyYaml(kc, text, 'ecsops-local')) {
    say(
      `applied ${doc.kind} ${doc.metadata.namespace ? `${doc.metadata.namespace}/` : ''}${doc.metadata.name}`,
    );
  }
}

/**
 * An example file's text with its host-specific values pointed at this run: an AppRelease's
 * artifact URL on 127.0.0.1 gets this run's artifact port, an appDir under
 * {@link EXAMPLE_SANDBOX_DIR} moves under this run's sandbox dir, and an `analysis.prometheus.url`
 * on 127.0.0.1 becomes this run's Prometheus URL (`spec.analysis` is removed when the run has no
 * Prometheus). Files without an AppRelease are returned as they are.
 */
function localizeExample(
  text: string,
  run: { artifactPort: number; sandboxDir: string; prometheusUrl: string | undefined },
): string {
  type Doc = {
    kind?: string;
    spec?: {
      artifact?: { url?: string };
      install?: { appDir?: string };
      analysis?: { prometheus?: { url?: string } };
    };
  } | null;
  const docs = parseAllDocuments(text).map((d) => d.toJS() as Doc);
  if (!docs.some((d) => d?.kind === 'AppRelease')) return text;
  for (const d of docs) {
    if (d?.kind !== 'AppRelease' || !d.spec) continue;
    const artifact = d.spec.artifact;
    if (artifact?.url) {
      const url = new URL(artifact.url);
      if (url.hostname === '127.0.0.1') {
        url.port = String(run.artifactPort);
        artifact.url = url.toString();
      }
    }
    const install = d.spec.install;
    if (install?.appDir?.startsWith(`${EXAMPLE_SANDBOX_DIR}/`)) {
      install.appDir = run.sandboxDir + install.appDir.slice(EXAMPLE_SANDBOX_DIR.length);
    }
    const prometheus = d.spec.analysis?.prometheus;
    if (prometheus?.url && new URL(prometheus.url).hostname === '127.0.0.1') {
      if (run.prometheusUrl) prometheus.url = run.prometheusUrl;
      else delete d.spec.analysis; // nothing to measure: an unreachable gate would hold the rollout
    }
  }
  return docs
    .filter((d) => d !== null)
    .map((d) => stringify(d))
    .join('---\n');
}

/**
 * The demo fleet: the instances deploy/examples/apprelease.yaml targets (its `targets.tags`, in its
 * region), the app port (its install.env.PORT, default 8080) and its `install.appDir`.
 */
async function demoFleet(
  control: EmulatorControl,
): Promise<{ regionId: string; port: number; appDir: string; instances: Set<string> }> {
  type Example = {
    kind?: string;
    spec?: {
      regionId?: string;
      targets?: { tags?: Array<{ key: string; value?: string }> };
      install?: { env?: Record<string, string>; appDir?: string };
    };
  } | null;
  const example = parseAllDocuments(readFileSync(join(REPO_ROOT, 'deploy/examples/apprelease.yaml'), 'utf8'))
    .map((d) => d.toJS() as Example)
    .find((d) => d?.kind === 'AppRelease');
  const regionId = example?.spec?.regionId ?? 'cn-hangzhou';
  const port = Number(example?.spec?.install?.env?.['PORT'] ?? 8080);
  const tags = example?.spec?.targets?.tags ?? [];
  const instances = new Set(
    (await control.listInstances(regionId))
      .filter((i) =>
        tags.every((t) => t.key in i.tags && (t.value === undefined || i.tags[t.key] === t.value)),
      )
      .map((i) => i.instanceId),
  );
  return { regionId, port, appDir: example?.spec?.install?.appDir ?? '', instances };
}

/**
 * Puts the demo fleet ({@link demoFleet}) behind one emulated ALB: server group
 * {@link DEMO_SERVER_GROUP_ID}, each instance on the app port with weight 100; the ALB's own health
 * checks GET /healthz. Also installs each instance's boot hook (`<sandbox>/<instance ID>/boot.sh`,
 * see docs/emulator.md "Load balancers"): after a patch reboot the current AppRelease revision
 * starts again, as a systemd unit would.
 * @returns the ALB's URL.
 */
async function startDemoLoadBalancer(control: EmulatorControl, sandboxDir: string): Promise<string> {
  const { regionId, port, appDir, instances } = await demoFleet(control);
  for (const id of instances) {
    const dir = join(sandboxDir, id);
    mkdirSync(dir, { recursive: true });
    const own = (sandboxDir + appDir.slice(EXAMPLE_SANDBOX_DIR.length)).replaceAll('{{ACS::InstanceId}}', id);
    writeFileSync(join(dir, 'boot.sh'), appReleaseBootScript(own, 'web'));
  }
  const lb = await control.createLoadBalancer({
    type: 'ALB',
    regionId,
    loadBalancerId: DEMO_LOAD_BALANCER_ID,
    serverGroupId: DEMO_SERVER_GROUP_ID,
    // GET /healthz every second, healthy after 2 passes: a batch is back in rotation quickly.
    healthCheck: { intervalSeconds: 1, healthyThreshold: 2, unhealthyThreshold: 2 },
    backends: [...instances].map((instanceId) => ({ instanceId, port, weight: 100 })),
  });
  say(
    `ALB ${lb.loadBalancerId} (server group ${lb.serverGroupId}: ${instances.size} instances on port ${port}, weight 100) at ${lb.url}; health checks GET /healthz`,
  );
  return lb.url;
}

/**
 * Starts a real Prometheus (unless --no-prometheus; without --prometheus only when its binary is
 * built) scraping the demo app on the AppRelease example's target instances (the example's
 * `targets.tags`, its region, its install.env.PORT) every second, with its dir under `runDir`
 * (the guard's), and a traffic loop to the same instances (`/`, {@link TRAFFIC_INTERVAL_MS} between
 * rounds, bounded by {@link TRAFFIC_MAX_MS}) so the app's request and error counters move.
 * @returns its URL, or undefined when not started.
 * @throws Error with --prometheus when the binary is missing or Prometheus does not start.
 */
async function startDemoPrometheus(control: EmulatorControl, runDir: string): Promise<string | undefined> {
  if (opts.prometheus === false) return undefined;
  const tool = prometheusTool({ quiet: true });
  if (!tool.path) {
    if (opts.prometheus) throw new Error(tool.reason);
    say('prometheus: not built (npm run tools:build builds it), so not started');
    return undefined;
  }
  const { regionId, port, instances } = await demoFleet(control);
  const targets = (await emulatorTargets(control, regionId, port)).filter((t) =>
    instances.has(t.labels?.['instance_id'] ?? ''),
  );
  const prom = await startPrometheus({ binary: tool.path, targets, parentDir: runDir });
  cleanups.push(() => prom.stop());
  say(
    `prometheus ready at ${prom.url} (pid ${prom.pid}), scraping the demo app on ${targets.length} instances every ${prom.scrapeIntervalSeconds} s (job web; labels instance_id, zone_id)`,
  );
  const traffic = startTraffic({
    targets: targets.map((t) => `http://${t.address}`),
    intervalMs: TRAFFIC_INTERVAL_MS,
    durationMs: TRAFFIC_MAX_MS,
    maxRequests: Math.ceil((TRAFFIC_MAX_MS / TRAFFIC_INTERVAL_MS) * targets.length),
    timeoutMs: 1000,
  });
  cleanups.push(async () => void (await traffic.stop()));
  say(
    `traffic: GET / to the demo app on each of these instances every ${TRAFFIC_INTERVAL_MS} ms (refused until it runs there), so the error rate the AppRelease's gate measures is real`,
  );
  return prom.url;
}

/**
 * `; gate batch-1 Successful: error-rate 2 measured, last 0` from an AppRelease's status.analysis
 * (the gate of its newest finished batch), or '' without one.
 */
function gateText(status: unknown): string {
  const a = (
    status as {
      analysis?: {
        runId?: string;
        phase?: string;
        metrics?: Array<{ name: string; successes: number; failures: number; lastValue?: string }>;
      };
    }
  ).analysis;
  if (!a) return '';
  const metrics = (a.metrics ?? []).map(
    (m) => `${m.name} ${m.successes + m.failures} measured${m.lastValue ? `, last ${m.lastValue}` : ''}`,
  );
  return `; gate ${a.runId?.split('/').at(-1) ?? '?'} ${a.phase ?? '?'}${metrics.length ? `: ${metrics.join('; ')}` : ''}`;
}

/** What was started, stopped in reverse order by `cleanup()`; each step at most once. */
const cleanups: Array<() => Promise<void>> = [];
async function cleanup(): Promise<void> {
  stopping = true;
  while (cleanups.length > 0) await (cleanups.pop() as () => Promise<void>)().catch(() => undefined);
}

async function main(): Promise<void> {
  const started = Date.now();
  // This run's own temp dir: concurrent runs on one machine never share or delete each other's.
  const runDir = mkdtempSync(join(tmpdir(), 'ecsops-local-'));
  dirs.push(runDir);
  guard(runDir);
  cleanups.push(async () => rmSync(runDir, { recursive: true, force: true }));
  say(`temp dir ${runDir} (control plane state, sandbox)`);
  say('starting kube-apiserver + etcd (first run builds them from Go modules: several minutes)');
  const cp = await startControlPlane({ signal: interrupted.signal, parentDir: runDir });
  cleanups.push(() => cp.stop());
  say(
    `control plane ready at ${cp.server} (${Date.now() - started} ms; etcd + kube-apiserver pids ${cp.pids.join(', ')}, state in ${cp.dir})`,
  );
  interrupted.signal.throwIfAborted();
  const kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);

  const sandboxDir = join(runDir, 'sandbox');
  mkdirSync(sandboxDir);
  const seedFile = join(REPO_ROOT, 'deploy/emulator/fleet.yaml');
  const emu = await startEmulator({
    seed: await loadSeedFile(seedFile),
    timeScale: Number(opts.timeScale),
    sandbox: { rootDir: sandboxDir },
    ...(opts.ramPolicy
      ? {
          ramPolicy: await loadRamPolicy(opts.ramPolicy),
        }
      : {}),
  });
  cleanups.push(() => emu.stop());
  say(`emulator ready at http://${emu.endpoint} (control API ${emu.controlUrl}), seeded from ${seedFile}`);
  say(`  sandbox mode: RunShellScript commands run with bash here, instance directories under ${sandboxDir}`);
  interrupted.signal.throwIfAborted();
  const artifacts = await serveArtifacts(Number(opts.artifactPort), defaulted('artifactPort'));
  cleanups.push(artifacts.close);
  say(`artifacts of deploy/examples/artifacts/ served at http://127.0.0.1:${artifacts.port}/`);
  interrupted.signal.throwIfAborted();
  const prometheusUrl = await untilInterrupted(startDemoPrometheus(emu.control, runDir));
  interrupted.signal.throwIfAborted();
  const albUrl = await untilInterrupted(startDemoLoadBalancer(emu.control, sandboxDir));
  interrupted.signal.throwIfAborted();

  for (const f of readdirSync(join(REPO_ROOT, 'crds')).filter(
    (f) => f.endsWith('.yaml') && f !== 'kustomization.yaml',
  )) {
    await untilInterrupted(applyText(kc, readFileSync(join(REPO_ROOT, 'crds', f), 'utf8')));
  }
  await sleep(1000); // let the CRDs become Established

  const controllerArgs = (metricsPort: string, probePort: string): string[] => [
    '--kubeconfig',
    cp.kubeconfigPath,
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
    '--execution-poll-min',
    '1s',
    '--execution-poll-max',
    '5s',
    '--log-level',
    process.env.LOG_LEVEL ?? 'warn',
  ];
  const start = (metricsPort: string, probePort: string): Promise<RunningController> => {
    const cfg = parseConfig(controllerArgs(metricsPort, probePort));
    return startController(cfg, {
      cloud: { credential: { accessKeyId: DEMO_ACCESS_KEY.id, accessKeySecret: DEMO_ACCESS_KEY.secret } },
      logger: createLogger({ level: cfg.logLevel, destination: controllerLog }),
    });
  };
  // Not cancellable (it waits for the informers' first sync): when interrupted meanwhile, the
  // teardown goes on without it; it is in this process, so exiting ends it.
  let controller: RunningController | undefined;
  cleanups.push(async () => controller?.stop());
  try {
    controller = await untilInterrupted(start(opts.metricsPort, opts.probePort));
  } catch (err) {
    if (!inUse(err) || !(defaulted('metricsPort') || defaulted('probePort'))) throw err;
    say(
      `port ${opts.metricsPort} or ${opts.probePort} is taken (another npm run local?); the controller listens on free ports instead`,
    );
    controller = await untilInterrupted(
      start(defaulted('metricsPort') ? '0' : opts.metricsPort, defaulted('probePort') ? '0' : opts.probePort),
    );
  }
  say(
    `controller running; metrics http://127.0.0.1:${controller.probes.metricsPort}/metrics, probes http://127.0.0.1:${controller.probes.probePort}/readyz`,
  );

  /** The demo's examples: each is applied, then followed until its object is Ready. */
  type Status = {
    summary?: Record<string, number>;
    conditions?: Array<{ type: string; status: string; reason: string; message: string }>;
  };
  const examples: Array<{ file: string; path: string; name: string; describe(s: Status): string }> = [
    {
      file: 'deploy/examples/ecsextension.yaml',
      path: '/apis/ecsops.io/v1alpha1/namespaces/default/ecsextensions/nodejs-web',
      name: 'nodejs-web',
      describe: (st) => {
        const s = st.summary;
        return s
          ? `installed ${s.installed}/${s.targeted}, in progress ${s.inProgress}, failed ${s.failed}, unreachable ${s.unreachable}`
          : 'no status yet';
      },
    },
    {
      file: 'deploy/examples/maintenancewindow.yaml',
      path: '/apis/ecsops.io/v1alpha1/namespaces/default/maintenancewindows/weekend',
      name: 'weekend',
      describe: (st) => {
        const w = st as { open?: boolean; nextOpen?: string };
        return `open ${w.open ?? '?'}, next opens at ${w.nextOpen ?? '?'}`;
      },
    },
    {
      file: 'deploy/examples/patchpolicy.yaml',
      path: '/apis/ecsops.io/v1alpha1/namespaces/default/patchpolicies/web-prod',
      name: 'web-prod',
      describe: (st) => {
        const s = st.summary;
        const c = st.conditions?.find((x) => x.type === 'Compliant');
        return s
          ? `compliant ${s.compliant}/${s.targeted}, non-compliant ${s.nonCompliant}, unscanned ${s.unscanned}, unreachable ${s.unreachable}; Compliant=${c?.status ?? '?'}`
          : 'no status yet';
      },
    },
    {
      file: 'deploy/examples/apprelease.yaml',
      path: '/apis/ecsops.io/v1alpha1/namespaces/default/appreleases/web',
      name: 'web',
      describe: (st) => {
        const s = st.summary;
        const phase = (st as { phase?: string }).phase ?? '?';
        return s
          ? `${phase}: updated ${s.updated}/${s.targeted}, in progress ${s.inProgress}, failed ${s.failed}, unreachable ${s.unreachable}${gateText(st)}`
          : 'no status yet';
      },
    },
  ];
  const deadline = Date.now() + Number(opts.timeout) * 1000;
  const getCommand = `KUBECONFIG=${cp.kubeconfigPath} npx tsx src/cli.ts get apprelease web --watch`;
  for (const ex of examples) {
    const text = localizeExample(readFileSync(join(REPO_ROOT, ex.file), 'utf8'), {
      artifactPort: artifacts.port,
      sandboxDir,
      prometheusUrl,
    });
    await untilInterrupted(applyText(kc, text));
    if (ex.name === 'web') {
      if (prometheusUrl && /^\s+analysis:/m.test(text)) {
        say(
          `web is metric-gated: after every batch its error rate in ${prometheusUrl} must stay < 5 % (spec.analysis); watch the gate with: ${getCommand} (status.analysis; Ready reason AnalysisInconclusive or AnalysisFailed when it holds or fails)`,
        );
      } else if (!prometheusUrl) {
        say(
          'web: applied without spec.analysis (no Prometheus in this run), so its rollout is not metric-gated',
        );
      }
    }
    let last = '';
    for (;;) {
      const obj = (await untilInterrupted(kubeRequestRaw(kc, 'GET', ex.path))) as { status?: Status };
      const ready = obj.status?.conditions?.find((c) => c.type === 'Ready');
      const line = `${ex.name} Ready=${ready?.status ?? '?'} ${ready?.reason ?? ''}: ${ex.describe(obj.status ?? {})}`;
      if (line !== last) say(line);
      last = line;
      if (ready?.status === 'True') break;
      if (Date.now() > deadline)
        throw new Error(
          `${ex.name} not Ready after ${opts.timeout} s: ${ready?.message ?? 'no Ready condition'}`,
        );
      await sleep(1000);
    }
  }
  say(`examples Ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (opts.exitWhenReady) return;

  say('');
  say('everything is running. Try:');
  say(`  export KUBECONFIG=${cp.kubeconfigPath}`);
  say(
    `  ${join(cp.binDir, 'kubectl')} get ecsextensions,patchpolicies,maintenancewindows,appreleases -A -o wide`,
  );
  say(`  ls ${sandboxDir}/*/web   # the AppRelease example's releases on the sandboxed instances`);
  say(`  curl -s ${albUrl}/   # the demo app through the emulated ALB (answers name version and instance)`);
  say(`  while sleep 0.5; do curl -s ${albUrl}/; done   # watch the versions change during a rollout`);
  say(`  curl -s http://127.0.0.1:${controller.probes.metricsPort}/metrics | grep ecsops_`);
  say(`  curl -s ${emu.controlUrl}/executions   # the emulator's view`);
  say(`  ${getCommand}   # the AppRelease as a tree${prometheusUrl ? ', with the gate of each batch' : ''}`);
  if (prometheusUrl) {
    say(`  curl -s '${prometheusUrl}/api/v1/query?query=sum+by+(instance_id)(rate(web_requests_total[1m]))'`);
  }
  say('Ctrl-C stops and removes everything.');
  // Ready: a signal is now the normal way to stop.
  await new Promise<void>((resolve) => {
    if (interrupted.signal.aborted) resolve();
    interrupted.signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

main().then(
  async () => {
    stopping = true;
    await cleanup();
    say('stopped; control plane processes and temp files removed');
    process.exit(0);
  },
  async (err: unknown) => {
    stopping = true;
    await cleanup();
    const reason: unknown = interrupted.signal.reason;
    if (reason instanceof Interrupted) {
      say(`interrupted before everything was Ready; control plane processes and temp files removed`);
      process.exit(exitCodeOf(reason.sig));
    }
    process.stderr.write(`[local] failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
