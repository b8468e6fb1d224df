/**
 * A spec change while a round is in flight (found by the chaos suite, R3: the change landed during
 * an API-server partition): the finished round must not be credited to the new spec.
 */
import { afterEach, expect, it } from 'vitest';
import { fleetIds, fleetSeed, isReady, REGION, startFastStack, type FastStack } from '../harness/fast.js';

let s: FastStack | undefined;
afterEach(async () => {
  await s?.stop();
  s = undefined;
});

it('a parameters change while the install round runs is applied after the round ends, not assumed done', async () => {
  s = await startFastStack({ seed: fleetSeed('sc', 10), timeScale: 0.01 });
  const targets = { instanceIds: fleetIds('sc', 1, 10) };
  s.apply('web', { targets, parameters: { version: '16' } });
  await s.until('web', () => (s?.get('web')?.status?.executions?.length ?? 0) > 0);
  // The spec changes while the version-16 execution is still running.
  s.apply('web', { targets, parameters: { version: '18' } });
  const done = await s.until('web', (o) => isReady(o) && o?.status?.summary?.installed === 10);
  expect(done?.metadata.generation).toBe(2);
  const states = await s.emu.control.getPackageStates(REGION);
  expect(states.map((st) => (st.parameters as { version?: string }).version)).toEqual(Array(10).fill('18'));
});
