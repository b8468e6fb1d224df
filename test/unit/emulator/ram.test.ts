/**
 * The emulator's RAM policy enforcement (src/emulator/ram.ts): policy evaluation (wildcards,
 * case-insensitive names, Deny wins, default deny, no policy = allow all), the wire answer of a
 * denied call through the real SDK (403 `Forbidden.RAM` with `AccessDeniedDetail`) and how the
 * cloud layer classifies it (permanent, PermissionDenied), and template steps denied inside an
 * execution (the loop item fails with `Forbidden.RAM`; nothing of the denied step happens).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ramPolicyFor, templateStepActions } from '../../../src/cloud/ram-actions.js';
import { toCloudError } from '../../../src/cloud/errors.js';
import { toReconcileError } from '../../../src/controllers/shared/cloud-errors.js';
import type { Emulator, Seed } from '../../../src/emulator/index.js';
import {
  APPLY_PATCH_TEMPLATE,
  CONFIGURE_PACKAGE_TEMPLATE,
  DEMO_ACCESS_KEY,
  startEmulator,
} from '../../../src/emulator/index.js';
import { RamGate } from '../../../src/emulator/ram.js';
import { StalledError } from '../../../src/runtime/errors.js';
import { call, callError, sdkClient, waitFor } from './helpers.js';

const REGION = 'cn-hangzhou';
const NODE_PKG = 'ACS-Extension-node-1853370294850618';
const seed: Seed = {
  regions: { [REGION]: { generate: { count: 4, idPrefix: 'i-ram', tags: { env: 'prod' }, patches: 2 } } },
  packageTemplates: [{ name: NODE_PKG, versions: [{ parameters: {} }] }],
};

const allow = (...Action: string[]) => ({
  Version: '1',
  Statement: [{ Effect: 'Allow', Action, Resource: '*' }],
});
/** The generated all-kinds policy without `drop`. */
function without(...drop: string[]) {
  const p = ramPolicyFor();
  return {
    ...p,
    Statement: p.Statement.map((s) => ({ ...s, Action: s.Action.filter((a) => !drop.includes(a)) })),
  };
}

describe('RamGate (policy evaluation)', () => {
  it('no policy allows everything; a policy denies by default', () => {
    expect(new RamGate().decide('ecs:RunCommand')).toBe('Allow');
    expect(new RamGate(allow('oos:ListExecutions')).decide('ecs:RunCommand')).toBe('ImplicitDeny');
  });

  it('matches `*` / `?` wildcards and names case-insensitively', () => {
    const g = new RamGate(allow('ecs:Describe*', 'OOS:listexecution?', 'kms:*'));
    expect(g.decide('ecs:DescribeInstances')).toBe('Allow');
    expect(g.decide('ecs:describeinvocations')).toBe('Allow');
    expect(g.decide('oos:ListExecutions')).toBe('Allow');
    expect(g.decide('oos:ListExecutionLogs')).toBe('ImplicitDeny');
    expect(g.decide('kms:GetSecretValue')).toBe('Allow');
    expect(g.decide('ecs:RunCommand')).toBe('ImplicitDeny');
    expect(new RamGate(allow('*')).decide('oos:StartExecution')).toBe('Allow');
  });

  it('an explicit Deny wins over any Allow', () => {
    const g = new RamGate({
      Version: '1',
      Statement: [
        { Effect: 'Allow', Action: '*', Resource: '*' },
        { Effect: 'Deny', Action: ['ecs:Reboot*'], Resource: '*' },
      ],
    });
    expect(g.decide('ecs:RebootInstance')).toBe('ExplicitDeny');
    expect(g.decide('ecs:RunCommand')).toBe('Allow');
  });

  it('rejects invalid documents with the problem named and keeps the previous policy', () => {
    const g = new RamGate(allow('ecs:*'));
    expect(() => g.set({ Version: '2', Statement: [] })).toThrow(/Version/);
    expect(() => g.set({ Version: '1', Statement: [{ Effect: 'Permit', Action: '*' }] })).toThrow(/Effect/);
    expect(() => g.set({ Version: '1', Statement: [{ Effect: 'Allow', Action: 3 }] })).toThrow(/Action/);
    expect(() =>
      g.set({
        Version: '1',
        Statement: [{ Effect: 'Allow', Action: '*', Resource: 'acs:ecs:*:*:instance/i-1' }],
      }),
    ).toThrow(/Resource/);
    expect(g.decide('ecs:RunCommand')).toBe('Allow');
  });
});

