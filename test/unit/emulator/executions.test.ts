import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Emulator, ExecutionRecord, Seed } from '../../../src/emulator/index.js';
import {
  APPLY_PATCH_TEMPLATE,
  CONFIGURE_PACKAGE_TEMPLATE,
  DEMO_ACCESS_KEY,
  RUN_COMMAND_TEMPLATE,
  startEmulator,
} from '../../../src/emulator/index.js';
import { call, callError, sdkClient, waitFor } from './helpers.js';

const REGION = 'cn-hangzhou';
const NODE_PKG = 'ACS-Extension-node-1853370294850618';

const seed: Seed = {
  regions: {
    [REGION]: {
      generate: { count: 120, idPrefix: 'i-fleet', tags: { env: 'prod' }, patches: 2 },
      instances: [
        { instanceId: 'i-stopped1', status: 'Stopped' },
        { instanceId: 'i-offline1', cloudAssistantOnline: false },
      ],
    },
  },
  packageTemplates: [
    {
      name: NODE_PKG,
      versions: [
        { parameters: { version: { Type: 'String', Default: '16' } } },
        {
          parameters: {
            version: { Type: 'String', Default: '18', AllowedValues: ['18', '20'] },
            channel: { Type: 'String' },
          },
        },
      ],
    },
  ],
};

