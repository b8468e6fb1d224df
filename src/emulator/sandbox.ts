/**
 * The opt-in sandbox mode of the Cloud Assistant emulation: `RunShellScript` commands really run
 * with `bash` on this machine (one process per instance), instead of returning scripted outcomes.
 *
 * - Parameters are substituted as Cloud Assistant does when `EnableParameter=true`: built-ins
 *   `{{ACS::InstanceId}}`, `{{ACS::RegionId}}`, `{{ACS::InvokeId}}`, `{{ACS::CommandId}}`
 *   and custom `{{name}}` from `Parameters` (a custom name the request does not define is an
 *   `InvalidParameter` error at RunCommand time).
 * - The process gets a minimal environment (PATH, HOME, LANG, plus `sandbox.env`): nothing from the
 *   emulator's own environment (no credentials) leaks into a script.
 * - `Timeout` is enforced in real seconds: the process group is killed (SIGKILL) and the instance
 *   ends `Timeout` / `ExecutionTimeout`. `StopInvocation` kills it too (`Terminated`).
 * - stdout and stderr are captured together; at most 24 KB are kept (the last 24 KB; `Dropped`
 *   counts the rest), as Cloud Assistant caps output at 24 KB.
 * - `Username` and `WorkingDir` are not switched (the process runs as the emulator's user, in
 *   `WorkingDir` when it exists, else in the sandbox root).
 * - Each instance has its own loopback address (its PrimaryIpAddress, `127.<net>.x.y`; `<net>` is
 *   claimed per emulator, see {@link claimLoopbackNet}), given to its processes as
 *   `ECS_PRIVATE_IP`, so a dozen instances' servers can all listen on the same port as on real hosts.
 * - Every process of an instance carries `ECSOPS_SANDBOX_OWNER=<emulator>/<instance ID>` in its
 *   environment (inherited by whatever it starts, daemons included): stopping the emulator, a
 *   reset, or releasing the instance kills them ({@link killOwnedProcesses}; Linux `/proc`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:net';

/** Options of the sandbox mode. */
export interface SandboxOptions {
  /** Directory the processes start in when the command has no usable WorkingDir. Default: os tmpdir. */
  rootDir?: string;
  /** Extra environment variables of every process (e.g. a PATH with test tools). */
  env?: Record<string, string>;
  /** The shell; default `bash`. */
  shell?: string;
  /**
   * Second octet of the instances' loopback addresses (`127.<loopbackNet>.x.y`, 1–254).
   * `startEmulator` claims a free one per emulator (first free from 10, see
   * {@link claimLoopbackNet}) when unset; `EmulatorCore` alone defaults to 10.
   */
  loopbackNet?: number;
}

/** The environment variable a sandboxed process gets its instance's private IP address in. */
export const PRIVATE_IP_ENV = 'ECS_PRIVATE_IP';
/** The environment variable marking a sandboxed process (and its descendants) as an instance's. */
export const SANDBOX_OWNER_ENV = 'ECSOPS_SANDBOX_OWNER';

/** A loopback net claimed by this process; `release()` frees it for other emulators. */
export interface LoopbackNetClaim {
  /** Second octet: addresses are `127.<net>.x.y`. */
  net: number;
  release(): Promise<void>;
}

/**
 * Claims a loopback net (`127.N.0.0/16`, N from `first` to 254, first free wins) for one emulator,
 * so the sandboxed servers of emulators running at the same time on this machine (concurrent test
 * files, two `npm run local`) never share an address. The claim is a listening Linux
 * abstract-namespace Unix socket `ecsops-sandbox-net-N`: nothing on disk, and the kernel frees it
 * when this process dies, even by SIGKILL.
 * @throws Error when every net is taken.
 */
export async function claimLoopbackNet(first = 10): Promise<LoopbackNetClaim> {
  for (let net = first; net <= 254; net++) {
    const server: Server = createServer();
    const ok = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(`\0ecsops-sandbox-net-${net}`, () => resolve(true));
    });
    if (!ok) continue;
    server.unref();
    return {
      net,
      release: () => new Promise<void>((r) => server.close(() => r())),
    };
  }
  throw new Error('sandbox: every loopback net 127.N.0.0/16 is claimed by another emulator');
}

