import type { ExecutionFilter, InstanceUpdate, PatchStateView } from './core.js';
import type { ExecutionRecord } from './engine.js';
import type { FaultConfig } from './faults.js';
import type { InvocationRecord, InvocationScriptRule } from './invocations.js';
import type { Seed, SeedInstance } from './seed.js';
import type { InstanceRecord, PackageStateRecord, SnapshotRecord } from './state.js';

export type { ExecutionFilter, InstanceUpdate, PatchStateView } from './core.js';

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

  /** Replaces the fault configuration (re-seeds the fault PRNG). */
  setFaults(f: FaultConfig): Promise<void> {
    return this.call('PUT', '/faults', f);
  }

  /** Removes every fault. */
  clearFaults(): Promise<void> {
    return this.call('DELETE', '/faults');
  }

  /** Changes an instance's tags (replaced whole), status or Cloud Assistant online flag. */
  updateInstance(regionId: string, instanceId: string, u: InstanceUpdate): Promise<InstanceRecord> {
    return this.call('PATCH', `/regions/${regionId}/instances/${instanceId}`, u);
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
}