describe('emulator under a RAM policy', () => {
  let emu: Emulator | undefined;
  afterEach(() => emu?.stop());

  it('answers a denied API call as Alibaba Cloud does: 403 Forbidden.RAM with AccessDeniedDetail, classified PermissionDenied', async () => {
    emu = await startEmulator({ seed, timeScale: 0.002, ramPolicy: allow('ecs:Describe*') });
    const client = sdkClient(emu.endpoint, DEMO_ACCESS_KEY);
    // Allowed: answered normally.
    await call(client, 'ecs', 'DescribeInstances', { RegionId: REGION });
    const err = await callError(call(client, 'oos', 'ListExecutions', { RegionId: REGION }));
    expect(err.statusCode).toBe(403);
    expect(err.code).toBe('Forbidden.RAM');
    expect(err.data).toMatchObject({
      Code: 'Forbidden.RAM',
      Message: "User not authorized to operate on the specified resource, or this API doesn't support RAM.",
      AccessDeniedDetail: { AuthAction: 'oos:ListExecutions', NoPermissionType: 'ImplicitDeny' },
    });
    // The cloud layer's classification: permanent permission error → Stalled PermissionDenied.
    const ce = toCloudError(err, 'oos', 'ListExecutions');
    expect(ce).toMatchObject({ code: 'Forbidden.RAM', category: 'permission', retryable: false });
    const re = toReconcileError(ce, 'OOS ListExecutions');
    expect(re).toBeInstanceOf(StalledError);
    expect(re.reason).toBe('PermissionDenied');
    // Replaced at run time through the control API; removed = allow all again.
    await emu.control.setRamPolicy({
      Version: '1',
      Statement: [
        { Effect: 'Allow', Action: '*', Resource: '*' },
        { Effect: 'Deny', Action: 'oos:ListExecutions', Resource: '*' },
      ],
    });
    const explicit = await callError(call(client, 'oos', 'ListExecutions', { RegionId: REGION }));
    expect(explicit.data).toMatchObject({ AccessDeniedDetail: { NoPermissionType: 'ExplicitDeny' } });
    await expect(emu.control.setRamPolicy({ Version: '1' })).rejects.toThrow(/Statement/);
    await emu.control.setRamPolicy(undefined);
    await call(client, 'oos', 'ListExecutions', { RegionId: REGION });
  });

  it('a secret parameter call whose dependent KMS action is denied answers Forbidden.RAM naming the KMS action', async () => {
    emu = await startEmulator({ seed, timeScale: 0.002, ramPolicy: without('kms:CreateSecret') });
    const client = sdkClient(emu.endpoint, DEMO_ACCESS_KEY);
    const create = (Name: string) =>
      call(client, 'oos', 'CreateSecretParameter', {
        RegionId: REGION,
        Name,
        Type: 'Secret',
        Value: 'v-0123456789',
      });
    const err = await callError(create('p1'));
    expect(err.statusCode).toBe(403);
    expect(err.data).toMatchObject({
      Code: 'Forbidden.RAM',
      AccessDeniedDetail: { AuthAction: 'kms:CreateSecret', NoPermissionType: 'ImplicitDeny' },
    });
    expect(String(err.data?.['Message'])).toContain('kms:CreateSecret, needed by oos:CreateSecretParameter');
    // Nothing was created: the parameter does not exist once the dependent action is allowed.
    await emu.control.setRamPolicy(without('kms:PutSecretValue', 'kms:DeleteSecret'));
    await create('p1');
    const upd = await callError(
      call(client, 'oos', 'UpdateSecretParameter', { RegionId: REGION, Name: 'p1', Value: 'v-9876543210' }),
    );
    expect(upd.data).toMatchObject({ AccessDeniedDetail: { AuthAction: 'kms:PutSecretValue' } });
    const del = await callError(
      call(client, 'oos', 'DeleteSecretParameter', { RegionId: REGION, Name: 'p1' }),
    );
    expect(del.data).toMatchObject({ AccessDeniedDetail: { AuthAction: 'kms:DeleteSecret' } });
    // The controller policy does not grant the instance role's read.
    const get = await callError(
      call(client, 'oos', 'GetSecretParameter', { RegionId: REGION, Name: 'p1', WithDecryption: true }),
    );
    expect(get.data).toMatchObject({ AccessDeniedDetail: { AuthAction: 'oos:GetSecretParameter' } });
    await emu.control.setRamPolicy(allow('oos:GetSecretParameter'));
    const getKms = await callError(
      call(client, 'oos', 'GetSecretParameter', { RegionId: REGION, Name: 'p1', WithDecryption: true }),
    );
    expect(getKms.data).toMatchObject({ AccessDeniedDetail: { AuthAction: 'kms:GetSecretValue' } });
    await emu.control.setRamPolicy(ramPolicyFor());
    await call(client, 'oos', 'UpdateSecretParameter', {
      RegionId: REGION,
      Name: 'p1',
      Value: 'v-9876543210',
    });
    await call(client, 'oos', 'DeleteSecretParameter', { RegionId: REGION, Name: 'p1' });
  });

  const start = (client: ReturnType<typeof sdkClient>, template: string, parameters: object) =>
    call(client, 'oos', 'StartExecution', {
      RegionId: REGION,
      TemplateName: template,
      Parameters: JSON.stringify({
        targets: { Type: 'ResourceIds', RegionId: REGION, ResourceIds: ['i-ram0001'] },
        ...parameters,
      }),
    }) as Promise<{ Execution: { ExecutionId: string } }>;
  const finished = (id: string) =>
    waitFor(async () => {
      const e = await emu!.control.getExecution(id);
      return e && ['Success', 'Failed', 'Cancelled'].includes(e.status) ? e : undefined;
    });

  it('fails the loop item of a template step the policy denies (the caller may start the execution)', async () => {
    emu = await startEmulator({
      seed,
      timeScale: 0.002,
      ramPolicy: without('oos:UpdateInstancePackageState'),
    });
    const client = sdkClient(emu.endpoint, DEMO_ACCESS_KEY);
    const r = await start(client, CONFIGURE_PACKAGE_TEMPLATE, { action: 'install', packageName: NODE_PKG });
    const e = await finished(r.Execution.ExecutionId);
    expect(e.status).toBe('Failed');
    expect(e.items[0]?.statusMessage).toMatch(/^Forbidden\.RAM: .*oos:UpdateInstancePackageState/);
    expect(e.statusMessage).toMatch(/Forbidden\.RAM/);
    expect(await emu.control.getPackageStates(REGION, 'i-ram0001')).toEqual([]);
    // With the full policy the same execution succeeds.
    await emu.control.setRamPolicy(ramPolicyFor());
    const ok = await finished(
      (await start(client, CONFIGURE_PACKAGE_TEMPLATE, { action: 'install', packageName: NODE_PKG }))
        .Execution.ExecutionId,
    );
    expect(ok.status).toBe('Success');
  });

  it('a denied snapshot or reboot step fails the patch install item; scan does not need them', async () => {
    emu = await startEmulator({
      seed,
      timeScale: 0.002,
      ramPolicy: without('ecs:CreateSnapshot', 'ecs:RebootInstance'),
    });
    const client = sdkClient(emu.endpoint, DEMO_ACCESS_KEY);
    const scan = await finished(
      (await start(client, APPLY_PATCH_TEMPLATE, { action: 'scan' })).Execution.ExecutionId,
    );
    expect(scan.status).toBe('Success');
    const snap = await finished(
      (await start(client, APPLY_PATCH_TEMPLATE, { action: 'install', whetherCreateSnapshot: true }))
        .Execution.ExecutionId,
    );
    expect(snap.items[0]?.statusMessage).toMatch(/Forbidden\.RAM: .*ecs:CreateSnapshot/);
    const reboot = await finished(
      (await start(client, APPLY_PATCH_TEMPLATE, { action: 'install', rebootIfNeed: true })).Execution
        .ExecutionId,
    );
    expect(reboot.status).toBe('Failed');
    expect(reboot.items[0]?.statusMessage).toMatch(/Forbidden\.RAM: .*ecs:RebootInstance/);
    const inst = (await emu.control.listInstances(REGION)).find((x) => x.instanceId === 'i-ram0001');
    expect(inst?.status).toBe('Running'); // never rebooted
  });

  it('checks every template step action of the table', () => {
    // Not vacuous: the lists the engine enforces are the table's, and cover the documented steps.
    expect(templateStepActions(CONFIGURE_PACKAGE_TEMPLATE, 'always')).toEqual(
      expect.arrayContaining([
        'ecs:DescribeInstances',
        'ecs:RunCommand',
        'oos:GetTemplate',
        'oos:UpdateInstancePackageState',
      ]),
    );
    expect(templateStepActions(APPLY_PATCH_TEMPLATE, 'reboot')).toContain('ecs:RebootInstance');
    expect(templateStepActions(APPLY_PATCH_TEMPLATE, 'snapshot')).toContain('ecs:CreateSnapshot');
  });
});
