/**
 * Shrunk counterexamples of the fault matrix (test/controller/faults-*.test.ts), kept as named
 * regression tests: each replays the schedule the matrix found and asserts the invariant it broke,
 * plus a direct check of the world the defect left behind.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { OWNER_UID_TAG } from '../../../src/api/common.js';
import { NODE_PACKAGE } from '../../harness/fast.js';
import { injectFault, REGION, startFaultStack, type FaultStack } from '../../harness/fast-faults.js';
import { NO_FAULT, runExtSchedule } from '../../harness/faults-scenarios.js';

let stack: FaultStack | undefined;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

describe('fault matrix counterexample 1: a pending start re-sent after throttling keeps its pinned version', () => {
  // Found by the matrix (seed 20261207, EcsExtension): StartExecution throttled past the cloud
  // layer's retry budget on the first install of `packageVersion: v1`. The next reconcile re-sent
  // the pending batch (same ClientToken) from the work phase, which runs before the template phase
  // resolves the version, so the re-sent execution carried no packageVersion and OOS installed the
  // LATEST version (v2) on that batch, while status said `Installed v1`.
  it('the shrunk schedule holds every invariant', async () => {
    const v = await runExtSchedule({
      'StartExecution:install': { fault: 'throttledPastRetries', extra: 0, pick: 0, variant: false },
      'StartExecution:update': NO_FAULT,
      'StartExecution:uninstall': NO_FAULT,
    });
    expect(v).toEqual([]);
  });

  it('every instance of the re-sent batch gets the pinned v1, as status says', async () => {
    const s = await startFaultStack({
      seed: {
        regions: {
          [REGION]: { generate: [{ count: 60, idPrefix: 'i-rs', tags: [{ key: 'fleet', value: 'rs' }] }] },
        },
        packageTemplates: [
          {
            name: NODE_PACKAGE,
            versions: [
              { version: 'v1', parameters: { version: { Type: 'String', Default: '16' } } },
              { version: 'v2', parameters: { version: { Type: 'String', Default: '18' } } },
            ],
          },
        ],
      },
    });
    stack = s;
    const obj = s.applyExt('pin', {
      targets: { tags: [{ key: 'fleet', value: 'rs' }] },
      packageVersion: 'v1',
      parameters: { version: '16' },
    });
    const uid = obj.metadata.uid ?? '';
    await injectFault(
      s,
      { fault: 'throttledPastRetries', extra: 0, pick: 0, variant: false },
      'StartExecution',
      {
        uid,
        targets: async () => [],
      },
    );
    const first = await s.round(['ext/pin']);
    expect(first[0]?.error?.message).toContain('Throttling.User');
    expect(s.ext.get('default', 'pin')?.status?.executions?.[0]).toMatchObject({ pending: true });
    const done = await s.drive(
      ['ext/pin'],
      () => s.ext.get('default', 'pin')?.status?.summary?.installed === 60,
    );
    expect(done).toBe(true);
    const execs = await s.emu.control.listExecutions({ tagKey: OWNER_UID_TAG, tagValue: uid });
    expect(execs.map((e) => e.parameters['packageVersion'])).toEqual(execs.map(() => 'v1'));
    const states = (await s.emu.control.getPackageStates(REGION)).filter(
      (p) => p.templateName === NODE_PACKAGE,
    );
    expect(states).toHaveLength(60);
    expect(new Set(states.map((p) => p.templateVersion))).toEqual(new Set(['v1']));
  });
});
