import { randomBytes } from 'node:crypto';
import { ApiError, invalidParameter } from './errors.js';
import type { Faults } from './faults.js';
import { templateStepActions, type TemplateStepWhen } from '../cloud/ram-actions.js';
import type { InvocationEngine } from './invocations.js';
import { ramDeniedStepMessage, RamGate } from './ram.js';
import type { Scheduler } from './scheduler.js';
import type { CloudState, InstanceRecord } from './state.js';
import { baselineOsFor, isoNow, patchStatusCounts, validateParameters } from './state.js';
import type { TemplateRecord } from './templates.js';
import { APPLY_PATCH_TEMPLATE, CONFIGURE_PACKAGE_TEMPLATE, RUN_COMMAND_TEMPLATE } from './templates.js';

/** OOS loop item limit (DOC-LOOP): more targets than this are rejected at StartExecution. */
export const LOOP_ITEM_LIMIT = 1000;

/** Modelled durations in milliseconds (before timeScale). */
export const DURATIONS = {
  startToRunning: 500,
  precheckFailure: 1000,
  packageInstall: 20_000,
  patchScan: 30_000,
  patchInstall: 60_000,
  stopping: 3_000,
  starting: 5_000,
};

/** Execution statuses. Terminal: Success, Failed, Cancelled. */
export type ExecutionStatus = 'Started' | 'Running' | 'Success' | 'Failed' | 'Cancelled';
/** Per-instance (loop item) statuses; `Skipped` = never started because MaxErrors was exceeded. */
export type ItemStatus = 'Pending' | 'Running' | 'Success' | 'Failed' | 'Cancelled' | 'Skipped';

/** Per-instance result of a bulky execution (one loop item). */
export interface ItemResult {
  instanceId: string;
  index: number;
  taskExecutionId: string;
  status: ItemStatus;
  statusMessage: string;
  startDate: string;
  endDate: string;
  outputs: Record<string, unknown>;
  /** Cloud Assistant InvokeId of a BulkyRunCommand item. */
  invokeId?: string;
  /**
   * When the item started Running / stopped, milliseconds since the epoch (control API only:
   * timelines). `endedAtMs` is stamped on every end of a started item: Success, Failed (also when
   * its instance was released) and Cancelled; never-started (`Skipped`) items have neither.
   */
  startedAtMs?: number;
  endedAtMs?: number;
}

/** Parsed `rateControl` (`Mode: Concurrency`). */
export interface RateControl {
  mode: 'Concurrency';
  /** Resolved max items in flight. */
  concurrency: number;
  /** Resolved number of failed items tolerated. */
  maxErrors: number;
  raw: Record<string, unknown>;
}

/** One execution log line (ListExecutionLogs). */
export interface ExecutionLog {
  timestamp: string;
  message: string;
  logType: string;
  taskExecutionId: string;
}

/** An OOS execution with its per-instance results (the control API returns this record). */
export interface ExecutionRecord {
  executionId: string;
  regionId: string;
  templateName: string;
  templateId: string;
  templateVersion: string;
  mode: string;
  loopMode: string;
  safetyCheck: string;
  status: ExecutionStatus;
  statusMessage: string;
  /** Given parameters merged over the template defaults. */
  parameters: Record<string, unknown>;
  tags: Record<string, string>;
  clientToken: string;
  description: string;
  resourceGroupId: string;
  createDate: string;
  startDate: string;
  endDate: string;
  updateDate: string;
  targets: unknown;
  rateControl: RateControl;
  items: ItemResult[];
  logs: ExecutionLog[];
  outputs: Record<string, unknown>;
}

/** Input of {@link ExecutionEngine.start} (already-decoded StartExecution parameters). */
export interface StartExecutionInput {
  regionId: string;
  templateName: string;
  templateVersion?: string;
  parameters: Record<string, unknown>;
  mode?: string;
  loopMode?: string;
  safetyCheck?: string;
  clientToken?: string;
  tags?: Record<string, string>;
  description?: string;
  resourceGroupId?: string;
}