describe('emulator OOS executions', () => {
  let emu: Emulator;
  let client: ReturnType<typeof sdkClient>;
  beforeEach(async () => {
    emu = await startEmulator({ timeScale: 0.002, seed });
    client = sdkClient(emu.endpoint, DEMO_ACCESS_KEY);
  });
  afterEach(() => emu.stop());

  const start = (
    parameters: Record<string, unknown>,
    extra: Record<string, unknown> = {},
    template = CONFIGURE_PACKAGE_TEMPLATE,
  ) =>
    call(client, 'oos', 'StartExecution', {
      RegionId: REGION,
      TemplateName: template,
      Parameters: JSON.stringify(parameters),
      SafetyCheck: 'Skip',
      ...extra,
    }) as Promise<{ Execution: { ExecutionId: string; Status: string; Parameters: string } }>;

  const finished = (id: string) =>
    waitFor(async () => {
      const e = await emu.control.getExecution(id);
      return e && ['Success', 'Failed', 'Cancelled'].includes(e.status) ? e : undefined;
    });

  const targets = (ids: string[]) => ({ Type: 'ResourceIds', RegionId: REGION, ResourceIds: ids });
  const fleet = (n: number) =>
    Array.from({ length: n }, (_, i) => `i-fleet${String(i + 1).padStart(4, '0')}`);

  it('runs Started → Running → Success and records package states with the resolved version', async () => {
    const r = await start({
      action: 'install',
      packageName: NODE_PKG,
      targets: targets(fleet(2)),
      parameters: { channel: 'lts' },
    });
    expect(r.Execution.Status).toBe('Started');
    expect(typeof r.Execution.Parameters).toBe('string');
    // At this time scale an item takes 40 ms; the Running phase is asserted on a slower emulator below.
    const e = await finished(r.Execution.ExecutionId);
    expect(e.status).toBe('Success');
    const states = await emu.control.getPackageStates(REGION, 'i-fleet0001');
    expect(states).toMatchObject([
      { templateName: NODE_PKG, templateVersion: 'v2', parameters: { channel: 'lts' } },
    ]);
    const listed = (await call(client, 'oos', 'ListInstancePackageStates', {
      RegionId: REGION,
      InstanceId: 'i-fleet0002',
    })) as {
      MaxResults: unknown;
      PackageStates: Array<{ TemplateVersion: string; Parameters: string }>;
    };
    expect(listed.MaxResults).toBe('50');
    expect(listed.PackageStates[0]?.TemplateVersion).toBe('v2');
    const viaList = (await call(client, 'oos', 'ListExecutions', {
      RegionId: REGION,
      ExecutionId: r.Execution.ExecutionId,
    })) as {
      Executions: Array<{
        Status: string;
        Parameters: unknown;
        Counters: Record<string, number>;
        ResourceStatus: string;
      }>;
    };
    expect(viaList.Executions[0]).toMatchObject({
      Status: 'Success',
      Counters: { Total: 2, Success: 2, Failed: 0 },
    });
    expect(typeof viaList.Executions[0]?.Parameters).toBe('object');
    expect(JSON.parse(viaList.Executions[0]?.ResourceStatus ?? '{}')).toEqual({ Success: 2 });
  });

  it('shows Running (with CurrentTasks) while loop items are in flight', async () => {
    const slow = await startEmulator({ timeScale: 0.05, seed });
    try {
      const c = sdkClient(slow.endpoint, DEMO_ACCESS_KEY);
      const r = (await call(c, 'oos', 'StartExecution', {
        RegionId: REGION,
        TemplateName: CONFIGURE_PACKAGE_TEMPLATE,
        Parameters: JSON.stringify({
          packageName: NODE_PKG,
          targets: targets(fleet(1)),
          parameters: { channel: 'a' },
        }),
      })) as { Execution: { ExecutionId: string; Status: string } };
      expect(r.Execution.Status).toBe('Started');
      const running = await waitFor(async () => {
        const b = (await call(c, 'oos', 'ListExecutions', {
          RegionId: REGION,
          ExecutionId: r.Execution.ExecutionId,
        })) as {
          Executions: Array<{ Status: string; CurrentTasks: Array<{ TaskName: string }> }>;
        };
        return b.Executions[0]?.Status === 'Running' ? b.Executions[0] : undefined;
      });
      expect(running.CurrentTasks[0]?.TaskName).toBe('configurePackage');
    } finally {
      await slow.stop();
    }
  });

  it('returns the same execution for a reused ClientToken and filters ListExecutions by Tags', async () => {
    const p = {
      action: 'install',
      packageName: NODE_PKG,
      targets: targets(fleet(1)),
      parameters: { channel: 'x' },
    };
    const tags = JSON.stringify({ 'ecsops.io/owner-uid': 'uid-1' });
    const a = await start(p, { ClientToken: 'tok-1', Tags: tags });
    const b = await start(p, { ClientToken: 'tok-1', Tags: tags });
    expect(b.Execution.ExecutionId).toBe(a.Execution.ExecutionId);
    await start(p, { ClientToken: 'tok-2' });
    const all = await emu.control.listExecutions();
    expect(all).toHaveLength(2);
    const byTag = (await call(client, 'oos', 'ListExecutions', { RegionId: REGION, Tags: tags })) as {
      Executions: Array<{ ExecutionId: string; Tags: unknown }>;
    };
    expect(byTag.Executions.map((e) => e.ExecutionId)).toEqual([a.Execution.ExecutionId]);
    expect(byTag.Executions[0]?.Tags).toEqual({ 'ecsops.io/owner-uid': 'uid-1' });
    const ctl = await emu.control.listExecutions({ tagKey: 'ecsops.io/owner-uid', tagValue: 'uid-1' });
    expect(ctl.map((e) => e.clientToken)).toEqual(['tok-1']);
  });

  for (const [maxErrors, expected] of [
    [0, 'Failed'],
    [1, 'Success'],
  ] as const) {
    it(`120 instances, Concurrency 10, one failing instance, MaxErrors ${maxErrors} → ${expected}`, async () => {
      await emu.control.setFaults({ failInstances: { 'i-fleet0005': 'disk full' } });
      const r = await start({
        action: 'install',
        packageName: NODE_PKG,
        targets: { Type: 'Tags', RegionId: REGION, Tags: [{ Key: 'env', Value: 'prod' }] },
        rateControl: { Mode: 'Concurrency', Concurrency: 10, MaxErrors: maxErrors },
        parameters: { channel: 'lts' },
      });
      let peak = 0;
      let e: ExecutionRecord | undefined;
      for (;;) {
        e = await emu.control.getExecution(r.Execution.ExecutionId);
        if (!e) throw new Error('execution vanished');
        peak = Math.max(peak, e.items.filter((i) => i.status === 'Running').length);
        if (['Success', 'Failed', 'Cancelled'].includes(e.status)) break;
        await new Promise((res) => setTimeout(res, 5));
      }
      expect(e.status).toBe(expected);
      expect(e.items).toHaveLength(120);
      expect(peak).toBeLessThanOrEqual(10);
      const failed = e.items.filter((i) => i.status === 'Failed');
      expect(failed.map((i) => i.instanceId)).toEqual(['i-fleet0005']);
      expect(failed[0]?.statusMessage).toContain('disk full');
      if (expected === 'Failed') {
        expect(e.statusMessage).toContain('i-fleet0005');
        expect(e.items.some((i) => i.status === 'Skipped')).toBe(true);
      } else {
        expect(e.items.filter((i) => i.status === 'Success')).toHaveLength(119);
      }
      const children = (await call(client, 'oos', 'ListTaskExecutions', {
        RegionId: REGION,
        ExecutionId: e.executionId,
        IncludeChildTaskExecution: true,
        Status: 'Failed',
        MaxResults: 100,
      })) as { TaskExecutions: Array<{ LoopItem: string; StatusMessage: string }> };
      expect(children.TaskExecutions.find((t) => t.LoopItem === 'i-fleet0005')?.StatusMessage).toContain(
        'disk full',
      );
    });
  }

  it('fails per instance with a clear StatusMessage (stopped, offline, undeclared parameter, missing package)', async () => {
    const e1 = await finished(
      (
        await start({
          action: 'install',
          packageName: NODE_PKG,
          targets: targets(['i-stopped1', 'i-offline1', 'i-fleet0001']),
          rateControl: { Mode: 'Concurrency', Concurrency: 3, MaxErrors: '100%' },
          parameters: { channel: 'a' },
        })
      ).Execution.ExecutionId,
    );
    const msg = Object.fromEntries(e1.items.map((i) => [i.instanceId, i.statusMessage]));
    expect(e1.status).toBe('Success');
    expect(msg['i-stopped1']).toMatch(/Stopped, expected Running/);
    expect(msg['i-offline1']).toMatch(/Cloud Assistant.*offline/);
    const e2 = await finished(
      (
        await start({
          action: 'install',
          packageName: NODE_PKG,
          targets: targets(['i-fleet0001']),
          parameters: { colour: 'red', channel: 'a' },
        })
      ).Execution.ExecutionId,
    );
    expect(e2.status).toBe('Failed');
    expect(e2.items[0]?.statusMessage).toContain('"colour" is not declared');
    const e3 = await finished(
      (
        await start({
          action: 'install',
          packageName: NODE_PKG,
          packageVersion: 'v2',
          targets: targets(['i-fleet0001']),
          parameters: {},
        })
      ).Execution.ExecutionId,
    );
    expect(e3.items[0]?.statusMessage).toContain('required parameter "channel" is missing');
    const e4 = await finished(
      (
        await start({
          action: 'install',
          packageName: 'ACS-Extension-nope',
          targets: targets(['i-fleet0001']),
        })
      ).Execution.ExecutionId,
    );
    expect(e4.items[0]?.statusMessage).toContain('ACS-Extension-nope does not exist');
  });

  it('validates StartExecution: unknown template, undeclared and missing template parameters, >1000 targets', async () => {
    const unknown = await callError(start({}, {}, 'ACS-ECS-Nope'));
    expect([unknown.code, unknown.statusCode]).toEqual(['EntityNotExists.Template', 404]);
    const undeclared = await callError(start({ packageName: NODE_PKG, targets: targets([]), bogus: 1 }));
    expect(undeclared.code).toBe('InvalidParameter');
    expect(String(undeclared.data['Message'])).toContain('bogus');
    const missing = await callError(start({ targets: targets([]) }));
    expect(String(missing.data['Message'])).toContain('packageName');
    const many = Array.from({ length: 1001 }, (_, i) => `i-x${i}`);
    const tooMany = await callError(start({ packageName: NODE_PKG, targets: targets(many) }));
    expect(String(tooMany.data['Message'])).toContain('1000');
  });

  it('uninstall removes the package state; CancelExecution ends Cancelled', async () => {
    await finished(
      (
        await start({
          action: 'install',
          packageName: NODE_PKG,
          packageVersion: 'v1',
          targets: targets(['i-fleet0003']),
        })
      ).Execution.ExecutionId,
    );
    expect(await emu.control.getPackageStates(REGION, 'i-fleet0003')).toHaveLength(1);
    await finished(
      (await start({ action: 'uninstall', packageName: NODE_PKG, targets: targets(['i-fleet0003']) }))
        .Execution.ExecutionId,
    );
    expect(await emu.control.getPackageStates(REGION, 'i-fleet0003')).toHaveLength(0);
    const slow = await startEmulator({ timeScale: 1, seed });
    try {
      const c = sdkClient(slow.endpoint, DEMO_ACCESS_KEY);
      const r = (await call(c, 'oos', 'StartExecution', {
        RegionId: REGION,
        TemplateName: CONFIGURE_PACKAGE_TEMPLATE,
        Parameters: JSON.stringify({ packageName: NODE_PKG, targets: targets(fleet(3)) }),
      })) as { Execution: { ExecutionId: string } };
      await call(c, 'oos', 'CancelExecution', { RegionId: REGION, ExecutionId: r.Execution.ExecutionId });
      const e = await slow.control.getExecution(r.Execution.ExecutionId);
      expect(e?.status).toBe('Cancelled');
      expect(await slow.control.getPackageStates(REGION)).toHaveLength(0);
    } finally {
      await slow.stop();
    }
  });

  it('patch scan reports Missing counts; install with reboot and snapshot makes them Installed', async () => {
    const scan = await finished(
      (await start({ action: 'scan', targets: targets(['i-fleet0001']) }, {}, APPLY_PATCH_TEMPLATE)).Execution
        .ExecutionId,
    );
    expect(scan.status).toBe('Success');
    const states = (await call(client, 'oos', 'ListInstancePatchStates', {
      RegionId: REGION,
      InstanceIds: JSON.stringify(['i-fleet0001']),
    })) as {
      InstancePatchStates: Array<Record<string, string>>;
    };
    expect(states.InstancePatchStates[0]).toMatchObject({
      OperationType: 'scan',
      MissingCount: '2',
      InstalledCount: '0',
    });
    const noReboot = await finished(
      (await start({ action: 'install', targets: targets(['i-fleet0002']) }, {}, APPLY_PATCH_TEMPLATE))
        .Execution.ExecutionId,
    );
    expect(noReboot.status).toBe('Success');
    expect(
      (await emu.control.getPatchStates(REGION, 'i-fleet0002'))[0]?.patches.map((p) => p.status),
    ).toEqual(['InstalledPendingReboot', 'Installed']); // only the kernel patch needs a reboot
    // ListInstancePatchStates reports the counts as of the instance's last operation.
    const afterInstall = (await call(client, 'oos', 'ListInstancePatchStates', {
      RegionId: REGION,
      InstanceIds: JSON.stringify(['i-fleet0002']),
    })) as { InstancePatchStates: Array<Record<string, string>> };
    expect(afterInstall.InstancePatchStates[0]).toMatchObject({
      OperationType: 'install',
      MissingCount: '0',
      InstalledCount: '1',
      InstalledPendingRebootCount: '1',
    });
    await expect(
      start(
        { action: 'install', retentionDays: 0, targets: targets(['i-fleet0002']) },
        {},
        APPLY_PATCH_TEMPLATE,
      ),
    ).rejects.toMatchObject({ code: 'InvalidParameter' });
    await expect(
      call(client, 'oos', 'ListInstancePatches', { RegionId: REGION, InstanceId: 'i-nosuch0001' }),
    ).rejects.toMatchObject({ code: 'EntityNotExists.Instance' });
    const r = await start(
      {
        action: 'install',
        rebootIfNeed: true,
        whetherCreateSnapshot: true,
        retentionDays: 3,
        targets: targets(['i-fleet0001']),
      },
      {},
      APPLY_PATCH_TEMPLATE,
    );
    // The Stopping → Starting → Running cycle lasts 16 ms at this time scale, so assert its result
    // (the item's output and the instance back in Running) rather than sampling the transient states.
    const done = await finished(r.Execution.ExecutionId);
    expect(done.status).toBe('Success');
    expect(String(done.items[0]?.outputs['commandOutput'])).toContain('rebooted');
    const inst = (await emu.control.listInstances(REGION)).find((x) => x.instanceId === 'i-fleet0001');
    expect(inst?.status).toBe('Running');
    const patches = (await call(client, 'oos', 'ListInstancePatches', {
      RegionId: REGION,
      InstanceId: 'i-fleet0001',
    })) as {
      Patches: Array<{ Status: string }>;
    };
    expect(patches.Patches.map((p) => p.Status)).toEqual(['Installed', 'Installed']);
    const snaps = (await call(client, 'ecs', 'DescribeSnapshots', {
      RegionId: REGION,
      InstanceId: 'i-fleet0001',
    })) as {
      Snapshots: { Snapshot: Array<{ RetentionDays: number; Status: string }> };
    };
    expect(snaps.Snapshots.Snapshot).toMatchObject([{ RetentionDays: 3, Status: 'accomplished' }]);
  });

  it('BulkyRunCommand items follow scripted Cloud Assistant outcomes', async () => {
    await emu.control.scriptInvocation({ instanceId: 'i-fleet0002', exitCode: 3, output: 'boom' });
    const e = await finished(
      (
        await start(
          {
            commandContent: 'echo hi',
            targets: targets(['i-fleet0001', 'i-fleet0002']),
            rateControl: { Mode: 'Concurrency', Concurrency: 2, MaxErrors: 1 },
          },
          {},
          RUN_COMMAND_TEMPLATE,
        )
      ).Execution.ExecutionId,
    );
    expect(e.status).toBe('Success');
    const byId = Object.fromEntries(e.items.map((i) => [i.instanceId, i]));
    expect(byId['i-fleet0001']?.status).toBe('Success');
    expect(byId['i-fleet0002']?.status).toBe('Failed');
    expect(byId['i-fleet0002']?.statusMessage).toContain('exited with code 3');
  });
});
