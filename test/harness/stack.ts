/**
 * The full stack for controller integration tests: the control plane from global-setup.ts,
 * an in-process OOS/ECS emulator reached through the real SDK over HTTP, and the real
 * controller (in-process, or as a child process for crash and leader-election tests).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { inject } from 'vitest';
import { GROUP, VERSION } from '../../src/api/common.js';
import {
  ECS_EXTENSION_PLURAL,
  type EcsExtension,
  type EcsExtensionSpec,
} from '../../src/api/ecsextension.js';
import { parseConfig } from '../../src/config.js';
import {
  DEMO_ACCESS_KEY,
  startEmulator,
  type Emulator,
  type SandboxOptions,
  type Seed,
} from '../../src/emulator/index.js';
import { startController, type RunningController } from '../../src/main.js';
import { createLogger } from '../../src/runtime/logger.js';
import { applyCrd, createTestNamespace, getTestKubeConfig } from './env.js';
import { fleetSeed } from './fast.js';
import { REPO_ROOT } from './paths.js';

export { REPO_ROOT };
export const NODE_PACKAGE = 'ACS-Extension-node-1853370294850618';
export const REGION = 'cn-hangzhou';

/** Applies every CRD under crds/ (server-side apply). */
export async function applyProjectCrds(kc: KubeConfig): Promise<void> {
  for (const file of readdirSync(join(REPO_ROOT, 'crds'))
    .filter((f) => f.startsWith('ecsops.io_'))
    .sort()) {
    const crd = parse(readFileSync(join(REPO_ROOT, 'crds', file), 'utf8')) as Record<string, unknown>;
    await applyCrd(kc, crd);
  }
}

export { fleetSeed };

/** Deterministic instance IDs `i-<prefix>NNNN` for `from..to` (the emulator's generated fleet IDs). */
export function instanceIds(prefix: string, from: number, to: number): string[] {
  return Array.from({ length: to - from + 1 }, (_, i) => `i-${prefix}${String(from + i).padStart(4, '0')}`);
}

/**
 * Controller flags for tests: one namespace, no leader election, ephemeral ports, fast polls.
 * `kubeconfigPath` defaults to the vitest global setup's (benchmarks outside vitest pass theirs).
 */
export function testControllerArgs(
  namespace: string,
  emu: Emulator,
  extra: string[] = [],
  kubeconfigPath: string = inject('kubeconfigPath'),
): string[] {
  return [
    '--kubeconfig',
    kubeconfigPath,
    '--namespace',
    namespace,
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
    '--execution-poll-min',
    '200ms',
    '--execution-poll-max',
    '1s',
    '--retry-base',
    '1s',
    '--retry-max',
    '4s',
    '--log-level',
    process.env.ECSOPS_TEST_LOG_LEVEL ?? 'warn',
    '--shutdown-timeout',
    '5s',
    ...extra,
  ];
}

/** Environment for a controller child process talking to the emulator with the demo key. */
export function emulatorEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ALIBABA_CLOUD_ACCESS_KEY_ID: DEMO_ACCESS_KEY.id,
    ALIBABA_CLOUD_ACCESS_KEY_SECRET: DEMO_ACCESS_KEY.secret,
    ALIBABA_CLOUD_ECS_METADATA_DISABLED: 'true',
    ALIBABA_CLOUD_CLI_PROFILE_DISABLED: 'true',
  };
}

