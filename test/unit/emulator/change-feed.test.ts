import { $OpenApiUtil, OpenApiUtil } from '@alicloud/openapi-core';
import * as $dara from '@darabonba/typescript';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Emulator, Seed } from '../../../src/emulator/index.js';
import {
  ACTIONTRAIL_VERSION,
  CONFIGURE_PACKAGE_TEMPLATE,
  DEMO_ACCESS_KEY,
  startEmulator,
} from '../../../src/emulator/index.js';
import { setEmulatorClock } from '../../../src/emulator/state.js';
import { rpcParams } from '../../../src/cloud/sdk.js';
import { call, callError, sdkClient, waitFor } from './helpers.js';

// The change feed of issue 25 as the emulator serves it: foreign OOS executions in ListExecutions
// (time window, template-name contains match, child executions, paging) and direct
// UpdateInstancePackageState calls in ActionTrail LookupEvents — all through the real SDK over HTTP.

const REGION = 'cn-hangzhou';
const PKG = 'ACS-Extension-node-1853370294850618';
const T1 = Date.parse('2026-01-01T00:00:00Z');
const T2 = T1 + 3600_000;
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

const seed: Seed = {
  regions: {
    [REGION]: {
      generate: { count: 14, idPrefix: 'i-fc', installed: [{ name: PKG, version: 'v1' }] },
    },
  },
  packageTemplates: [
    {
      name: PKG,
      versions: [
        { version: 'v1', parameters: {} },
        { version: 'v2', parameters: { port: { Type: 'Number', Default: 80 } } },
      ],
    },
  ],
};

/** A settable emulator clock (state.ts), so the time windows are exact. */
let now = T1;

/** Calls ActionTrail 2020-07-06 through the generic openapi-core client (no product SDK on npm). */
async function lookupEvents(
  client: ReturnType<typeof sdkClient>,
  query: Record<string, unknown>,
): Promise<{ Events: Array<Record<string, unknown>>; NextToken: string; StartTime: string }> {
  const res = (await client.callApi(
    rpcParams('LookupEvents', ACTIONTRAIL_VERSION),
    new $OpenApiUtil.OpenApiRequest({ query: OpenApiUtil.query({ RegionId: REGION, ...query }) }),
    new $dara.RuntimeOptions({}),
  )) as { body: { Events: Array<Record<string, unknown>>; NextToken: string; StartTime: string } };
  return res.body;
}

const byName = (name: string) => ({ LookupAttribute: [{ Key: 'EventName', Value: name }] });

