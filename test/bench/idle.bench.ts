/**
 * Idle-memory benchmark:
 * `npx tsx test/bench/idle.bench.ts [--seconds 60] [--resources 10x100] [--interval 10m] [--tag t]
 * [--controller path/to/cli.js]`.
 *
 * The COMPILED controller (`npm run build` → dist/src/cli.js, or the file `--controller` names,
 * e.g. a bundle) runs as its own OS process against a real kube-apiserver + etcd
 * (test/harness/controlplane.ts) and the emulator, with the shipped NODE_OPTIONS
 * (deploy/base/deployment.yaml) unless `ECSOPS_BENCH_NODE_OPTIONS` overrides them.
 * Two phases, each sampled once a second for `--seconds` while /metrics is scraped every 15 s
 * (as Prometheus would):
 *  - idle: informers synced, nothing to reconcile (an empty namespace);
 *  - after work: `--resources` EcsExtensions (default 10 × 100 instances, `spec.interval`
 *    `--interval`, default 10m) converged at `--cloud-qps 1000` and all Ready: what the process
 *    keeps once the work is done (with a short interval, drift checks keep running).
 * Per phase it reports RSS (last, max of the samples, VmHWM so far), RssAnon / RssFile
 * (/proc/PID/status) and the V8 breakdown the controller's own default metrics expose
 * (`nodejs_heap_space_size_*_bytes`, `nodejs_external_memory_bytes`).
 * Results: bench/results/idle.md and .json (idle-<tag>.* with `--tag`). Every process it starts
 * is stopped by PID.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig } from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import { DEMO_ACCESS_KEY, startEmulator, type Seed } from '../../src/emulator/index.js';
import { freePort, startControlPlane } from '../harness/controlplane.js';
import { kubeRequestRaw } from '../harness/kube-raw.js';
import { REPO_ROOT } from '../harness/paths.js';

const REGION = 'cn-hangzhou';
const PKG = 'ACS-Extension-node-1853370294850618';
const MIB = 1024 * 1024;

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

interface ProcMem {
  rssMb: number;
  hwmMb: number;
  anonMb: number;
  fileMb: number;
  cpuS: number;
}

function procMem(pid: number): ProcMem {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    const ticks = Number(stat[11] ?? 0) + Number(stat[12] ?? 0);
    return {
      rssMb: kb('VmRSS'),
      hwmMb: kb('VmHWM'),
      anonMb: kb('RssAnon'),
      fileMb: kb('RssFile'),
      cpuS: ticks / 100,
    };
  } catch {
    return { rssMb: 0, hwmMb: 0, anonMb: 0, fileMb: 0, cpuS: 0 };
  }
}

/** The V8 figures of the controller's default metrics, in MiB. */
interface V8Mem {
  heapUsed: number;
  heapTotal: number;
  external: number;
  spaces: Record<string, { used: number; size: number }>;
}

function scrape(port: number): Promise<V8Mem> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => {
        const v = (name: string): number =>
          Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(body)?.[1] ?? 0) / MIB;
        const spaces: V8Mem['spaces'] = {};
        for (const m of body.matchAll(
          /^nodejs_heap_space_size_(used|total)_bytes\{space="(\w+)"\} (\S+)$/gm,
        )) {
          const [, kind, space, value] = m as unknown as [string, string, string, string];
          const s = (spaces[space] ??= { used: 0, size: 0 });
          if (kind === 'used') s.used = Number(value) / MIB;
          else s.size = Number(value) / MIB;
        }
        resolve({
          heapUsed: v('nodejs_heap_size_used_bytes'),
          heapTotal: v('nodejs_heap_size_total_bytes'),
          external: v('nodejs_external_memory_bytes'),
          spaces,
        });
      });
    }).on('error', reject);
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

interface Phase {
  name: string;
  seconds: number;
  last: ProcMem;
  maxRssMb: number;
  v8: V8Mem;
}

