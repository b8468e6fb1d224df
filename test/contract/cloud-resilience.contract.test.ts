/**
 * Contract tests of the cloud layer's resilience against the emulator through the real SDK:
 * bounded retries under injected throttling/5xx, write-retry policy, pagination of a large
 * fleet, and that secrets never leak through errors, logs or metrics.
 */
import { createServer, type AddressInfo } from 'node:net';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createCloudClients,
  isCloudError,
  type CloudError,
  type CloudOptions,
} from '../../src/cloud/index.js';
import {
  CONFIGURE_PACKAGE_TEMPLATE,
  DEMO_ACCESS_KEY,
  startEmulator,
  type Emulator,
} from '../../src/emulator/index.js';

const REGION = 'cn-hangzhou';
const BIG_REGION = 'cn-shanghai';

function options(emu: Emulator, extra: Partial<CloudOptions> = {}): CloudOptions {
  return {
    endpointOverride: { oos: emu.endpoint, ecs: emu.endpoint },
    protocol: 'HTTP',
    credential: { accessKeyId: DEMO_ACCESS_KEY.id, accessKeySecret: DEMO_ACCESS_KEY.secret },
    qps: 1000,
    concurrency: 10,
    retryBaseDelayMs: 2,
    retryMaxDelayMs: 20,
    ...extra,
  };
}

async function metric(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const m = await registry.getSingleMetric(name)?.get();
  return (
    m?.values
      .filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))
      .reduce((a, v) => a + v.value, 0) ?? 0
  );
}

