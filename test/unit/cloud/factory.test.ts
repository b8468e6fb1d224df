import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createCloudClients, DEFAULT_FULL_RESYNC_MS, isAborted } from '../../../src/cloud/index.js';

/** Obviously fake; a named constant so secret scanners see no key-like literal. */
const FAKE_SECRET = 'fake-secret-for-factory-test';
const credential = { accessKeyId: 'fake-id', accessKeySecret: FAKE_SECRET };

describe('createCloudClients', () => {
  it('caches one client per (product, region) and sends nothing on construction', () => {
    const layer = createCloudClients({ credential }, { registry: new Registry() });
    expect(layer.oos('cn-hangzhou')).toBe(layer.oos('cn-hangzhou'));
    expect(layer.oos('cn-hangzhou')).not.toBe(layer.oos('cn-shanghai'));
    expect(layer.ecs('cn-hangzhou').regionId).toBe('cn-hangzhou');
  });

  it('uses the OOS regional rule and the ECS endpoint map of @alicloud/ecs20140526', () => {
    const layer = createCloudClients({ credential }, { registry: new Registry() });
    expect(layer.endpoint('oos', 'cn-hangzhou')).toBe('oos.cn-hangzhou.aliyuncs.com');
    expect(layer.endpoint('ecs', 'cn-hangzhou')).toBe('ecs-cn-hangzhou.aliyuncs.com');
    expect(layer.endpoint('ecs', 'eu-central-1')).toBe('ecs.eu-central-1.aliyuncs.com');
    const local = createCloudClients(
      { credential, endpointOverride: { ecs: '127.0.0.1:1' } },
      { registry: new Registry() },
    );
    expect(local.endpoint('ecs', 'cn-hangzhou')).toBe('127.0.0.1:1');
    expect(local.endpoint('oos', 'cn-hangzhou')).toBe('oos.cn-hangzhou.aliyuncs.com');
  });

  it('rejects region IDs that cannot be part of a host name, and bad rates', () => {
    const layer = createCloudClients({ credential }, { registry: new Registry() });
    expect(() => layer.oos('cn-hangzhou.evil.com/')).toThrow(TypeError);
    expect(() => createCloudClients({ credential, qps: 0 }, { registry: new Registry() })).toThrow(
      RangeError,
    );
  });

  it('registers the metrics once per Registry and pre-initialises them to zero', async () => {
    const registry = new Registry();
    createCloudClients({ credential }, { registry });
    createCloudClients({ credential }, { registry });
    const text = await registry.metrics();
    expect(text).toContain(
      'ecsops_cloud_api_requests_total{product="oos",action="StartExecution",code="OK"} 0',
    );
    expect(text).toContain('ecsops_cloud_api_retries_total{product="ecs",action="RunCommand"} 0');
    expect(text).toContain('# TYPE ecsops_cloud_api_request_duration_seconds histogram');
  });

  it('hands out a signal-bound view of the cached client; an aborted signal sends nothing', async () => {
    const layer = createCloudClients(
      { credential, endpointOverride: { oos: '127.0.0.1:1', ecs: '127.0.0.1:1' }, protocol: 'HTTP' },
      { registry: new Registry() },
    );
    const signal = AbortSignal.abort();
    const oos = layer.oos('cn-hangzhou', { signal });
    expect(oos).not.toBe(layer.oos('cn-hangzhou'));
    expect(oos.regionId).toBe('cn-hangzhou');
    expect(layer.oos('cn-hangzhou', {})).toBe(layer.oos('cn-hangzhou'));
    await expect(oos.listTemplates()).rejects.toSatisfy(isAborted);
    await expect(
      layer.ecs('cn-hangzhou', { signal }).describeInstances({ instanceIds: ['i-1'] }),
    ).rejects.toMatchObject({ code: 'Aborted', product: 'ecs', action: 'DescribeInstances' });
    expect(() => layer.ecs('bad region', { signal })).toThrow(TypeError);
  });
});