/**
 * Signals every process whose environment has `ECSOPS_SANDBOX_OWNER` equal to `owner` or
 * starting with `owner/` (all the instances of an emulator, or `<emulator>/<instance ID>` for one),
 * e.g. a daemon a start hook left running. Reads `/proc` (Linux); elsewhere does nothing.
 * @returns the PIDs signalled.
 */
export function killOwnedProcesses(owner: string, signal: NodeJS.Signals = 'SIGKILL'): number[] {
  const exact = `${SANDBOX_OWNER_ENV}=${owner}`;
  const prefix = `${exact}/`;
  const pids: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return pids;
  }
  for (const e of entries) {
    if (!/^[0-9]+$/.test(e) || Number(e) === process.pid) continue;
    let environ: string;
    try {
      environ = readFileSync(`/proc/${e}/environ`, 'latin1');
    } catch {
      continue; // gone, or not ours to read
    }
    if (!environ.split('\0').some((v) => v === exact || v.startsWith(prefix))) continue;
    try {
      process.kill(Number(e), signal);
      pids.push(Number(e));
    } catch {
      // already gone
    }
  }
  return pids;
}

/**
 * The boot hook's file name: `<sandbox root>/<instance ID>/boot.sh`, run by the sandbox when the
 * instance boots again after a patch reboot (what systemd units do on a real host). Absent = none.
 */
export const BOOT_HOOK_FILE = 'boot.sh';

/** The sandbox root: `rootDir`, else `$TMPDIR`, else `/tmp`. */
export function sandboxRoot(opts: SandboxOptions): string {
  return opts.rootDir ?? process.env.TMPDIR ?? '/tmp';
}

/**
 * A boot hook (see {@link BOOT_HOOK_FILE}) that starts an AppRelease application again after a
 * reboot, as a systemd unit would: when `<appDir>/current` links a release, it runs that release's
 * `start` hook as the AppRelease wrapper does (src/controllers/apprelease/wrapper.sh `run_in`: in
 * the release directory, with the release's `env` file, `APP_DIR`, `ECSOPS_APPLICATION`,
 * `ECSOPS_REVISION`, `ECSOPS_RELEASE_DIR`, under the hook's timeout). Secret environment values
 * (`SECRET_ENV`) are not available at boot. Nothing linked or no start hook: exits 0.
 * @param appDir the AppRelease `install.appDir` of this instance (absolute).
 */
export function appReleaseBootScript(appDir: string, application: string): string {
  const q = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;
  return [
    '#!/bin/bash',
    '# ecsops emulator boot hook: start the current AppRelease revision again (sandbox.ts).',
    `APP_DIR=${q(appDir)}`,
    '[ -L "$APP_DIR/current" ] || exit 0',
    'rev=$(basename "$(readlink "$APP_DIR/current")")',
    'meta="$APP_DIR/releases/$rev.ecsops"',
    '[ -f "$meta/hooks/start.sh" ] || exit 0',
    'cd "$APP_DIR/releases/$rev" || exit 1',
    `export APP_DIR ECSOPS_INSTANCE_ID ECSOPS_APPLICATION=${q(application)} ECSOPS_REVISION="$rev"`,
    'export ECSOPS_RELEASE_DIR="$APP_DIR/releases/$rev" ECSOPS_PREVIOUS_REVISION=',
    'set -a',
    'if [ -f "$meta/env" ]; then . "$meta/env"; fi',
    'set +a',
    'exec timeout -k 5 "$(cat "$meta/hooks/start.timeout" 2>/dev/null || echo 300)" bash "$meta/hooks/start.sh"',
    '',
  ].join('\n');
}

/** Cloud Assistant's output cap, bytes. */
export const OUTPUT_CAP_BYTES = 24 * 1024;

/** Built-in parameter values of one instance's run. */
export interface BuiltinParameters {
  instanceId: string;
  regionId: string;
  invokeId: string;
  commandId: string;
}

