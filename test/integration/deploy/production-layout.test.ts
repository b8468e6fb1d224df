/**
 * The image's layout, run for real without a container runtime: exactly what the Dockerfile's
 * runtime stage copies (package.json, `npm ci --omit=dev` node_modules, compiled dist/src) in a
 * clean temp dir, made read-only, run with the pinned Node 24 as uid/gid 65532 (the image's USER)
 * with the image's entrypoint arguments, against the test control plane and the emulator until
 * the example EcsExtension (deploy/examples/ecsextension.yaml) is Ready.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
    // Read-only for everyone; owned by root, so uid 65532 cannot chmod it back either.
    execFileSync('chmod', ['-R', 'a-w', layout.appDir]);
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