function parseCount(v: unknown, total: number, name: string, round: 'ceil' | 'floor'): number {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  if (typeof v === 'string') {
    const m = /^(\d+)(%?)$/.exec(v.trim());
    if (m) {
      const n = Number(m[1]);
      if (m[2] !== '%') return n;
      if (n > 100) throw invalidParameter('Parameters', `rateControl.${name} percentage above 100%`);
      return Math[round]((total * n) / 100);
    }
  }
  throw invalidParameter(
    'Parameters',
    `rateControl.${name} must be an integer or a percentage string like "10%"`,
  );
}

/** Parses `rateControl` against the number of loop items. @throws ApiError InvalidParameter. */
export function parseRateControl(raw: unknown, total: number): RateControl {
  const rc = (typeof raw === 'string' ? safeJson(raw) : raw) as Record<string, unknown> | undefined;
  if (!rc || typeof rc !== 'object' || Array.isArray(rc))
    throw invalidParameter('Parameters', 'rateControl must be an object');
  if (rc['Mode'] !== 'Concurrency') {
    throw invalidParameter(
      'Parameters',
      `rateControl.Mode ${JSON.stringify(rc['Mode'])} is not supported (only "Concurrency")`,
    );
  }
  const concurrency = Math.max(1, parseCount(rc['Concurrency'] ?? 1, total, 'Concurrency', 'ceil'));
  const maxErrors = parseCount(rc['MaxErrors'] ?? 0, total, 'MaxErrors', 'floor');
  return { mode: 'Concurrency', concurrency, maxErrors, raw: rc };
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s) as unknown;
  } catch {
    throw invalidParameter('Parameters', 'not valid JSON');
  }
}

/** StatusMessage of a loop item whose instance was released. */
function releasedMessage(instanceId: string): string {
  return `Instance ${instanceId} was released.`;
}

function randomExecutionId(): string {
  return `exec-${randomBytes(9).toString('hex').slice(0, 17)}`;
}

interface Running {
  next: number;
  inFlight: number;
  failed: number;
  stopping: boolean;
}

/**
 * Runs OOS executions of the three public bulky templates: resolves `targets`, honours
 * `rateControl` (Concurrency / MaxErrors), runs one loop item per instance and applies its effect
 * (package state, patch state, snapshot, Cloud Assistant invocation).
 */
export class ExecutionEngine {
  readonly executions: ExecutionRecord[] = [];
  private readonly byToken = new Map<string, ExecutionRecord>();
  private readonly running = new Map<string, Running>();

  constructor(
    private readonly state: CloudState,
    private readonly scheduler: Scheduler,
    private readonly faults: Faults,
    private readonly invocations: InvocationEngine,
    /** RAM policy the template steps run under (the caller's identity: empty `OOSAssumeRole`). */
    private readonly ram: RamGate = new RamGate(),
  ) {}

  /**
   * The failure message of the first template step in `when` whose action the RAM policy denies
   * (ram.ts), or undefined when all are allowed (always without a policy).
   */
  private denied(exec: ExecutionRecord, when: TemplateStepWhen): string | undefined {
    const d = this.ram.firstDenied(templateStepActions(exec.templateName, when));
    return d ? ramDeniedStepMessage(d.action, `${exec.templateName} ${when}`) : undefined;
  }

  /** Drops every execution (control reset). */
  reset(): void {
    this.executions.length = 0;
    this.byToken.clear();
    this.running.clear();
  }

  /** Finds an execution by ID. */
  get(executionId: string): ExecutionRecord | undefined {
    return this.executions.find((e) => e.executionId === executionId);
  }

