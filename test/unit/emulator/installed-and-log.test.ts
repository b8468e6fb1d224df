import { afterEach, describe, expect, it } from 'vitest';
import type { Emulator, Seed } from '../../../src/emulator/index.js';
import { CONFIGURE_PACKAGE_TEMPLATE, DEMO_ACCESS_KEY, startEmulator } from '../../../src/emulator/index.js';
import { CloudState } from '../../../src/emulator/state.js';
import { call, sdkClient } from './helpers.js';

const REGION = 'cn-hangzhou';
const PKG = 'ACS-Extension-node-1853370294850618';

const seed: Seed = {
  regions: {
    [REGION]: {
      generate: [
        {
          count: 3,
          idPrefix: 'i-pre',
          installed: [{ name: PKG, version: 'v1', parameters: { version: '18' } }],
        },
        { count: 2, idPrefix: 'i-bare' },
      ],
      instances: [{ instanceId: 'i-latest1', installed: [{ name: PKG }] }],
    },
  },
  packageTemplates: [
    {
      name: PKG,
      versions: [
        { parameters: { version: { Type: 'String', Default: '18', AllowedValues: ['18', '20'] } } },
        { parameters: { version: { Type: 'String', Default: '20' } } },
      ],
    },
  ],
};

describe('emulator seed: installed packages', () => {
  it('records a package state per installed entry (version defaults to the latest), none elsewhere', () => {
    const s = new CloudState();
    s.applySeed(seed);
    const states = s.region(REGION).packageStates;
    expect([...states.keys()].sort()).toEqual(
      [`i-latest1/${PKG}`, `i-pre0001/${PKG}`, `i-pre0002/${PKG}`, `i-pre0003/${PKG}`].sort(),
    );
    expect(states.get(`i-pre0002/${PKG}`)).toMatchObject({
      templateVersion: 'v1',
      parameters: { version: '18' },
    });
    expect(states.get(`i-latest1/${PKG}`)).toMatchObject({ templateVersion: 'v2', parameters: {} });
  });

  it('rejects an installed package whose template or version does not exist', () => {
    const bad = (installed: Array<{ name: string; version?: string }>) => () =>
      new CloudState().applySeed({
        regions: { [REGION]: { instances: [{ instanceId: 'i-x1', installed }] } },
        packageTemplates: seed.packageTemplates,
      });
    expect(bad([{ name: 'NoSuchPackage' }])).toThrow(/does not exist/);
    expect(bad([{ name: PKG, version: 'v9' }])).toThrow(/has no version v9/);
    expect(bad([{ name: CONFIGURE_PACKAGE_TEMPLATE }])).toThrow(/does not exist/);
  });
});

describe('emulator request log: subjects', () => {
  let emu: Emulator | undefined;
  afterEach(async () => {
    await emu?.stop();
    emu = undefined;
  });

  it('names the InstanceId / ExecutionId of a request and the execution StartExecution started', async () => {
    const lines: Array<Record<string, unknown>> = [];
    emu = await startEmulator({
      timeScale: 0.002,
      seed,
      logger: (l) => lines.push(l as Record<string, unknown>),
    });
    const client = sdkClient(emu.endpoint, DEMO_ACCESS_KEY);
    const states = await call(client, 'oos', 'ListInstancePackageStates', {
      RegionId: REGION,
      InstanceId: 'i-pre0001',
    });
    expect((states['PackageStates'] as unknown[]).length).toBe(1);
    const started = await call(client, 'oos', 'StartExecution', {
      RegionId: REGION,
      TemplateName: CONFIGURE_PACKAGE_TEMPLATE,
      Parameters: JSON.stringify({
        action: 'install',
        packageName: PKG,
        packageVersion: 'v1',
        parameters: { version: '20' },
        targets: { Type: 'ResourceIds', ResourceIds: ['i-bare0001'], RegionId: REGION },
        rateControl: { Mode: 'Concurrency', Concurrency: 1, MaxErrors: 0 },
      }),
    });
    const id = (started['Execution'] as { ExecutionId: string }).ExecutionId;
    await call(client, 'oos', 'ListExecutions', { RegionId: REGION, ExecutionId: id });
    expect(lines.map((l) => [l['action'], l['instanceId'], l['executionId'], l['status']])).toEqual([
      ['ListInstancePackageStates', 'i-pre0001', undefined, 200],
      ['StartExecution', undefined, id, 200],
      ['ListExecutions', undefined, id, 200],
    ]);
  });
});