/** Samples `pid` once a second for `seconds`, scraping /metrics every 15 s; returns the summary. */
async function sample(name: string, pid: number, metricsPort: number, seconds: number): Promise<Phase> {
  let maxRssMb = 0;
  let v8 = await scrape(metricsPort);
  for (let s = 1; s <= seconds; s++) {
    await sleep(1_000);
    if (s % 15 === 0) v8 = await scrape(metricsPort);
    maxRssMb = Math.max(maxRssMb, procMem(pid).rssMb);
  }
  return { name, seconds, last: procMem(pid), maxRssMb, v8 };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const arg = (name: string, dflt: string): string =>
    args.includes(name) ? (args[args.indexOf(name) + 1] ?? dflt) : dflt;
  const seconds = Number(arg('--seconds', '60'));
  const interval = arg('--interval', '10m');
  const [resources, perResource] = arg('--resources', '10x100').split('x').map(Number) as [number, number];
  const nodeOptions = process.env.ECSOPS_BENCH_NODE_OPTIONS ?? shippedNodeOptions();
  const tag = args.includes('--tag') ? `-${arg('--tag', '')}` : '';

  const controller = args.includes('--controller') ? arg('--controller', '') : undefined;
  if (!controller) {
    const build = spawnSync('npm', ['run', '--silent', 'build'], { cwd: REPO_ROOT, stdio: 'inherit' });
    if (build.status !== 0) throw new Error('npm run build failed');
  }
  const cp = await startControlPlane();
  const distinct = resources * perResource;
  const seed: Seed = {
    regions: {
      [REGION]: {
        generate: [
          { count: Math.max(1, distinct), idPrefix: 'i-idle', tags: [{ key: 'fleet', value: 'idle' }] },
        ],
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
  const emu = await startEmulator({ seed, timeScale: 0.01 });
  let child: ChildProcess | undefined;
  try {
    const kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    for (const f of readdirSync(join(REPO_ROOT, 'crds')).filter((x) => x.startsWith('ecsops.io_'))) {
      await applyYaml(kc, readFileSync(join(REPO_ROOT, 'crds', f), 'utf8'));
    }
    const ns = 'bench-idle';
    await applyYaml(kc, stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }));
    await sleep(2_000);
    const metricsPort = await freePort();
    child = spawn(
      process.execPath,
      [
        controller ?? join(REPO_ROOT, 'dist/src/cli.js'),
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
        '127.0.0.1:0',
        '--oos-endpoint',
        emu.endpoint,
        '--ecs-endpoint',
        emu.endpoint,
        '--cloud-protocol',
        'HTTP',
        '--cloud-qps',
        '1000',
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
          NODE_OPTIONS: nodeOptions,
          ALIBABA_CLOUD_ACCESS_KEY_ID: DEMO_ACCESS_KEY.id,
          ALIBABA_CLOUD_ACCESS_KEY_SECRET: DEMO_ACCESS_KEY.secret,
          ALIBABA_CLOUD_ECS_METADATA_DISABLED: 'true',
          ALIBABA_CLOUD_CLI_PROFILE_DISABLED: 'true',
        },
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
    const pid = child.pid as number;
    await sleep(5_000); // informers synced, probe servers up
    process.stdout.write(`[idle] idle phase (${seconds} s) …\n`);
    const phases: Phase[] = [await sample('idle (no resources)', pid, metricsPort, seconds)];

    if (resources > 0) {
      const docs = Array.from({ length: resources }, (_, r) =>
        stringify({
          apiVersion: 'ecsops.io/v1alpha1',
          kind: 'EcsExtension',
          metadata: { name: `r${r}`, namespace: ns },
          spec: {
            regionId: REGION,
            packageName: PKG,
            parameters: { version: '18' },
            interval,
            targets: {
              instanceIds: Array.from(
                { length: perResource },
                (_, k) =>
                  `i-idle${String(r * perResource + k + 1).padStart(Math.max(4, String(distinct).length), '0')}`,
              ),
            },
          },
        }),
      );
      await applyYaml(kc, docs.join('---\n'));
      const t0 = Date.now();
      let ready = 0;
      while (Date.now() - t0 < 300_000 && ready < resources) {
        const list = (await kubeRequestRaw(
          kc,
          'GET',
          `/apis/ecsops.io/v1alpha1/namespaces/${ns}/ecsextensions`,
        )) as {
          items?: Array<{ status?: { conditions?: Array<{ type: string; status: string }> } }>;
        };
        ready = (list.items ?? []).filter((o) =>
          o.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
        ).length;
        await sleep(500);
      }
      process.stdout.write(
        `[idle] ${ready}/${resources} Ready in ${((Date.now() - t0) / 1000).toFixed(1)} s; after-work phase (${seconds} s) …\n`,
      );
      phases.push(
        await sample(
          `after work (${resources}×${perResource} Ready, interval ${interval})`,
          pid,
          metricsPort,
          seconds,
        ),
      );
    }

    const r1 = (n: number): string => n.toFixed(1);
    const spaceNames = ['new', 'old', 'code', 'large_object', 'trusted'];
    const lines = [
      '# Idle memory of the compiled controller',
      '',
      `Generated by \`npx tsx test/bench/idle.bench.ts --seconds ${seconds} --resources ${resources}x${perResource} --interval ${interval}\` on ${new Date().toISOString()} (controller ${controller ? `\`${controller}\`` : 'dist/src/cli.js'}, NODE_OPTIONS \`${nodeOptions}\`, Node ${process.version}). RSS sampled every second; V8 figures from the controller's own \`/metrics\` (scraped every 15 s), last scrape. MiB.`,
      '',
      `| phase | RSS last | RSS max | VmHWM | RssAnon | RssFile | heap used / total | ${spaceNames.map((s) => `${s} used / size`).join(' | ')} | external | CPU (s) |`,
      `|---|---|---|---|---|---|---|${spaceNames.map(() => '---').join('|')}|---|---|`,
      ...phases.map(
        (p) =>
          `| ${p.name} | ${r1(p.last.rssMb)} | ${r1(p.maxRssMb)} | ${r1(p.last.hwmMb)} | ${r1(p.last.anonMb)} | ${r1(p.last.fileMb)} | ${r1(p.v8.heapUsed)} / ${r1(p.v8.heapTotal)} | ${spaceNames
            .map((s) => `${r1(p.v8.spaces[s]?.used ?? 0)} / ${r1(p.v8.spaces[s]?.size ?? 0)}`)
            .join(' | ')} | ${r1(p.v8.external)} | ${p.last.cpuS.toFixed(2)} |`,
      ),
    ];
    const report = `${lines.join('\n')}\n`;
    mkdirSync(join(REPO_ROOT, 'bench/results'), { recursive: true });
    writeFileSync(
      join(REPO_ROOT, `bench/results/idle${tag}.json`),
      `${JSON.stringify({ nodeOptions, phases }, null, 2)}\n`,
    );
    writeFileSync(join(REPO_ROOT, `bench/results/idle${tag}.md`), report);
    process.stdout.write(report);
  } finally {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await Promise.race([new Promise((r) => child?.once('exit', r)), sleep(15_000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    await emu.stop();
    await cp.stop();
  }
}

await main();