  /**
   * StartExecution. Returns the earlier execution when the ClientToken was already used in the region.
   * @throws ApiError `EntityNotExists.Template` (404) for an unknown template or version;
   *   `InvalidParameter` (400) for undeclared / missing-required / disallowed template parameters,
   *   bad targets or rateControl, a Package template, or more than 1000 loop items.
   */
  start(input: StartExecutionInput): ExecutionRecord {
    if (input.clientToken) {
      const prev = this.byToken.get(`${input.regionId}/${input.clientToken}`);
      if (prev) return prev;
    }
    const tpl = this.state.templates.get(input.templateName);
    if (!tpl)
      throw new ApiError(
        404,
        'EntityNotExists.Template',
        `The template "${input.templateName}" does not exist.`,
      );
    const ver = input.templateVersion
      ? tpl.versions.find((v) => v.version === input.templateVersion)
      : tpl.versions[tpl.versions.length - 1];
    if (!ver) {
      throw new ApiError(
        404,
        'EntityNotExists.Template',
        `The template "${tpl.name}" has no version "${input.templateVersion}".`,
      );
    }
    if (tpl.type !== 'Automation') {
      throw invalidParameter(
        'TemplateName',
        `template "${tpl.name}" is a ${tpl.type} template and cannot be executed`,
      );
    }
    const problem = validateParameters(ver.parameters, input.parameters);
    if (problem) throw invalidParameter('Parameters', problem);
    const parameters: Record<string, unknown> = {};
    for (const [k, d] of Object.entries(ver.parameters)) if ('Default' in d) parameters[k] = d.Default;
    Object.assign(parameters, input.parameters);
    if (parameters['regionId'] === '{{ ACS::RegionId }}') parameters['regionId'] = input.regionId;
    const targets =
      typeof parameters['targets'] === 'string' ? safeJson(parameters['targets']) : parameters['targets'];
    const instanceIds = this.resolveTargets(targets, input.regionId);
    if (instanceIds.length > LOOP_ITEM_LIMIT) {
      throw invalidParameter(
        'Parameters',
        `targets resolve to ${instanceIds.length} instances; an OOS loop accepts at most ${LOOP_ITEM_LIMIT} items`,
      );
    }
    const rateControl = parseRateControl(parameters['rateControl'], instanceIds.length);
    const now = isoNow();
    const exec: ExecutionRecord = {
      executionId: randomExecutionId(),
      regionId: input.regionId,
      templateName: tpl.name,
      templateId: tpl.templateId,
      templateVersion: ver.version,
      mode: input.mode ?? 'Automatic',
      loopMode: input.loopMode ?? 'Automatic',
      safetyCheck: input.safetyCheck ?? 'ConfirmEveryHighRiskAction',
      status: 'Started',
      statusMessage: '',
      parameters,
      tags: input.tags ?? {},
      clientToken: input.clientToken ?? '',
      description: input.description ?? '',
      resourceGroupId: input.resourceGroupId ?? '',
      createDate: now,
      startDate: now,
      endDate: '',
      updateDate: now,
      targets,
      rateControl,
      items: instanceIds.map((id, i) => ({
        instanceId: id,
        index: i,
        taskExecutionId: '',
        status: 'Pending',
        statusMessage: '',
        startDate: '',
        endDate: '',
        outputs: {},
      })),
      logs: [],
      outputs: {},
    };
    this.executions.push(exec);
    if (input.clientToken) this.byToken.set(`${input.regionId}/${input.clientToken}`, exec);
    this.log(exec, `Execution started with ${instanceIds.length} target instance(s)`);
    this.running.set(exec.executionId, { next: 0, inFlight: 0, failed: 0, stopping: false });
    this.scheduler.after(DURATIONS.startToRunning, () => {
      if (exec.status !== 'Started') return;
      exec.status = 'Running';
      exec.updateDate = isoNow();
      this.pump(exec);
    });
    return exec;
  }

  /** Resolves `targets` (`ResourceIds` or `Tags`) to instance IDs. @throws ApiError InvalidParameter. */
  private resolveTargets(targets: unknown, regionId: string): string[] {
    if (!targets || typeof targets !== 'object' || Array.isArray(targets)) {
      throw invalidParameter('Parameters', 'targets must be a JSON object');
    }
    const t = targets as Record<string, unknown>;
    const region =
      typeof t['RegionId'] === 'string' && !t['RegionId'].includes('{{') ? t['RegionId'] : regionId;
    if (t['Type'] === 'ResourceIds') {
      const ids = t['ResourceIds'];
      if (!Array.isArray(ids) || ids.some((x) => typeof x !== 'string')) {
        throw invalidParameter('Parameters', 'targets.ResourceIds must be a list of instance IDs');
      }
      return [...new Set(ids as string[])];
    }
    if (t['Type'] === 'Tags') {
      const tags = t['Tags'];
      if (!Array.isArray(tags) || tags.length === 0)
        throw invalidParameter('Parameters', 'targets.Tags must be a non-empty list');
      const want = (tags as Array<Record<string, unknown>>).map((x) => ({
        key: String(x['Key']),
        value: x['Value'],
      }));
      return [...this.state.region(region).instances.values()]
        .filter((i) =>
          want.every((w) => w.key in i.tags && (w.value === undefined || i.tags[w.key] === String(w.value))),
        )
        .map((i) => i.instanceId);
    }
    throw invalidParameter(
      'Parameters',
      `targets.Type ${JSON.stringify(t['Type'])} is not supported (ResourceIds, Tags)`,
    );
  }

