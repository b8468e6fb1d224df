import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Faults } from './faults.js';
import { resolveSecretParameters } from './secrets.js';
import {
  BOOT_HOOK_FILE,
  PRIVATE_IP_ENV,
  SANDBOX_OWNER_ENV,
  killOwnedProcesses,
  sandboxRoot,
  runSandboxed,
  substituteParameters,
  type SandboxOptions,
  type SandboxRun,
} from './sandbox.js';
import type { Scheduler } from './scheduler.js';
import type { CloudState } from './state.js';
import { isoNow } from './state.js';

/**
 * A scripted Cloud Assistant outcome. A rule matches when every given selector matches
 * (`instanceId` equal, `contains` a substring of the plaintext command content); the first
 * matching rule (in the order added) decides exit code, output and duration.
 */
export interface InvocationScriptRule {
  instanceId?: string;
  contains?: string;
  /** Default 0. Non-zero → per-instance `Failed`. */
  exitCode?: number;
  /** Plaintext output; returned Base64-encoded unless the caller asks for PlainText. Default ''. */
  output?: string;
  /** Modelled run time in milliseconds (scaled by timeScale). Default 5000. Beyond Timeout → `Timeout`. */
  delayMs?: number;
  /** Only invocations whose custom parameters have these values (e.g. `{ action: 'rollback' }`). */
  parameters?: Record<string, string>;
  /**
   * Models ecsops' AppRelease wrapper instead of a fixed `output`: the output is the wrapper's
   * marker lines for the invocation's `action` / `revision` custom parameters — `ecsops-result
   * action=<a> revision=<r> result=ok` with exit code 0, or `result=failed step=<failStep>
   * rc=<exitCode>` when `exitCode` ≠ 0. A host's modelled revision is the revision of its last run
   * that succeeded or failed after the swap (step `start`, `validate` or `health`), read from the
   * invocation records (see the fault matrix, test/harness/faults-apprelease.ts).
   */
  wrapper?: boolean;
  /** With `wrapper` and a non-zero `exitCode`: the failing step (default `health`). */
  failStep?: string;
}

/** The output of a modelled wrapper run (see {@link InvocationScriptRule.wrapper}). */
export function wrapperModelOutput(
  parameters: Record<string, unknown>,
  code: number,
  failStep = 'health',
): string {
  const action = String(parameters['action'] ?? 'deploy');
  const revision = String(parameters['revision'] ?? 'none');
  const steps =
    action === 'deploy' ? ['download', 'verify', 'stop', 'start', 'health'] : ['stop', 'start', 'health'];
  const lines: string[] = [];
  for (const st of steps) {
    const failed = code !== 0 && st === failStep;
    lines.push(`ecsops-step ${st} rc=${failed ? code : 0} ms=1`);
    if (failed) break;
  }
  lines.push(
    `ecsops-result action=${action} revision=${revision} result=${code === 0 ? 'ok' : `failed step=${failStep} rc=${code}`}`,
  );
  return lines.join('\n');
}

/** Per-instance result of an invocation. */
export interface InvokeInstanceRecord {
  instanceId: string;
  status: 'Pending' | 'Running' | 'Success' | 'Failed' | 'Timeout' | 'Invalid' | 'Cancelled' | 'Terminated';
  exitCode: number | null;
  output: string;
  errorCode: string;
  errorInfo: string;
  creationTime: string;
  startTime: string;
  finishTime: string;
  stopTime: string;
  updateTime: string;
  /** Output bytes cut by the 24 KB cap (sandbox mode). */
  dropped?: number;
  /** When it started Running / reached a final status, milliseconds since the epoch (control API only: timelines). */
  startedAtMs?: number;
  finishedAtMs?: number;
}

/** A Cloud Assistant invocation (RunCommand). */
export interface InvocationRecord {
  invokeId: string;
  commandId: string;
  regionId: string;
  name: string;
  type: string;
  /** Plaintext command content. */
  content: string;
  timeoutSec: number;
  workingDir: string;
  username: string;
  parameters: Record<string, unknown>;
  /** RunCommand `EnableParameter`: `{{name}}` placeholders are substituted per instance. */
  enableParameter: boolean;
  clientToken: string;
  /** ECS tags of the invocation (RunCommand `Tag.N`), filterable in DescribeInvocations. */
  tags: Record<string, string>;
  creationTime: string;
  instances: InvokeInstanceRecord[];
}

/** Overall InvocationStatus aggregated from the per-instance statuses. */
export function invocationStatus(inv: InvocationRecord): string {
  const s = inv.instances.map((i) => i.status);
  if (s.some((x) => x === 'Running')) return 'Running';
  if (s.some((x) => x === 'Pending')) return s.every((x) => x === 'Pending') ? 'Pending' : 'Running';
  if (s.every((x) => x === 'Success')) return 'Success';
  if (s.some((x) => x === 'Terminated' || x === 'Cancelled')) return 'Stopped';
  if (s.some((x) => x === 'Success')) return 'PartialFailed';
  return 'Failed';
}

