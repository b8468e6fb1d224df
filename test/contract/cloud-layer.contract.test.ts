/**
 * Contract tests of the cloud layer (src/cloud) against the in-process OOS/ECS emulator, through
 * the REAL SDK clients (openapi-core / ecs20140526): signing, serialization, response shapes,
 * idempotency, pagination. Run once per signature: ACS3 (default, 'v3') and V1 ('v2').
 */
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCredentialsProvider, toSdkCredential } from '../../src/cloud/credentials.js';
import { createSdkClient, createSdkSend } from '../../src/cloud/sdk.js';
import {
  createCloudClients,
  isCloudError,
  type CloudLayer,
  type Execution,
  type OosApi,
} from '../../src/cloud/index.js';
import {
  APPLY_PATCH_TEMPLATE,
  CONFIGURE_PACKAGE_TEMPLATE,
  DEMO_ACCESS_KEY,
  startEmulator,
  type Emulator,
  type Seed,
} from '../../src/emulator/index.js';

const REGION = 'cn-hangzhou';
const PACKAGE = 'ACS-Extension-demo-1853370294850618';
const IDS = ['i-web0001', 'i-web0002', 'i-web0003', 'i-web0004', 'i-web0005'];

const SEED: Seed = {
  regions: {
    [REGION]: {
      instances: IDS.map((instanceId, i) => ({
        instanceId,
        instanceName: `web-${i + 1}`,
        status: 'Running' as const,
        osType: 'linux' as const,
        tags: { env: 'prod', app: 'web' },
        cloudAssistantOnline: true,
        patches: 3,
      })),
    },
  },
  packageTemplates: [
    {
      name: PACKAGE,
      description: { en: 'demo package' },
      versions: [
        {
          version: 'v1',
          parameters: {
            port: { Type: 'Number', Default: 8080 },
            mode: { Type: 'String', AllowedValues: ['a', 'b'] },
          },
        },
        { version: 'v2', parameters: { port: { Type: 'Number', Default: 8080 } } },
      ],
    },
  ],
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitForTerminal(oos: OosApi, executionId: string, timeoutMs = 20_000): Promise<Execution> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const e = await oos.getExecution(executionId);
    if (e && ['Success', 'Failed', 'Cancelled'].includes(e.status)) return e;
    if (Date.now() > deadline) throw new Error(`execution ${executionId} still ${e?.status}`);
    await sleep(50);
  }
}

function layerFor(
  emu: Emulator,
  signatureAlgorithm: 'v3' | 'v2',
  secret: string = DEMO_ACCESS_KEY.secret,
): CloudLayer {
  return createCloudClients(
    {
      endpointOverride: { oos: emu.endpoint, ecs: emu.endpoint },
      protocol: 'HTTP',
      signatureAlgorithm,
      credential: { accessKeyId: DEMO_ACCESS_KEY.id, accessKeySecret: secret },
      qps: 1000,
      concurrency: 10,
      maxRetries: 3,
      retryBaseDelayMs: 5,
      retryMaxDelayMs: 50,
    },
    { registry: new Registry() },
  );
}