  private targetRegion(exec: ExecutionRecord): string {
    const t = exec.targets as Record<string, unknown>;
    return typeof t['RegionId'] === 'string' && !t['RegionId'].includes('{{') ? t['RegionId'] : exec.regionId;
  }

  private pump(exec: ExecutionRecord): void {
    const r = this.running.get(exec.executionId);
    if (!r || exec.status !== 'Running') return;
    while (!r.stopping && r.inFlight < exec.rateControl.concurrency && r.next < exec.items.length) {
      const item = exec.items[r.next++] as ItemResult;
      r.inFlight++;
      this.startItem(exec, item);
    }
    if (r.inFlight === 0 && (r.stopping || r.next >= exec.items.length)) this.finalize(exec, r);
  }

  private startItem(exec: ExecutionRecord, item: ItemResult): void {
    item.status = 'Running';
    item.taskExecutionId = `${exec.executionId}.t0002.i${String(item.index + 1).padStart(4, '0')}`;
    item.startDate = isoNow();
    item.startedAtMs = Date.now();
    this.log(exec, `Loop item ${item.instanceId} started`, item.taskExecutionId);
    let settled = false;
    const done = (ok: boolean, message: string, outputs: Record<string, unknown> = {}) => {
      if (settled) return;
      settled = true;
      this.itemDone(exec, item, ok, message, outputs);
    };
    const inst = this.state.region(this.targetRegion(exec)).instances.get(item.instanceId);
    const pre =
      this.precheck(exec, inst, item.instanceId) ??
      this.denied(exec, 'always') ??
      (exec.parameters['action'] === 'update' ? this.denied(exec, 'update') : undefined);
    if (pre) {
      this.scheduler.after(DURATIONS.precheckFailure, () => done(false, pre));
      return;
    }
    const i = inst as InstanceRecord;
    switch (exec.templateName) {
      case CONFIGURE_PACKAGE_TEMPLATE:
        this.scheduler.after(DURATIONS.packageInstall, () => {
          if (!this.gone(i)) this.configurePackage(exec, i, done);
        });
        return;
      case APPLY_PATCH_TEMPLATE:
        this.applyPatch(exec, i, done);
        return;
      case RUN_COMMAND_TEMPLATE:
        this.runCommand(exec, item, i, done);
        return;
      default:
        this.scheduler.after(DURATIONS.precheckFailure, () => done(true, ''));
    }
  }

  private precheck(exec: ExecutionRecord, inst: InstanceRecord | undefined, id: string): string | undefined {
    if (!inst && this.state.region(this.targetRegion(exec)).isReleased(id)) return releasedMessage(id);
    if (!inst) return `Instance ${id} does not exist in region ${this.targetRegion(exec)}.`;
    if (inst.status !== 'Running') return `Instance ${id} is ${inst.status}, expected Running.`;
    if (!inst.cloudAssistantOnline)
      return `Cloud Assistant Agent on instance ${id} is offline (no heartbeat).`;
    return undefined;
  }

  /** Whether the instance left the fleet (released) since its item started: its effects are void. */
  private gone(inst: InstanceRecord): boolean {
    return this.state.region(inst.regionId).instances.get(inst.instanceId) !== inst;
  }

  /**
   * The instance was released: its running loop items end Failed at once (their pending items fail
   * the precheck when they start). Effects scheduled for it are dropped.
   */
  instanceReleased(regionId: string, instanceId: string): void {
    for (const exec of this.executions) {
      if (exec.status !== 'Started' && exec.status !== 'Running') continue;
      if (this.targetRegion(exec) !== regionId) continue;
      for (const it of exec.items) {
        if (it.instanceId === instanceId && it.status === 'Running') {
          this.itemDone(exec, it, false, releasedMessage(instanceId), {});
        }
      }
    }
  }

