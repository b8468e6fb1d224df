/**
 * The AppRelease fast tier on top of test/harness/fast.ts: the real AppRelease reconciler + the
 * real cloud layer + the emulator in SANDBOX mode (the wrapper really runs with bash, one
 * directory per instance under a temp root via `appDir: <root>/{{ACS::InstanceId}}/app`), an
 * artifact server on 127.0.0.1, in-memory objects, recorded Events and a fake wall clock.
 */
import type { SecretReader } from '../../src/controllers/shared/secrets.js';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AppRelease, AppReleaseSpec } from '../../src/api/apprelease.js';
import { AppReleaseMetrics } from '../../src/controllers/apprelease/metrics.js';
import {
  APP_RELEASE_METRIC_LABEL,
  AppReleaseReconciler,
  type AppReleaseOptions,
} from '../../src/controllers/apprelease/reconciler.js';
import { InstanceLock } from '../../src/controllers/shared/lock.js';
import type { EmulatorOptions, Seed } from '../../src/emulator/index.js';
import {
  MemoryStore,
  REGION,
  reconcileStep,
  reconcileUntil,
  startCloudStack,
  type CloudStack,
  type Step,
} from './fast.js';

/** A tar.gz artifact served by {@link ArtifactServer}. */
export interface Artifact {
  url: string;
  sha256: string;
}