describe('cloud layer resilience (emulator)', () => {
  let emu: Emulator;

  beforeAll(async () => {
    emu = await startEmulator({
      timeScale: 0.01,
      seed: {
        regions: {
          [REGION]: {
            instances: [{ instanceId: 'i-one0001', status: 'Running', cloudAssistantOnline: true }],
          },
          [BIG_REGION]: {
            generate: { count: 1000, idPrefix: 'i-fleet', status: 'Running', tags: { fleet: 'big' } },
          },
        },
      },
    });
  });
  afterAll(async () => {
    await emu?.stop();
  });
  afterEach(async () => {
    await emu.control.clearFaults();
    await emu.control.resetRequestCounts();
  });

  it('with 30% throttling a batch of calls succeeds through bounded retries', async () => {
    const registry = new Registry();
    const ecs = createCloudClients(options(emu, { maxRetries: 8 }), { registry }).ecs(REGION);
    await emu.control.setFaults({ seed: 7, actions: { '*': { throttleRate: 0.3 } } });
    const results = await Promise.all(
      Array.from({ length: 30 }, () => ecs.describeInstances({ instanceIds: ['i-one0001'] })),
    );
    expect(results.every((r) => r.length === 1)).toBe(true);
    const counts = await emu.control.requestCounts();
    const retries = await metric(registry, 'ecsops_cloud_api_retries_total', { action: 'DescribeInstances' });
    expect(retries).toBeGreaterThan(0);
    expect(counts['DescribeInstances']).toBe(30 + retries);
    expect(
      await metric(registry, 'ecsops_cloud_api_requests_total', {
        action: 'DescribeInstances',
        code: 'Throttling.User',
      }),
    ).toBe(retries);
    expect(
      await metric(registry, 'ecsops_cloud_api_requests_total', { action: 'DescribeInstances', code: 'OK' }),
    ).toBe(30);
  });

  it('with 100% throttling the layer gives up after maxRetries with a transient CloudError', async () => {
    const registry = new Registry();
    const oos = createCloudClients(options(emu, { maxRetries: 3 }), { registry }).oos(REGION);
    await emu.control.setFaults({ actions: { ListTemplates: { throttleRate: 1 } } });
    const err = (await oos.listTemplates().catch((e: unknown) => e)) as CloudError;
    expect(isCloudError(err)).toBe(true);
    expect(err).toMatchObject({
      kind: 'transient',
      category: 'throttling',
      code: 'Throttling.User',
      attempts: 4,
      action: 'ListTemplates',
      product: 'oos',
    });
    expect((await emu.control.requestCounts())['ListTemplates']).toBe(4);
    expect(await metric(registry, 'ecsops_cloud_api_retries_total', { action: 'ListTemplates' })).toBe(3);
  });

  it('5xx: StartExecution (ClientToken) and CancelExecution (naturally idempotent) are retried, RunCommand without a token is not', async () => {
    const layer = createCloudClients(options(emu, { maxRetries: 2 }), { registry: new Registry() });
    const oos = layer.oos(REGION);
    await emu.control.setFaults({
      actions: {
        StartExecution: { errorRate: 1 },
        CancelExecution: { errorRate: 1 },
        RunCommand: { errorRate: 1 },
      },
    });
    const start = (await oos
      .startExecution({
        templateName: CONFIGURE_PACKAGE_TEMPLATE,
        clientToken: 'ct-5xx',
        parameters: { packageName: 'x' },
      })
      .catch((e: unknown) => e)) as CloudError;
    expect(start).toMatchObject({
      code: 'ServiceUnavailable',
      kind: 'transient',
      category: 'server',
      httpStatus: 503,
      attempts: 3,
    });
    const cancel = (await oos
      .cancelExecution('exec-00000000000000000')
      .catch((e: unknown) => e)) as CloudError;
    expect(cancel).toMatchObject({ code: 'ServiceUnavailable', attempts: 3 });
    const run = (await layer
      .ecs(REGION)
      .runCommand({
        type: 'RunShellScript',
        commandContent: 'echo hi',
        instanceIds: ['i-one0001'],
        timeoutSeconds: 60,
      })
      .catch((e: unknown) => e)) as CloudError;
    expect(run).toMatchObject({ code: 'ServiceUnavailable', attempts: 1 });
    const counts = await emu.control.requestCounts();
    expect(counts['StartExecution']).toBe(3);
    expect(counts['CancelExecution']).toBe(3);
    expect(counts['RunCommand']).toBe(1);
  });

  it('one reset or lost answer does not fail CancelExecution, TagResources or UntagResources (naturally idempotent writes retry like reads)', async () => {
    const layer = createCloudClients(options(emu, { maxRetries: 2 }), { registry: new Registry() });
    const oos = layer.oos(REGION);
    const ecs = layer.ecs(REGION);
    const e = await oos.startExecution({
      templateName: CONFIGURE_PACKAGE_TEMPLATE,
      clientToken: 'ct-natural-idem',
      parameters: {
        action: 'install',
        packageName: 'ACS-Extension-node-1853370294850618',
        targets: { Type: 'ResourceIds', RegionId: REGION, ResourceIds: ['i-one0001'] },
        rateControl: { Mode: 'Concurrency', MaxErrors: 0, Concurrency: 1 },
      },
    });
    await emu.control.addFaultRule({ action: 'CancelExecution', kind: 'reset' });
    await emu.control.addFaultRule({ action: 'TagResources', kind: 'responseLoss' });
    await emu.control.addFaultRule({ action: 'UntagResources', kind: 'reset' });
    await oos.cancelExecution(e.executionId);
    await ecs.tagResources(['i-one0001'], [{ key: 'ecsops.io/rev-shop', value: 'r1' }]);
    expect((await ecs.describeInstances({ instanceIds: ['i-one0001'] }))[0]?.tags).toContainEqual({
      key: 'ecsops.io/rev-shop',
      value: 'r1',
    });
    await ecs.untagResources(['i-one0001'], ['ecsops.io/rev-shop']);
    expect(
      (await ecs.describeInstances({ instanceIds: ['i-one0001'] }))[0]?.tags.some(
        (t) => t.key === 'ecsops.io/rev-shop',
      ),
    ).toBe(false);
    expect((await emu.control.listExecutions({})).find((x) => x.executionId === e.executionId)?.status).toBe(
      'Cancelled',
    );
    const counts = await emu.control.requestCounts();
    expect([counts['CancelExecution'], counts['TagResources'], counts['UntagResources']]).toEqual([2, 2, 2]);
  });

  it('DescribeInstances pages through 1,000 instances (MaxResults 100) and batches IDs by 100', async () => {
    const ecs = createCloudClients(options(emu), { registry: new Registry() }).ecs(BIG_REGION);
    const all = await ecs.describeInstances({ tags: [{ key: 'fleet' }] });
    expect(all).toHaveLength(1000);
    expect(new Set(all.map((i) => i.instanceId)).size).toBe(1000);
    expect((await emu.control.requestCounts())['DescribeInstances']).toBe(10);

    await emu.control.resetRequestCounts();
    const ids = all.slice(0, 250).map((i) => i.instanceId);
    const some = await ecs.describeInstances({ instanceIds: ids });
    expect(some.map((i) => i.instanceId).sort()).toEqual([...ids].sort());
    expect((await emu.control.requestCounts())['DescribeInstances']).toBe(3);

    const ca = await ecs.describeCloudAssistantStatus(ids);
    expect(ca).toHaveLength(250);
  });
});

