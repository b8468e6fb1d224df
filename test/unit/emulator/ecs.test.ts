import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Emulator } from '../../../src/emulator/index.js';
import { DEMO_ACCESS_KEY, startEmulator } from '../../../src/emulator/index.js';
import { call, callError, sdkClient, waitFor } from './helpers.js';

const REGION = 'cn-shanghai';

type InvocationResults = {
  Invocation: { InvocationResults: { InvocationResult: Array<Record<string, unknown>> } };
};

describe('emulator ECS actions', () => {
  let emu: Emulator;
  let client: ReturnType<typeof sdkClient>;
  beforeAll(async () => {
    emu = await startEmulator({
      timeScale: 0.002,
      seed: {
        regions: {
          [REGION]: {
            generate: [
              { count: 990, idPrefix: 'i-page' },
              {
                count: 10,
                idPrefix: 'i-web',
                tags: [
                  { key: 'app', value: 'web' },
                  { key: 'env', value: 'prod' },
                ],
                status: 'Stopped',
              },
            ],
            instances: [{ instanceId: 'i-offline', cloudAssistantOnline: false }],
          },
        },
      },
    });
    client = sdkClient(emu.endpoint, DEMO_ACCESS_KEY);
  });
  afterAll(() => emu.stop());

  it('pages through 1,000+ instances with NextToken/MaxResults without gaps or repeats', async () => {
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const body = (await call(client, 'ecs', 'DescribeInstances', {
        RegionId: REGION,
        MaxResults: 100,
        ...(token ? { NextToken: token } : {}),
      })) as { NextToken: string; Instances: { Instance: Array<{ InstanceId: string }> } };
      seen.push(...body.Instances.Instance.map((i) => i.InstanceId));
      token = body.NextToken || undefined;
      pages++;
    } while (token);
    expect(pages).toBe(11);
    expect(seen).toHaveLength(1001);
    expect(new Set(seen).size).toBe(1001);
    const bad = await callError(
      call(client, 'ecs', 'DescribeInstances', { RegionId: REGION, MaxResults: 101 }),
    );
    expect(bad.code).toBe('InvalidParameter');
  });

  it('filters DescribeInstances by tags, status and InstanceIds and nests Tags.Tag[] with TagKey/TagValue', async () => {
    const body = (await call(client, 'ecs', 'DescribeInstances', {
      RegionId: REGION,
      Tag: [{ Key: 'app', Value: 'web' }, { Key: 'env' }],
      Status: 'Stopped',
      MaxResults: 50,
    })) as {
      Instances: {
        Instance: Array<{ InstanceId: string; Tags: { Tag: Array<{ TagKey: string; TagValue: string }> } }>;
      };
    };
    expect(body.Instances.Instance).toHaveLength(10);
    expect(body.Instances.Instance[0]?.Tags.Tag).toContainEqual({ TagKey: 'app', TagValue: 'web' });
    const tooMany = await callError(
      call(client, 'ecs', 'DescribeInstances', {
        RegionId: REGION,
        InstanceIds: JSON.stringify(Array.from({ length: 101 }, (_, i) => `i-${i}`)),
      }),
    );
    expect(tooMany.code).toBe('InvalidParameter');
  });

  it('reports Cloud Assistant status as "true"/"false" strings', async () => {
    const body = (await call(client, 'ecs', 'DescribeCloudAssistantStatus', {
      RegionId: REGION,
      InstanceId: ['i-page0001', 'i-offline', 'i-web0001'],
    })) as {
      InstanceCloudAssistantStatusSet: {
        InstanceCloudAssistantStatus: Array<{ InstanceId: string; CloudAssistantStatus: string }>;
      };
    };
    expect(
      body.InstanceCloudAssistantStatusSet.InstanceCloudAssistantStatus.map((s) => [
        s.InstanceId,
        s.CloudAssistantStatus,
      ]),
    ).toEqual([
      ['i-page0001', 'true'],
      ['i-offline', 'false'],
      ['i-web0001', 'false'],
    ]);
  });

  it('runs commands: scripted exit codes and base64 output, Invalid for offline/stopped, ClientToken reuse', async () => {
    await emu.control.scriptInvocation({
      contains: 'deploy.sh',
      instanceId: 'i-page0002',
      exitCode: 7,
      output: 'bad things',
    });
    await emu.control.scriptInvocation({ contains: 'deploy.sh', output: 'deployed\n' });
    const run = (token?: string) =>
      call(client, 'ecs', 'RunCommand', {
        RegionId: REGION,
        Type: 'RunShellScript',
        CommandContent: Buffer.from('bash deploy.sh').toString('base64'),
        ContentEncoding: 'Base64',
        InstanceId: ['i-page0001', 'i-page0002', 'i-offline', 'i-web0001'],
        Timeout: 60,
        ...(token ? { ClientToken: token } : {}),
      }) as Promise<{ InvokeId: string; CommandId: string }>;
    const first = await run('release-1');
    const again = await run('release-1');
    expect(again.InvokeId).toBe(first.InvokeId);
    expect(first.InvokeId).toMatch(/^t-/);
    const done = await waitFor(async () => {
      const b = (await call(client, 'ecs', 'DescribeInvocations', {
        RegionId: REGION,
        InvokeId: first.InvokeId,
      })) as {
        Invocations: { Invocation: Array<{ InvocationStatus: string }> };
      };
      const s = b.Invocations.Invocation[0]?.InvocationStatus;
      return s && !['Pending', 'Running'].includes(s) ? s : undefined;
    });
    expect(done).toBe('PartialFailed');
    const res = (await call(client, 'ecs', 'DescribeInvocationResults', {
      RegionId: REGION,
      InvokeId: first.InvokeId,
    })) as InvocationResults;
    const rows = Object.fromEntries(
      res.Invocation.InvocationResults.InvocationResult.map((r) => [r['InstanceId'], r]),
    );
    expect(rows['i-page0001']).toMatchObject({
      InvocationStatus: 'Success',
      ExitCode: 0,
      Output: Buffer.from('deployed\n').toString('base64'),
    });
    expect(rows['i-page0002']).toMatchObject({ InvocationStatus: 'Failed', ExitCode: 7 });
    expect(rows['i-offline']).toMatchObject({ InvocationStatus: 'Invalid', ErrorCode: 'ClientNotRunning' });
    expect(rows['i-web0001']).toMatchObject({ InvocationStatus: 'Invalid', ErrorCode: 'InstanceNotRunning' });
    const plain = (await call(client, 'ecs', 'DescribeInvocationResults', {
      RegionId: REGION,
      InvokeId: first.InvokeId,
      InstanceId: 'i-page0002',
      ContentEncoding: 'PlainText',
    })) as InvocationResults;
    expect(plain.Invocation.InvocationResults.InvocationResult[0]?.['Output']).toBe('bad things');
    expect(
      (await emu.control.listInvocations()).filter((i) => i.invokeId === first.InvokeId)[0]?.content,
    ).toBe('bash deploy.sh');
  });

  it('times out long commands and stops running ones', async () => {
    await emu.control.scriptInvocation({ contains: 'sleep-long', delayMs: 120_000 });
    const t = (await call(client, 'ecs', 'RunCommand', {
      RegionId: REGION,
      Type: 'RunShellScript',
      CommandContent: 'sleep-long',
      InstanceId: ['i-page0003'],
      Timeout: 10,
    })) as { InvokeId: string };
    await waitFor(async () => {
      const inv = (await emu.control.listInvocations()).find((i) => i.invokeId === t.InvokeId);
      return inv?.instances[0]?.status === 'Timeout';
    });
    const s = (await call(client, 'ecs', 'RunCommand', {
      RegionId: REGION,
      Type: 'RunShellScript',
      CommandContent: 'sleep-long',
      InstanceId: ['i-page0004'],
      Timeout: 600,
    })) as { InvokeId: string };
    await call(client, 'ecs', 'StopInvocation', { RegionId: REGION, InvokeId: s.InvokeId });
    const inv = (await emu.control.listInvocations()).find((i) => i.invokeId === s.InvokeId);
    expect(['Cancelled', 'Terminated']).toContain(inv?.instances[0]?.status);
    const missing = await callError(
      call(client, 'ecs', 'RunCommand', {
        RegionId: REGION,
        Type: 'RunShellScript',
        CommandContent: 'x',
        InstanceId: ['i-nope'],
      }),
    );
    expect(missing.statusCode).toBe(404);
  });
});