  private injected(inst: InstanceRecord): string | undefined {
    const r = this.faults.instanceFailure(inst.instanceId);
    return r === undefined ? undefined : `Instance ${inst.instanceId} failed: ${r}`;
  }

  private configurePackage(
    exec: ExecutionRecord,
    inst: InstanceRecord,
    done: (ok: boolean, msg: string, out?: Record<string, unknown>) => void,
  ): void {
    const inj = this.injected(inst);
    if (inj) return done(false, inj);
    const action = String(exec.parameters['action'] ?? 'install');
    const name = String(exec.parameters['packageName'] ?? '');
    const region = this.state.region(inst.regionId);
    const key = `${inst.instanceId}/${name}`;
    const pkg: TemplateRecord | undefined = this.state.templates.get(name);
    if (!pkg || pkg.type !== 'Package') return done(false, `Package template ${name} does not exist.`);
    if (action === 'uninstall') {
      region.packageStates.delete(key);
      return done(true, '', { InstanceId: inst.instanceId, Package: name, PackageResult: 'uninstalled' });
    }
    const wanted = String(exec.parameters['packageVersion'] ?? '');
    const ver = wanted
      ? pkg.versions.find((v) => v.version === wanted)
      : pkg.versions[pkg.versions.length - 1];
    if (!ver) return done(false, `Package template ${name} has no version ${wanted}.`);
    let params: unknown = exec.parameters['parameters'] ?? {};
    if (typeof params === 'string') {
      try {
        params = JSON.parse(params) as unknown;
      } catch {
        return done(false, 'Package parameters are not valid JSON.');
      }
    }
    if (typeof params !== 'object' || params === null || Array.isArray(params)) {
      return done(false, 'Package parameters must be a JSON object.');
    }
    const problem = validateParameters(ver.parameters, params as Record<string, unknown>);
    if (problem) return done(false, `Package ${name} ${ver.version}: ${problem}.`);
    region.packageStates.set(key, {
      instanceId: inst.instanceId,
      templateName: name,
      templateVersion: ver.version,
      parameters: params as Record<string, unknown>,
      configurationInfo: '',
      updateTime: isoNow(),
    });
    done(true, '', {
      InstanceId: inst.instanceId,
      Package: name,
      PackageResult: `${action} ${ver.version} succeeded`,
    });
  }