/** Input of {@link InvocationEngine.start}. */
export interface StartInvocation {
  regionId: string;
  instanceIds: string[];
  type: string;
  content: string;
  timeoutSec: number;
  name?: string;
  workingDir?: string;
  username?: string;
  parameters?: Record<string, unknown>;
  enableParameter?: boolean;
  clientToken?: string;
  tags?: Record<string, string>;
}

function hexId(prefix: string): string {
  return `${prefix}${randomBytes(10).toString('hex').slice(0, 18)}`;
}

/**
 * Runs Cloud Assistant invocations: per instance `Pending → Running → Success | Failed | Timeout`,
 * or `Invalid` at once (`InstanceNotExists` / `InstanceReleased` / `InstanceNotRunning` /
 * `ClientNotRunning`); `Failed` / `InstanceReleased` when the instance is released while Pending or
 * Running. Outcomes come from script rules and injected instance failures.
 */
export class InvocationEngine {
  readonly invocations: InvocationRecord[] = [];
  readonly rules: InvocationScriptRule[] = [];
  private readonly byToken = new Map<string, InvocationRecord>();
  private readonly listeners = new Map<string, Array<(inv: InvocationRecord) => void>>();
  /** Sandboxed processes still running, by `invokeId/instanceId`. */
  private readonly running = new Map<string, SandboxRun>();
  /**
   * This engine's mark in the environment of its sandboxed processes (`ECSOPS_SANDBOX_OWNER=
   * <owner>/<instance ID>`), unique per emulator: finds what they left running (daemons).
   */
  readonly sandboxOwner = `emu-${process.pid}-${randomBytes(6).toString('hex')}`;

  /**
   * @param sandbox when set, `RunShellScript` commands really run with bash (see sandbox.ts);
   *   otherwise outcomes come from script rules.
   */
  constructor(
    private readonly state: CloudState,
    private readonly scheduler: Scheduler,
    private readonly faults: Faults,
    private readonly sandbox?: SandboxOptions,
  ) {}

  /**
   * Kills every sandboxed process (stop / reset): the running commands and whatever the
   * instances' commands left running (servers a start hook put in the background).
   */
  killAll(): void {
    for (const r of this.running.values()) r.kill();
    this.running.clear();
    if (this.sandbox) killOwnedProcesses(this.sandboxOwner);
  }

  /**
   * Sandbox mode: signals every process of one instance (its running commands and the daemons
   * they started), as if the instance stopped. @returns the PIDs signalled.
   */
  killInstanceProcesses(instanceId: string, signal: NodeJS.Signals = 'SIGKILL'): number[] {
    if (!this.sandbox) return [];
    return killOwnedProcesses(`${this.sandboxOwner}/${instanceId}`, signal);
  }

  /**
   * Sandbox mode: the instance booted (after a patch reboot). Runs its boot hook
   * `<sandbox root>/<instance ID>/boot.sh` when that file exists, with bash, in that directory, as
   * one of the instance's processes (`ECS_PRIVATE_IP`, `ECSOPS_SANDBOX_OWNER`, and
   * `ECSOPS_INSTANCE_ID`), 300 s at most; its output is appended to `boot.log` next to it.
   * Does not wait for it. @returns whether a hook was started.
   */
  runBootHook(regionId: string, instanceId: string): boolean {
    if (!this.sandbox) return false;
    const dir = join(sandboxRoot(this.sandbox), instanceId);
    if (!existsSync(join(dir, BOOT_HOOK_FILE))) return false;
    const ip = this.state.region(regionId).instances.get(instanceId)?.privateIpAddress;
    const run = runSandboxed(`exec bash ./${BOOT_HOOK_FILE}`, 300, {
      ...this.sandbox,
      cwd: dir,
      env: {
        ...this.sandbox.env,
        ...(ip ? { [PRIVATE_IP_ENV]: ip } : {}),
        ECSOPS_INSTANCE_ID: instanceId,
        [SANDBOX_OWNER_ENV]: `${this.sandboxOwner}/${instanceId}`,
      },
    });
    void run.done.then((r) => {
      try {
        appendFileSync(join(dir, 'boot.log'), `${isoNow()} boot hook exit ${r.exitCode}\n${r.output}`);
      } catch {
        // the directory is gone (reset, cleanup)
      }
    });
    return true;
  }

  /** Clears invocations and scripts (control reset). */
  reset(): void {
    this.killAll();
    this.invocations.length = 0;
    this.rules.length = 0;
    this.byToken.clear();
    this.listeners.clear();
  }

  /** Finds an invocation by InvokeId. */
  get(invokeId: string): InvocationRecord | undefined {
    return this.invocations.find((i) => i.invokeId === invokeId);
  }

