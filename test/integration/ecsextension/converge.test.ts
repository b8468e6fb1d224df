/**
 * EcsExtension end to end: real API server + emulator (real SDK over HTTP) + real controller.
 * Convergence, batching, tag enrolment, drift repair, failure + retry + recovery.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OWNER_UID_TAG } from '../../../src/api/common.js';
import { CONFIGURE_PACKAGE_TEMPLATE } from '../../../src/api/ecsextension.js';
import { directPackageWrite } from '../../harness/foreign.js';
import {
  condition,
  createEcsExtension,
  instanceIds as ids,
  fleetSeed,
  getEcsExtension,
  NODE_PACKAGE,
  REGION,
  startStack,
  waitFor,
  waitForReady,
  type Stack,
} from '../../harness/stack.js';

describe('EcsExtension converges', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ seed: fleetSeed('conv', 130), prefix: 'conv' });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('installs on 120 instances through exactly 3 executions and becomes Ready', async () => {
    const created = await createEcsExtension(stack, 'node120', {
      targets: { instanceIds: ids('conv', 1, 120) },
      packageVersion: 'v2',
      parameters: { version: '20' },
      rateControl: { concurrency: 20, maxErrors: 0 },
    });
    const ready = await waitForReady(stack, 'node120');
    expect(ready.status?.summary).toEqual({
      targeted: 120,
      installed: 120,
      pending: 0,
      inProgress: 0,
      failed: 0,
      unreachable: 0,
    });
    expect(ready.status?.resolvedPackageVersion).toBe('v2');
    expect(ready.status?.instances).toHaveLength(100); // bounded rows
    expect(ready.metadata.finalizers).toContain('ecsops.io/cleanup');

    const executions = await stack.emu.control.listExecutions({
      tagKey: OWNER_UID_TAG,
      tagValue: created.metadata.uid,
    });
    expect(executions).toHaveLength(3);
    expect(executions.map((e) => e.templateName)).toEqual(Array(3).fill(CONFIGURE_PACKAGE_TEMPLATE));
    const batchSizes = executions
      .map((e) => ((e.parameters.targets as { ResourceIds: string[] }).ResourceIds ?? []).length)
      .sort((a, b) => a - b);
    expect(batchSizes).toEqual([20, 50, 50]);
    expect(executions.map((e) => e.rateControl.raw)).toEqual(
      Array(3).fill({ Mode: 'Concurrency', Concurrency: 20, MaxErrors: 0 }),
    );

    const states = await stack.emu.control.getPackageStates(REGION);
    const installed = states.filter((s) => s.templateName === NODE_PACKAGE && s.templateVersion === 'v2');
    expect(new Set(installed.map((s) => s.instanceId))).toEqual(new Set(ids('conv', 1, 120)));

    // A later reconcile with nothing to do starts nothing new.
    const before = (await stack.emu.control.requestCounts()).StartExecution ?? 0;
    await new Promise((r) => setTimeout(r, 1500));
    expect((await stack.emu.control.requestCounts()).StartExecution ?? 0).toBe(before);
  });

  it('enrols an instance tagged later without a spec change, and repairs a removed package within one interval', async () => {
    await createEcsExtension(stack, 'bytag', {
      targets: { tags: [{ key: 'role', value: 'edge' }] },
      interval: '10s', // the admission floor
    });
    // Nothing is tagged yet: Ready with NoTargets.
    const empty = await waitForReady(stack, 'bytag');
    expect(condition(empty, 'Ready')?.reason).toBe('NoTargets');

    await stack.emu.control.updateInstance(REGION, 'i-conv0125', { tags: { fleet: 'conv', role: 'edge' } });
    const enrolled = await waitFor('i-conv0125 installed', async () => {
      const obj = await getEcsExtension(stack, 'bytag');
      return obj?.status?.summary?.installed === 1 && condition(obj, 'Ready')?.status === 'True'
        ? obj
        : undefined;
    });
    expect(enrolled.status?.resolvedPackageVersion).toBe('v2'); // latest

    // Another tool removes the package with a direct UpdateInstancePackageState (no execution):
    // the change feed sees it through ActionTrail.
    await directPackageWrite(stack.emu.endpoint, REGION, 'i-conv0125', NODE_PACKAGE);
    await waitFor(
      'package reinstalled on i-conv0125',
      async () => {
        const states = await stack.emu.control.getPackageStates(REGION, 'i-conv0125');
        return states.some((s) => s.templateName === NODE_PACKAGE);
      },
      30_000,
    );
    await waitForReady(stack, 'bytag');
  });

  it('shows a failing instance as Failed with the cloud reason, retries with backoff and recovers', async () => {
    await stack.emu.control.setFaults({ failInstances: { 'i-conv0126': 'disk full on /opt' } });
    const created = await createEcsExtension(stack, 'failing', {
      targets: { instanceIds: ids('conv', 126, 128) },
      rateControl: { concurrency: 3, maxErrors: 1 },
    });
    const failed = await waitFor('i-conv0126 Failed', async () => {
      const obj = await getEcsExtension(stack, 'failing');
      const row = obj?.status?.instances?.find((r) => r.instanceId === 'i-conv0126');
      return row?.state === 'Failed' && condition(obj, 'Ready')?.status === 'False' ? obj : undefined;
    });
    const row = failed.status?.instances?.find((r) => r.instanceId === 'i-conv0126');
    expect(row?.message).toContain('disk full on /opt');
    expect(condition(failed, 'Ready')?.reason).toBe('InstallFailed');
    expect(condition(failed, 'Ready')?.message).toContain('i-conv0126');
    expect(failed.status?.summary).toMatchObject({ installed: 2, failed: 1 });

    // Retried with growing backoff: more executions appear over time, only for the failed one.
    const owned = () =>
      stack.emu.control.listExecutions({ tagKey: OWNER_UID_TAG, tagValue: created.metadata.uid });
    await waitFor('a retry execution', async () => (await owned()).length >= 2, 30_000);
    const retries = (await owned()).slice(1);
    for (const e of retries) {
      expect((e.parameters.targets as { ResourceIds: string[] }).ResourceIds).toEqual(['i-conv0126']);
    }

    // events.k8s.io/v1 Events regarding the object: a Warning for the failure.
    const { EventsV1Api } = await import('@kubernetes/client-node');
    const events = await stack.kc
      .makeApiClient(EventsV1Api)
      .listNamespacedEvent({ namespace: stack.namespace });
    const mine = events.items.filter((e) => e.regarding?.name === 'failing');
    expect(mine.some((e) => e.type === 'Normal' && e.reason === 'ExecutionStarted')).toBe(true);
    const warning = mine.find((e) => e.type === 'Warning' && e.reason === 'ExecutionFailed');
    expect(warning?.note).toContain('i-conv0126');
    expect(warning?.reportingController).toBe('ecsops.io/controller');

    await stack.emu.control.clearFaults();
    const recovered = await waitForReady(stack, 'failing', 'True', 60_000);
    expect(recovered.status?.summary).toMatchObject({ installed: 3, failed: 0 });
    expect(recovered.status?.retry).toBeUndefined();
  });
});
