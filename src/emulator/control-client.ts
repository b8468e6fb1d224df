import type { ExecutionFilter, InstanceUpdate, PatchStateView } from './core.js';
import type { ExecutionRecord } from './engine.js';
import type { FaultConfig, FaultPatch, HeldRequest, ScriptedError } from './faults.js';
import type { InvocationRecord, InvocationScriptRule } from './invocations.js';
import type {
  BackendHealth,
  CreateLoadBalancer,
  LoadBalancerRecord,
  ServerGroupRecord,
} from './loadbalancers.js';
import type { Seed, SeedInstance } from './seed.js';
import type { InstanceRecord, PackageStateRecord, SnapshotRecord } from './state.js';

export type { ExecutionFilter, InstanceUpdate, PatchStateView } from './core.js';
export type { BackendHealth, CreateLoadBalancer } from './loadbalancers.js';

/** What {@link EmulatorControl.createLoadBalancer} answers. */
export interface CreatedLoadBalancer {
  loadBalancerId: string;
  /** ALB `lsn-…`; CLB: the listener port. */
  listenerId: string;
  serverGroupId: string;
  address: string;
  port: number;
  /** `http://address:port`: send requests here. */
  url: string;
}

/** A load balancer as {@link EmulatorControl.listLoadBalancers} answers it. */
export interface LoadBalancerView extends LoadBalancerRecord {
  url?: string;
  groups: ServerGroupRecord[];
}

/**
 * Typed client of the emulator's control API. Usable from any process given the control URL
 * (`http://127.0.0.1:CPORT`). Every method throws an Error naming the HTTP status and the
 * server's message when the control API answers 4xx/5xx.
 */
