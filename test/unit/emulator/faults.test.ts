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

  it('resets the connection before the action (nothing happens) or instead of the response (the work is done)', async () => {
    const c = sdkClient(emu.endpoint, DEMO_ACCESS_KEY);
    const start = () =>
      call(c, 'oos', 'StartExecution', {
        TemplateName: 'ACS-ECS-BulkyConfigureOOSPackageWithTemporaryURL',
        ClientToken: 'tok-reset-1',
        Parameters: JSON.stringify({
          action: 'install',
          packageName: 'nope',
          targets: { Type: 'ResourceIds', ResourceIds: ['i-00000001'], RegionId: 'cn-hangzhou' },
          rateControl: { Mode: 'Concurrency', MaxErrors: 0, Concurrency: 1 },
        }),
      }).catch((e: unknown) => e as Error);
    await emu.control.setFaults({ actions: { StartExecution: { resetRate: 1 } } });
    const before = (await start()) as Error & { code?: string };
    expect(String(before.message) + String(before.code)).toMatch(/ECONNRESET|socket hang up/);
    expect(await emu.control.listExecutions({})).toHaveLength(0);
    await emu.control.setFaults({ actions: { StartExecution: { responseLossRate: 1 } } });
    const after = (await start()) as Error & { code?: string };
    expect(String(after.message) + String(after.code)).toMatch(/ECONNRESET|socket hang up/);
    const done = await emu.control.listExecutions({});
    expect(done).toHaveLength(1);
    // The retry with the same ClientToken finds the execution the lost response was about.
    await emu.control.clearFaults();
    const again = (await start()) as { Execution?: { ExecutionId?: string } };
    expect(again.Execution?.ExecutionId).toBe(done[0]?.executionId);
    expect((await emu.control.requestCounts()).StartExecution).toBe(3);
  });

  it('spreads latency by latencyJitterMs, reproducibly for a seed', async () => {
    const c = sdkClient(emu.endpoint, DEMO_ACCESS_KEY);
    const times = async (): Promise<number[]> => {
      await emu.control.setFaults({ seed: 3, actions: { '*': { latencyMs: 60, latencyJitterMs: 50 } } });
      const out: number[] = [];
      for (let i = 0; i < 12; i++) {
        const t0 = performance.now();
        await call(c, 'ecs', 'DescribeInstances', { RegionId: 'cn-hangzhou' });
        out.push(performance.now() - t0);
      }
      return out;
    };
    const a = await times();
    expect(Math.min(...a)).toBeGreaterThanOrEqual(9);
    expect(Math.max(...a) - Math.min(...a)).toBeGreaterThan(20);
    expect(Math.min(...a)).toBeLessThan(60);
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