  /**
   * `ACS::ECS::ApplyPatchBaseline` on one instance. scan: records the patch state with the counts
   * as of now. install: optional system-disk snapshot first; then Missing / Failed patches become
   * Installed, or InstalledPendingReboot for those that need a reboot; with `rebootIfNeed` and any
   * pending, the instance cycles Stopping → Starting → Running with its Cloud Assistant agent
   * offline meanwhile, and pending patches become Installed. An injected failure (`failInstances`)
   * marks the patches Failed. Either way the patch state records OperationType install.
   */
  private applyPatch(
    exec: ExecutionRecord,
    inst: InstanceRecord,
    done: (ok: boolean, msg: string, out?: Record<string, unknown>) => void,
  ): void {
    const action = String(exec.parameters['action'] ?? 'install') as 'scan' | 'install';
    const started = isoNow();
    const region = this.state.region(inst.regionId);
    const baseline = this.state.baselines.find((b) => b.operationSystem === baselineOsFor(inst));
    const record = () =>
      region.patchStates.set(inst.instanceId, {
        instanceId: inst.instanceId,
        baselineId: baseline?.id ?? '',
        operationType: action,
        operationStartTime: started,
        operationEndTime: isoNow(),
        counts: patchStatusCounts(inst.patches),
      });
    if (action === 'scan') {
      this.scheduler.after(DURATIONS.patchScan, () => {
        if (this.gone(inst)) return;
        const inj = this.injected(inst);
        if (inj) return done(false, inj);
        record();
        const missing = inst.patches.filter((p) => p.status === 'Missing').length;
        done(true, '', { commandOutput: `scan finished: ${missing} missing patch(es)` });
      });
      return;
    }
    const snap =
      exec.parameters['whetherCreateSnapshot'] === true ||
      exec.parameters['whetherCreateSnapshot'] === 'true';
    const snapDenied = snap ? this.denied(exec, 'snapshot') : undefined;
    if (snapDenied) {
      this.scheduler.after(DURATIONS.precheckFailure, () => done(false, snapDenied));
      return;
    }
    if (snap) {
      const suffix = inst.instanceId.slice(2);
      region.snapshots.push({
        snapshotId: `s-${randomBytes(9).toString('hex').slice(0, 17)}`,
        snapshotName: `oos-patch-${suffix}-${Date.now()}`,
        regionId: inst.regionId,
        instanceId: inst.instanceId,
        sourceDiskId: `d-${suffix}`,
        retentionDays: Number(exec.parameters['retentionDays'] ?? 7),
        creationTime: isoNow(),
        status: 'accomplished',
        executionId: exec.executionId,
      });
    }
    this.scheduler.after(DURATIONS.patchInstall, () => {
      if (this.gone(inst)) return;
      const todo = inst.patches.filter((p) => p.status === 'Missing' || p.status === 'Failed');
      const inj = this.injected(inst);
      if (inj) {
        for (const p of todo) p.status = 'Failed';
        record();
        return done(false, inj);
      }
      const reboot = exec.parameters['rebootIfNeed'] === true || exec.parameters['rebootIfNeed'] === 'true';
      const now = isoNow();
      for (const p of todo) {
        p.status = p.rebootRequired ? 'InstalledPendingReboot' : 'Installed';
        p.installedTime = now;
      }
      const pending = inst.patches.filter((p) => p.status === 'InstalledPendingReboot');
      const rebootDenied = reboot
        ? (this.denied(exec, 'rebootCheck') ?? (pending.length > 0 ? this.denied(exec, 'reboot') : undefined))
        : undefined;
      if (rebootDenied) {
        record();
        return done(false, rebootDenied);
      }
      if (!reboot || pending.length === 0) {
        record();
        return done(true, '', { commandOutput: `installed ${todo.length} patch(es)` });
      }
      // A timeline line for tests (the fault matrix checks no reboot starts after a window closed).
      this.log(exec, `Reboot ${inst.instanceId} started`);
      inst.status = 'Stopping';
      const agentWasOnline = inst.cloudAssistantOnline;
      inst.cloudAssistantOnline = false;
      // Sandbox mode: the OS shuts down (SIGTERM to the instance's processes, SIGKILL to what is
      // left once Stopping ends) and boots again (the instance's boot hook; sandbox.ts).
      this.invocations.killInstanceProcesses(inst.instanceId, 'SIGTERM');
      this.scheduler.after(DURATIONS.stopping, () => {
        if (this.gone(inst)) return;
        this.invocations.killInstanceProcesses(inst.instanceId, 'SIGKILL');
        inst.status = 'Starting';
        this.scheduler.after(DURATIONS.starting, () => {
          if (this.gone(inst)) return;
          inst.status = 'Running';
          inst.cloudAssistantOnline = agentWasOnline;
          this.invocations.runBootHook(inst.regionId, inst.instanceId);
          for (const p of pending) p.status = 'Installed';
          record();
          done(true, '', { commandOutput: `installed ${todo.length} patch(es), rebooted` });
        });
      });
    });
  }

  private runCommand(
    exec: ExecutionRecord,
    item: ItemResult,
    inst: InstanceRecord,
    done: (ok: boolean, msg: string, out?: Record<string, unknown>) => void,
  ): void {
    const { inv } = this.invocations.start(
      {
        regionId: inst.regionId,
        instanceIds: [inst.instanceId],
        type: String(exec.parameters['commandType'] ?? 'RunShellScript'),
        content: String(exec.parameters['commandContent'] ?? ''),
        timeoutSec: Number(exec.parameters['timeout'] ?? 600),
        workingDir: String(exec.parameters['workingDir'] ?? ''),
        username: String(exec.parameters['username'] ?? ''),
      },
      (finished) => {
        const r = finished.instances[0];
        const out = { invocationOutput: r?.output ?? '' };
        if (r?.status === 'Success') done(true, '', out);
        else {
          const why = r?.errorInfo || `exit code ${r?.exitCode ?? 'none'}`;
          done(
            false,
            `Cloud Assistant invocation ${finished.invokeId} on ${inst.instanceId} ended ${r?.status}: ${why}`,
            out,
          );
        }
      },
    );
    item.invokeId = inv.invokeId;
  }