describe.each(['v3', 'v2'] as const)('cloud layer over the emulator (signature %s)', (sig) => {
  let emu: Emulator;
  let layer: CloudLayer;

  beforeAll(async () => {
    emu = await startEmulator({ seed: SEED, timeScale: 0.01 });
    layer = layerFor(emu, sig);
  });
  afterAll(async () => {
    await emu?.stop();
  });

  it('uses the endpoint override for both products', () => {
    expect(layer.endpoint('oos', REGION)).toBe(emu.endpoint);
    expect(layer.endpoint('ecs', REGION)).toBe(emu.endpoint);
  });

  it('ECS DescribeInstances by IDs and by tag, tags as {key, value}', async () => {
    const ecs = layer.ecs(REGION);
    const byId = await ecs.describeInstances({ instanceIds: IDS.slice(0, 2) });
    expect(byId.map((i) => i.instanceId).sort()).toEqual(IDS.slice(0, 2));
    expect(byId[0]).toMatchObject({ regionId: REGION, status: 'Running', osType: 'linux' });
    expect(byId[0]?.tags).toEqual(expect.arrayContaining([{ key: 'env', value: 'prod' }]));
    const byTag = await ecs.describeInstances({ tags: [{ key: 'app', value: 'web' }] });
    expect(byTag.map((i) => i.instanceId).sort()).toEqual(IDS);
    expect(await ecs.describeInstances({ tags: [{ key: 'app', value: 'nope' }] })).toEqual([]);
  });

  it('ECS DescribeCloudAssistantStatus converts "true" to a boolean', async () => {
    const st = await layer.ecs(REGION).describeCloudAssistantStatus(IDS);
    expect(st).toHaveLength(IDS.length);
    expect(st.every((s) => s.online === true)).toBe(true);
  });

  it('OOS ListTemplates / GetTemplate (top-level Content parsed) / ListTemplateVersions', async () => {
    const oos = layer.oos(REGION);
    const pkgs = await oos.listTemplates({ templateType: 'Package' });
    expect(pkgs.map((t) => t.templateName)).toContain(PACKAGE);
    const t = await oos.getTemplate(PACKAGE, 'v1');
    expect(t.templateName).toBe(PACKAGE);
    expect(t.content.length).toBeGreaterThan(0);
    expect(t.parameters['port']).toMatchObject({ type: 'Number', default: 8080, required: false });
    expect(t.parameters['mode']).toMatchObject({ type: 'String', allowedValues: ['a', 'b'], required: true });
    const bulky = await oos.getTemplate(CONFIGURE_PACKAGE_TEMPLATE);
    expect(bulky.parameters['packageName']?.required).toBe(true);
    expect(bulky.parameters['action']?.allowedValues).toEqual(['install', 'uninstall', 'update']);
    const versions = await oos.listTemplateVersions(PACKAGE);
    expect(versions.map((v) => v.templateVersion).sort()).toEqual(['v1', 'v2']);
  });

  it('OOS GetTemplate of an unknown template is a permanent notFound CloudError', async () => {
    const err = await layer
      .oos(REGION)
      .getTemplate('ACS-Nope-does-not-exist')
      .catch((e: unknown) => e);
    expect(isCloudError(err)).toBe(true);
    expect(err).toMatchObject({
      code: 'EntityNotExists.Template',
      category: 'notFound',
      kind: 'permanent',
      product: 'oos',
      action: 'GetTemplate',
    });
  });

  it('OOS StartExecution is idempotent by ClientToken; executions are listed flat and by tag; results per instance', async () => {
    const oos = layer.oos(REGION);
    const req = {
      templateName: CONFIGURE_PACKAGE_TEMPLATE,
      clientToken: `ct-install-${sig}`,
      tags: { 'ecsops.io/owner-uid': `uid-${sig}` },
      parameters: {
        action: 'install',
        packageName: PACKAGE,
        packageVersion: 'v1',
        parameters: { port: 9090, mode: 'a' },
        targets: { Type: 'ResourceIds', RegionId: REGION, ResourceIds: IDS.slice(0, 2) },
        rateControl: { Mode: 'Concurrency', MaxErrors: 0, Concurrency: 10 },
      },
    };
    const first = await oos.startExecution(req);
    const again = await oos.startExecution(req);
    expect(first.executionId).toMatch(/^exec-/);
    expect(again.executionId).toBe(first.executionId);
    expect(first.parameters).toMatchObject({ packageName: PACKAGE });
    expect(first.tags).toEqual({ 'ecsops.io/owner-uid': `uid-${sig}` });

    const byTag = await oos.listAllExecutions({ tags: { 'ecsops.io/owner-uid': `uid-${sig}` } });
    expect(byTag.map((e) => e.executionId)).toEqual([first.executionId]);

    const done = await waitForTerminal(oos, first.executionId);
    expect(done.status, done.statusMessage).toBe('Success');
    expect(done.parameters).toMatchObject({ action: 'install' });

    const perInstance = await oos.listResourceExecutionStatus(first.executionId);
    expect(perInstance.map((r) => r.resourceId).sort()).toEqual(IDS.slice(0, 2));
    expect(perInstance.every((r) => r.status === 'Success' && typeof r.outputs === 'object')).toBe(true);

    const tasks = await oos.listTaskExecutions({
      executionId: first.executionId,
      includeChildTaskExecution: true,
    });
    expect(
      tasks
        .filter((t) => t.loopItem)
        .map((t) => t.loopItem)
        .sort(),
    ).toEqual(IDS.slice(0, 2));
    expect(tasks.every((t) => typeof t.properties === 'object' && typeof t.outputs === 'object')).toBe(true);

    const logs = await oos.listExecutionLogs(first.executionId);
    expect(Array.isArray(logs)).toBe(true);

    const states = await oos.listInstancePackageStates(IDS[0] as string, [PACKAGE]);
    expect(states).toHaveLength(1);
    expect(states[0]).toMatchObject({ templateName: PACKAGE, templateVersion: 'v1' });
    expect(states[0]?.parameters).toMatchObject({ port: 9090 });
    expect(await oos.listInstancePackageStates(IDS[4] as string)).toEqual([]);
  });

  it('OOS CancelExecution stops a running execution', async () => {
    const oos = layer.oos(REGION);
    const e = await oos.startExecution({
      templateName: CONFIGURE_PACKAGE_TEMPLATE,
      clientToken: `ct-cancel-${sig}`,
      parameters: {
        action: 'install',
        packageName: PACKAGE,
        targets: { Type: 'ResourceIds', RegionId: REGION, ResourceIds: IDS },
        rateControl: { Mode: 'Concurrency', MaxErrors: 0, Concurrency: 1 },
      },
    });
    await oos.cancelExecution(e.executionId);
    expect((await waitForTerminal(oos, e.executionId)).status).toBe('Cancelled');
  });

  it('OOS patch APIs: counts are numbers, patches and baselines are typed', async () => {
    const oos = layer.oos(REGION);
    const e = await oos.startExecution({
      templateName: APPLY_PATCH_TEMPLATE,
      clientToken: `ct-scan-${sig}`,
      parameters: { action: 'scan', targets: { Type: 'ResourceIds', RegionId: REGION, ResourceIds: IDS } },
    });
    expect((await waitForTerminal(oos, e.executionId)).status).toBe('Success');
    const states = await oos.listInstancePatchStates(IDS);
    expect(states.map((s) => s.instanceId).sort()).toEqual(IDS);
    for (const s of states) {
      expect(typeof s.missingCount).toBe('number');
      expect(s.missingCount).toBe(3);
      expect(s.operationType).toBe('scan');
    }
    const missing = await oos.listInstancePatches(IDS[0] as string, ['Missing']);
    expect(missing).toHaveLength(3);
    expect(missing.every((p) => p.status === 'Missing' && p.title.length > 0)).toBe(true);
    const baselines = await oos.listPatchBaselines({ shareType: 'Public' });
    expect(baselines.length).toBeGreaterThan(0);
    expect(baselines.every((b) => typeof b.isDefault === 'boolean' && b.id.length > 0)).toBe(true);

    const install = await oos.startExecution({
      templateName: APPLY_PATCH_TEMPLATE,
      clientToken: `ct-install-patch-${sig}`,
      parameters: {
        action: 'install',
        whetherCreateSnapshot: true,
        targets: { Type: 'ResourceIds', RegionId: REGION, ResourceIds: [IDS[0]] },
      },
    });
    expect((await waitForTerminal(oos, install.executionId)).status).toBe('Success');
    const snaps = await layer.ecs(REGION).describeSnapshots({ instanceId: IDS[0] as string });
    expect(snaps.length).toBeGreaterThan(0);
    expect(snaps[0]?.snapshotId).toMatch(/^s-/);
    const byIds = await layer.ecs(REGION).describeSnapshots({ snapshotIds: snaps.map((s) => s.snapshotId) });
    expect(byIds.map((s) => s.snapshotId).sort()).toEqual(snaps.map((s) => s.snapshotId).sort());
  });

  it('ECS RunCommand → DescribeInvocations / DescribeInvocationResults with decoded output; StopInvocation', async () => {
    const ecs = layer.ecs(REGION);
    await emu.control.scriptInvocation({
      contains: 'echo contract',
      exitCode: 0,
      output: 'héllo contract\n',
      delayMs: 100,
    });
    const run = await ecs.runCommand({
      type: 'RunShellScript',
      commandContent: 'echo contract',
      instanceIds: IDS.slice(0, 2),
      timeoutSeconds: 60,
      clientToken: `ct-run-${sig}`,
      name: 'contract',
    });
    expect(run.invokeId).toMatch(/^t-/);
    expect(run.commandId).toMatch(/^c-/);
    const again = await ecs.runCommand({
      type: 'RunShellScript',
      commandContent: 'echo contract',
      instanceIds: IDS.slice(0, 2),
      clientToken: `ct-run-${sig}`,
    });
    expect(again.invokeId).toBe(run.invokeId);

    let results = await ecs.describeInvocationResults({ invokeId: run.invokeId });
    for (let i = 0; i < 200 && !results.every((r) => r.invocationStatus === 'Success'); i++) {
      await sleep(50);
      results = await ecs.describeInvocationResults({ invokeId: run.invokeId });
    }
    expect(results.map((r) => r.instanceId).sort()).toEqual(IDS.slice(0, 2));
    expect(results.every((r) => r.output === 'héllo contract\n' && r.exitCode === 0)).toBe(true);

    const invs = await ecs.describeInvocations({ invokeId: run.invokeId, includeOutput: true });
    expect(invs).toHaveLength(1);
    expect(invs[0]?.commandContent).toBe('echo contract');
    expect(invs[0]?.instances.every((i) => i.output === 'héllo contract\n')).toBe(true);

    await emu.control.scriptInvocation({ contains: 'sleep long', delayMs: 600_000 });
    const long = await ecs.runCommand({
      type: 'RunShellScript',
      commandContent: 'sleep long',
      instanceIds: [IDS[2] as string],
      timeoutSeconds: 3600,
    });
    await ecs.stopInvocation(long.invokeId);
    let status = '';
    for (let i = 0; i < 200; i++) {
      status = (await ecs.describeInvocations({ invokeId: long.invokeId }))[0]?.invocationStatus ?? '';
      if (status === 'Stopped') break;
      await sleep(50);
    }
    expect(status).toBe('Stopped');
  });

  it('raw wire shapes match the documented ones (flat Executions, top-level Content, PackageStates, string counts)', async () => {
    const credential = toSdkCredential(
      createCredentialsProvider({
        credential: { accessKeyId: DEMO_ACCESS_KEY.id, accessKeySecret: DEMO_ACCESS_KEY.secret },
      }),
    );
    const t = {
      product: 'oos' as const,
      regionId: REGION,
      credential,
      endpoint: emu.endpoint,
      protocol: 'HTTP' as const,
      signatureAlgorithm: sig,
    };
    const send = createSdkSend(createSdkClient({ ...t, readTimeoutMs: 5000, connectTimeoutMs: 5000 }), {
      ...t,
      readTimeoutMs: 5000,
      connectTimeoutMs: 5000,
    });
    const raw = async (action: string, params: Record<string, unknown>) =>
      (await send(action, { RegionId: REGION, ...params })) as Record<string, unknown>;
    const execs = await raw('ListExecutions', {});
    expect(Array.isArray(execs['Executions'])).toBe(true);
    const tpl = await raw('GetTemplate', { TemplateName: PACKAGE });
    expect(typeof tpl['Content']).toBe('string');
    expect(typeof tpl['Template']).toBe('object');
    const pkg = await raw('ListInstancePackageStates', { InstanceId: IDS[0] });
    expect(Array.isArray(pkg['PackageStates'])).toBe(true);
    const patch = await raw('ListInstancePatchStates', { InstanceIds: JSON.stringify(IDS.slice(0, 1)) });
    const first = (patch['InstancePatchStates'] as Array<Record<string, unknown>>)[0];
    expect(typeof first?.['MissingCount']).toBe('string');
  });

  it('RunCommand rejects more than 100 instances before calling the service', async () => {
    const ids = Array.from({ length: 101 }, (_, i) => `i-x${i}`);
    await expect(
      layer.ecs(REGION).runCommand({ type: 'RunShellScript', commandContent: 'true', instanceIds: ids }),
    ).rejects.toMatchObject({
      code: 'InvalidParameter',
      kind: 'permanent',
    });
  });

  it('a wrong AccessKey secret is a permanent SignatureDoesNotMatch', async () => {
    const bad = layerFor(emu, sig, 'wrong-secret-for-the-contract-test');
    for (const call of [
      () => bad.ecs(REGION).describeInstances({ instanceIds: IDS }),
      () => bad.oos(REGION).listTemplates(),
    ]) {
      const err = await call().catch((e: unknown) => e);
      expect(isCloudError(err)).toBe(true);
      expect(err).toMatchObject({
        code: 'SignatureDoesNotMatch',
        kind: 'permanent',
        category: 'credentials',
        attempts: 1,
      });
    }
  });
});
