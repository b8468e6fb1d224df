/**
 * Contract tests of the ActionTrail client (src/cloud/actiontrail.ts) against the in-process
 * emulator, through the REAL SDK transport (openapi-core `callApi`, both signatures) and the cloud
 * layer's caller (rate gate, retries, error mapping): a direct `UpdateInstancePackageState` is found
 * by event name and mapped, `NextToken` paging (50 per page) and the page bound, and a RAM policy
 * without `actiontrail:LookupEvents` answering `Forbidden.RAM`.
 */
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LOOKUP_MAX_EVENTS, LOOKUP_MAX_PAGES } from '../../src/cloud/actiontrail.js';
import {
  createCloudClients,
  isCloudError,
  type CloudLayer,
  type CloudOptions,
} from '../../src/cloud/index.js';
import { ramPolicyFor } from '../../src/cloud/ram-actions.js';
import { createSdkClient, createSdkSend } from '../../src/cloud/sdk.js';
import type { SendFn } from '../../src/cloud/caller.js';
import { toSdkCredential, createCredentialsProvider } from '../../src/cloud/credentials.js';
import {
  CONFIGURE_PACKAGE_TEMPLATE,
  DEMO_ACCESS_KEY,
  startEmulator,
  type Emulator,
  type Seed,
} from '../../src/emulator/index.js';

const REGION = 'cn-hangzhou';
const PKG = 'ACS-Extension-trail-1853370294850618';
const EVENT = 'UpdateInstancePackageState';

const SEED: Seed = {
  regions: { [REGION]: { generate: { count: 4, idPrefix: 'i-at', installed: [{ name: PKG }] } } },
  packageTemplates: [
    { name: PKG, versions: [{ version: 'v1', parameters: { port: { Type: 'Number', Default: 80 } } }] },
  ],
};

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

function layerFor(
  emu: Emulator,
  sig: 'v3' | 'v2',
  registry: Registry,
  extra: Partial<CloudOptions> = {},
  now?: () => number,
): CloudLayer {
  return createCloudClients(
    {
      ...extra,
      endpointOverride: { oos: emu.endpoint, ecs: emu.endpoint },
      protocol: 'HTTP',
      signatureAlgorithm: sig,
      credential: { accessKeyId: DEMO_ACCESS_KEY.id, accessKeySecret: DEMO_ACCESS_KEY.secret },
      qps: 1000,
      concurrency: 10,
      // The documented 2/s of LookupEvents is the layer's default; the test lifts it.
      actionQps: { LookupEvents: 1000 },
      maxRetries: 3,
      retryBaseDelayMs: 5,
      retryMaxDelayMs: 50,
    },
    { registry, ...(now ? { now } : {}) },
  );
}

