/**
 * `npm run local` (scripts/local.ts) run as a user runs it, as real processes (`tsx
 * scripts/local.ts`, each in its own process group like a terminal job, with its own TMPDIR so
 * nothing of another run on this machine is counted):
 *  - two runs at once, without port flags, both reach Ready, each with its own sandbox dir;
 *  - `--artifact-port N`: the AppRelease example is applied with its artifact URL on port N and
 *    rolls out (the download is sha256-checked), metric-gated on the run's own Prometheus when
 *    one is built (its analysis URL is that Prometheus', the last batch's gate passed) and
 *    without `spec.analysis` otherwise, and Ctrl-C after Ready removes everything;
 *  - Ctrl-C (or SIGTERM) at several moments of start-up leaves no process and no dir behind, nor
 *    does a SIGKILL of the script's own process (what the tsx CLI does to a child that does not
 *    acknowledge a forwarded signal within ~60 ms).
 *
 * What a run leaves behind is checked with what it reported (its sandbox dir and control-plane dir)
 * and with unique markers of that run: processes of its process group, processes whose command
 * line names its TMPDIR or a dir it reported (etcd, kube-apiserver, sandboxed bash), and `ecsops-*`
 * entries of its TMPDIR. ECSOPS_LOCAL_SCRIPT runs another copy of the script (checking the tests
 * against an older version).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../harness/controlplane.js';
import { kubeRequestRaw } from '../../harness/kube-raw.js';
import { REPO_ROOT } from '../../harness/paths.js';

const SCRIPT = process.env.ECSOPS_LOCAL_SCRIPT ?? join(REPO_ROOT, 'scripts/local.ts');
const TSX = join(REPO_ROOT, 'node_modules/.bin/tsx');
/** A warm run reaches Ready in 35–40 s alone; two at once on 2 busy cores take longer. */
const READY_TIMEOUT_S = 240;

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One `tsx scripts/local.ts …` process group and what it printed. */
class Run {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  readonly exit: Promise<Exit>;
  private waiters: Array<() => void> = [];

  constructor(
    readonly tmp: string,
    args: string[],
  ) {
    this.child = spawn(TSX, [SCRIPT, ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, TMPDIR: tmp },
      detached: true, // its own process group, as a shell job: Ctrl-C reaches the whole group
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const stream of [this.child.stdout!, this.child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        this.lines.push(line);
        for (const w of this.waiters) w();
      });
    }
    this.exit = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        resolve({ code, signal });
        for (const w of this.waiters) w();
      }),
    );
  }

  get pgid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The first output line matching `re`; rejects when the run exits first or after `timeoutMs`. */
  async line(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const l of this.lines) {
        const m = re.exec(l);
        if (m) return m;
      }
      if (!this.running) throw new Error(`exited before printing ${re}:\n${this.output()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no line ${re} after ${timeoutMs} ms:\n${this.output()}`);
      await new Promise<void>((r) => {
        const timer = setTimeout(r, Math.min(left, 1000));
        this.waiters.push(() => {
          clearTimeout(timer);
          r();
        });
      });
      this.waiters = [];
    }
  }

  /**
   * Sends `sig` to the whole process group (a terminal's Ctrl-C), to the tsx process only (`kill
   * PID`), or to the Node process tsx runs scripts/local.ts in (what tsx itself does).
   */
  signal(sig: NodeJS.Signals, to: 'group' | 'tsx' | 'script' = 'group'): void {
    try {
      if (to === 'group') process.kill(-this.pgid, sig);
      else if (to === 'tsx') this.child.kill(sig);
      else {
        const script = processes().find((p) => p.ppid === this.child.pid);
        if (!script) throw new Error(`no child process of tsx (${this.child.pid})`);
        process.kill(script.pid, sig);
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }

  /** Waits for the exit; after `timeoutMs` SIGKILLs the group and fails. */
  async exited(timeoutMs: number): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)));
    const res = await Promise.race([this.exit, timeout]);
    clearTimeout(timer);
    if (res === 'timeout') {
      this.signal('SIGKILL');
      await this.exit;
      throw new Error(`still running ${timeoutMs} ms later:\n${this.output()}`);
    }
    return res;
  }

  /** Stops a run a failed test left running (Ctrl-C, then SIGKILL). */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.signal('SIGINT');
    await this.exited(90_000).catch(() => undefined);
  }

  /** Dirs the run reported: its temp dir, sandbox dir and control plane's state dir. */
  reportedDirs(): string[] {
    const dirs: string[] = [];
    for (const l of this.lines) {
      const m =
        /\[local\] temp dir (\S+)/.exec(l) ??
        /instance directories under (\S+)/.exec(l) ??
        /state in (\S+?)\)/.exec(l) ??
        /data-dir=(\S+)\/etcd/.exec(l);
      if (m?.[1]) dirs.push(m[1]);
    }
    return [...new Set(dirs)];
  }

  output(): string {
    return this.lines.slice(-60).join('\n');
  }
}