/** Serves tar.gz artifacts on 127.0.0.1 (query strings ignored, as for pre-signed URLs). */
export class ArtifactServer {
  private readonly files = new Map<string, Buffer>();
  private server?: Server;
  private readonly resets = new Map<string, number>();
  base = '';
  downloads = 0;

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0] ?? '';
      const reset = this.resets.get(path) ?? 0;
      if (reset > 0) {
        // a transport failure: the connection is closed with no answer (curl exit 52)
        this.resets.set(path, reset - 1);
        req.socket.destroy();
        return;
      }
      const body = this.files.get(path);
      if (!body) {
        res.writeHead(404).end();
        return;
      }
      this.downloads++;
      res.writeHead(200).end(body);
    });
    await new Promise<void>((r) => this.server?.listen(0, '127.0.0.1', r));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** The next `count` downloads of artifact `name` get their connection closed with no answer. */
  resetNext(name: string, count: number): void {
    this.resets.set(`/${name}.tar.gz`, count);
  }

  /**
   * Packs `files` (name → content) into `/<name>.tar.gz`; its URL carries a pre-signed-style query
   * string unless `plain`.
   */
  add(name: string, files: Record<string, string>, scratch: string, plain = false): Artifact {
    const dir = mkdtempSync(join(scratch, 'pkg-'));
    for (const [f, content] of Object.entries(files)) writeFileSync(join(dir, f), content, { mode: 0o755 });
    const out = join(scratch, `${name}.tar.gz`);
    execFileSync('tar', ['-czf', out, '-C', dir, '.']);
    const body = readFileSync(out);
    this.files.set(`/${name}.tar.gz`, body);
    return {
      url: `${this.base}/${name}.tar.gz${plain ? '' : '?Expires=1999999999&Signature=presigned-secret'}`,
      sha256: createHash('sha256').update(body).digest('hex'),
    };
  }

  stop(): Promise<void> {
    return new Promise((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

/** The AppRelease fast-tier stack. */
export interface AppReleaseStack extends CloudStack {
  store: MemoryStore<AppRelease>;
  lock: InstanceLock;
  appMetrics: AppReleaseMetrics;
  artifacts: ArtifactServer;
  /** Temp root of the per-instance host directories. */
  root: string;
  reconciler: AppReleaseReconciler;
  /** A new reconciler with fresh process memory (a controller restart), same store and cloud. */
  restart(): AppReleaseReconciler;
  apply(name: string, spec: AppReleaseSpec, ns?: string): AppRelease;
  get(name: string, ns?: string): AppRelease | undefined;
  reconcile(name: string, ns?: string): Promise<Step>;
  until(
    name: string,
    done: (o: AppRelease | undefined, s: Step) => boolean,
    maxSteps?: number,
    ns?: string,
  ): Promise<AppRelease | undefined>;
  /** The host directory of an instance's application. */
  appDir(instanceId: string): string;
}

/** Starts the emulator in sandbox mode and builds the AppRelease stack. */
export async function startAppReleaseStack(o: {
  seed: Seed;
  options?: Partial<AppReleaseOptions>;
  timeScale?: number;
  /** Further emulator options (e.g. a request `logger`); sandbox mode is always on. */
  emulator?: Partial<EmulatorOptions>;
  /** Reads the Secrets of install.envVars valueFrom (default: none configured). */
  secrets?: SecretReader;
}): Promise<AppReleaseStack> {
  const root = mkdtempSync(join(tmpdir(), 'ecsops-apprelease-'));
  const base = await startCloudStack({
    seed: o.seed,
    ...(o.timeScale !== undefined ? { timeScale: o.timeScale } : {}),
    emulator: { ...o.emulator, sandbox: { rootDir: root } },
    templates: { [APP_RELEASE_METRIC_LABEL]: ['deploy', 'rollback', 'uninstall'] },
  });
  const artifacts = new ArtifactServer();
  await artifacts.start();
  const store = new MemoryStore<AppRelease>();
  const lock = new InstanceLock();
  lock.addSource('AppRelease', store);
  const appMetrics = new AppReleaseMetrics(base.registry);
  const build = (): AppReleaseReconciler =>
    new AppReleaseReconciler({
      objects: store,
      kube: store,
      cloud: base.cloud,
      events: base.events,
      metrics: base.metrics,
      appMetrics,
      lock,
      ...(o.secrets ? { secrets: o.secrets } : {}),
      now: base.clock.now,
      // Status coalescing off: see test/harness/fast.ts.
      options: { pollMinMs: 1_000, pollMaxMs: 2_000, statusCoalesceMs: 0, ...o.options },
    });
  const stack: AppReleaseStack = {
    ...base,
    store,
    lock,
    appMetrics,
    artifacts,
    root,
    reconciler: build(),
    restart() {
      stack.reconciler = build();
      return stack.reconciler;
    },
    apply(name, spec, ns = 'default') {
      return store.apply({
        apiVersion: 'ecsops.io/v1alpha1',
        kind: 'AppRelease',
        metadata: { name, namespace: ns },
        spec: { ...spec, regionId: spec.regionId ?? REGION },
      });
    },
    get: (name, ns = 'default') => store.get(ns, name),
    reconcile: (name, ns = 'default') => reconcileStep(stack.reconciler, ns, name),
    until(name, done, maxSteps = 3000, ns = 'default') {
      return reconcileUntil(store, base.clock, () => stack.reconcile(name, ns), ns, name, done, maxSteps);
    },
    appDir: (id) => join(root, id, 'app'),
    async stop() {
      await base.stop();
      await artifacts.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
  return stack;
}

/** A spec whose hooks record to `<appDir>/../events.log`, healthy unless `FAIL_HEALTH` lists the instance. */
export function appSpec(
  stack: AppReleaseStack,
  artifact: Artifact,
  over: Partial<AppReleaseSpec> = {},
): AppReleaseSpec {
  const log = (what: string) => `echo "${what} $ECSOPS_REVISION" >> "$APP_DIR/../events.log"`;
  return {
    regionId: REGION,
    targets: { tags: [{ key: 'app', value: 'shop' }] },
    application: 'shop',
    version: '1.0.0',
    artifact,
    install: {
      appDir: `${stack.root}/{{ACS::InstanceId}}/app`,
      keepReleases: 3,
      env: { DB_PASSWORD: 'hunter2-secret' },
    },
    hooks: {
      stop: { script: log('stop') },
      start: { script: `${log('start')}\n./app.sh start` },
    },
    healthCheck: { exec: { script: './app.sh health' }, periodSeconds: 1, failureThreshold: 1 },
    strategy: { batchSize: '25%', canary: { instances: 1, pause: true }, maxErrors: 0 },
    rollback: { automatic: true },
    ...over,
  };
}

/** The Ready condition. */
export function readyOf(o: AppRelease | undefined) {
  return o?.status?.conditions?.find((c) => c.type === 'Ready');
}