  /**
   * Starts an invocation (or returns the one created earlier with the same ClientToken in the region).
   * `onDone` runs once every instance reached a final status.
   */
  start(
    req: StartInvocation,
    onDone?: (inv: InvocationRecord) => void,
  ): { inv: InvocationRecord; reused: boolean } {
    if (req.clientToken) {
      const prev = this.byToken.get(`${req.regionId}/${req.clientToken}`);
      if (prev) return { inv: prev, reused: true };
    }
    const now = isoNow();
    const inv: InvocationRecord = {
      invokeId: hexId('t-'),
      commandId: hexId('c-'),
      regionId: req.regionId,
      name: req.name ?? '',
      type: req.type,
      content: req.content,
      timeoutSec: req.timeoutSec,
      workingDir: req.workingDir ?? '',
      username: req.username ?? '',
      parameters: req.parameters ?? {},
      enableParameter: req.enableParameter ?? false,
      clientToken: req.clientToken ?? '',
      tags: { ...(req.tags ?? {}) },
      creationTime: now,
      instances: [],
    };
    this.invocations.push(inv);
    if (req.clientToken) this.byToken.set(`${req.regionId}/${req.clientToken}`, inv);
    if (onDone) this.listeners.set(inv.invokeId, [onDone]);
    for (const id of req.instanceIds) {
      const rec: InvokeInstanceRecord = {
        instanceId: id,
        status: 'Pending',
        exitCode: null,
        output: '',
        errorCode: '',
        errorInfo: '',
        creationTime: now,
        startTime: '',
        finishTime: '',
        stopTime: '',
        updateTime: now,
      };
      inv.instances.push(rec);
      const region = this.state.region(req.regionId);
      const inst = region.instances.get(id);
      if (!inst && region.isReleased(id)) {
        this.finish(inv, rec, 'Invalid', null, '', 'InstanceReleased', 'the instance was released');
      } else if (!inst) {
        this.finish(inv, rec, 'Invalid', null, '', 'InstanceNotExists', 'the instance does not exist');
      } else if (inst.status !== 'Running') {
        this.finish(inv, rec, 'Invalid', null, '', 'InstanceNotRunning', `the instance is ${inst.status}`);
      } else if (!inst.cloudAssistantOnline) {
        this.finish(
          inv,
          rec,
          'Invalid',
          null,
          '',
          'ClientNotRunning',
          'the Cloud Assistant Agent is not running',
        );
      } else {
        this.run(inv, rec);
      }
    }
    this.maybeDone(inv);
    return { inv, reused: false };
  }

  private run(inv: InvocationRecord, rec: InvokeInstanceRecord): void {
    this.scheduler.after(300, () => {
      if (rec.status !== 'Pending') return;
      rec.status = 'Running';
      rec.startTime = rec.updateTime = isoNow();
      rec.startedAtMs = Date.now();
      if (this.sandbox && inv.type === 'RunShellScript') {
        this.runSandboxed(inv, rec, this.sandbox);
        return;
      }
      const rule = this.rules.find(
        (r) =>
          (r.instanceId === undefined || r.instanceId === rec.instanceId) &&
          (r.contains === undefined || inv.content.includes(r.contains)) &&
          Object.entries(r.parameters ?? {}).every(([k, v]) => String(inv.parameters[k]) === v),
      );
      const injected = this.faults.instanceFailure(rec.instanceId);
      const delay = rule?.delayMs ?? 5000;
      const timeoutMs = inv.timeoutSec * 1000;
      if (delay > timeoutMs) {
        this.scheduler.after(timeoutMs, () => {
          if (rec.status !== 'Running') return;
          this.finish(
            inv,
            rec,
            'Timeout',
            null,
            rule?.output ?? '',
            'ExecutionTimeout',
            'the command timed out',
          );
        });
        return;
      }
      this.scheduler.after(delay, () => {
        if (rec.status !== 'Running') return;
        if (injected !== undefined) {
          this.finish(inv, rec, 'Failed', 1, injected, 'ExitCodeNonzero', injected);
          return;
        }
        const code = rule?.exitCode ?? 0;
        this.finish(
          inv,
          rec,
          code === 0 ? 'Success' : 'Failed',
          code,
          rule?.wrapper ? wrapperModelOutput(inv.parameters, code, rule.failStep) : (rule?.output ?? ''),
          code === 0 ? '' : 'ExitCodeNonzero',
          code === 0 ? '' : `the process exited with code ${code}`,
        );
      });
    });
  }

