import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Emulator, ExecutionRecord, Seed } from '../../../src/emulator/index.js';
import {
  APPLY_PATCH_TEMPLATE,
  CONFIGURE_PACKAGE_TEMPLATE,
  DEMO_ACCESS_KEY,
  startEmulator,
} from '../../../src/emulator/index.js';
import { call, callError, sdkClient, waitFor } from './helpers.js';

const REGION = 'cn-hangzhou';
const PKG = 'ACS-Extension-node-1853370294850618';

const seed: Seed = {
  regions: {
    [REGION]: {
      generate: { count: 5, idPrefix: 'i-r', patches: 2, installed: [{ name: PKG, version: 'v1' }] },
    },
  },
  packageTemplates: [{ name: PKG, versions: [{ parameters: {} }, { parameters: {} }] }],
};
const id = (n: number) => `i-r${String(n).padStart(4, '0')}`;

describe('emulator: released instances and per-item end times', () => {
  let emu: Emulator;
  let client: ReturnType<typeof sdkClient>;
  beforeEach(async () => {
    emu = await startEmulator({ timeScale: 0.01, seed });
    client = sdkClient(emu.endpoint, DEMO_ACCESS_KEY);
  });
  afterEach(() => emu.stop());

  const start = (template: string, ids: string[], params: Record<string, unknown>) =>
    call(client, 'oos', 'StartExecution', {
      RegionId: REGION,
      TemplateName: template,
      Parameters: JSON.stringify({
        ...params,
        targets: { Type: 'ResourceIds', RegionId: REGION, ResourceIds: ids },
        rateControl: { Mode: 'Concurrency', Concurrency: 1, MaxErrors: 10 },
      }),
    }) as Promise<{ Execution: { ExecutionId: string } }>;
  const finished = (execId: string) =>
    waitFor(async () => {
      const e = await emu.control.getExecution(execId);
      return e && ['Success', 'Failed', 'Cancelled'].includes(e.status) ? e : undefined;
    });
  const item = (e: ExecutionRecord | undefined, instanceId: string) =>
    e?.items.find((i) => i.instanceId === instanceId);

  it('leaves the fleet: lists omit it, actions naming it answer as for an unknown instance, states are gone', async () => {
    const scan = await start(APPLY_PATCH_TEMPLATE, [id(1)], { action: 'scan' });
    expect((await finished(scan.Execution.ExecutionId)).status).toBe('Success');
    expect(await emu.control.getPatchStates(REGION, id(1))).toHaveLength(1);
    expect(await emu.control.getPackageStates(REGION, id(1))).toHaveLength(1);

    expect((await emu.control.releaseInstance(REGION, id(1))).instanceId).toBe(id(1));
    await expect(emu.control.releaseInstance(REGION, id(1))).rejects.toThrow(/404/);

    const ids = (body: Record<string, unknown>) =>
      (body['Instances'] as { Instance: Array<{ InstanceId: string }> }).Instance.map((i) => i.InstanceId);
    expect(ids(await call(client, 'ecs', 'DescribeInstances', { RegionId: REGION }))).toEqual([
      id(2),
      id(3),
      id(4),
      id(5),
    ]);
    expect(
      ids(
        await call(client, 'ecs', 'DescribeInstances', {
          RegionId: REGION,
          InstanceIds: JSON.stringify([id(1), id(2)]),
        }),
      ),
    ).toEqual([id(2)]);
    const caIds = (body: Record<string, unknown>) =>
      (
        body['InstanceCloudAssistantStatusSet'] as {
          InstanceCloudAssistantStatus: Array<{ InstanceId: string }>;
        }
      ).InstanceCloudAssistantStatus.map((i) => i.InstanceId);
    expect(
      caIds(await call(client, 'ecs', 'DescribeCloudAssistantStatus', { RegionId: REGION })),
    ).not.toContain(id(1));
    // Named, a released instance is unknown like an ID that never existed: the whole call fails.
    expect(
      await callError(
        call(client, 'ecs', 'DescribeCloudAssistantStatus', { RegionId: REGION, InstanceId: [id(1), id(2)] }),
      ),
    ).toMatchObject({ code: 'InvalidInstanceIds.NotFound', statusCode: 404 });
    expect(
      await callError(
        call(client, 'ecs', 'DescribeCloudAssistantStatus', { RegionId: REGION, InstanceId: ['i-never1'] }),
      ),
    ).toMatchObject({ code: 'InvalidInstanceIds.NotFound', statusCode: 404 });

    expect(
      await callError(
        call(client, 'ecs', 'RunCommand', {
          RegionId: REGION,
          Type: 'RunShellScript',
          CommandContent: 'echo hi',
          InstanceId: [id(1)],
        }),
      ),
    ).toMatchObject({ code: 'InvalidInstance.NotFound', statusCode: 404 });
    expect(
      await callError(
        call(client, 'ecs', 'TagResources', {
          RegionId: REGION,
          ResourceType: 'instance',
          ResourceId: [id(1)],
          Tag: [{ Key: 'k', Value: 'v' }],
        }),
      ),
    ).toMatchObject({ code: 'InvalidResourceId.NotFound', statusCode: 404 });
    expect(
      await callError(
        call(client, 'oos', 'ListInstancePackageStates', { RegionId: REGION, InstanceId: id(1) }),
      ),
    ).toMatchObject({ code: 'EntityNotExists.Instance', statusCode: 404 });
    const patchStates = await call(client, 'oos', 'ListInstancePatchStates', {
      RegionId: REGION,
      InstanceIds: JSON.stringify([id(1)]),
    });
    expect(patchStates['InstancePatchStates']).toEqual([]);
    expect(await emu.control.getPatchStates(REGION, id(1))).toEqual([]);
    expect(await emu.control.getPackageStates(REGION, id(1))).toEqual([]);
    // A later execution naming it fails its item, saying why.
    const late = await finished(
      (await start(APPLY_PATCH_TEMPLATE, [id(1)], { action: 'scan' })).Execution.ExecutionId,
    );
    expect(item(late, id(1))).toMatchObject({
      status: 'Failed',
      statusMessage: `Instance ${id(1)} was released.`,
    });

    await emu.control.reset();
    expect((await emu.control.listInstances(REGION)).map((i) => i.instanceId)).toContain(id(1));
  });

  it('ends running loop items on it Failed at once, fails its pending items, and drops their effects', async () => {
    const r = await start(CONFIGURE_PACKAGE_TEMPLATE, [id(2), id(3), id(4)], {
      action: 'install',
      packageName: PKG,
      packageVersion: 'v2',
    });
    const execId = r.Execution.ExecutionId;
    await waitFor(async () => item(await emu.control.getExecution(execId), id(2))?.status === 'Running');
    const before = Date.now();
    await emu.control.releaseInstance(REGION, id(2));
    await emu.control.releaseInstance(REGION, id(3)); // still Pending (Concurrency 1)
    const now = await emu.control.getExecution(execId);
    const released = item(now, id(2));
    expect(released).toMatchObject({ status: 'Failed', statusMessage: `Instance ${id(2)} was released.` });
    expect(released?.endedAtMs).toBeGreaterThanOrEqual(before);
    expect(released?.endedAtMs).toBeGreaterThanOrEqual(released?.startedAtMs ?? Infinity);
    const done = await finished(execId);
    expect(done.status).toBe('Success'); // 2 failures within MaxErrors 10
    expect(item(done, id(3))).toMatchObject({
      status: 'Failed',
      statusMessage: `Instance ${id(3)} was released.`,
    });
    expect(item(done, id(4))?.status).toBe('Success');
    // The install that was running on the released instance never records a package state.
    await new Promise((res) => setTimeout(res, 300));
    expect(await emu.control.getPackageStates(REGION, id(2))).toEqual([]);
    expect((await emu.control.getPackageStates(REGION, id(4)))[0]?.templateVersion).toBe('v2');
    const started = done.items.filter((i) => i.startedAtMs !== undefined);
    expect(started.every((i) => (i.endedAtMs ?? 0) >= (i.startedAtMs ?? Infinity))).toBe(true);
  });

  it('ends Cloud Assistant invocations on it Failed with ErrorCode InstanceReleased', async () => {
    await emu.control.scriptInvocation({ contains: 'long', delayMs: 60_000 });
    const t = (await call(client, 'ecs', 'RunCommand', {
      RegionId: REGION,
      Type: 'RunShellScript',
      CommandContent: 'long',
      InstanceId: [id(4), id(5)],
      Timeout: 3600,
    })) as { InvokeId: string };
    const inv = () => emu.control.listInvocations().then((l) => l.find((i) => i.invokeId === t.InvokeId));
    await waitFor(async () => (await inv())?.instances.every((x) => x.status === 'Running'));
    const before = Date.now();
    await emu.control.releaseInstance(REGION, id(4));
    const rec = (await inv())?.instances.find((x) => x.instanceId === id(4));
    expect(rec).toMatchObject({
      status: 'Failed',
      errorCode: 'InstanceReleased',
      errorInfo: 'the instance was released',
    });
    expect(rec?.finishedAtMs).toBeGreaterThanOrEqual(before);
    expect((await inv())?.instances.find((x) => x.instanceId === id(5))?.status).toBe('Running');
    const results = (await call(client, 'ecs', 'DescribeInvocationResults', {
      RegionId: REGION,
      InvokeId: t.InvokeId,
      InstanceId: id(4),
    })) as { Invocation: { InvocationResults: { InvocationResult: Array<Record<string, unknown>> } } };
    expect(results.Invocation.InvocationResults.InvocationResult[0]).toMatchObject({
      InvocationStatus: 'Failed',
      ErrorCode: 'InstanceReleased',
    });
  });

  it('stamps endedAtMs on cancelled loop items (not on never-started ones)', async () => {
    const r = await start(CONFIGURE_PACKAGE_TEMPLATE, [id(2), id(3)], {
      action: 'install',
      packageName: PKG,
    });
    const execId = r.Execution.ExecutionId;
    await waitFor(async () => item(await emu.control.getExecution(execId), id(2))?.status === 'Running');
    const before = Date.now();
    await call(client, 'oos', 'CancelExecution', { RegionId: REGION, ExecutionId: execId });
    const e = await emu.control.getExecution(execId);
    expect(e?.status).toBe('Cancelled');
    const cancelled = item(e, id(2));
    expect(cancelled?.status).toBe('Cancelled');
    expect(cancelled?.endedAtMs).toBeGreaterThanOrEqual(before);
    expect(cancelled?.endedAtMs).toBeGreaterThanOrEqual(cancelled?.startedAtMs ?? Infinity);
    expect(item(e, id(3))).toMatchObject({ status: 'Skipped' });
    expect(item(e, id(3))?.endedAtMs).toBeUndefined();
  });
});
