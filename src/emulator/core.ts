import { ActionTrail } from './actiontrail.js';
import type { ExecutionRecord } from './engine.js';
import { ExecutionEngine } from './engine.js';
import type { FaultConfig, FaultPatch } from './faults.js';
import { Faults } from './faults.js';
import type { InvocationRecord, InvocationScriptRule } from './invocations.js';
import { InvocationEngine } from './invocations.js';
import { LbDataPlane } from './lb-proxy.js';
import type {
  BackendHealth,
  CreateLoadBalancer,
  LoadBalancerRecord,
  ServerGroupRecord,
} from './loadbalancers.js';
import { LoadBalancerState } from './loadbalancers.js';
import { RamGate } from './ram.js';
import type { SandboxOptions } from './sandbox.js';
import { Scheduler } from './scheduler.js';
import type { InstanceStatus, Seed, SeedInstance } from './seed.js';
import type {
  InstanceRecord,
  PackageStateRecord,
  PatchRecord,
  PatchStateRecord,
  SnapshotRecord,
} from './state.js';
import { CloudState } from './state.js';

/** Filter of {@link EmulatorCore.listExecutions}; all given fields must match. */
export interface ExecutionFilter {
  tagKey?: string;
  /** Only with tagKey: the tag's value must equal this. */
  tagValue?: string;
  /** Exact template name. */
  templateName?: string;
  status?: string;
  regionId?: string;
}

/** Changes of {@link EmulatorCore.updateInstance}. `tags` replaces the whole tag map. */
export interface InstanceUpdate {
  tags?: Record<string, string>;
  status?: InstanceStatus;
  cloudAssistantOnline?: boolean;
}

/** Patch state of one instance plus its patch list, as the control API returns it. */
export interface PatchStateView extends PatchStateRecord {
  regionId: string;
  patches: PatchRecord[];
}

/**
 * The emulator's state and engines behind both the API server and the control API.
 * All durations are scaled by `timeScale`.
 */
export class EmulatorCore {
  state: CloudState;
  readonly scheduler: Scheduler;
  readonly faults = new Faults();
  readonly invocations: InvocationEngine;
  readonly executions: ExecutionEngine;
  readonly requestCounts = new Map<string, number>();
  /** RAM policy in force for API calls and template steps (ram.ts); none = allow all. */
  readonly ram: RamGate;
  /** ActionTrail events of the write calls answered (actiontrail.ts); emptied by `reset()`. */
  readonly trail: ActionTrail;
  /** CLB and ALB load balancers and server groups (loadbalancers.ts); emptied by `reset()`. */
  readonly loadBalancers: LoadBalancerState;
  /** Their data plane: HTTP listeners and health checks (lb-proxy.ts); closed by `reset()`. */
  readonly lbPlane: LbDataPlane;
  private initialSeed: Seed | undefined;

  /**
   * @param opts.sandbox run `RunShellScript` commands for real with bash (see sandbox.ts).
   * @param opts.ramPolicy RAM policy document enforced on API calls and template steps (ram.ts);
   *   kept across `reset()`. @throws Error when it is invalid.
   * @param opts.actionTrailDelayMs ActionTrail delivery delay (emulator-clock ms, default 0; see
   *   actiontrail.ts). @throws Error when negative.
   */
  constructor(opts: {
    timeScale: number;
    seed?: Seed;
    sandbox?: SandboxOptions;
    ramPolicy?: unknown;
    actionTrailDelayMs?: number;
  }) {
    this.scheduler = new Scheduler(opts.timeScale);
    // Sandbox mode: each instance's private IP is a loopback address of its own (sandbox.ts).
    this.state = new CloudState(opts.sandbox ? `127.${opts.sandbox.loopbackNet ?? 10}` : undefined);
    this.trail = new ActionTrail(opts.actionTrailDelayMs ?? 0);
    this.ram = new RamGate(opts.ramPolicy);
    this.loadBalancers = new LoadBalancerState(this.scheduler);
    this.lbPlane = new LbDataPlane(
      this.loadBalancers,
      this.scheduler,
      (regionId, instanceId) => this.state.regions.get(regionId)?.instances.get(instanceId)?.privateIpAddress,
    );
    this.invocations = new InvocationEngine(this.state, this.scheduler, this.faults, opts.sandbox);
    this.executions = new ExecutionEngine(
      this.state,
      this.scheduler,
      this.faults,
      this.invocations,
      this.ram,
    );
    this.initialSeed = opts.seed;
    if (opts.seed) this.state.applySeed(opts.seed);
  }

  /** Merges a seed into the current state. @throws Error on an invalid seed. */
  seed(doc: Seed): void {
    this.state.applySeed(doc);
  }

  /**
   * Back to the start-up state: timers cancelled, executions, invocations, scripts, faults and
   * request counts dropped, and the state rebuilt from the start-up seed (released instances come
   * back). Held requests are released and processed against the fresh state.
   */
  reset(): void {
    this.scheduler.clearAll();
    this.executions.reset();
    this.invocations.reset();
    this.faults.clear();
    this.requestCounts.clear();
    this.trail.clear();
    void this.lbPlane.closeAll();
    this.loadBalancers.clear();
    const fresh = new CloudState(this.state.ipPrefix);
    if (this.initialSeed) fresh.applySeed(this.initialSeed);
    this.state.regions.clear();
    for (const [k, v] of fresh.regions) this.state.regions.set(k, v);
    this.state.templates.clear();
    for (const [k, v] of fresh.templates) this.state.templates.set(k, v);
  }

