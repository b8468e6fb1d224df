/**
 * A real Kubernetes control plane (etcd + kube-apiserver, built from Go modules by
 * test/controlplane/build.sh) for integration tests and `npm run local`.
 *
 * Everything listens on 127.0.0.1 on free ports. Authentication is a static token file
 * (`--token-auth-file`, Kubernetes "Static Token File" authenticator) so TypeScript needs no
 * X.509 signing; authorization is RBAC. Identities:
 *  - `admin`: group `system:masters` (full access);
 *  - every name in `options.users` (default `['alice']`): authenticated, no RBAC bindings, so
 *    RBAC tests can grant exactly what they mean to.
 * State lives in one temp dir (`ecsops-cp-*` under the OS temp dir) that `stop()` removes.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface ControlPlaneOptions {
  /** Directory holding `etcd`, `kube-apiserver`, `kubectl`; default: the output of build.sh. */
  binDir?: string;
  /** Unprivileged identities to create besides `admin`. Default `['alice']`. */
  users?: string[];
  /** How long each component may take to become healthy, in milliseconds. Default 60 000. */
  startTimeoutMs?: number;
  /** Directory the `ecsops-cp-*` temp dir is created in. Default: the OS temp dir. */
  parentDir?: string;
  /**
   * Aborts the start-up (e.g. on Ctrl-C): whatever was started is stopped, the temp dir removed,
   * and the promise rejects with the signal's reason. No effect once the control plane is returned.
   */
  signal?: AbortSignal;
}