/** Another tool's direct OOS write (no cloud-layer method exists for it): the raw SDK transport. */
function oosSend(emu: Emulator, sig: 'v3' | 'v2'): SendFn {
  const transport = {
    product: 'oos' as const,
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
  return createSdkSend(createSdkClient(transport), transport);
}

/** `ecsops_cloud_api_requests_total{product="actiontrail",action="LookupEvents",code}`. */
async function lookups(registry: Registry, code = 'OK'): Promise<number> {
  const m = await registry.getSingleMetric('ecsops_cloud_api_requests_total')?.get();
  return (
    m?.values.find(
      (v) =>
        v.labels.product === 'actiontrail' && v.labels.action === 'LookupEvents' && v.labels.code === code,
    )?.value ?? 0
  );
}

describe.each(['v3', 'v2'] as const)('ActionTrail client over the emulator (signature %s)', (sig) => {
  let emu: Emulator;
  let registry: Registry;
  let layer: CloudLayer;
  let send: SendFn;
  const t0 = Date.now() - 60_000;
  const update = (instanceId: string, extra: Record<string, unknown> = {}) =>
    send(EVENT, { RegionId: REGION, InstanceId: instanceId, TemplateName: PKG, ...extra });

  beforeEach(async () => {
    emu = await startEmulator({ seed: SEED, timeScale: 0.01 });
    registry = new Registry();
    layer = layerFor(emu, sig, registry);
    send = oosSend(emu, sig);
  });
  afterEach(async () => {
    await emu?.stop();
  });

  it('uses the OOS endpoint override (one emulator endpoint), else actiontrail.<region>.aliyuncs.com', () => {
    expect(layer.endpoint('actiontrail', REGION)).toBe(emu.endpoint);
    const real = createCloudClients({ credential: { accessKeyId: 'x', accessKeySecret: 'y' } }, { registry });
    expect(real.endpoint('actiontrail', 'cn-shanghai')).toBe('actiontrail.cn-shanghai.aliyuncs.com');
    expect(layer.actionTrail(REGION)).toBe(layer.actionTrail(REGION));
    expect(layer.actionTrail(REGION).regionId).toBe(REGION);
  });

  it('finds a direct UpdateInstancePackageState by event name, with its instance and parameters as strings', async () => {
    await update('i-at0002', {
      ConfigureAction: 'install',
      TemplateVersion: 'v1',
      Parameters: JSON.stringify({ port: 8080 }),
    });
    await update('i-at0003', { ConfigureAction: 'uninstall' });
    const trail = layer.actionTrail(REGION);
    const events = await trail.lookupEvents({ eventName: EVENT, startTime: iso(t0) });
    expect(events.map((e) => e.resourceNames)).toEqual([['i-at0003'], ['i-at0002']]); // newest first
    expect(events[1]).toEqual({
      eventId: expect.stringMatching(/^[0-9A-F-]{36}$/),
      eventName: EVENT,
      eventTime: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      resourceNames: ['i-at0002'],
      requestParameters: expect.objectContaining({
        InstanceId: 'i-at0002',
        TemplateName: PKG,
        ConfigureAction: 'install',
        TemplateVersion: 'v1',
        Parameters: JSON.stringify({ port: 8080 }),
      }),
    });
    for (const v of Object.values(events[1]!.requestParameters)) expect(typeof v).toBe('string');
    // The window and the name filter: nothing before t0, nothing of another name.
    expect(
      await trail.lookupEvents({ eventName: EVENT, startTime: iso(t0 - 3_600_000), endTime: iso(t0) }),
    ).toEqual([]);
    expect(await trail.lookupEvents({ eventName: 'StartExecution', startTime: iso(t0) })).toEqual([]);
    // A write naming several instances: resourceName "i-…,i-…" becomes one name each.
    await layer.oos(REGION).startExecution({
      templateName: CONFIGURE_PACKAGE_TEMPLATE,
      clientToken: `trail-contract-${sig}`,
      parameters: {
        action: 'uninstall',
        packageName: PKG,
        targets: { Type: 'ResourceIds', RegionId: REGION, ResourceIds: ['i-at0001', 'i-at0004'] },
      },
    });
    const started = await trail.lookupEvents({ eventName: 'StartExecution', startTime: iso(t0) });
    expect(started.map((e) => [e.eventName, e.resourceNames])).toEqual([
      ['StartExecution', ['i-at0001', 'i-at0004']],
    ]);
    expect(await lookups(registry)).toBe(4);
  });

  it('follows NextToken with pages of 50 (120 events: 3 calls, no gap, no repeat)', async () => {
    for (let i = 0; i < 120; i++)
      await update(`i-at000${(i % 4) + 1}`, { ConfigureAction: 'install', ConfigurationInfo: String(i) });
    const events = await layer.actionTrail(REGION).lookupEvents({ eventName: EVENT, startTime: iso(t0) });
    expect(events).toHaveLength(120);
    expect(new Set(events.map((e) => e.eventId)).size).toBe(120);
    expect(events.map((e) => Number(e.requestParameters['ConfigurationInfo']))).toEqual(
      Array.from({ length: 120 }, (_, i) => 119 - i),
    );
    expect(await lookups(registry)).toBe(3);
  });

  // The bound does not depend on the signature: run it once (1,030 writes take ≈ 2 s).
  it.runIf(sig === 'v3')(
    `stops after ${LOOKUP_MAX_PAGES} pages and returns the newest ${LOOKUP_MAX_EVENTS} events`,
    async () => {
      for (let i = 0; i < 30; i++)
        await update('i-at0001', { ConfigureAction: 'install', ConfigurationInfo: 'old' });
      for (let i = 0; i < LOOKUP_MAX_EVENTS; i += 20)
        await Promise.all(
          Array.from({ length: 20 }, () =>
            update('i-at0002', { ConfigureAction: 'install', ConfigurationInfo: 'new' }),
          ),
        );
      const events = await layer.actionTrail(REGION).lookupEvents({ eventName: EVENT, startTime: iso(t0) });
      expect(events).toHaveLength(LOOKUP_MAX_EVENTS);
      expect(events.every((e) => e.requestParameters['ConfigurationInfo'] === 'new')).toBe(true);
      expect(await lookups(registry)).toBe(LOOKUP_MAX_PAGES);
    },
  );

  it('answers a CloudError Forbidden.RAM (permission, not retried) under a policy without actiontrail:LookupEvents', async () => {
    await update('i-at0001', { ConfigureAction: 'uninstall' });
    const trail = layer.actionTrail(REGION);
    await emu.control.setRamPolicy(ramPolicyFor(['PatchPolicy']));
    const err: unknown = await trail
      .lookupEvents({ eventName: EVENT, startTime: iso(t0) })
      .catch((e: unknown) => e);
    expect(isCloudError(err)).toBe(true);
    expect(err).toMatchObject({
      code: 'Forbidden.RAM',
      product: 'actiontrail',
      action: 'LookupEvents',
      kind: 'permanent',
      category: 'permission',
      httpStatus: 403,
      attempts: 1,
    });
    expect(await lookups(registry, 'Forbidden.RAM')).toBe(1);
    // The EcsExtension policy of the RAM table grants it.
    await emu.control.setRamPolicy(ramPolicyFor(['EcsExtension']));
    expect(await trail.lookupEvents({ eventName: EVENT, startTime: iso(t0) })).toHaveLength(1);
  });
});

describe('ActionTrail in the fleet views of createCloudClients (CloudOptions.actionTrail)', () => {
  let emu: Emulator;
  let clock = 1_000_000;
  const ids = ['i-at0001', 'i-at0002', 'i-at0003'];
  const read = { maxAgeMs: 60_000 };
  const installed = (m: Map<string, Array<{ templateName: string }>>) =>
    Object.fromEntries([...m].map(([id, st]) => [id, st.map((x) => x.templateName)]));

  beforeEach(async () => {
    emu = await startEmulator({ seed: SEED, timeScale: 0.01 });
    clock = 1_000_000;
  });
  afterEach(async () => {
    await emu?.stop();
  });

  /** Reads `ids` once, has another tool uninstall PKG on i-at0002 directly, reads again one feed interval later. */
  async function directWriteSeen(extra: Partial<CloudOptions>) {
    const layer = layerFor(emu, 'v3', new Registry(), extra, () => clock);
    const fleet = layer.fleet(REGION);
    await fleet.packageStates(ids, read);
    await oosSend(emu, 'v3')(EVENT, {
      RegionId: REGION,
      InstanceId: 'i-at0002',
      TemplateName: PKG,
      ConfigureAction: 'uninstall',
    });
    const before = fleet.reads.packageStates;
    clock += read.maxAgeMs + 1;
    const after = installed(await fleet.packageStates(ids, read));
    return { fleet, after, reread: fleet.reads.packageStates - before };
  }

  it('on (default): the next feed read finds the direct write and re-reads only that instance', async () => {
    const { fleet, after, reread } = await directWriteSeen({});
    expect(after).toEqual({ 'i-at0001': [PKG], 'i-at0002': [], 'i-at0003': [PKG] });
    expect(reread).toBe(1);
    expect(fleet.reads.actionTrailLookups).toBe(2);
    expect(fleet.actionTrailDisabled).toBeUndefined();
  });

  it('off (--actiontrail=false): no lookup, the direct write waits for the full resync', async () => {
    const { fleet, after, reread } = await directWriteSeen({ actionTrail: false });
    expect(after['i-at0002']).toEqual([PKG]);
    expect(reread).toBe(0);
    expect(fleet.reads.actionTrailLookups).toBe(0);
  });

  it('denied by RAM: the feed stops reading ActionTrail and the package reads go on', async () => {
    const full = ramPolicyFor();
    await emu.control.setRamPolicy({
      ...full,
      Statement: full.Statement.map((st) => ({
        ...st,
        Action: st.Action.filter((a) => a !== 'actiontrail:LookupEvents'),
      })),
    });
    const { fleet, after } = await directWriteSeen({});
    expect(after['i-at0002']).toEqual([PKG]);
    expect(fleet.actionTrailDisabled).toMatch(/^Forbidden\.RAM: /);
    expect(fleet.reads.actionTrailLookups).toBe(1); // tried once, then off
  });
});