  /** Executions matching the filter, oldest first. */
  listExecutions(f: ExecutionFilter = {}): ExecutionRecord[] {
    return this.executions.executions.filter(
      (e) =>
        (f.regionId === undefined || e.regionId === f.regionId) &&
        (f.templateName === undefined || e.templateName === f.templateName) &&
        (f.status === undefined || e.status === f.status) &&
        (f.tagKey === undefined ||
          (f.tagKey in e.tags && (f.tagValue === undefined || e.tags[f.tagKey] === f.tagValue))),
    );
  }

  /** Request counts per action since start or the last reset of counters. */
  counts(): Record<string, number> {
    return Object.fromEntries(this.requestCounts);
  }

  /** Replaces the fault configuration. @throws Error on an invalid rule or quota. */
  setFaults(f: FaultConfig): void {
    this.faults.set(f);
  }

  /** Merges a partial fault configuration (PRNG kept). @throws Error on an invalid rule or quota. */
  patchFaults(p: FaultPatch): FaultConfig {
    return this.faults.patch(p);
  }

  /**
   * Releases an instance as ECS does (auto scaling scale-in, manual release): it leaves the fleet
   * (DescribeInstances, DescribeCloudAssistantStatus no longer list it), its package and patch
   * states are gone, running OOS loop items on it end Failed ("Instance … was released.") and its
   * Pending / Running Cloud Assistant invocations end Failed with ErrorCode `InstanceReleased`.
   * @returns the released instance, or undefined when it is not in the region's fleet.
   */
  releaseInstance(regionId: string, instanceId: string): InstanceRecord | undefined {
    const inst = this.state.releaseInstance(regionId, instanceId);
    if (!inst) return undefined;
    this.executions.instanceReleased(regionId, instanceId);
    this.invocations.instanceReleased(regionId, instanceId);
    return inst;
  }

  /**
   * Changes an instance. @returns the updated instance, or undefined when it does not exist.
   */
  updateInstance(regionId: string, instanceId: string, u: InstanceUpdate): InstanceRecord | undefined {
    const i = this.state.region(regionId).instances.get(instanceId);
    if (!i) return undefined;
    if (u.tags !== undefined) i.tags = { ...u.tags };
    if (u.status !== undefined) i.status = u.status;
    if (u.cloudAssistantOnline !== undefined) i.cloudAssistantOnline = u.cloudAssistantOnline;
    return i;
  }

  /** Adds or replaces instances. @throws Error on an invalid instance ID. */
  addInstances(regionId: string, list: SeedInstance[]): InstanceRecord[] {
    return this.state.addInstances(regionId, list);
  }

  /** Instances of a region in seed order. */
  listInstances(regionId: string): InstanceRecord[] {
    return [...this.state.region(regionId).instances.values()];
  }

  /** Package states of a region, optionally of one instance. */
  packageStates(regionId: string, instanceId?: string): PackageStateRecord[] {
    return [...this.state.region(regionId).packageStates.values()].filter(
      (s) => instanceId === undefined || s.instanceId === instanceId,
    );
  }

  /** Deletes one package state (drift injection). @returns whether it existed. */
  deletePackageState(regionId: string, instanceId: string, templateName: string): boolean {
    return this.state.region(regionId).packageStates.delete(`${instanceId}/${templateName}`);
  }

  /** Patch states (with patch lists) of a region, optionally of one instance. */
  patchStates(regionId: string, instanceId?: string): PatchStateView[] {
    const r = this.state.region(regionId);
    return [...r.patchStates.values()]
      .filter((s) => instanceId === undefined || s.instanceId === instanceId)
      .map((s) => ({ ...s, regionId, patches: r.instances.get(s.instanceId)?.patches ?? [] }));
  }

  /** Adds a Cloud Assistant script rule (first match wins, in the order added). */
  scriptInvocation(rule: InvocationScriptRule): void {
    this.invocations.rules.push({ ...rule });
  }

  /** Every invocation, oldest first. */
  listInvocations(): InvocationRecord[] {
    return this.invocations.invocations;
  }

  /** Snapshots of every region, or of one. */
  listSnapshots(regionId?: string): SnapshotRecord[] {
    return [...this.state.regions.values()]
      .filter((r) => regionId === undefined || r.regionId === regionId)
      .flatMap((r) => r.snapshots);
  }

  /**
   * Creates a load balancer with one HTTP listener and one server group
   * ({@link LoadBalancerState.create}) and opens its data-plane listener on loopback.
   * @returns the records and `url` (`http://127.0.0.1:PORT`). @throws Error when no port is free.
   */
  async createLoadBalancer(
    req: CreateLoadBalancer,
  ): Promise<{ lb: LoadBalancerRecord; group: ServerGroupRecord; url: string }> {
    const { lb, group } = this.loadBalancers.create(req);
    const url = await this.lbPlane.start(lb);
    return { lb, group, url };
  }

  /**
   * Forces what a backend's health checks report (`null` = back to real checks, which start over
   * from `Initial`). @returns false when the group or backend does not exist.
   */
  forceBackendHealth(
    serverGroupId: string,
    instanceId: string,
    port: number,
    health: BackendHealth | null,
  ): boolean {
    const g = this.loadBalancers.groups.get(serverGroupId);
    const b = g ? this.loadBalancers.backend(g, instanceId, port) : undefined;
    if (!b) return false;
    if (health === null) {
      delete b.forcedHealth;
      b.health = 'Initial';
      b.healthyStreak = 0;
      b.unhealthyStreak = 0;
    } else {
      b.forcedHealth = health;
      b.health = health;
    }
    return true;
  }

  /** Cancels every timer, kills sandboxed processes and drops held requests unprocessed (stop). */
  shutdown(): void {
    this.faults.dropAll();
    this.scheduler.clearAll();
    this.invocations.killAll();
    void this.lbPlane.closeAll();
  }
}
