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
 * For the AppRelease example the emulator runs in sandbox mode (RunShellScript commands really run
 * with bash on this machine, one directory per instance under /tmp/ecsops-local/) and
 * deploy/examples/artifacts/ is served on http://127.0.0.1:8090/ (--artifact-port).
 *
 * Flags: --exit-when-ready (stop once the example is Ready; used by CI), --time-scale N
 * (emulator speed, default 0.05), --metrics-port N (default 8080), --probe-port N (default 8081),
 * --artifact-port N (default 8090; the port deploy/examples/apprelease.yaml downloads from),
 * --timeout SECONDS (give up waiting for Ready; default 300).
 */
import { mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { join, normalize } from 'node:path';
import { Command } from 'commander';
import { KubeConfig } from '@kubernetes/client-node';
import { parseConfig } from '../src/config.js';
import { DEMO_ACCESS_KEY, loadSeedFile, startEmulator } from '../src/emulator/index.js';
import { startController } from '../src/main.js';
import { createLogger } from '../src/runtime/logger.js';
import { startControlPlane } from '../test/harness/controlplane.js';
import { applyYaml, kubeRequestRaw } from '../test/harness/kube-raw.js';
import { REPO_ROOT } from '../test/harness/paths.js';

const program = new Command('local')
  .option('--exit-when-ready', 'stop once the example is Ready (CI smoke run)', false)
  .option('--time-scale <n>', 'emulator time scale (1 = real OOS durations)', '0.05')
  .option('--metrics-port <n>', 'controller metrics port', '8080')
  .option('--probe-port <n>', 'controller /healthz /readyz port', '8081')
  .option('--artifact-port <n>', 'port serving deploy/examples/artifacts/ (AppRelease example)', '8090')
  .option('--timeout <seconds>', 'give up waiting for Ready after this many seconds', '300')
  .parse(process.argv);
const opts = program.opts<{
  exitWhenReady: boolean;
  timeScale: string;
  metricsPort: string;
  probePort: string;
  artifactPort: string;
  timeout: string;
}>();

/** Host directories of the sandboxed instances (the AppRelease example's appDir lives here). */
const SANDBOX_DIR = '/tmp/ecsops-local';
/** What the artifact server serves (URL path = path under this directory). */
const ARTIFACTS_DIR = join(REPO_ROOT, 'deploy/examples/artifacts');

/** Serves ARTIFACTS_DIR on 127.0.0.1:port (GET only, no directory listing, no path escape). */
async function serveArtifacts(port: number): Promise<() => Promise<void>> {
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
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return () => new Promise((r) => server.close(() => r()));
}

const say = (s: string): void => void process.stdout.write(`[local] ${s}\n`);

/** Server-side applies every document of a YAML file (CRDs or custom resources). */
async function applyFile(kc: KubeConfig, file: string): Promise<void> {
  for (const { doc } of await applyYaml(kc, readFileSync(file, 'utf8'), 'ecsops-local')) {
    say(
      `applied ${doc.kind} ${doc.metadata.namespace ? `${doc.metadata.namespace}/` : ''}${doc.metadata.name}`,
    );
  }
}

const cleanups: Array<() => Promise<void>> = [];
async function cleanup(): Promise<void> {
  for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
}

async function main(): Promise<void> {
  const started = Date.now();
  say('starting kube-apiserver + etcd (first run builds them from Go modules: several minutes)');
  const cp = await startControlPlane();
  cleanups.push(() => cp.stop());
  say(`control plane ready at ${cp.server} (${Date.now() - started} ms)`);
  const kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);

  const seedFile = join(REPO_ROOT, 'deploy/emulator/fleet.yaml');
  rmSync(SANDBOX_DIR, { recursive: true, force: true });
  mkdirSync(SANDBOX_DIR, { recursive: true });
  cleanups.push(async () => rmSync(SANDBOX_DIR, { recursive: true, force: true }));
  const emu = await startEmulator({
    seed: await loadSeedFile(seedFile),
    timeScale: Number(opts.timeScale),
    sandbox: { rootDir: SANDBOX_DIR },
  });
  cleanups.push(() => emu.stop());
  say(`emulator ready at http://${emu.endpoint} (control API ${emu.controlUrl}), seeded from ${seedFile}`);
  say(
    `  sandbox mode: RunShellScript commands run with bash here, instance directories under ${SANDBOX_DIR}`,
  );
  cleanups.push(await serveArtifacts(Number(opts.artifactPort)));
  say(`artifacts of deploy/examples/artifacts/ served at http://127.0.0.1:${opts.artifactPort}/`);

  for (const f of readdirSync(join(REPO_ROOT, 'crds')).filter(
    (f) => f.endsWith('.yaml') && f !== 'kustomization.yaml',
  )) {
    await applyFile(kc, join(REPO_ROOT, 'crds', f));
  }
  await new Promise((r) => setTimeout(r, 1000)); // let the CRDs become Established

  const cfg = parseConfig([
    '--kubeconfig',
    cp.kubeconfigPath,
    '--leader-elect',
    'false',
    '--metrics-bind-address',
    `127.0.0.1:${opts.metricsPort}`,
    '--health-probe-bind-address',
    `127.0.0.1:${opts.probePort}`,
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
  ]);
  const controller = await startController(cfg, {
    cloud: { credential: { accessKeyId: DEMO_ACCESS_KEY.id, accessKeySecret: DEMO_ACCESS_KEY.secret } },
    logger: createLogger({ level: cfg.logLevel }),
  });
  cleanups.push(() => controller.stop());
  say(`controller running; metrics http://127.0.0.1:${controller.probes.metricsPort}/metrics`);

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
          ? `${phase}: updated ${s.updated}/${s.targeted}, in progress ${s.inProgress}, failed ${s.failed}, unreachable ${s.unreachable}`
          : 'no status yet';
      },
    },
  ];
  const deadline = Date.now() + Number(opts.timeout) * 1000;
  for (const ex of examples) {
    await applyFile(kc, join(REPO_ROOT, ex.file));
    let last = '';
    for (;;) {
      const obj = (await kubeRequestRaw(kc, 'GET', ex.path)) as { status?: Status };
      const ready = obj.status?.conditions?.find((c) => c.type === 'Ready');
      const line = `${ex.name} Ready=${ready?.status ?? '?'} ${ready?.reason ?? ''}: ${ex.describe(obj.status ?? {})}`;
      if (line !== last) say(line);
      last = line;
      if (ready?.status === 'True') break;
      if (Date.now() > deadline)
        throw new Error(
          `${ex.name} not Ready after ${opts.timeout} s: ${ready?.message ?? 'no Ready condition'}`,
        );
      await new Promise((r) => setTimeout(r, 1000));
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
  say(`  ls ${SANDBOX_DIR}/*/web   # the AppRelease example's releases on the sandboxed instances`);
  say(`  curl -s http://127.0.0.1:${controller.probes.metricsPort}/metrics | grep ecsops_`);
  say(`  curl -s ${emu.controlUrl}/executions   # the emulator's view`);
  say('Ctrl-C stops and removes everything.');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}

main()
  .then(async () => {
    await cleanup();
    say('stopped; control plane processes and temp files removed');
    process.exit(0);
  })
  .catch(async (err: unknown) => {
    process.stderr.write(`[local] failed: ${err instanceof Error ? err.message : String(err)}\n`);
    await cleanup();
    process.exit(1);
  });