describe('secrets never leak (errors, logs, metrics)', () => {
  // Recognisable, obviously fake values.
  const FAKE_SECRET = 'FakeSecretDoNotLeak0123456789x';
  const FAKE_TOKEN = 'CAISFakeStsTokenDoNotLeak0123456789abcdefghijklmnopqrstuvwxyz+/==';
  const WRONG_SECRET = 'WrongSecretDoNotLeak0123456789';
  const KEY_ID = 'fake-leak-test-key-id';
  let emu: Emulator;
  let closedPort: number;

  beforeAll(async () => {
    emu = await startEmulator({
      timeScale: 0.01,
      accessKeys: [{ id: KEY_ID, secret: FAKE_SECRET }],
      seed: { regions: { [REGION]: { instances: [{ instanceId: 'i-one0001' }] } } },
    });
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    closedPort = (srv.address() as AddressInfo).port;
    await new Promise<void>((r) => srv.close(() => r()));
  });
  afterAll(async () => {
    await emu?.stop();
  });

  it.each(['v3', 'v2'] as const)('through every error path (signature %s)', async (sig) => {
    const lines: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(s) });
    const registry = new Registry();
    const base = {
      protocol: 'HTTP' as const,
      signatureAlgorithm: sig,
      credential: { accessKeyId: KEY_ID, accessKeySecret: FAKE_SECRET, securityToken: FAKE_TOKEN },
      maxRetries: 2,
      retryBaseDelayMs: 1,
      retryMaxDelayMs: 5,
      readTimeoutMs: 200,
      connectTimeoutMs: 200,
    };
    const errors: unknown[] = [];
    const capture = (p: Promise<unknown>) =>
      p.then(
        () => errors.push(new Error('expected a failure')),
        (e: unknown) => errors.push(e),
      );

    const endpointOverride = { oos: emu.endpoint, ecs: emu.endpoint };
    // 1. wrong secret → SignatureDoesNotMatch from the service.
    const wrong = createCloudClients(
      {
        ...base,
        endpointOverride,
        credential: { accessKeyId: KEY_ID, accessKeySecret: WRONG_SECRET, securityToken: FAKE_TOKEN },
      },
      { registry, logger },
    );
    await capture(wrong.ecs(REGION).describeInstances({ instanceIds: ['i-one0001'] }));
    await capture(wrong.oos(REGION).listExecutions({}));
    // 2. throttling with retries (logged at debug), correct secret + STS token.
    const good = createCloudClients({ ...base, endpointOverride }, { registry, logger });
    await emu.control.setFaults({ actions: { '*': { throttleRate: 1 } } });
    await capture(good.oos(REGION).listTemplates());
    // 3. read timeout: the HTTP layer's message contains the signed request path.
    await emu.control.setFaults({ actions: { '*': { latencyMs: 1000 } } });
    await capture(good.ecs(REGION).describeSnapshots({ instanceId: 'i-one0001' }));
    await emu.control.clearFaults();
    // 4. connection refused.
    const refused = createCloudClients(
      { ...base, endpointOverride: { oos: `127.0.0.1:${closedPort}`, ecs: `127.0.0.1:${closedPort}` } },
      { registry, logger },
    );
    await capture(refused.oos(REGION).getTemplate('x'));
    // 5. credential check with a failing provider whose message carries the secret.
    const failing = createCloudClients(
      {
        ...base,
        credential: undefined,
        credentialsProvider: {
          getProviderName: () => 'test',
          getCredentials: () =>
            Promise.reject(new Error(`bad AccessKeySecret=${FAKE_SECRET} token ${FAKE_TOKEN}`)),
        },
        endpointOverride,
      },
      { registry, logger },
    );
    await capture(failing.checkCredentials());
    await capture(failing.oos(REGION).listTemplates());

    expect(errors).toHaveLength(7);
    expect(errors.every((e) => isCloudError(e))).toBe(true);
    const codes = (errors as CloudError[]).map((e) => e.code);
    expect(codes).toEqual([
      'SignatureDoesNotMatch',
      'SignatureDoesNotMatch',
      'Throttling.User',
      'NetworkError',
      'NetworkError',
      'CredentialsUnavailable',
      'CredentialsUnavailable',
    ]);
    expect((errors[5] as CloudError).message).toContain('no Alibaba Cloud credential could be resolved');

    const haystacks = [
      ...errors.map((e) => `${String(e)}\n${(e as Error).stack ?? ''}\n${JSON.stringify(e)}`),
      lines.join('\n'),
      await registry.metrics(),
    ];
    expect(lines.length).toBeGreaterThan(0);
    for (const h of haystacks) {
      expect(h).not.toContain(FAKE_SECRET);
      expect(h).not.toContain(WRONG_SECRET);
      expect(h).not.toContain(FAKE_TOKEN);
      expect(h).not.toContain(encodeURIComponent(FAKE_TOKEN));
      expect(h).not.toContain('CAISFake');
      expect(h).not.toMatch(/Signature=(?!\[REDACTED\])[A-Za-z0-9%+/]/);
    }
  });
});
