/**
 * Wire shapes of the emulator's SLB (CLB, 2014-05-15) and ALB (2020-06-16) actions
 * (src/emulator/slb.ts, alb.ts) through the real SDK transport, beyond what the clients read
 * (test/contract/loadbalancers.contract.test.ts): CLB `DescribeVServerGroups` with listeners and
 * `DescribeLoadBalancerHTTPListenerAttribute`'s `Scheduler`, ALB `ListServerGroups`
 * (`Scheduler` spelled `Wrr`, `ServerGroupStatus` Configuring while a change applies) and
 * `GetListenerHealthStatus`'s shape; the RAM gate names the products `slb:` / `alb:`; ActionTrail
 * records the write calls.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { SendFn } from '../../../src/cloud/caller.js';
import { createCredentialsProvider, toSdkCredential } from '../../../src/cloud/credentials.js';
import { createSdkClient, createSdkSend } from '../../../src/cloud/sdk.js';
import type { CloudProduct } from '../../../src/cloud/types.js';
import { DEMO_ACCESS_KEY, startEmulator, type Emulator, type Seed } from '../../../src/emulator/index.js';

const REGION = 'cn-hangzhou';
const SEED: Seed = { regions: { [REGION]: { generate: { count: 3, idPrefix: 'i-lbw' } } } };
const id = (n: number) => `i-lbw${String(n).padStart(4, '0')}`;

function send(emu: Emulator, product: CloudProduct): SendFn {
  const transport = {
    product,
    regionId: REGION,
    credential: toSdkCredential(
      createCredentialsProvider({
        credential: { accessKeyId: DEMO_ACCESS_KEY.id, accessKeySecret: DEMO_ACCESS_KEY.secret },
      }),
    ),
    endpoint: emu.endpoint,
    protocol: 'HTTP' as const,
    readTimeoutMs: 10_000,
    connectTimeoutMs: 10_000,
  };
  const s = createSdkSend(createSdkClient(transport), transport);
  return (action, params) => s(action, { RegionId: REGION, ...params });
}

async function rejection(p: Promise<unknown>): Promise<Record<string, unknown>> {
  try {
    await p;
  } catch (e) {
    return e as Record<string, unknown>;
  }
  throw new Error('expected a rejection');
}

describe('emulator SLB and ALB wire shapes', () => {
  let emu: Emulator | undefined;
  afterEach(async () => {
    await emu?.stop();
    emu = undefined;
  });

  it('CLB: vServer groups with their listener, the HTTP listener scheduler, health rows, write recorded in ActionTrail', async () => {
    emu = await startEmulator({ seed: SEED, timeScale: 0.1 });
    const lb = await emu.control.createLoadBalancer({
      type: 'CLB',
      regionId: REGION,
      listenerPort: 8080,
      scheduler: 'rr',
      backends: [{ instanceId: id(1), port: 80 }],
    });
    const slb = send(emu, 'slb');
    expect(
      await slb('DescribeVServerGroups', { LoadBalancerId: lb.loadBalancerId, IncludeListener: true }),
    ).toMatchObject({
      VServerGroups: {
        VServerGroup: [
          {
            VServerGroupId: lb.serverGroupId,
            AssociatedObjects: { Listeners: { Listener: [{ Port: 8080, Protocol: 'http' }] } },
          },
        ],
      },
    });
    expect(
      await slb('DescribeLoadBalancerHTTPListenerAttribute', {
        LoadBalancerId: lb.loadBalancerId,
        ListenerPort: 8080,
      }),
    ).toMatchObject({
      ListenerPort: 8080,
      Scheduler: 'rr',
      VServerGroupId: lb.serverGroupId,
      HealthCheck: 'on',
    });
    expect((await rejection(slb('DescribeHealthStatus', { LoadBalancerId: 'lb-nope' })))['code']).toBe(
      'InvalidLoadBalancerId.NotFound',
    );
    await slb('SetVServerGroupAttribute', {
      VServerGroupId: lb.serverGroupId,
      BackendServers: JSON.stringify([{ ServerId: id(1), Port: 80, Weight: 0 }]),
    });
    const trail = (await send(emu, 'actiontrail')('LookupEvents', {
      LookupAttribute: [{ Key: 'EventName', Value: 'SetVServerGroupAttribute' }],
    })) as { Events: Array<Record<string, unknown>> };
    expect(trail.Events).toHaveLength(1);
    expect(trail.Events[0]).toMatchObject({ serviceName: 'Slb', eventSource: `slb.${REGION}.aliyuncs.com` });
  });

  it('ALB: ListServerGroups spells the scheduler Wrr and reads Configuring while a change applies; GetListenerHealthStatus lists only non-normal servers', async () => {
    emu = await startEmulator({ seed: SEED, timeScale: 0.1 });
    const lb = await emu.control.createLoadBalancer({
      type: 'ALB',
      regionId: REGION,
      backends: [1, 2].map((n) => ({ instanceId: id(n), port: 80 })),
    });
    await emu.control.forceBackendHealth(lb.serverGroupId, id(1), 80, 'Healthy');
    await emu.control.forceBackendHealth(lb.serverGroupId, id(2), 80, 'Unhealthy');
    const alb = send(emu, 'alb');
    const group = () => alb('ListServerGroups', { ServerGroupIds: [lb.serverGroupId] });
    expect(await group()).toMatchObject({
      ServerGroups: [
        {
          ServerGroupId: lb.serverGroupId,
          Scheduler: 'Wrr',
          ServerGroupStatus: 'Available',
          RelatedLoadBalancerIds: [lb.loadBalancerId],
        },
      ],
    });
    await alb('UpdateServerGroupServersAttribute', {
      ServerGroupId: lb.serverGroupId,
      Servers: [{ ServerId: id(1), ServerType: 'Ecs', Port: 80, Weight: 50 }],
    });
    expect(await group()).toMatchObject({ ServerGroups: [{ ServerGroupStatus: 'Configuring' }] });
    const health = await alb('GetListenerHealthStatus', { ListenerId: lb.listenerId });
    expect(health).toMatchObject({
      ListenerHealthStatus: [
        {
          ListenerId: lb.listenerId,
          ServerGroupInfos: [
            {
              ServerGroupId: lb.serverGroupId,
              HealthCheckEnabled: 'on',
              NonNormalServers: [{ ServerId: id(2), Port: 80, Status: 'Unhealthy' }],
            },
          ],
        },
      ],
    });
    expect((await rejection(alb('GetListenerHealthStatus', { ListenerId: 'lsn-nope' })))['code']).toBe(
      'ResourceNotFound.Listener',
    );
  });

  it('RAM: a policy without slb:SetVServerGroupAttribute / alb:ListServerGroups denies them with Forbidden.RAM', async () => {
    emu = await startEmulator({
      seed: SEED,
      ramPolicy: {
        Version: '1',
        Statement: [{ Effect: 'Allow', Action: ['slb:Describe*'], Resource: '*' }],
      },
    });
    const lb = await emu.control.createLoadBalancer({
      type: 'CLB',
      regionId: REGION,
      backends: [{ instanceId: id(1), port: 80 }],
    });
    const slb = send(emu, 'slb');
    await slb('DescribeVServerGroupAttribute', { VServerGroupId: lb.serverGroupId });
    const denied = await rejection(
      slb('SetVServerGroupAttribute', {
        VServerGroupId: lb.serverGroupId,
        BackendServers: JSON.stringify([{ ServerId: id(1), Port: 80, Weight: 0 }]),
      }),
    );
    expect(denied['code']).toBe('Forbidden.RAM');
    const data = denied['data'] as { AccessDeniedDetail?: { AuthAction?: string } } | undefined;
    expect(data?.AccessDeniedDetail?.AuthAction).toBe('slb:SetVServerGroupAttribute');
    expect((await rejection(send(emu, 'alb')('ListServerGroups', {})))['code']).toBe('Forbidden.RAM');
  });
});