describe('createCloudClients: ActionTrail and the fleet options', () => {
  it('builds ActionTrail at actiontrail.<region>.aliyuncs.com, or at its own / the OOS override', () => {
    const registry = new Registry();
    const real = createCloudClients({ credential }, { registry });
    expect(real.endpoint('actiontrail', 'cn-hangzhou')).toBe('actiontrail.cn-hangzhou.aliyuncs.com');
    expect(real.actionTrail('cn-hangzhou')).toBe(real.actionTrail('cn-hangzhou'));
    expect(() => real.actionTrail('cn-hangzhou/..')).toThrow(TypeError);
    const emu = createCloudClients({ credential, endpointOverride: { oos: '127.0.0.1:9100' } }, { registry });
    expect(emu.endpoint('actiontrail', 'cn-hangzhou')).toBe('127.0.0.1:9100');
    const own = createCloudClients(
      { credential, endpointOverride: { oos: '127.0.0.1:9100', actiontrail: '127.0.0.1:9200' } },
      { registry },
    );
    expect(own.endpoint('actiontrail', 'cn-hangzhou')).toBe('127.0.0.1:9200');
  });

  it('hands the full-resync period to each fleet view, and rejects a period <= 0', () => {
    const layer = createCloudClients({ credential, fullResyncMs: 3_600_000 }, { registry: new Registry() });
    expect(layer.fleet('cn-hangzhou').freshness('packages', []).fullResyncMs).toBe(3_600_000);
    const byDefault = createCloudClients({ credential }, { registry: new Registry() });
    expect(byDefault.fleet('cn-hangzhou').freshness('packages', []).fullResyncMs).toBe(
      DEFAULT_FULL_RESYNC_MS,
    );
    expect(() => createCloudClients({ credential, fullResyncMs: 0 }, { registry: new Registry() })).toThrow(
      RangeError,
    );
  });

  it('pre-initialises the LookupEvents metrics only when ActionTrail is on', async () => {
    const line = 'ecsops_cloud_api_requests_total{product="actiontrail",action="LookupEvents",code="OK"} 0';
    const on = new Registry();
    createCloudClients({ credential }, { registry: on });
    expect(await on.metrics()).toContain(line);
    const off = new Registry();
    createCloudClients({ credential, actionTrail: false }, { registry: off });
    expect(await off.metrics()).not.toContain('product="actiontrail"');
  });

  it('hands out a signal-bound ActionTrail view; an aborted signal sends nothing', async () => {
    const layer = createCloudClients(
      { credential, endpointOverride: { oos: '127.0.0.1:1' }, protocol: 'HTTP' },
      { registry: new Registry() },
    );
    const trail = layer.actionTrail('cn-hangzhou', { signal: AbortSignal.abort() });
    expect(trail).not.toBe(layer.actionTrail('cn-hangzhou'));
    await expect(
      trail.lookupEvents({ eventName: 'UpdateInstancePackageState', startTime: '2026-01-01T00:00:00Z' }),
    ).rejects.toMatchObject({ code: 'Aborted', product: 'actiontrail', action: 'LookupEvents' });
  });
});

describe('ECS endpoint table', () => {
  it('equals the endpoint map of the ECS SDK (@alicloud/ecs20140526, a devDependency)', async () => {
    const { ECS_ENDPOINT_MAP } = await import('../../../src/cloud/ecs-endpoints.js');
    const { default: Ecs } = (await import('@alicloud/ecs20140526')) as unknown as {
      default: { default?: new (c: unknown) => unknown } & (new (c: unknown) => unknown);
    };
    const { $OpenApiUtil } = await import('@alicloud/openapi-core');
    const Client = (Ecs.default ?? Ecs) as new (c: unknown) => { _endpointMap: Record<string, string> };
    const sdk = new Client(
      new $OpenApiUtil.Config({ regionId: 'cn-hangzhou', accessKeyId: 'x', accessKeySecret: 'y' }),
    );
    expect(ECS_ENDPOINT_MAP).toEqual(sdk._endpointMap);
  });
});
