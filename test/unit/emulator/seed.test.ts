import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { loadSeedFile, parseSeed } from '../../../src/emulator/index.js';
import { CloudState } from '../../../src/emulator/state.js';

describe('emulator seed', () => {
  it('loads deploy/emulator/fleet.yaml: ~150 instances, prod/web tags, 2 stopped, 1 offline, package templates', async () => {
    const seed = await loadSeedFile(
      fileURLToPath(new URL('../../../deploy/emulator/fleet.yaml', import.meta.url)),
    );
    const s = new CloudState();
    s.applySeed(seed);
    const all = [...s.region('cn-hangzhou').instances.values()];
    expect(all).toHaveLength(150);
    expect(
      all.filter((i) => i.tags['env'] === 'prod' && i.tags['app'] === 'web').length,
    ).toBeGreaterThanOrEqual(3);
    expect(all.filter((i) => i.status === 'Stopped')).toHaveLength(2);
    expect(all.filter((i) => !i.cloudAssistantOnline)).toHaveLength(1);
    expect(all.every((i) => /^i-[a-z0-9]+$/.test(i.instanceId))).toBe(true);
    const node = s.templates.get('ACS-Extension-node-1853370294850618');
    expect(node?.versions.map((v) => v.version)).toEqual(['v1', 'v2', 'v3']);
    expect(node?.versions[2]?.parameters['version']?.Default).toBe('20');
    expect(s.templates.get('ACS-Extension-DockerCE-1853370294850618')?.type).toBe('Package');
  });

  it('generates deterministic IDs and rejects invalid ones', () => {
    const seed = parseSeed('regions:\n  cn-beijing:\n    generate: { count: 12000, idPrefix: i-big }\n');
    const a = new CloudState();
    a.applySeed(seed);
    const ids = [...a.region('cn-beijing').instances.keys()];
    expect(ids[0]).toBe('i-big00001');
    expect(ids.at(-1)).toBe('i-big12000');
    const b = new CloudState();
    expect(() => b.applySeed({ regions: { r: { instances: [{ instanceId: 'I-Upper' }] } } })).toThrow(
      /invalid instance ID/,
    );
  });
});
