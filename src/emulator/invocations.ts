import { randomBytes } from 'node:crypto';
import type { Faults } from './faults.js';
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
  clientToken?: string;
  tags?: Record<string, string>;
}

function hexId(prefix: string): string {
  return `${prefix}${randomBytes(10).toString('hex').slice(0, 18)}`;
}

/**
 * Runs Cloud Assistant invocations: per instance `Pending → Running → Success | Failed | Timeout`,
 * or `Invalid` at once (`InstanceNotRunning` / `ClientNotRunning`). Outcomes come from script
 * rules and injected instance failures.
 */
export class InvocationEngine {
  readonly invocations: InvocationRecord[] = [];
  readonly rules: InvocationScriptRule[] = [];
  private readonly byToken = new Map<string, InvocationRecord>();
  private readonly listeners = new Map<string, Array<(inv: InvocationRecord) => void>>();

  constructor(
    private readonly state: CloudState,
    private readonly scheduler: Scheduler,
    private readonly faults: Faults,
  ) {}

  /** Clears invocations and scripts (control reset). */
  reset(): void {
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
      const inst = this.state.region(req.regionId).instances.get(id);
      if (!inst) {
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
      const rule = this.rules.find(
        (r) =>
          (r.instanceId === undefined || r.instanceId === rec.instanceId) &&
          (r.contains === undefined || inv.content.includes(r.contains)),
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
          rule?.output ?? '',
          code === 0 ? '' : 'ExitCodeNonzero',
          code === 0 ? '' : `the process exited with code ${code}`,
        );
      });
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
    this.maybeDone(inv);
  }

  private maybeDone(inv: InvocationRecord): void {
    if (inv.instances.some((i) => i.status === 'Pending' || i.status === 'Running')) return;
    const ls = this.listeners.get(inv.invokeId);
    if (!ls) return;
    this.listeners.delete(inv.invokeId);
    for (const l of ls) l(inv);
  }

  /** StopInvocation: Pending → Cancelled, Running → Terminated, for all or the given instances. */
  stop(inv: InvocationRecord, instanceIds?: string[]): void {
    const now = isoNow();
    for (const rec of inv.instances) {
      if (instanceIds && instanceIds.length > 0 && !instanceIds.includes(rec.instanceId)) continue;
      if (rec.status === 'Pending' || rec.status === 'Running') {
        rec.status = rec.status === 'Pending' ? 'Cancelled' : 'Terminated';
        rec.stopTime = rec.finishTime = rec.updateTime = now;
        rec.errorCode = '';
        rec.errorInfo = 'the invocation was stopped';
      }
    }
    this.maybeDone(inv);
  }
}