describe('emulator change feed: foreign executions, direct package-state writes, ActionTrail', () => {
  let emu: Emulator;
  /** A foreign client: another tool with its own (fake) key, no ecsops tags. */
  let foreign: ReturnType<typeof sdkClient>;
  let ecsops: ReturnType<typeof sdkClient>;
  const other = { id: 'LTAI' + 'FAKE'.repeat(4), secret: 'not-a-real-secret-foreign-tool' };

  beforeEach(async () => {
    now = T1;
    setEmulatorClock(() => new Date(now));
    emu = await startEmulator({ timeScale: 0.001, seed, accessKeys: [DEMO_ACCESS_KEY, other] });
    foreign = sdkClient(emu.endpoint, other);
    ecsops = sdkClient(emu.endpoint, DEMO_ACCESS_KEY);
  });
  afterEach(async () => {
    await emu.stop();
    setEmulatorClock();
  });

  const ids = (from: number, n: number) =>
    Array.from({ length: n }, (_, i) => `i-fc${String(from + i).padStart(4, '0')}`);

  const start = async (
    client: ReturnType<typeof sdkClient>,
    action: string,
    instances: string[],
    tags?: Record<string, string>,
    extra: Record<string, unknown> = {},
  ) => {
    const r = (await call(client, 'oos', 'StartExecution', {
      RegionId: REGION,
      TemplateName: CONFIGURE_PACKAGE_TEMPLATE,
      Parameters: JSON.stringify({
        action,
        packageName: PKG,
        ...extra,
        targets: { Type: 'ResourceIds', RegionId: REGION, ResourceIds: instances },
        rateControl: { Mode: 'Concurrency', MaxErrors: 0, Concurrency: 10 },
      }),
      ...(tags ? { Tags: JSON.stringify(tags) } : {}),
    })) as { Execution: { ExecutionId: string } };
    const id = r.Execution.ExecutionId;
    await waitFor(async () => {
      const e = await emu.control.getExecution(id);
      return e && ['Success', 'Failed', 'Cancelled'].includes(e.status);
    });
    return id;
  };

  type Listed = { TotalCount: number; NextToken: string; Executions: Array<Record<string, unknown>> };
  const list = (q: Record<string, unknown>) =>
    call(ecsops, 'oos', 'ListExecutions', { RegionId: REGION, ...q }) as Promise<Listed>;
  const states = async (instanceId: string) =>
    (
      (await call(ecsops, 'oos', 'ListInstancePackageStates', {
        RegionId: REGION,
        InstanceId: instanceId,
      })) as {
        PackageStates: Array<{ TemplateName: string }>;
      }
    ).PackageStates.map((s) => s.TemplateName);
  /** The one package state of `instanceId`: version and parameters (a JSON string on the wire). */
  const stateOf = async (instanceId: string) => {
    const r = (await call(ecsops, 'oos', 'ListInstancePackageStates', {
      RegionId: REGION,
      InstanceId: instanceId,
    })) as { PackageStates: Array<{ TemplateVersion: string; Parameters: string }> };
    const st = r.PackageStates[0];
    return st && { TemplateVersion: st.TemplateVersion, Parameters: JSON.parse(st.Parameters) as unknown };
  };

  it('a foreign uninstall on 3 instances shows in ListExecutions by template-name contains match and time window, and changes package states', async () => {
    const own = await start(ecsops, 'install', ids(4, 2), { 'ecsops.io/owner': 'PackageSet/default/a' });
    now = T2;
    const theirs = await start(foreign, 'uninstall', ids(1, 3));
    for (const i of ids(1, 3)) expect(await states(i)).toEqual([]);
    expect(await states('i-fc0004')).toEqual([PKG]);

    const feed = await list({ TemplateName: 'ConfigureOOSPackage', StartDateAfter: iso(T2 - 60_000) });
    expect(feed.Executions.map((e) => e.ExecutionId)).toEqual([theirs]);
    expect(feed.Executions[0]).toMatchObject({
      TemplateName: CONFIGURE_PACKAGE_TEMPLATE,
      Status: 'Success',
      Tags: {},
      Parameters: { action: 'uninstall', packageName: PKG },
    });
    expect((await list({ TemplateName: 'ConfigureOOSPackage' })).TotalCount).toBe(2);
    expect((await list({ TemplateName: 'NoSuchTemplate' })).TotalCount).toBe(0);
    expect((await list({ StartDateBefore: iso(T2 - 60_000) })).Executions.map((e) => e.ExecutionId)).toEqual([
      own,
    ]);
    expect((await list({ EndDateBefore: iso(T1 + 60_000) })).Executions.map((e) => e.ExecutionId)).toEqual([
      own,
    ]);
    expect((await list({ EndDateAfter: iso(T2) })).Executions.map((e) => e.ExecutionId)).toEqual([theirs]);
    expect((await list({ ResourceId: 'i-fc0002' })).Executions.map((e) => e.ExecutionId)).toEqual([theirs]);
  });

  it('foreign uninstall and update (another version and parameters) change the states and are read as the feed reads them: contains match, date window, children with their instance', async () => {
    const own = await start(ecsops, 'install', ids(9, 2), { 'ecsops.io/owner': 'PackageSet/default/a' });
    expect(await stateOf('i-fc0005')).toMatchObject({ TemplateVersion: 'v1', Parameters: {} });
    now = T2;
    const gone = await start(foreign, 'uninstall', ids(1, 2));
    const updated = await start(foreign, 'update', ids(5, 2), undefined, {
      packageVersion: 'v2',
      parameters: { port: 9090 },
    });
    for (const i of ids(1, 2)) expect(await states(i)).toEqual([]);
    for (const i of ids(5, 2))
      expect(await stateOf(i)).toMatchObject({ TemplateVersion: 'v2', Parameters: { port: 9090 } });
    expect(await stateOf('i-fc0003')).toMatchObject({ TemplateVersion: 'v1' }); // untouched

    const since = iso(T2 - 60_000);
    for (const window of [{ StartDateAfter: since }, { EndDateAfter: since }]) {
      const feed = await list({
        TemplateName: 'ConfigureOOSPackage',
        IncludeChildExecution: true,
        MaxResults: 100,
        ...window,
      });
      const ids_ = feed.Executions.map((e) => String(e.ExecutionId));
      expect(ids_, JSON.stringify(window)).not.toContain(own);
      expect(feed.TotalCount).toBe(6); // two parents, four children
      const touched = feed.Executions.filter((e) => e.ParentExecutionId !== '').map((e) => {
        const p = e.Parameters as { instanceId: string; action: string; packageVersion?: string };
        return [e.ParentExecutionId, p.instanceId, p.action, p.packageVersion ?? ''];
      });
      expect(touched.sort()).toEqual(
        [
          [gone, 'i-fc0001', 'uninstall', ''],
          [gone, 'i-fc0002', 'uninstall', ''],
          [updated, 'i-fc0005', 'update', 'v2'],
          [updated, 'i-fc0006', 'update', 'v2'],
        ].sort(),
      );
      for (const e of feed.Executions) expect(e).toMatchObject({ Tags: {}, Status: 'Success' });
    }
  });

  it('lists the child executions of a loop only with IncludeChildExecution or ParentExecutionId', async () => {
    now = T2;
    const parent = await start(foreign, 'uninstall', ids(1, 3));
    const plain = await list({ TemplateName: 'ConfigureOOSPackage' });
    expect(plain.Executions).toHaveLength(1);
    expect(plain.Executions[0]).toMatchObject({ ExecutionId: parent, IsParent: true, ParentExecutionId: '' });

    const all = await list({ TemplateName: 'ConfigureOOSPackage', IncludeChildExecution: true });
    const children = all.Executions.filter((e) => e.ParentExecutionId === parent);
    expect(all.TotalCount).toBe(4);
    expect(children.map((c) => (c.Parameters as { instanceId: string }).instanceId).sort()).toEqual(
      ids(1, 3),
    );
    for (const c of children) {
      expect(c).toMatchObject({
        TemplateName: 'ACS::ECS::ConfigureOOSPackageWithTemporaryURLFullActions',
        Status: 'Success',
        IsParent: false,
        Parameters: { action: 'uninstall', packageName: PKG },
      });
    }
    const byParent = await list({ ParentExecutionId: parent });
    expect(byParent.Executions.map((e) => e.ExecutionId).sort()).toEqual(
      children.map((c) => c.ExecutionId).sort(),
    );
    const child = await list({ ResourceId: 'i-fc0002', IncludeChildExecution: true });
    expect(child.TotalCount).toBe(2); // the parent and its child on that instance

    const tasks = (await call(ecsops, 'oos', 'ListTaskExecutions', {
      RegionId: REGION,
      ExecutionId: parent,
      IncludeChildTaskExecution: true,
    })) as { TaskExecutions: Array<{ LoopItem: string; ChildExecutionId: string }> };
    const fromTasks = tasks.TaskExecutions.filter((t) => t.LoopItem !== '').map((t) => t.ChildExecutionId);
    expect(fromTasks.sort()).toEqual(children.map((c) => c.ExecutionId).sort());
  });

  it('a direct UpdateInstancePackageState changes the state, leaves no execution and is in LookupEvents by EventName', async () => {
    const before = await list({ IncludeChildExecution: true });
    now = T2;
    await call(foreign, 'oos', 'UpdateInstancePackageState', {
      RegionId: REGION,
      InstanceId: 'i-fc0007',
      TemplateName: PKG,
      ConfigureAction: 'uninstall',
    });
    expect(await states('i-fc0007')).toEqual([]);
    expect((await list({ IncludeChildExecution: true })).TotalCount).toBe(before.TotalCount);
    expect((await list({ StartDateAfter: iso(T2 - 60_000), IncludeChildExecution: true })).TotalCount).toBe(
      0,
    );
    // A direct install of another version with parameters: the state changes, still no execution.
    await call(foreign, 'oos', 'UpdateInstancePackageState', {
      RegionId: REGION,
      InstanceId: 'i-fc0009',
      TemplateName: PKG,
      ConfigureAction: 'install',
      TemplateVersion: 'v2',
      Parameters: JSON.stringify({ port: 7070 }),
    });
    expect(await stateOf('i-fc0009')).toMatchObject({ TemplateVersion: 'v2', Parameters: { port: 7070 } });
    expect((await list({ EndDateAfter: iso(T2 - 60_000), IncludeChildExecution: true })).TotalCount).toBe(0);
    await call(foreign, 'ecs', 'TagResources', {
      RegionId: REGION,
      ResourceType: 'instance',
      ResourceId: ['i-fc0008'],
      Tag: [{ Key: 'app', Value: 'x' }],
    });

    const found = await lookupEvents(ecsops, {
      ...byName('UpdateInstancePackageState'),
      StartTime: iso(T2 - 60_000),
      EndTime: iso(T2 + 60_000),
    });
    expect(found.Events.map((e) => e.resourceName)).toEqual(['i-fc0009', 'i-fc0007']); // one per call
    expect(found.Events[1]).toMatchObject({
      eventName: 'UpdateInstancePackageState',
      eventTime: iso(T2),
      eventRW: 'Write',
      serviceName: 'Oos',
      acsRegion: REGION,
      resourceType: 'ACS::ECS::Instance',
      resourceName: 'i-fc0007',
      requestParameters: { InstanceId: 'i-fc0007', TemplateName: PKG, ConfigureAction: 'uninstall' },
      userIdentity: { accessKeyId: other.id },
    });
    expect(JSON.stringify(found.Events)).not.toContain(other.secret);
    const tags = await lookupEvents(ecsops, { ...byName('TagResources'), StartTime: iso(T1) });
    expect(tags.Events[0]).toMatchObject({ serviceName: 'Ecs', resourceName: 'i-fc0008' });
    // Reads are not recorded; a window before the call is empty.
    expect((await lookupEvents(ecsops, { ...byName('ListExecutions'), StartTime: iso(T1) })).Events).toEqual(
      [],
    );
    const earlier = await lookupEvents(ecsops, {
      ...byName('UpdateInstancePackageState'),
      StartTime: iso(T1),
      EndTime: iso(T2 - 1000),
    });
    expect(earlier.Events).toEqual([]);
    const bad = await callError(lookupEvents(ecsops, { LookupAttribute: [{ Key: 'Nope', Value: 'x' }] }));
    expect(bad.code).toBe('InvalidParameter');
  });

  it('returns an event only after the configured delivery delay', async () => {
    await emu.stop();
    emu = await startEmulator({ timeScale: 0.001, seed, actionTrailDelayMs: 600_000 });
    const c = sdkClient(emu.endpoint, DEMO_ACCESS_KEY);
    await call(c, 'oos', 'UpdateInstancePackageState', {
      RegionId: REGION,
      InstanceId: 'i-fc0001',
      TemplateName: PKG,
      ConfigureAction: 'uninstall',
    });
    const q = { ...byName('UpdateInstancePackageState'), StartTime: iso(T1 - 60_000) };
    now = T1 + 599_000;
    expect((await lookupEvents(c, q)).Events).toEqual([]);
    now = T1 + 600_000;
    expect((await lookupEvents(c, q)).Events).toHaveLength(1);
  });

  it('pages ListExecutions and LookupEvents by NextToken without gaps or repeats', async () => {
    for (const i of ids(1, 12)) await start(foreign, 'uninstall', [i]);
    const seen: string[] = [];
    let token = '';
    let pages = 0;
    do {
      const page = await list({
        TemplateName: 'ConfigureOOSPackage',
        IncludeChildExecution: true,
        MaxResults: 10,
        ...(token ? { NextToken: token } : {}),
      });
      expect(page.TotalCount).toBe(24);
      seen.push(...page.Executions.map((e) => String(e.ExecutionId)));
      token = page.NextToken;
      pages++;
    } while (token);
    expect(pages).toBe(3);
    expect(new Set(seen).size).toBe(24);

    const events: string[] = [];
    token = '';
    pages = 0;
    do {
      const page = await lookupEvents(ecsops, {
        ...byName('StartExecution'),
        StartTime: iso(T1),
        MaxResults: 5,
        ...(token ? { NextToken: token } : {}),
      });
      events.push(...page.Events.map((e) => String(e.eventId)));
      token = page.NextToken;
      pages++;
    } while (token);
    expect(pages).toBe(3);
    expect(new Set(events).size).toBe(12);
  });
});
