/**
 * Contract tests of the CLB (src/cloud/slb.ts) and ALB (src/cloud/alb.ts) clients against the
 * in-process emulator, through the REAL SDK transport (openapi-core `callApi`, both signatures)
 * and the cloud layer's caller (rate gate, retries, error mapping): weights set and read back,
 * CLB chunking at 20 servers per call, the ALB asynchronous change (Configuring → Available),
 * add/remove repeated safely, documented errors (unknown group, too many servers, a server not in
 * the group, a change while the group configures, a repeated ClientToken), tags, schedulers and
 * listeners, and the health read mapping. Load balancers are created through the control API.
 */
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SendFn } from '../../src/cloud/caller.js';
import { createCredentialsProvider, toSdkCredential } from '../../src/cloud/credentials.js';
import {
  createCloudClients,
  isCloudError,
  weightZeroDrains,
  type CloudLayer,
  type ServerGroupView,
} from '../../src/cloud/index.js';
import { createSdkClient, createSdkSend } from '../../src/cloud/sdk.js';
import { DEMO_ACCESS_KEY, startEmulator, type Emulator, type Seed } from '../../src/emulator/index.js';

const REGION = 'cn-hangzhou';
const SEED: Seed = { regions: { [REGION]: { generate: { count: 26, idPrefix: 'i-lb' } } } };
const id = (n: number) => `i-lb${String(n).padStart(4, '0')}`;

function layerFor(emu: Emulator, sig: 'v3' | 'v2'): CloudLayer {
  return createCloudClients(
    {
      // No slb/alb override: both fall back to the OOS one (one emulator endpoint).
      endpointOverride: { oos: emu.endpoint, ecs: emu.endpoint },
      protocol: 'HTTP',
      signatureAlgorithm: sig,
      credential: { accessKeyId: DEMO_ACCESS_KEY.id, accessKeySecret: DEMO_ACCESS_KEY.secret },
      qps: 1000,
      concurrency: 10,
      maxRetries: 2,
      retryBaseDelayMs: 5,
      retryMaxDelayMs: 20,
    },
    { registry: new Registry() },
  );
}

/** A direct call through the raw SDK transport (what the client never sends, e.g. 21 servers). */
function rawSend(emu: Emulator, product: 'slb' | 'alb', sig: 'v3' | 'v2'): SendFn {
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
    signatureAlgorithm: sig,
    readTimeoutMs: 10_000,
    connectTimeoutMs: 10_000,
  };
  const send = createSdkSend(createSdkClient(transport), transport);
  return (action, params) => send(action, { RegionId: REGION, ...params });
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, tries = 200): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const v = await fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function rejection(p: Promise<unknown>): Promise<Record<string, unknown>> {
  try {
    await p;
  } catch (e) {
    return e as Record<string, unknown>;
  }
  throw new Error('expected a rejection');
}

const weights = (g: ServerGroupView) =>
  Object.fromEntries(g.backends.map((b) => [`${b.instanceId}:${b.port}`, b.weight]));