export interface ControlPlane {
  /** `https://127.0.0.1:PORT` */
  server: string;
  /** kubeconfig with one context per identity (`admin` is current). */
  kubeconfigPath: string;
  /** Bearer token per identity. */
  tokens: Record<string, string>;
  /** PEM bundle that verifies the apiserver's serving certificate. */
  caFile: string;
  /** The temp dir holding etcd data, certificates, logs and the kubeconfig. */
  dir: string;
  binDir: string;
  /** PIDs of etcd and kube-apiserver, for leak checks. */
  pids: number[];
  /** `http://127.0.0.1:PORT` of etcd (its v3 JSON gateway: compaction, revisions). */
  etcdUrl: string;
  /**
   * Stops kube-apiserver only (SIGTERM, SIGKILL after 10 s); etcd keeps the data. An API-server
   * outage for chaos tests; `startApiServer()` brings it back on the same port and certificates.
   */
  stopApiServer(): Promise<void>;
  /** Starts kube-apiserver again after `stopApiServer()` and waits for `/readyz`. No-op when running. */
  startApiServer(): Promise<void>;
  /** SIGTERM kube-apiserver then etcd (SIGKILL after 10 s), then remove `dir`. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Builds (or reuses from the cache) the control-plane binaries and returns their directory.
 * @throws Error with the build log tail when `go build` fails.
 */
export function ensureBinaries(): string {
  const res = spawnSync('bash', [join(REPO_ROOT, 'test/controlplane/build.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 20,
  });
  if (res.status !== 0) {
    throw new Error(`test/controlplane/build.sh failed with exit code ${res.status}`);
  }
  const dir = res.stdout.trim().split('\n').pop() ?? '';
  if (!existsSync(join(dir, 'kube-apiserver'))) throw new Error(`build.sh printed no binary dir: ${dir}`);
  return dir;
}

/** Returns a TCP port that was free on 127.0.0.1 a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** GET a URL and resolve the HTTP status (0 on a connection error). */
function probe(url: string, opts: { ca?: Buffer; token?: string }): Promise<number> {
  return new Promise((resolveStatus) => {
    const req = request(
      url,
      {
        method: 'GET',
        ca: opts.ca,
        rejectUnauthorized: opts.ca !== undefined,
        headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {},
        timeout: 2000,
      },
      (res) => {
        res.resume();
        resolveStatus(res.statusCode ?? 0);
      },
    );
    req.on('error', () => resolveStatus(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

async function probeHttp(url: string): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return res.status;
  } catch {
    return 0;
  }
}

async function waitFor(
  what: string,
  child: ChildProcess,
  logFile: string,
  timeoutMs: number,
  check: () => Promise<boolean>,
  signal: AbortSignal | undefined,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    signal?.throwIfAborted();
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}); log tail:\n${tail(logFile)}`);
    }
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(`${what} not healthy after ${timeoutMs} ms; log tail:\n${tail(logFile)}`);
}

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

async function terminate(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** True when a process with this PID exists (signal 0 probe). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts etcd and kube-apiserver and waits until `/readyz` answers 200.
 * @throws Error with the component's log tail when it exits early or is not healthy in time;
 *   whatever was started is torn down first.
 */
export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const { signal } = options;
  signal?.throwIfAborted();
  const binDir = options.binDir ?? ensureBinaries();
  signal?.throwIfAborted(); // a signal that arrived while build.sh ran
  const users = options.users ?? ['alice'];
  const timeoutMs = options.startTimeoutMs ?? 60_000;
  const dir = mkdtempSync(join(options.parentDir ?? tmpdir(), 'ecsops-cp-'));
  const children: ChildProcess[] = [];
  let stopped = false;
  let returned = false;

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    process.removeListener('exit', killOnExit);
    for (const child of [...children].reverse()) await terminate(child);
    rmSync(dir, { recursive: true, force: true });
  };
  const killOnExit = (): void => {
    for (const child of children) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', killOnExit);

  try {
    const [etcdPort, peerPort] = [await freePort(), await freePort()];
    let apiPort = await freePort();

    const etcdLog = join(dir, 'etcd.log');
    const etcd = spawn(
      join(binDir, 'etcd'),
      [
        '--name=default',
        `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=http://127.0.0.1:${etcdPort}`,
        `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
        `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-cluster=default=http://127.0.0.1:${peerPort}`,
        '--unsafe-no-fsync=true',
        '--log-level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(etcd);
    pipeTo(etcd, etcdLog);
    await waitFor(
      'etcd',
      etcd,
      etcdLog,
      timeoutMs,
      async () => (await probeHttp(`http://127.0.0.1:${etcdPort}/health`)) === 200,
      signal,
    );

    const tokens: Record<string, string> = { admin: randomBytes(24).toString('hex') };
    for (const u of users) tokens[u] = randomBytes(24).toString('hex');
    const tokenLines = Object.entries(tokens).map(([user, token]) =>
      user === 'admin' ? `${token},admin,admin-uid,"system:masters"` : `${token},${user},${user}-uid`,
    );
    writeFileSync(join(dir, 'tokens.csv'), tokenLines.join('\n') + '\n', { mode: 0o600 });
    const { privateKey } = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    writeFileSync(join(dir, 'sa.key'), privateKey, { mode: 0o600 });

    const pki = join(dir, 'pki');
    const apiLog = join(dir, 'kube-apiserver.log');
    const caFile = join(pki, 'apiserver.crt');
    let api: ChildProcess | undefined;
    const launchApi = async (): Promise<void> => {
      const child = spawn(
        join(binDir, 'kube-apiserver'),
        [
          `--etcd-servers=http://127.0.0.1:${etcdPort}`,
          `--cert-dir=${pki}`,
          `--secure-port=${apiPort}`,
          '--bind-address=127.0.0.1',
          '--advertise-address=127.0.0.1',
          '--service-cluster-ip-range=10.0.0.0/24',
          '--authorization-mode=RBAC',
          `--token-auth-file=${join(dir, 'tokens.csv')}`,
          '--service-account-issuer=https://kubernetes.default.svc',
          `--service-account-key-file=${join(dir, 'sa.key')}`,
          `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
          '--disable-admission-plugins=ServiceAccount',
          '--allow-privileged=true',
          '--endpoint-reconciler-type=none',
          '--profiling=false',
          '--v=1',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      api = child;
      children.push(child);
      pids.push(child.pid ?? -1);
      pipeTo(child, apiLog, true);
      await waitFor(
        'kube-apiserver',
        child,
        apiLog,
        timeoutMs,
        async () => {
          if (!existsSync(caFile)) return false;
          const ca = readFileSync(caFile);
          return (await probe(`https://127.0.0.1:${apiPort}/readyz`, { ca, token: tokens.admin })) === 200;
        },
        returned ? undefined : signal, // startApiServer() after the start-up is not abortable
      );
    };
    const pids: number[] = [etcd.pid ?? -1];
    // The port was free when chosen, but another process may bind it before kube-apiserver does
    // (a shared CI machine): choose another and launch again, at most twice.
    for (let attempt = 1; ; attempt++) {
      try {
        await launchApi();
        break;
      } catch (err) {
        if (attempt >= 3 || !/address already in use/.test(String(err))) throw err;
        const failed = api;
        if (failed) {
          children.splice(children.indexOf(failed), 1);
          pids.splice(pids.indexOf(failed.pid ?? -1), 1);
        }
        api = undefined;
        apiPort = await freePort();
      }
    }

    signal?.throwIfAborted();
    returned = true;
    const server = `https://127.0.0.1:${apiPort}`;
    const kubeconfigPath = join(dir, 'kubeconfig');
    writeFileSync(kubeconfigPath, kubeconfigYaml(server, caFile, tokens), { mode: 0o600 });

    return {
      server,
      kubeconfigPath,
      tokens,
      caFile,
      dir,
      binDir,
      pids,
      etcdUrl: `http://127.0.0.1:${etcdPort}`,
      async stopApiServer() {
        const child = api;
        if (!child || stopped) return;
        api = undefined;
        await terminate(child);
        children.splice(children.indexOf(child), 1);
        pids.splice(pids.indexOf(child.pid ?? -1), 1);
      },
      async startApiServer() {
        if (api || stopped) return;
        await launchApi();
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

function pipeTo(child: ChildProcess, file: string, append = false): void {
  const out = createWriteStream(file, { flags: append ? 'a' : 'w' });
  child.stdout?.pipe(out, { end: false });
  child.stderr?.pipe(out, { end: false });
  child.once('exit', () => out.end());
}

/** A kubeconfig with one user and context per identity; `admin` is the current context. */
export function kubeconfigYaml(server: string, caFile: string, tokens: Record<string, string>): string {
  const names = Object.keys(tokens);
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'ecsops-local', cluster: { server, 'certificate-authority': caFile } }],
    users: names.map((name) => ({ name, user: { token: tokens[name] } })),
    contexts: names.map((name) => ({ name, context: { cluster: 'ecsops-local', user: name } })),
    'current-context': 'admin',
  });
}