  /** Sandbox mode: runs the (substituted) script with bash; the process decides the outcome. */
  private runSandboxed(inv: InvocationRecord, rec: InvokeInstanceRecord, opts: SandboxOptions): void {
    const injected = this.faults.instanceFailure(rec.instanceId);
    if (injected !== undefined) {
      this.finish(inv, rec, 'Failed', 1, injected, 'ExitCodeNonzero', injected);
      return;
    }
    let script = inv.enableParameter
      ? substituteParameters(inv.content, inv.parameters, {
          instanceId: rec.instanceId,
          regionId: inv.regionId,
          invokeId: inv.invokeId,
          commandId: inv.commandId,
        })
      : inv.content;
    if (inv.enableParameter) {
      // `{{oos-secret:NAME}}` is resolved here, on the instance side only (the agent does it right
      // before running): the invocation's stored content keeps the placeholder.
      const resolved = resolveSecretParameters(script, this.state.region(inv.regionId));
      if ('missing' in resolved) {
        const why = `the encrypted parameter ${resolved.missing} could not be resolved`;
        this.finish(inv, rec, 'Failed', null, '', 'InvalidParameter.OosSecret', why);
        return;
      }
      script = resolved.script;
    }
    const key = `${inv.invokeId}/${rec.instanceId}`;
    const ip = this.state.region(inv.regionId).instances.get(rec.instanceId)?.privateIpAddress;
    const run = runSandboxed(script, inv.timeoutSec, {
      ...opts,
      env: {
        ...opts.env,
        ...(ip ? { [PRIVATE_IP_ENV]: ip } : {}),
        [SANDBOX_OWNER_ENV]: `${this.sandboxOwner}/${rec.instanceId}`,
      },
      ...(inv.workingDir ? { cwd: inv.workingDir } : {}),
    });
    this.running.set(key, run);
    void run.done.then((r) => {
      this.running.delete(key);
      rec.dropped = r.dropped;
      if (rec.status !== 'Running') return; // stopped meanwhile
      if (r.timedOut) {
        this.finish(inv, rec, 'Timeout', null, r.output, 'ExecutionTimeout', 'the command timed out');
        return;
      }
      const code = r.exitCode ?? 1;
      this.finish(
        inv,
        rec,
        code === 0 ? 'Success' : 'Failed',
        code,
        r.output,
        code === 0 ? '' : 'ExitCodeNonzero',
        code === 0 ? '' : `the process exited with code ${code}`,
      );
    });
  }

  private finish(
    inv: InvocationRecord,
    rec: InvokeInstanceRecord,
    status: InvokeInstanceRecord['status'],
    exitCode: number | null,
    output: string,
    errorCode: string,
    errorInfo: string,
  ): void {
    rec.status = status;
    rec.exitCode = exitCode;
    rec.output = output;
    rec.errorCode = errorCode;
    rec.errorInfo = errorInfo;
    rec.finishTime = rec.updateTime = isoNow();
    rec.finishedAtMs = Date.now();
    this.maybeDone(inv);
  }

  private maybeDone(inv: InvocationRecord): void {
    if (inv.instances.some((i) => i.status === 'Pending' || i.status === 'Running')) return;
    const ls = this.listeners.get(inv.invokeId);
    if (!ls) return;
    this.listeners.delete(inv.invokeId);
    for (const l of ls) l(inv);
  }

  /**
   * The instance was released: its Pending / Running invocation records in the region end
   * `Failed` with ErrorCode `InstanceReleased` (a sandboxed process is killed).
   */
  instanceReleased(regionId: string, instanceId: string): void {
    for (const inv of this.invocations) {
      if (inv.regionId !== regionId) continue;
      for (const rec of inv.instances) {
        if (rec.instanceId !== instanceId || (rec.status !== 'Pending' && rec.status !== 'Running')) continue;
        const key = `${inv.invokeId}/${rec.instanceId}`;
        this.running.get(key)?.kill();
        this.running.delete(key);
        this.finish(inv, rec, 'Failed', null, rec.output, 'InstanceReleased', 'the instance was released');
      }
    }
    this.killInstanceProcesses(instanceId);
  }

  /** StopInvocation: Pending → Cancelled, Running → Terminated, for all or the given instances. */
  stop(inv: InvocationRecord, instanceIds?: string[]): void {
    const now = isoNow();
    for (const rec of inv.instances) {
      if (instanceIds && instanceIds.length > 0 && !instanceIds.includes(rec.instanceId)) continue;
      if (rec.status === 'Pending' || rec.status === 'Running') {
        const run = this.running.get(`${inv.invokeId}/${rec.instanceId}`);
        if (run) {
          run.kill();
          this.running.delete(`${inv.invokeId}/${rec.instanceId}`);
        }
        rec.finishedAtMs = Date.now();
        rec.status = rec.status === 'Pending' ? 'Cancelled' : 'Terminated';
        rec.stopTime = rec.finishTime = rec.updateTime = now;
        rec.errorCode = '';
        rec.errorInfo = 'the invocation was stopped';
      }
    }
    this.maybeDone(inv);
  }
}
