/**
 * EcsExtension: Stalled reasons, admission validation, throttling, deletionPolicy, suspend and
 * Observe mode — against the real API server and the emulator.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OWNER_UID_TAG } from '../../../src/api/common.js';
import {
  condition,
  instanceIds,
  createEcsExtension,
  fleetSeed,
  getEcsExtension,
  NODE_PACKAGE,
  patchEcsExtension,
  REGION,
  startStack,
  waitFor,
  waitForReady,
  type Stack,
} from '../../harness/stack.js';

const ids = (from: number, to: number) => instanceIds('pol', from, to);

describe('EcsExtension policies', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ seed: fleetSeed('pol', 80), prefix: 'pol' });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('goes Stalled with a precise reason and starts nothing for a missing package or an undeclared parameter', async () => {
    await stack.emu.control.resetRequestCounts();
    const missing = await createEcsExtension(stack, 'missing-pkg', {
      targets: { instanceIds: ids(1, 2) },
      packageName: 'ACS-Extension-doesnotexist-1853370294850618',
    });
    const undeclared = await createEcsExtension(stack, 'bad-param', {
      targets: { instanceIds: ids(1, 2) },
      parameters: { colour: 'blue' },
    });
    const s1 = await waitFor('missing-pkg Stalled', async () => {
      const o = await getEcsExtension(stack, 'missing-pkg');
      return condition(o, 'Stalled')?.status === 'True' ? o : undefined;
    });
    expect(condition(s1, 'Stalled')?.reason).toBe('TemplateNotFound');
    expect(condition(s1, 'Stalled')?.message).toContain('ACS-Extension-doesnotexist-1853370294850618');
    expect(condition(s1, 'Ready')).toMatchObject({ status: 'False', reason: 'TemplateNotFound' });
    expect(s1.status?.observedGeneration).toBe(s1.metadata.generation);

    const s2 = await waitFor('bad-param Stalled', async () => {
      const o = await getEcsExtension(stack, 'bad-param');
      return condition(o, 'Stalled')?.status === 'True' ? o : undefined;
    });
    expect(condition(s2, 'Stalled')?.reason).toBe('ParameterNotDeclared');
    expect(condition(s2, 'Stalled')?.message).toMatch(/colour.*not declared.*declared: version/);

    // No further cloud writes, and no re-reads either, while the generation is unchanged.
    const counts = await stack.emu.control.requestCounts();
    await new Promise((r) => setTimeout(r, 2000));
    const later = await stack.emu.control.requestCounts();
    expect(later.StartExecution ?? 0).toBe(0);
    expect(later.GetTemplate).toBe(counts.GetTemplate);
    for (const uid of [missing.metadata.uid, undeclared.metadata.uid]) {
      expect(await stack.emu.control.listExecutions({ tagKey: OWNER_UID_TAG, tagValue: uid })).toHaveLength(
        0,
      );
    }

    // The reconcile-requested-at annotation forces one more attempt and is echoed to status.
    await patchEcsExtension(stack, 'missing-pkg', {
      metadata: { annotations: { 'ecsops.io/reconcile-requested-at': 'try-again-1' } },
    });
    const retried = await waitFor('lastHandledReconcileAt echoed', async () => {
      const o = await getEcsExtension(stack, 'missing-pkg');
      return o?.status?.lastHandledReconcileAt === 'try-again-1' ? o : undefined;
    });
    expect(condition(retried, 'Stalled')?.reason).toBe('TemplateNotFound');

    // A spec change un-stalls it.
    // JSON merge patch: null removes the undeclared key.
    await patchEcsExtension(stack, 'bad-param', { spec: { parameters: { colour: null, version: '18' } } });
    const fixed = await waitForReady(stack, 'bad-param');
    expect(condition(fixed, 'Stalled')).toBeUndefined();
  });

  it('rejects invalid specs at admission with readable messages', async () => {
    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      [
        'bad-id',
        { targets: { instanceIds: ['I-UPPER'] } },
        /instanceIds\[0\].*should match '\^i-\[a-z0-9\]\+\$'/,
      ],
      [
        'both-forms',
        { targets: { instanceIds: ['i-pol0001'], tags: [{ key: 'a', value: 'b' }] } },
        /exactly one of targets.instanceIds or targets.tags must be set/,
      ],
      ['neither-form', { targets: {} }, /exactly one of targets.instanceIds or targets.tags must be set/],
      [
        'bad-percent',
        { targets: { instanceIds: ['i-pol0001'] }, rateControl: { concurrency: '150%' } },
        /concurrency must be an integer >= 1 or a percentage string between 1% and 100%/,
      ],
      ['bad-region', { targets: { instanceIds: ['i-pol0001'] }, regionId: 'Hangzhou' }, /regionId/],
      ['bad-interval', { targets: { instanceIds: ['i-pol0001'] }, interval: 'soon' }, /interval/],
      [
        'interval-too-short',
        { targets: { instanceIds: ['i-pol0001'] }, interval: '1ms' },
        /interval must be at least 10s/,
      ],
      [
        'interval-too-long',
        { targets: { instanceIds: ['i-pol0001'] }, interval: '1000h' },
        /interval must be at most 24h/,
      ],
    ];
    for (const [name, spec, message] of cases) {
      const err = await createEcsExtension(stack, name, spec).then(
        () => undefined,
        (e: unknown) => e as { code?: number; body?: string },
      );
      expect(err?.code, name).toBe(422);
      // The API server's Status message, as kubectl would print it.
      const status = JSON.parse(err?.body ?? '{}') as { message?: string };
      expect(status.message, name).toMatch(message);
    }
    // A 1 MiB int-or-string is refused with a short message naming the field, not echoed back.
    for (const field of ['concurrency', 'maxErrors']) {
      const err = (await createEcsExtension(stack, `huge-${field.toLowerCase()}`, {
        targets: { instanceIds: ['i-pol0001'] },
        rateControl: { [field]: 'x'.repeat(1 << 20) },
      }).catch((e: unknown) => e)) as { code?: number; body?: string };
      expect(err.code, field).toBe(422);
      const msg = (JSON.parse(err.body ?? '{}') as { message?: string }).message ?? '';
      expect(msg).toContain(`spec.rateControl.${field}`);
      expect(msg.length, field).toBeLessThan(2048);
    }
  });

  it('converges with 30% of cloud calls throttled', async () => {
    await stack.emu.control.setFaults({ seed: 7, actions: { '*': { throttleRate: 0.3 } } });
    try {
      await createEcsExtension(stack, 'throttled', { targets: { instanceIds: ids(10, 39) } });
      const ready = await waitForReady(stack, 'throttled', 'True', 120_000);
      expect(ready.status?.summary?.installed).toBe(30);
    } finally {
      await stack.emu.control.clearFaults();
    }
  });

  it('a transient cloud error keeps Ready and the counts, and says so in Reconciling', async () => {
    await createEcsExtension(stack, 'steady', { targets: { instanceIds: ids(45, 47) } });
    await waitForReady(stack, 'steady');
    await stack.emu.control.setFaults({ actions: { ListInstancePackageStates: { throttleRate: 1 } } });
    try {
      await patchEcsExtension(stack, 'steady', {
        metadata: { annotations: { 'ecsops.io/reconcile-requested-at': 'throttle-1' } },
      });
      const obj = await waitFor('Reconciling=True Throttled', async () => {
        const o = await getEcsExtension(stack, 'steady');
        return condition(o, 'Reconciling')?.reason === 'Throttled' ? o : undefined;
      });
      expect(condition(obj, 'Ready')).toMatchObject({ status: 'True', reason: 'Installed' });
      expect(obj.status?.summary).toMatchObject({ targeted: 3, installed: 3, pending: 0 });
      expect(obj.status?.lastHandledReconcileAt).toBeUndefined(); // not handled until it completes
    } finally {
      await stack.emu.control.clearFaults();
    }
    const healed = await waitFor(
      'Reconciling cleared',
      async () => {
        const o = await getEcsExtension(stack, 'steady');
        return o?.status?.lastHandledReconcileAt === 'throttle-1' && !condition(o, 'Reconciling')
          ? o
          : undefined;
      },
      90_000,
    );
    expect(condition(healed, 'Ready')?.status).toBe('True');
  });

  it('suspend: true starts nothing new; resuming installs', async () => {
    await createEcsExtension(stack, 'suspended', { targets: { instanceIds: ids(40, 42) }, suspend: true });
    const obj = await waitForReady(stack, 'suspended', 'False', 30_000, 'Suspended');
    expect(obj.status?.summary).toMatchObject({ targeted: 3, pending: 3, installed: 0 });
    expect(
      await stack.emu.control.listExecutions({ tagKey: OWNER_UID_TAG, tagValue: obj.metadata.uid }),
    ).toHaveLength(0);
    await patchEcsExtension(stack, 'suspended', { spec: { suspend: false } });
    await waitForReady(stack, 'suspended');
  });

  it('mode Observe reports drift without acting', async () => {
    // i-pol0050 already has v1; i-pol0051 has nothing.
    await createEcsExtension(stack, 'seed-v1', {
      targets: { instanceIds: ['i-pol0050'] },
      packageVersion: 'v1',
    });
    await waitForReady(stack, 'seed-v1');
    const observed = await createEcsExtension(stack, 'observe', {
      targets: { instanceIds: ['i-pol0050', 'i-pol0051'] },
      packageVersion: 'v2',
      mode: 'Observe',
    });
    const obj = await waitForReady(stack, 'observe', 'False', 30_000, 'DriftDetected');
    expect(obj.status?.summary).toMatchObject({ targeted: 2, pending: 2, installed: 0 });
    const rows = Object.fromEntries((obj.status?.instances ?? []).map((r) => [r.instanceId, r]));
    expect(rows['i-pol0050']).toMatchObject({
      state: 'Pending',
      version: 'v1',
      message: 'installed v1, want v2',
    });
    expect(rows['i-pol0051']).toMatchObject({ state: 'Pending', message: 'package not installed' });
    expect(
      await stack.emu.control.listExecutions({ tagKey: OWNER_UID_TAG, tagValue: observed.metadata.uid }),
    ).toHaveLength(0);
  });

  it('a changed version pin triggers update on installed instances', async () => {
    await createEcsExtension(stack, 'pinned', {
      targets: { instanceIds: ids(60, 61) },
      packageVersion: 'v1',
      parameters: { version: '16' },
    });
    await waitForReady(stack, 'pinned');
    await patchEcsExtension(stack, 'pinned', {
      spec: { packageVersion: 'v2', parameters: { version: '18' } },
    });
    const ready = await waitForReady(stack, 'pinned');
    expect(ready.status?.resolvedPackageVersion).toBe('v2');
    const states = await stack.emu.control.getPackageStates(REGION);
    for (const id of ids(60, 61)) {
      expect(
        states.find((s) => s.instanceId === id && s.templateName === NODE_PACKAGE)?.templateVersion,
      ).toBe('v2');
    }
    const execs = await stack.emu.control.listExecutions({
      tagKey: OWNER_UID_TAG,
      tagValue: ready.metadata.uid,
    });
    expect(execs.map((e) => e.parameters.action).sort()).toEqual(['install', 'update']);
  });

  it('deletionPolicy Uninstall removes the package from every instance before the object disappears', async () => {
    await createEcsExtension(stack, 'uninstall', {
      targets: { instanceIds: ids(70, 74) },
      deletionPolicy: 'Uninstall',
    });
    await waitForReady(stack, 'uninstall');
    const installed = async () =>
      (await stack.emu.control.getPackageStates(REGION)).filter(
        (s) => ids(70, 74).includes(s.instanceId) && s.templateName === NODE_PACKAGE,
      );
    expect(await installed()).toHaveLength(5);

    await stack.api.deleteNamespacedCustomObject({
      group: 'ecsops.io',
      version: 'v1alpha1',
      namespace: stack.namespace,
      plural: 'ecsextensions',
      name: 'uninstall',
    });
    // While terminating, the object stays until the uninstall finished.
    let sawTerminating = false;
    await waitFor(
      'uninstall object gone',
      async () => {
        const obj = await getEcsExtension(stack, 'uninstall');
        if (obj) {
          sawTerminating ||= Boolean(obj.metadata.deletionTimestamp);
          return undefined;
        }
        return true;
      },
      60_000,
      100,
    );
    expect(sawTerminating).toBe(true);
    expect(await installed()).toHaveLength(0);
  });

  it('deletionPolicy Orphan leaves the package installed', async () => {
    await createEcsExtension(stack, 'orphan', { targets: { instanceIds: ids(75, 76) } });
    await waitForReady(stack, 'orphan');
    await stack.api.deleteNamespacedCustomObject({
      group: 'ecsops.io',
      version: 'v1alpha1',
      namespace: stack.namespace,
      plural: 'ecsextensions',
      name: 'orphan',
    });
    await waitFor('orphan gone', async () => !(await getEcsExtension(stack, 'orphan')), 30_000);
    const states = await stack.emu.control.getPackageStates(REGION);
    expect(
      states.filter((s) => ids(75, 76).includes(s.instanceId) && s.templateName === NODE_PACKAGE),
    ).toHaveLength(2);
  });

  it('reports stopped and Cloud-Assistant-offline instances as unreachable, not failed', async () => {
    await stack.emu.control.updateInstance(REGION, 'i-pol0078', { status: 'Stopped' });
    await stack.emu.control.updateInstance(REGION, 'i-pol0079', { cloudAssistantOnline: false });
    await createEcsExtension(stack, 'reach', { targets: { instanceIds: ids(77, 79) } });
    const ready = await waitForReady(stack, 'reach');
    expect(ready.status?.summary).toMatchObject({ targeted: 3, installed: 1, unreachable: 2, failed: 0 });
    const rows = Object.fromEntries((ready.status?.instances ?? []).map((r) => [r.instanceId, r]));
    expect(rows['i-pol0078']).toMatchObject({ state: 'Unreachable', message: 'instance is Stopped' });
    expect(rows['i-pol0079']).toMatchObject({
      state: 'Unreachable',
      message: 'Cloud Assistant agent is offline',
    });
    expect(condition(ready, 'Ready')?.message).toContain('2 unreachable');
  });
});