const PARAM_RE = /\{\{\s*([A-Za-z0-9_:.-]+)\s*\}\}/g;

/**
 * Names of the custom parameters `content` references (`{{name}}`; built-ins `ACS::…` and
 * Parameter Store references `oos:…` / `oos-secret:…` excluded), sorted and unique.
 */
export function referencedParameters(content: string): string[] {
  const names = new Set<string>();
  for (const m of content.matchAll(PARAM_RE)) {
    const name = m[1] ?? '';
    // Built-ins and Parameter Store references (`{{oos:…}}`, `{{oos-secret:…}}`) need no value.
    if (!name.startsWith('ACS::') && !/^oos(-secret)?:/.test(name)) names.add(name);
  }
  return [...names].sort();
}

/**
 * Substitutes `{{name}}` placeholders as Cloud Assistant does with `EnableParameter=true`: custom
 * names from `params` (values as strings), built-ins from `builtins`. Unknown built-ins and
 * undefined custom names are left as they are (RunCommand rejects the latter beforehand).
 */
export function substituteParameters(
  content: string,
  params: Record<string, unknown>,
  builtins: BuiltinParameters,
): string {
  const b: Record<string, string> = {
    'ACS::InstanceId': builtins.instanceId,
    'ACS::RegionId': builtins.regionId,
    'ACS::InvokeId': builtins.invokeId,
    'ACS::CommandId': builtins.commandId,
  };
  return content.replace(PARAM_RE, (all, name: string) => {
    if (name in b) return b[name] as string;
    if (Object.prototype.hasOwnProperty.call(params, name)) {
      const v = params[name];
      return typeof v === 'string' ? v : JSON.stringify(v);
    }
    return all;
  });
}

/** How a sandboxed run ended. */
export interface SandboxResult {
  exitCode: number | null;
  output: string;
  dropped: number;
  timedOut: boolean;
  killed: boolean;
}

/** A running sandboxed process. */
export interface SandboxRun {
  done: Promise<SandboxResult>;
  /** Kills the process group (StopInvocation). */
  kill(): void;
}

/**
 * Runs `script` with bash in its own process group; resolves when the process exits (or is killed
 * after `timeoutSec` real seconds).
 */
export function runSandboxed(
  script: string,
  timeoutSec: number,
  opts: SandboxOptions & { cwd?: string },
): SandboxRun {
  const cwd = opts.cwd ?? sandboxRoot(opts);
  try {
    mkdirSync(cwd, { recursive: true });
  } catch {
    // spawn reports the problem
  }
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    LANG: 'C.UTF-8',
    ...opts.env,
  };
  let child: ChildProcess;
  let killed = false;
  let timedOut = false;
  const chunks: Buffer[] = [];
  let total = 0;
  const keep = (b: Buffer): void => {
    chunks.push(b);
    total += b.length;
    // keep memory bounded: drop whole chunks from the front beyond twice the cap
    let held = chunks.reduce((n, c) => n + c.length, 0);
    while (held > 2 * OUTPUT_CAP_BYTES && chunks.length > 1) held -= (chunks.shift() as Buffer).length;
  };
  const killGroup = (): void => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  const done = new Promise<SandboxResult>((resolve) => {
    child = spawn(opts.shell ?? 'bash', ['-c', script], {
      cwd,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const timer = setTimeout(
      () => {
        timedOut = true;
        killGroup();
      },
      Math.max(1, timeoutSec) * 1000,
    );
    timer.unref();
    const finish = (code: number | null): void => {
      clearTimeout(timer);
      const all = Buffer.concat(chunks);
      const kept = all.subarray(Math.max(0, all.length - OUTPUT_CAP_BYTES));
      resolve({
        exitCode: code,
        output: kept.toString('utf8'),
        dropped: Math.max(0, total - kept.length),
        timedOut,
        killed,
      });
    };
    child.on('error', (err) => {
      keep(Buffer.from(`sandbox: ${err.message}\n`));
      finish(127);
    });
    child.on('close', (code) => finish(code));
  });
  return {
    done,
    kill() {
      killed = true;
      killGroup();
    },
  };
}