/** Live (not zombie) processes: pid, process group and command line. */
function processes(): Array<{ pid: number; ppid: number; pgid: number; cmdline: string }> {
  const out: Array<{ pid: number; ppid: number; pgid: number; cmdline: string }> = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // "pid (comm) state ppid pgrp …": comm may hold spaces and parentheses
      const [state, ppid, pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (state === 'Z') continue;
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').replaceAll('\0', ' ');
      out.push({ pid: Number(name), ppid: Number(ppid), pgid: Number(pgrp), cmdline });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** What the runs left behind: processes and dirs; polls up to 3 s for SIGKILLed ones to vanish. */
async function leftovers(runs: Run[]): Promise<string[]> {
  const deadline = Date.now() + 3000;
  for (;;) {
    const found: string[] = [];
    for (const run of runs) {
      const markers = [run.tmp, ...run.reportedDirs()];
      for (const p of processes()) {
        if (p.pid === process.pid) continue;
        if (p.pgid === run.pgid || markers.some((m) => p.cmdline.includes(m))) {
          found.push(`process ${p.pid}: ${p.cmdline.slice(0, 160)}`);
        }
      }
      for (const e of readdirSync(run.tmp))
        if (e.startsWith('ecsops-')) found.push(`dir ${join(run.tmp, e)}`);
      for (const d of run.reportedDirs()) if (existsSync(d)) found.push(`dir ${d}`);
    }
    const unique = [...new Set(found)];
    if (unique.length === 0 || Date.now() > deadline) return unique;
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('npm run local (scripts/local.ts)', () => {
  const tmps: string[] = [];
  const runs: Run[] = [];
  const tmp = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'local-test-'));
    tmps.push(dir);
    return dir;
  };
  const start = (dir: string, args: string[]): Run => {
    const run = new Run(dir, args);
    runs.push(run);
    return run;
  };

  afterAll(async () => {
    await Promise.all(runs.map((r) => r.stop()));
    for (const d of tmps) rmSync(d, { recursive: true, force: true });
  });

  it(
    'two runs at once without port flags both reach Ready, each in its own sandbox, and leave nothing',
    async () => {
      const dir = tmp();
      const args = ['--exit-when-ready', '--timeout', String(READY_TIMEOUT_S)];
      const [a, b] = [start(dir, args), start(dir, args)];
      const [ea, eb] = await Promise.all([
        a.exited((READY_TIMEOUT_S + 60) * 1000),
        b.exited((READY_TIMEOUT_S + 60) * 1000),
      ]);
      expect(ea, a.output()).toEqual({ code: 0, signal: null });
      expect(eb, b.output()).toEqual({ code: 0, signal: null });
      for (const run of [a, b]) {
        expect(run.lines.some((l) => /examples Ready in/.test(l))).toBe(true);
        expect(run.lines.some((l) => /web Ready=True RolloutSucceeded/.test(l))).toBe(true);
      }
      const sandbox = (run: Run) =>
        run.lines.map((l) => /instance directories under (\S+)/.exec(l)?.[1]).find(Boolean);
      expect(sandbox(a)).toBeDefined();
      expect(sandbox(a)).not.toBe(sandbox(b));
      expect(await leftovers([a, b])).toEqual([]);
    },
    (READY_TIMEOUT_S + 120) * 1000,
  );

  it(
    '--artifact-port N: the AppRelease example downloads from port N and rolls out; Ctrl-C after Ready removes everything',
    async () => {
      const port = await freePort();
      const run = start(tmp(), [
        '--artifact-port',
        String(port),
        '--metrics-port',
        '0',
        '--probe-port',
        '0',
        '--timeout',
        String(READY_TIMEOUT_S),
      ]);
      await run.line(/Ctrl-C stops and removes everything/, (READY_TIMEOUT_S + 60) * 1000);
      expect(run.lines).toContain(
        `[local] artifacts of deploy/examples/artifacts/ served at http://127.0.0.1:${port}/`,
      );
      const kubeconfig = (await run.line(/export KUBECONFIG=(\S+)/, 1000))[1]!;
      const sandbox = (await run.line(/instance directories under (\S+)/, 1000))[1]!;
      const kc = new KubeConfig();
      kc.loadFromFile(kubeconfig);
      const web = (await kubeRequestRaw(
        kc,
        'GET',
        '/apis/ecsops.io/v1alpha1/namespaces/default/appreleases/web',
      )) as {
        spec: {
          artifact: { url: string };
          install: { appDir: string };
          analysis?: { prometheus: { url: string } };
        };
        status: {
          conditions: Array<{ type: string; status: string; reason: string }>;
          analysis?: { runId: string; phase: string };
          trafficControl?: unknown;
        };
      };
      expect(web.spec.artifact.url).toBe(`http://127.0.0.1:${port}/web-1.4.2/web.sh`);
      expect(web.spec.install.appDir).toBe(`${sandbox}/{{ACS::InstanceId}}/web`);
      // Metric-gated on this run's Prometheus when it started one (the binary is built), else not gated.
      const prometheus = run.lines.map((l) => /prometheus ready at (\S+)/.exec(l)?.[1]).find(Boolean);
      if (prometheus) {
        expect(web.spec.analysis?.prometheus.url).toBe(prometheus);
        // The last batch's gate: the canary (batch 0), then 50 % batches cut to the example's
        // trafficControl.maxDrained (2) over the 4 reachable instances: batches 1 (2) and 2 (1).
        expect(web.status.analysis).toMatchObject({
          runId: expect.stringMatching(/\/batch-2$/),
          phase: 'Successful',
        });
        expect(run.lines.some((l) => /web is metric-gated: .* get apprelease web --watch/.test(l))).toBe(
          true,
        );
      } else {
        expect(web.spec.analysis).toBeUndefined();
        expect(run.lines.some((l) => /applied without spec\.analysis/.test(l))).toBe(true);
      }
      expect(web.status.conditions.find((c) => c.type === 'Ready')).toMatchObject({
        status: 'True',
        reason: 'RolloutSucceeded',
      });
      // Behind the demo ALB: every instance back in rotation once the rollout succeeded.
      expect(run.lines.some((l) => /ALB alb-ecsopsdemoweb \(server group sgp-ecsopsdemoweb/.test(l))).toBe(
        true,
      );
      expect(web.status.trafficControl).toBeUndefined();
      // the releases really are in this run's sandbox
      expect(readdirSync(sandbox).some((i) => existsSync(join(sandbox, i, 'web', 'current', 'web.sh')))).toBe(
        true,
      );

      run.signal('SIGINT');
      expect(await run.exited(90_000), run.output()).toEqual({ code: 0, signal: null });
      expect(await leftovers([run])).toEqual([]);
    },
    (READY_TIMEOUT_S + 180) * 1000,
  );

  it('Ctrl-C or SIGTERM at any moment of start-up leaves no process and no dir behind', async () => {
    /** When to send the signal: `after` a delay from the start, or a line (+ `delayMs`). */
    const moments: Array<{
      name: string;
      after: number | RegExp;
      delayMs?: number;
      sig?: NodeJS.Signals;
      /** Who gets it (default the group); only a SIGINT/SIGTERM to the group reaches etcd etc. */
      to?: 'group' | 'tsx' | 'script';
    }> = [
      { name: 'right after the start', after: 400 },
      {
        name: 'while etcd and kube-apiserver start',
        after: /starting kube-apiserver \+ etcd/,
        delayMs: 1500,
      },
      { name: 'as the emulator and its sandbox are up', after: /instance directories under/ },
      {
        name: 'while the controller starts (SIGTERM to the main process only)',
        after: /applied CustomResourceDefinition patchpolicies/,
        delayMs: 1200,
        sig: 'SIGTERM',
        to: 'tsx',
      },
      {
        name: 'as the controller runs (SIGINT to the main process only)',
        after: /controller running/,
        to: 'tsx',
      },
      { name: 'while the AppRelease example rolls out', after: /applied AppRelease/, delayMs: 1500 },
      {
        // what tsx does to a child that does not acknowledge a forwarded signal within ~60 ms
        name: 'SIGKILL of the script process itself, as the examples roll out',
        after: /applied PatchPolicy/,
        sig: 'SIGKILL',
        to: 'script',
      },
    ];
    const failures: string[] = [];
    for (const m of moments) {
      const sig = m.sig ?? 'SIGINT';
      const run = start(tmp(), [
        '--metrics-port',
        '0',
        '--probe-port',
        '0',
        '--timeout',
        String(READY_TIMEOUT_S),
      ]);
      if (typeof m.after === 'number') await new Promise((r) => setTimeout(r, m.after as number));
      else await run.line(m.after, 120_000);
      if (m.delayMs) await new Promise((r) => setTimeout(r, m.delayMs));
      run.signal(sig, m.to ?? 'group');
      const exit = await run.exited(90_000);
      const left = await leftovers([run]);
      // interrupted before Ready: exit code 128 + signal (or killed by it before any handler existed)
      const byTheSignal =
        sig === 'SIGKILL' || exit.code === (sig === 'SIGTERM' ? 143 : 130) || exit.signal === sig;
      if (left.length > 0 || !byTheSignal) {
        failures.push(
          `${m.name}: exit ${JSON.stringify(exit)}, left ${JSON.stringify(left)}\n${run.output()}`,
        );
      }
    }
    expect(failures).toEqual([]);
  }, 900_000);
});
