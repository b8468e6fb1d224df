/**
 * The emulator's instance addresses and sandboxed daemons, through the real SDK (openapi-core):
 *  - DescribeInstances reports each instance's primary private IP (VpcAttributes.PrivateIpAddress
 *    and NetworkInterfaces.NetworkInterface[].PrimaryIpAddress), allocated in seed order (172.16.x.y),
 *    filterable with PrivateIpAddresses;
 *  - in sandbox mode the address is a loopback address of the instance's own (127.<net>.x.y), two
 *    emulators at once get different nets, and a sandboxed script gets it as ECS_PRIVATE_IP and can
 *    listen on it;
 *  - a daemon a command leaves running dies when its instance is released and when the emulator
 *    stops (Linux /proc).
 */
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCredentialsProvider, toSdkCredential } from '../../../src/cloud/credentials.js';
import { createSdkClient, createSdkSend } from '../../../src/cloud/sdk.js';
import type { EcsApi } from '../../../src/cloud/types.js';
import { DEMO_ACCESS_KEY, startEmulator, type Emulator } from '../../../src/emulator/index.js';
import { fleetIds, fleetSeed, startCloudStack, type CloudStack } from '../../harness/fast.js';

const REGION = 'cn-hangzhou';

/** Raw ECS calls through the real SDK client. */
function rawEcs(emu: Emulator) {
  const t = {
    product: 'ecs' as const,
    regionId: REGION,
    credential: toSdkCredential(
      createCredentialsProvider({
        credential: { accessKeyId: DEMO_ACCESS_KEY.id, accessKeySecret: DEMO_ACCESS_KEY.secret },
      }),
    ),
    endpoint: emu.endpoint,
    protocol: 'HTTP' as const,
    readTimeoutMs: 5000,
    connectTimeoutMs: 5000,
  };
  const send = createSdkSend(createSdkClient(t), t);
  return async (action: string, params: Record<string, unknown>) =>
    (await send(action, { RegionId: REGION, ...params })) as Record<string, unknown>;
}

type RawInstance = {
  InstanceId: string;
  VpcAttributes: { PrivateIpAddress: { IpAddress: string[] } };
  NetworkInterfaces: { NetworkInterface: Array<{ PrimaryIpAddress: string; Type: string }> };
};
const instancesOf = (r: Record<string, unknown>) => (r['Instances'] as { Instance: RawInstance[] }).Instance;

async function waitDone(ecs: EcsApi, invokeId: string, ms = 20_000) {
  const until = Date.now() + ms;
  for (;;) {
    const [inv] = await ecs.describeInvocations({ invokeId, includeOutput: true });
    if (inv && ['Success', 'Failed', 'PartialFailed', 'Stopped'].includes(inv.invocationStatus)) return inv;
    if (Date.now() > until) throw new Error(`invocation ${invokeId} not done: ${JSON.stringify(inv)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const alive = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
};

async function gone(pid: number, ms = 5000): Promise<boolean> {
  const until = Date.now() + ms;
  while (alive(pid)) {
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

describe('emulator: private IP addresses', () => {
  let emu: Emulator;
  beforeAll(async () => {
    emu = await startEmulator({ seed: fleetSeed('ip', 3) });
  });
  afterAll(() => emu.stop());

  it('DescribeInstances reports a primary private IP per instance, in seed order, filterable', async () => {
    const raw = rawEcs(emu);
    const all = instancesOf(await raw('DescribeInstances', {}));
    expect(all.map((i) => i.VpcAttributes.PrivateIpAddress.IpAddress)).toEqual([
      ['172.16.0.1'],
      ['172.16.0.2'],
      ['172.16.0.3'],
    ]);
    expect(all.map((i) => i.NetworkInterfaces.NetworkInterface[0])).toEqual(
      ['172.16.0.1', '172.16.0.2', '172.16.0.3'].map((ip) =>
        expect.objectContaining({ PrimaryIpAddress: ip, Type: 'Primary' }),
      ),
    );
    const one = instancesOf(
      await raw('DescribeInstances', { PrivateIpAddresses: JSON.stringify(['172.16.0.2']) }),
    );
    expect(one.map((i) => i.InstanceId)).toEqual([fleetIds('ip', 2, 2)[0]]);
  });
});

describe('emulator sandbox: loopback address per instance, daemons die with the instance', () => {
  let s: CloudStack;
  let other: Emulator;
  let ecs: EcsApi;
  const ids = fleetIds('net', 1, 3);
  beforeAll(async () => {
    s = await startCloudStack({ seed: fleetSeed('net', 3), emulator: { sandbox: true } });
    other = await startEmulator({ seed: fleetSeed('net', 3), sandbox: true });
    ecs = s.cloud.ecs(REGION);
  });
  afterAll(async () => {
    await other?.stop();
    await s?.stop();
  });

  it('gives each instance a 127.<net>.x.y address of its own; two emulators never share a net', async () => {
    const mine = (await s.emu.control.listInstances(REGION)).map((i) => i.privateIpAddress);
    const theirs = (await other.control.listInstances(REGION)).map((i) => i.privateIpAddress);
    const net = (ip: string | undefined) => /^127\.(\d+)\.0\.[1-3]$/.exec(ip ?? '')?.[1];
    expect(mine.map(net)).toEqual([net(mine[0]), net(mine[0]), net(mine[0])]);
    expect(net(mine[0])).toBeDefined();
    expect(net(theirs[0])).toBeDefined();
    expect(net(theirs[0])).not.toBe(net(mine[0]));
    expect(new Set(mine).size).toBe(3);
  });

  it('a script gets its address as ECS_PRIVATE_IP and can listen on it', async () => {
    const ips = new Map(
      (await s.emu.control.listInstances(REGION)).map((i) => [i.instanceId, i.privateIpAddress]),
    );
    const { invokeId } = await ecs.runCommand({
      type: 'RunShellScript',
      // every instance binds the same port on its own address
      commandContent:
        'python3 -c \'import os, socket; s = socket.socket(); s.bind((os.environ["ECS_PRIVATE_IP"], 18481)); print("bound", s.getsockname()[0])\'',
      instanceIds: ids,
      timeoutSeconds: 30,
    });
    const inv = await waitDone(ecs, invokeId);
    for (const i of inv.instances) {
      expect(i.invocationStatus, i.output).toBe('Success');
      expect(i.output).toBe(`bound ${ips.get(i.instanceId)}\n`);
    }
  });

  it('a daemon left running dies when its instance is released, the others when the emulator stops', async () => {
    const { invokeId } = await ecs.runCommand({
      type: 'RunShellScript',
      // a server-like daemon: detached from the command's output, the command ends at once
      commandContent: 'nohup sleep 300 </dev/null >/dev/null 2>&1 & echo $!',
      instanceIds: ids,
      timeoutSeconds: 30,
    });
    const inv = await waitDone(ecs, invokeId);
    const pids = new Map(inv.instances.map((i) => [i.instanceId, Number((i.output ?? '').trim())]));
    for (const pid of pids.values()) expect(alive(pid)).toBe(true);

    await s.emu.control.releaseInstance(REGION, ids[0] as string);
    expect(await gone(pids.get(ids[0] as string) as number)).toBe(true);
    expect(alive(pids.get(ids[1] as string) as number)).toBe(true);

    await s.stop();
    for (const id of ids.slice(1)) expect(await gone(pids.get(id) as number)).toBe(true);
    expect(existsSync('/proc/self')).toBe(true); // the check above really read /proc
  });
});