  private itemDone(
    exec: ExecutionRecord,
    item: ItemResult,
    ok: boolean,
    message: string,
    outputs: Record<string, unknown>,
  ): void {
    if (item.status !== 'Running') return;
    const r = this.running.get(exec.executionId);
    item.status = ok ? 'Success' : 'Failed';
    item.statusMessage = message;
    item.outputs = outputs;
    item.endDate = exec.updateDate = isoNow();
    item.endedAtMs = Date.now();
    this.log(
      exec,
      ok ? `Loop item ${item.instanceId} succeeded` : `Loop item ${item.instanceId} failed: ${message}`,
      item.taskExecutionId,
    );
    if (!r) return;
    r.inFlight--;
    if (!ok) {
      r.failed++;
      if (r.failed > exec.rateControl.maxErrors) r.stopping = true;
    }
    this.pump(exec);
  }

  private finalize(exec: ExecutionRecord, r: Running): void {
    this.running.delete(exec.executionId);
    for (const it of exec.items) {
      if (it.status === 'Pending') {
        it.status = 'Skipped';
        it.statusMessage = 'Not started: the number of failed items exceeded MaxErrors.';
      }
    }
    const failedItems = exec.items.filter((i) => i.status === 'Failed');
    exec.outputs = this.aggregateOutputs(exec);
    exec.endDate = exec.updateDate = isoNow();
    if (r.failed > exec.rateControl.maxErrors) {
      exec.status = 'Failed';
      const first = failedItems[0];
      exec.statusMessage =
        `${failedItems.length} of ${exec.items.length} loop item(s) failed, exceeding MaxErrors ${exec.rateControl.maxErrors}` +
        (first ? `; first failure ${first.instanceId}: ${first.statusMessage}` : '');
    } else {
      exec.status = 'Success';
      exec.statusMessage =
        failedItems.length > 0 ? `${failedItems.length} loop item(s) failed within MaxErrors` : '';
    }
    this.log(exec, `Execution ${exec.status}${exec.statusMessage ? `: ${exec.statusMessage}` : ''}`);
  }

  private aggregateOutputs(exec: ExecutionRecord): Record<string, unknown> {
    const done = exec.items.filter((i) => i.status === 'Success' || i.status === 'Failed');
    if (exec.templateName === RUN_COMMAND_TEMPLATE)
      return { commandOutputs: done.map((i) => i.outputs['invocationOutput'] ?? '') };
    if (exec.templateName === CONFIGURE_PACKAGE_TEMPLATE) {
      return {
        commandOutput: done.map((i) => ({ InstanceId: i.instanceId, InstanceResult: [i.outputs] })),
        configurationOutput: [],
      };
    }
    return {
      commandOutput: done.map((i) => ({
        InstanceId: i.instanceId,
        Output: i.outputs['commandOutput'] ?? i.statusMessage,
      })),
    };
  }

  /**
   * CancelExecution: a Started/Running execution becomes Cancelled, running items Cancelled (their
   * Cloud Assistant invocations are stopped). Finished executions are left unchanged.
   */
  cancel(exec: ExecutionRecord): void {
    if (exec.status !== 'Started' && exec.status !== 'Running') return;
    this.running.delete(exec.executionId);
    const now = isoNow();
    const nowMs = Date.now();
    for (const it of exec.items) {
      if (it.status === 'Running' || it.status === 'Pending') {
        if (it.status === 'Running') {
          it.status = 'Cancelled';
          it.statusMessage = 'Cancelled by user.';
          it.endDate = now;
          it.endedAtMs = nowMs;
        } else {
          it.status = 'Skipped';
          it.statusMessage = 'Not started: the execution was cancelled.';
        }
        if (it.invokeId) {
          const inv = this.invocations.get(it.invokeId);
          if (inv) this.invocations.stop(inv);
        }
      }
    }
    exec.status = 'Cancelled';
    exec.statusMessage = 'Execution cancelled by user.';
    exec.endDate = exec.updateDate = now;
    exec.outputs = this.aggregateOutputs(exec);
    this.log(exec, 'Execution Cancelled');
  }

  private log(exec: ExecutionRecord, message: string, taskExecutionId = ''): void {
    exec.logs.push({ timestamp: isoNow(), message, logType: 'System', taskExecutionId });
  }
}
