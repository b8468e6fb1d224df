import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Emulator } from '../../../src/emulator/index.js';
import { DEMO_ACCESS_KEY, startEmulator } from '../../../src/emulator/index.js';
import { call, sdkClient } from './helpers.js';

describe('emulator fault injection', () => {
  let emu: Emulator;
  beforeEach(async () => {
    emu = await startEmulator({
      timeScale: 0.01,
      seed: { regions: { 'cn-hangzhou': { generate: { count: 3 } } } },
    });
  });
  afterEach(() => emu.stop());

  async function outcomes(n: number): Promise<string[]> {
    const c = sdkClient(emu.endpoint, DEMO_ACCESS_KEY);
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      try {
        await call(c, 'ecs', 'DescribeInstances', { RegionId: 'cn-hangzhou' });
        out.push('ok');
      } catch (e) {
        const err = e as { code: string; statusCode: number };
        out.push(`${err.statusCode}:${err.code}`);
      }
    }
    return out;
  }

  it('is deterministic for a seed and uses Throttling.User 400 and ServiceUnavailable 503', async () => {
    const cfg = { seed: 42, actions: { DescribeInstances: { throttleRate: 0.3, errorRate: 0.2 } } };
    await emu.control.setFaults(cfg);
    const a = await outcomes(40);
    await emu.control.setFaults(cfg);
    const b = await outcomes(40);
    expect(b).toEqual(a);
    expect(a).toContain('400:Throttling.User');
    expect(a).toContain('503:ServiceUnavailable');
    expect(a).toContain('ok');
    await emu.control.setFaults({ ...cfg, seed: 7 });
    expect(await outcomes(40)).not.toEqual(a);
  });

  it('applies "*" to every action, an action entry overrides it, and clearFaults removes all', async () => {
    await emu.control.setFaults({
      actions: { '*': { errorRate: 1, errorCode: 'InternalError' }, ListPatchBaselines: {} },
    });
    expect(await outcomes(2)).toEqual(['500:InternalError', '500:InternalError']);
    const c = sdkClient(emu.endpoint, DEMO_ACCESS_KEY);
    await expect(call(c, 'oos', 'ListPatchBaselines', {})).resolves.toHaveProperty('PatchBaselines');
    await emu.control.clearFaults();
    expect(await outcomes(2)).toEqual(['ok', 'ok']);
  });

  it('sends x-acs-retry-after only when configured, which the SDK surfaces as ThrottlingError.retryAfter', async () => {
    await emu.control.setFaults({ actions: { '*': { throttleRate: 1 } }, retryAfterMs: 1500 });
    const c = sdkClient(emu.endpoint, DEMO_ACCESS_KEY);
    const e = (await call(c, 'oos', 'ListTemplates', {}).catch((x: unknown) => x)) as {
      name: string;
      retryAfter?: number;
      code: string;
    };
    expect(e.code).toBe('Throttling.User');
    expect(e.retryAfter).toBe(1500); // milliseconds, as the SDK's retry policy reads it
  });
});