export class EmulatorControl {
  constructor(readonly baseUrl: string) {}

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) {
      let msg = text;
      try {
        msg = (JSON.parse(text) as { error?: string }).error ?? text;
      } catch {
        // keep raw text
      }
      throw new Error(`emulator control ${method} ${path}: ${res.status} ${msg}`);
    }
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }

  /** Merges a seed document (instances by ID, package templates by name). */
  seed(doc: Seed): Promise<void> {
    return this.call('POST', '/seed', doc);
  }

  /** Back to the start-up state (drops executions, invocations, scripts, faults, counters). */
  reset(): Promise<void> {
    return this.call('POST', '/reset');
  }

  /** Executions (full records incl. Tags, ClientToken, Parameters, per-instance `items`), oldest first. */
  listExecutions(filter: ExecutionFilter = {}): Promise<ExecutionRecord[]> {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(filter)) if (v !== undefined) q.set(k, String(v));
    const s = q.toString();
    return this.call('GET', `/executions${s ? `?${s}` : ''}`);
  }

  /** One execution, or undefined when unknown. */
  async getExecution(executionId: string): Promise<ExecutionRecord | undefined> {
    try {
      return await this.call<ExecutionRecord>('GET', `/executions/${encodeURIComponent(executionId)}`);
    } catch (e) {
      if (e instanceof Error && / 404 /.test(e.message)) return undefined;
      throw e;
    }
  }

  /** Authenticated API requests per action (`{ DescribeInstances: 3, … }`). */
  requestCounts(): Promise<Record<string, number>> {
    return this.call('GET', '/request-counts');
  }

  /** Zeroes the request counters. */
  resetRequestCounts(): Promise<void> {
    return this.call('DELETE', '/request-counts');
  }

  /**
   * Replaces the RAM policy document enforced on API calls and template steps (see ram.ts);
   * `undefined` removes it (everything allowed). Rejects (400) an invalid document.
   */
  setRamPolicy(policy: object | undefined): Promise<void> {
    return policy === undefined
      ? this.call('DELETE', '/ram-policy')
      : this.call('PUT', '/ram-policy', policy);
  }

  /**
   * Sets the modelled-time scale (1 = real time) for timers scheduled from now on, e.g. to keep an
   * execution Running across a maintenance-window edge. @throws on a value outside (0, 10].
   */
  async setTimeScale(timeScale: number): Promise<void> {
    await this.call('PUT', '/time-scale', { timeScale });
  }

  /** Replaces the fault configuration (re-seeds the fault PRNG). */
  setFaults(f: FaultConfig): Promise<void> {
    return this.call('PUT', '/faults', f);
  }

  /** Removes every fault; requests held by `hold` rules are released (processed). */
  clearFaults(): Promise<void> {
    return this.call('DELETE', '/faults');
  }

  /** The current fault configuration (rules carry their ids and remaining counts). */
  getFaults(): Promise<FaultConfig> {
    return this.call('GET', '/faults');
  }

  /**
   * Merges a partial fault configuration without re-seeding the fault PRNG (unless `seed` is
   * given): maps (`actions`, `quota`, `failInstances`) key by key, `null` removes. Resolves to the
   * resulting configuration.
   */
  patchFaults(p: FaultPatch): Promise<FaultConfig> {
    return this.call('PATCH', '/faults', p);
  }

  /**
   * Sets (or with `undefined` removes) the quota of `action` (or `*`): at most `perSecond` requests
   * admitted per sliding second, the rest answered `Throttling.User`.
   */
  async setQuota(action: string, perSecond: number | undefined): Promise<void> {
    await this.patchFaults({ quota: { [action]: perSecond ?? null } });
  }

  /** Appends one scripted fault rule to `failNext`. Resolves to its id (generated when not given). */
  async addFaultRule(rule: ScriptedError): Promise<string> {
    return (await this.call<{ id: string }>('POST', '/faults/rules', rule)).id;
  }

  /** Removes one rule (its held requests are released). Resolves to whether it existed. */
  async removeFaultRule(id: string): Promise<boolean> {
    return (await this.call<{ removed: boolean }>('DELETE', `/faults/rules/${encodeURIComponent(id)}`))
      .removed;
  }

  /** Requests currently held by `hold` rules, oldest first. */
  listHolds(): Promise<HeldRequest[]> {
    return this.call('GET', '/faults/holds');
  }

  /** Releases every request held by rule `ruleId` (they are processed). Resolves to how many. */
  async releaseHolds(ruleId: string): Promise<number> {
    return (
      await this.call<{ released: number }>('POST', `/faults/holds/${encodeURIComponent(ruleId)}/release`)
    ).released;
  }

  /**
   * Polls `GET /faults/holds` (every 10 ms) until rule `ruleId` holds at least `count` requests.
   * Resolves to that rule's held requests. @throws Error after `timeoutMs` milliseconds.
   */
  async waitForHold(ruleId: string, timeoutMs = 10_000, count = 1): Promise<HeldRequest[]> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const mine = (await this.listHolds()).filter((h) => h.ruleId === ruleId);
      if (mine.length >= count) return mine;
      if (Date.now() > end) {
        throw new Error(
          `emulator control: rule ${ruleId} holds ${mine.length} of ${count} requests after ${timeoutMs} ms`,
        );
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Changes an instance's tags (replaced whole), status or Cloud Assistant online flag. */
  updateInstance(regionId: string, instanceId: string, u: InstanceUpdate): Promise<InstanceRecord> {
    return this.call('PATCH', `/regions/${regionId}/instances/${instanceId}`, u);
  }

  /**
   * Releases an instance as ECS does (e.g. auto scaling): it leaves the fleet, its package and
   * patch states are gone, work running on it ends Failed. Resolves to the released instance;
   * rejects (404) when it is not in the region's fleet.
   */
  releaseInstance(regionId: string, instanceId: string): Promise<InstanceRecord> {
    return this.call('POST', `/regions/${regionId}/instances/${instanceId}/release`);
  }

  /** Adds or replaces instances in a region. */
  addInstances(regionId: string, instances: SeedInstance[]): Promise<InstanceRecord[]> {
    return this.call('POST', `/regions/${regionId}/instances`, instances);
  }

  /** Instances of a region. */
  listInstances(regionId: string): Promise<InstanceRecord[]> {
    return this.call('GET', `/regions/${regionId}/instances`);
  }

  /** Installed package states of a region (optionally one instance). */
  getPackageStates(regionId: string, instanceId?: string): Promise<PackageStateRecord[]> {
    return this.call(
      'GET',
      `/regions/${regionId}/package-states${instanceId ? `?instanceId=${instanceId}` : ''}`,
    );
  }

  /** Deletes one package state (simulates drift). Resolves to whether it existed. */
  async deletePackageState(regionId: string, instanceId: string, templateName: string): Promise<boolean> {
    const r = await this.call<{ deleted: boolean }>(
      'DELETE',
      `/regions/${regionId}/instances/${instanceId}/package-states/${encodeURIComponent(templateName)}`,
    );
    return r.deleted;
  }

  /** Patch states with patch lists of a region (optionally one instance). */
  getPatchStates(regionId: string, instanceId?: string): Promise<PatchStateView[]> {
    return this.call(
      'GET',
      `/regions/${regionId}/patch-states${instanceId ? `?instanceId=${instanceId}` : ''}`,
    );
  }

  /** Adds a Cloud Assistant outcome rule (first match wins). */
  scriptInvocation(rule: InvocationScriptRule): Promise<void> {
    return this.call('POST', '/invocation-scripts', rule);
  }

  /** Removes every Cloud Assistant outcome rule. */
  clearInvocationScripts(): Promise<void> {
    return this.call('DELETE', '/invocation-scripts');
  }

  /** Every Cloud Assistant invocation (content in plaintext, per-instance results). */
  listInvocations(): Promise<InvocationRecord[]> {
    return this.call('GET', '/invocations');
  }

  /** Snapshots created by patch installs (all regions or one). */
  listSnapshots(regionId?: string): Promise<SnapshotRecord[]> {
    return this.call('GET', `/snapshots${regionId ? `?regionId=${regionId}` : ''}`);
  }

  /**
   * Creates a load balancer (`type` ALB or CLB) with one HTTP listener and one server group of
   * `backends` (instance ID, port, weight default 100) and opens its data-plane listener on
   * loopback: requests to `url` reach the backends' processes (sandbox mode) by the group's
   * scheduler, weights and health checks (lb-proxy.ts). Backends start `Initial`: they get traffic
   * once `healthCheck.healthyThreshold` checks passed.
   */
  createLoadBalancer(req: CreateLoadBalancer): Promise<CreatedLoadBalancer> {
    return this.call('POST', '/load-balancers', req);
  }

  /** Every load balancer with its `url` and server groups (backends with weight, status, health). */
  listLoadBalancers(): Promise<LoadBalancerView[]> {
    return this.call('GET', '/load-balancers');
  }

  /**
   * Forces what a backend's health checks report (e.g. `Unhealthy` for "never healthy" tests);
   * `null` returns it to real checks (from `Initial`). Rejects (404) an unknown group or backend.
   */
  forceBackendHealth(
    serverGroupId: string,
    instanceId: string,
    port: number,
    health: BackendHealth | null,
  ): Promise<void> {
    return this.call(
      'PUT',
      `/server-groups/${encodeURIComponent(serverGroupId)}/backends/${encodeURIComponent(instanceId)}/${port}/health`,
      { health },
    );
  }
}