export interface Stack {
  kc: KubeConfig;
  api: CustomObjectsApi;
  namespace: string;
  emu: Emulator;
  controller?: RunningController;
  /** Starts the in-process controller (idempotent). */
  startController(extraArgs?: string[]): Promise<RunningController>;
  stopController(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts the emulator with `seed`, applies the CRDs, creates a namespace and (unless
 * `controller: false`) an in-process controller watching only that namespace.
 */
export async function startStack(opts: {
  seed: Seed;
  prefix: string;
  timeScale?: number;
  controller?: boolean;
  controllerArgs?: string[];
  /** Emulator sandbox mode: RunShellScript commands really run with bash (AppRelease tests). */
  sandbox?: SandboxOptions;
  /** Control plane kubeconfig (its `admin` context); default the vitest global setup's. */
  kubeconfigPath?: string;
}): Promise<Stack> {
  const kc = getTestKubeConfig('admin', opts.kubeconfigPath);
  await applyProjectCrds(kc);
  const namespace = await createTestNamespace(kc, opts.prefix);
  const emu = await startEmulator({
    seed: opts.seed,
    timeScale: opts.timeScale ?? 0.005,
    ...(opts.sandbox ? { sandbox: opts.sandbox } : {}),
  });
  const stack: Stack = {
    kc,
    api: kc.makeApiClient(CustomObjectsApi),
    namespace,
    emu,
    async startController(extraArgs = []) {
      if (stack.controller) return stack.controller;
      const cfg = parseConfig(
        testControllerArgs(
          namespace,
          emu,
          [...(opts.controllerArgs ?? []), ...extraArgs],
          opts.kubeconfigPath,
        ),
      );
      stack.controller = await startController(cfg, {
        cloud: {
          credential: { accessKeyId: DEMO_ACCESS_KEY.id, accessKeySecret: DEMO_ACCESS_KEY.secret },
          retryBaseDelayMs: 20,
          retryMaxDelayMs: 200,
        },
        logger: createLogger({ level: (process.env.ECSOPS_TEST_LOG_LEVEL ?? 'warn') as 'warn' }),
        onLeadershipLost: () => undefined,
      });
      return stack.controller;
    },
    async stopController() {
      const c = stack.controller;
      stack.controller = undefined;
      await c?.stop();
    },
    async stop() {
      await stack.stopController();
      await emu.stop();
    },
  };
  if (opts.controller !== false) await stack.startController();
  return stack;
}

/** Creates an EcsExtension and returns it. */
export async function createEcsExtension(
  stack: Pick<Stack, 'api' | 'namespace'>,
  name: string,
  spec: Partial<EcsExtensionSpec>,
  labels?: Record<string, string>,
): Promise<EcsExtension> {
  return (await stack.api.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace: stack.namespace,
    plural: ECS_EXTENSION_PLURAL,
    body: {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'EcsExtension',
      metadata: { name, ...(labels ? { labels } : {}) },
      spec: { regionId: REGION, packageName: NODE_PACKAGE, ...spec },
    },
  })) as EcsExtension;
}

/** Reads an EcsExtension (undefined when gone). */
export async function getEcsExtension(
  stack: Pick<Stack, 'api' | 'namespace'>,
  name: string,
): Promise<EcsExtension | undefined> {
  try {
    return (await stack.api.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: stack.namespace,
      plural: ECS_EXTENSION_PLURAL,
      name,
    })) as EcsExtension;
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined;
    throw err;
  }
}

/** Merge-patches an EcsExtension's spec or metadata. */
export async function patchEcsExtension(
  stack: Pick<Stack, 'api' | 'namespace'>,
  name: string,
  body: Record<string, unknown>,
): Promise<void> {
  const { PatchStrategy, setHeaderOptions } = await import('@kubernetes/client-node');
  await stack.api.patchNamespacedCustomObject(
    { group: GROUP, version: VERSION, namespace: stack.namespace, plural: ECS_EXTENSION_PLURAL, name, body },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
}

export function condition(obj: EcsExtension | undefined, type: string) {
  return obj?.status?.conditions?.find((c) => c.type === type);
}

/**
 * Polls `fn` every `intervalMs` until it returns a truthy value, and returns it.
 * @throws Error naming `what` and the last value seen after `timeoutMs`.
 */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false | null>,
  timeoutMs = 60_000,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(last)?.slice(0, 2000)}`,
  );
}

/** Waits until the EcsExtension's Ready condition has `status` (and observedGeneration is current). */
export async function waitForReady(
  stack: Pick<Stack, 'api' | 'namespace'>,
  name: string,
  status: 'True' | 'False' = 'True',
  timeoutMs = 90_000,
  reason?: string,
): Promise<EcsExtension> {
  return waitFor(
    `${name} Ready=${status}${reason ? ` (${reason})` : ''}`,
    async () => {
      const obj = await getEcsExtension(stack, name);
      const ready = condition(obj, 'Ready');
      const current = obj?.status?.observedGeneration === obj?.metadata.generation;
      return current && ready?.status === status && (!reason || ready.reason === reason) ? obj : undefined;
    },
    timeoutMs,
  );
}

/** Starts `ecsops controller` as a child process (for SIGKILL and leader-election tests). */
export function spawnController(args: string[], env: NodeJS.ProcessEnv = emulatorEnv()): ChildProcess {
  // Run node itself with the tsx loader: the tsx CLI is a wrapper process, and a SIGKILL to it
  // would leave the real controller running as an orphan.
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(REPO_ROOT, 'src/cli.ts'), 'controller', ...args],
    {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  child.stdout?.resume();
  child.stderr?.resume();
  return child;
}
