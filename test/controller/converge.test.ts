import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OWNER_UID_TAG } from '../../src/api/common.js';
import { fleetIds, fleetSeed, isReady, ready, startFastStack, type FastStack } from '../harness/fast.js';

describe('EcsExtension on the kit (fast tier)', () => {
  let s: FastStack;
  beforeAll(async () => {
    s = await startFastStack({ seed: fleetSeed('cv', 130) });
  });
  afterAll(() => s.stop());

  it('installs on 120 instances in 3 executions and becomes Ready', async () => {
    const created = s.apply('conv', { targets: { instanceIds: fleetIds('cv', 1, 120) } });
    const obj = await s.until('conv', (o) => isReady(o));
    expect(obj?.status?.summary).toMatchObject({ targeted: 120, installed: 120, failed: 0 });
    const execs = await s.emu.control.listExecutions({
      tagKey: OWNER_UID_TAG,
      tagValue: created.metadata.uid,
    });
    expect(execs).toHaveLength(3);
    expect(ready(obj)?.reason).toBe('Installed');
    expect(obj?.metadata.finalizers).toContain('ecsops.io/cleanup');
  });
});