describe.each(['v3', 'v2'] as const)('load balancer clients over the emulator (signature %s)', (sig) => {
  let emu: Emulator;
  let layer: CloudLayer;

  beforeEach(async () => {
    // ALB changes stay Configuring for 3000 model ms = 300 ms here.
    emu = await startEmulator({ seed: SEED, timeScale: 0.1 });
    layer = layerFor(emu, sig);
  });
  afterEach(async () => {
    await emu?.stop();
  });

  it('uses the OOS endpoint override, else slb./alb.<region>.aliyuncs.com', () => {
    expect(layer.endpoint('slb', REGION)).toBe(emu.endpoint);
    expect(layer.endpoint('alb', REGION)).toBe(emu.endpoint);
    const real = createCloudClients(
      { credential: { accessKeyId: 'x', accessKeySecret: 'y' } },
      { registry: new Registry() },
    );
    expect(real.endpoint('slb', 'cn-shanghai')).toBe('slb.cn-shanghai.aliyuncs.com');
    expect(real.endpoint('alb', 'cn-shanghai')).toBe('alb.cn-shanghai.aliyuncs.com');
    expect(layer.loadBalancer('CLB', REGION)).toBe(layer.loadBalancer('CLB', REGION));
    expect(layer.loadBalancer('ALB', REGION).type).toBe('ALB');
  });

  it('CLB: reads the group, listener, scheduler and tags; sets 25 weights in 2 calls of at most 20', async () => {
    const backends = Array.from({ length: 25 }, (_, i) => ({ instanceId: id(i + 1), port: 80 }));
    const created = await emu.control.createLoadBalancer({
      type: 'CLB',
      regionId: REGION,
      scheduler: 'wlc',
      backends,
      tags: { 'ack.aliyun.com': 'c0ffee', env: 'prod' },
    });
    const clb = layer.loadBalancer('CLB', REGION);
    const g = await clb.describeGroup(created.serverGroupId);
    expect(g).toMatchObject({
      type: 'CLB',
      serverGroupId: created.serverGroupId,
      loadBalancerIds: [created.loadBalancerId],
      listenerIds: ['80'],
      scheduler: 'wlc',
      loadBalancerTags: { 'ack.aliyun.com': 'c0ffee', env: 'prod' },
    });
    expect(g.backends).toHaveLength(25);
    expect(g.backends.every((b) => b.weight === 100 && b.status === 'Available')).toBe(true);
    expect(weightZeroDrains('CLB', g.scheduler)).toBe(true);

    await emu.control.resetRequestCounts();
    await clb.setWeights(
      created.serverGroupId,
      backends.map((b, i) => ({ ...b, weight: i % 2 === 0 ? 0 : 40 })),
    );
    expect((await emu.control.requestCounts())['SetVServerGroupAttribute']).toBe(2);
    const after = weights(await clb.describeGroup(created.serverGroupId));
    expect(after[`${id(1)}:80`]).toBe(0);
    expect(after[`${id(2)}:80`]).toBe(40);
    expect(after[`${id(25)}:80`]).toBe(0);
  });

  it('CLB: remove and re-add are safe to repeat; the restored weight reads back', async () => {
    const created = await emu.control.createLoadBalancer({
      type: 'CLB',
      regionId: REGION,
      backends: [1, 2, 3].map((n) => ({ instanceId: id(n), port: 8080, weight: 70 })),
    });
    const clb = layer.loadBalancer('CLB', REGION);
    const gone = [{ instanceId: id(2), port: 8080 }];
    await clb.removeBackends(created.serverGroupId, gone);
    await clb.removeBackends(created.serverGroupId, gone);
    expect(Object.keys(weights(await clb.describeGroup(created.serverGroupId))).sort()).toEqual([
      `${id(1)}:8080`,
      `${id(3)}:8080`,
    ]);
    const back = [{ instanceId: id(2), port: 8080, weight: 70 }];
    await clb.addBackends(created.serverGroupId, back);
    await clb.addBackends(created.serverGroupId, back);
    expect(weights(await clb.describeGroup(created.serverGroupId))[`${id(2)}:8080`]).toBe(70);
    const counts = await emu.control.requestCounts();
    expect(counts['RemoveVServerGroupBackendServers']).toBe(1);
    expect(counts['AddVServerGroupBackendServers']).toBe(1);
  });

  it('CLB errors: unknown group is permanent; 21 servers in one direct call and weight 101 are rejected', async () => {
    const created = await emu.control.createLoadBalancer({
      type: 'CLB',
      regionId: REGION,
      backends: [{ instanceId: id(1), port: 80 }],
    });
    const clb = layer.loadBalancer('CLB', REGION);
    const unknown = await rejection(clb.describeGroup('rsp-nope'));
    expect(isCloudError(unknown)).toBe(true);
    expect(unknown).toMatchObject({ code: 'InvalidParameter', kind: 'permanent' });
    expect(String(unknown['message'])).toContain('VServerGroupId does not exist');

    const tooMany = Array.from({ length: 21 }, (_, i) => ({ ServerId: id(i + 1), Port: 80, Weight: 0 }));
    const direct = await rejection(
      rawSend(
        emu,
        'slb',
        sig,
      )('SetVServerGroupAttribute', {
        VServerGroupId: created.serverGroupId,
        BackendServers: JSON.stringify(tooMany),
      }),
    );
    expect(direct['code']).toBe('InvalidParameter');
    expect(String(direct['message'])).toContain('at most 20');

    const bad = await rejection(
      clb.setWeights(created.serverGroupId, [{ instanceId: id(1), port: 80, weight: 101 }]),
    );
    expect(bad).toMatchObject({ code: 'InvalidParameter', kind: 'permanent' });
    const stranger = await rejection(
      clb.setWeights(created.serverGroupId, [{ instanceId: id(9), port: 80, weight: 0 }]),
    );
    expect(stranger).toMatchObject({ code: 'InvalidParameter', kind: 'permanent' });
  });

  it('CLB health: normal → Healthy, abnormal → Unhealthy, unavailable (no result yet) → Unknown', async () => {
    const created = await emu.control.createLoadBalancer({
      type: 'CLB',
      regionId: REGION,
      backends: [1, 2, 3].map((n) => ({ instanceId: id(n), port: 80 })),
    });
    await emu.control.forceBackendHealth(created.serverGroupId, id(1), 80, 'Healthy');
    await emu.control.forceBackendHealth(created.serverGroupId, id(2), 80, 'Unhealthy');
    await emu.control.forceBackendHealth(created.serverGroupId, id(3), 80, 'Initial');
    const clb = layer.loadBalancer('CLB', REGION);
    const g = await clb.describeGroup(created.serverGroupId);
    expect(Object.fromEntries(await clb.backendHealth(g))).toEqual({
      [`${id(1)}:80`]: 'Healthy',
      [`${id(2)}:80`]: 'Unhealthy',
      [`${id(3)}:80`]: 'Unknown',
    });
  });

  it('ALB: reads group, listener, scheduler and tags; a weight change shows Configuring, then Available', async () => {
    const created = await emu.control.createLoadBalancer({
      type: 'ALB',
      regionId: REGION,
      scheduler: 'Sch',
      backends: [1, 2, 3].map((n) => ({ instanceId: id(n), port: 80 })),
      tags: { 'ack.aliyun.com': 'c0ffee' },
    });
    const alb = layer.loadBalancer('ALB', REGION);
    const g = await alb.describeGroup(created.serverGroupId);
    expect(g).toMatchObject({
      type: 'ALB',
      loadBalancerIds: [created.loadBalancerId],
      listenerIds: [created.listenerId],
      scheduler: 'sch',
      loadBalancerTags: { 'ack.aliyun.com': 'c0ffee' },
    });
    expect(weightZeroDrains('ALB', g.scheduler)).toBe(false);

    await alb.setWeights(created.serverGroupId, [{ instanceId: id(1), port: 80, weight: 0 }]);
    const during = await alb.describeGroup(created.serverGroupId);
    expect(during.backends.find((b) => b.instanceId === id(1))).toMatchObject({
      status: 'Configuring',
      weight: 100,
    });
    const done = await until('the change to apply', async () => {
      const v = await alb.describeGroup(created.serverGroupId);
      return v.backends.every((b) => b.status === 'Available') ? v : undefined;
    });
    expect(weights(done)).toEqual({ [`${id(1)}:80`]: 0, [`${id(2)}:80`]: 100, [`${id(3)}:80`]: 100 });
  });

  it('ALB errors: change while configuring, unknown group, server not in group, 41 servers, repeated ClientToken', async () => {
    const created = await emu.control.createLoadBalancer({
      type: 'ALB',
      regionId: REGION,
      backends: [1, 2].map((n) => ({ instanceId: id(n), port: 80 })),
    });
    const alb = layer.loadBalancer('ALB', REGION);
    const send = rawSend(emu, 'alb', sig);
    const servers = (n: number, weight: number) => [
      { ServerId: id(n), ServerType: 'Ecs', Port: 80, Weight: weight },
    ];
    const first = await send('UpdateServerGroupServersAttribute', {
      ServerGroupId: created.serverGroupId,
      Servers: servers(1, 10),
      ClientToken: 'tok-1',
    });
    // Same token, same content: the first job, nothing applied twice (even while configuring).
    const again = await send('UpdateServerGroupServersAttribute', {
      ServerGroupId: created.serverGroupId,
      Servers: servers(1, 10),
      ClientToken: 'tok-1',
    });
    expect((again as { JobId: string }).JobId).toBe((first as { JobId: string }).JobId);
    const busy = await rejection(
      send('UpdateServerGroupServersAttribute', {
        ServerGroupId: created.serverGroupId,
        Servers: servers(2, 10),
        ClientToken: 'tok-2',
      }),
    );
    expect(busy['code']).toBe('IncorrectStatus.ServerGroup');
    const mismatch = await rejection(
      send('UpdateServerGroupServersAttribute', {
        ServerGroupId: created.serverGroupId,
        Servers: servers(1, 20),
        ClientToken: 'tok-1',
      }),
    );
    expect(mismatch['code']).toBe('IdempotenceSignatureMismatch');

    const unknown = await rejection(alb.describeGroup('sgp-nope'));
    expect(unknown).toMatchObject({
      code: 'ResourceNotFound.ServerGroup',
      kind: 'permanent',
      category: 'notFound',
    });
    const unknownWrite = await rejection(
      alb.setWeights('sgp-nope', [{ instanceId: id(1), port: 80, weight: 0 }]),
    );
    expect(unknownWrite).toMatchObject({ code: 'ResourceNotFound.ServerGroup', kind: 'permanent' });

    await until('the group to settle', async () =>
      (await alb.describeGroup(created.serverGroupId)).backends.every((b) => b.status === 'Available')
        ? true
        : undefined,
    );
    const stranger = await rejection(
      alb.setWeights(created.serverGroupId, [{ instanceId: id(9), port: 80, weight: 0 }]),
    );
    expect(stranger).toMatchObject({ code: 'ResourceNotFound.BackendServer', kind: 'permanent' });
    const tooMany = Array.from({ length: 41 }, (_, i) => ({
      ServerId: id(1),
      ServerType: 'Ecs',
      Port: i + 1,
      Weight: 1,
    }));
    const direct = await rejection(
      send('UpdateServerGroupServersAttribute', { ServerGroupId: created.serverGroupId, Servers: tooMany }),
    );
    expect(direct['code']).toBe('IllegalParam.Servers');
    const badWeight = await rejection(
      alb.setWeights(created.serverGroupId, [{ instanceId: id(1), port: 80, weight: 101 }]),
    );
    expect(badWeight).toMatchObject({ code: 'IllegalParam.Weight', kind: 'permanent' });
  });

  it('ALB: a change sent while the group configures is retried (IncorrectStatus.ServerGroup is transient) and lands', async () => {
    const created = await emu.control.createLoadBalancer({
      type: 'ALB',
      regionId: REGION,
      backends: [1, 2].map((n) => ({ instanceId: id(n), port: 80 })),
    });
    const patient = createCloudClients(
      {
        endpointOverride: { oos: emu.endpoint },
        protocol: 'HTTP',
        signatureAlgorithm: sig,
        credential: { accessKeyId: DEMO_ACCESS_KEY.id, accessKeySecret: DEMO_ACCESS_KEY.secret },
        maxRetries: 30,
        retryBaseDelayMs: 50,
        retryMaxDelayMs: 100,
      },
      { registry: new Registry() },
    ).loadBalancer('ALB', REGION);
    await emu.control.resetRequestCounts();
    await patient.setWeights(created.serverGroupId, [{ instanceId: id(1), port: 80, weight: 0 }]);
    await patient.setWeights(created.serverGroupId, [{ instanceId: id(2), port: 80, weight: 0 }]);
    expect((await emu.control.requestCounts())['UpdateServerGroupServersAttribute']).toBeGreaterThan(2);
    const done = await until('both changes', async () => {
      const v = await patient.describeGroup(created.serverGroupId);
      return v.backends.every((b) => b.status === 'Available') ? v : undefined;
    });
    expect(weights(done)).toEqual({ [`${id(1)}:80`]: 0, [`${id(2)}:80`]: 0 });
  });

  it('ALB: remove then re-add (Removing / Adding, then Available), repeats are no-ops', async () => {
    const created = await emu.control.createLoadBalancer({
      type: 'ALB',
      regionId: REGION,
      backends: [1, 2].map((n) => ({ instanceId: id(n), port: 80, weight: 60 })),
    });
    const alb = layer.loadBalancer('ALB', REGION);
    await alb.removeBackends(created.serverGroupId, [{ instanceId: id(2), port: 80 }]);
    expect(
      (await alb.describeGroup(created.serverGroupId)).backends.find((b) => b.instanceId === id(2))?.status,
    ).toBe('Removing');
    await alb.removeBackends(created.serverGroupId, [{ instanceId: id(2), port: 80 }]); // still Removing: no-op
    await until('removal', async () =>
      (await alb.describeGroup(created.serverGroupId)).backends.length === 1 ? true : undefined,
    );
    await alb.addBackends(created.serverGroupId, [{ instanceId: id(2), port: 80, weight: 60 }]);
    expect(
      (await alb.describeGroup(created.serverGroupId)).backends.find((b) => b.instanceId === id(2))?.status,
    ).toBe('Adding');
    await alb.addBackends(created.serverGroupId, [{ instanceId: id(2), port: 80, weight: 60 }]); // present: no-op
    const done = await until('the add to apply', async () => {
      const v = await alb.describeGroup(created.serverGroupId);
      return v.backends.every((b) => b.status === 'Available') ? v : undefined;
    });
    expect(weights(done)).toEqual({ [`${id(1)}:80`]: 60, [`${id(2)}:80`]: 60 });
    const counts = await emu.control.requestCounts();
    expect(counts['RemoveServersFromServerGroup']).toBe(1);
    expect(counts['AddServersToServerGroup']).toBe(1);
  });

  it('ALB health: not listed → Healthy, Unhealthy → Unhealthy, Initial and Unused (weight 0) → Unknown', async () => {
    const created = await emu.control.createLoadBalancer({
      type: 'ALB',
      regionId: REGION,
      backends: [
        { instanceId: id(1), port: 80 },
        { instanceId: id(2), port: 80 },
        { instanceId: id(3), port: 80 },
        { instanceId: id(4), port: 80, weight: 0 },
      ],
    });
    await emu.control.forceBackendHealth(created.serverGroupId, id(1), 80, 'Healthy');
    await emu.control.forceBackendHealth(created.serverGroupId, id(2), 80, 'Unhealthy');
    await emu.control.forceBackendHealth(created.serverGroupId, id(3), 80, 'Initial');
    await emu.control.forceBackendHealth(created.serverGroupId, id(4), 80, 'Healthy');
    const alb = layer.loadBalancer('ALB', REGION);
    const g = await alb.describeGroup(created.serverGroupId);
    expect(Object.fromEntries(await alb.backendHealth(g))).toEqual({
      [`${id(1)}:80`]: 'Healthy',
      [`${id(2)}:80`]: 'Unhealthy',
      [`${id(3)}:80`]: 'Unknown',
      [`${id(4)}:80`]: 'Unknown',
    });
  });
});
