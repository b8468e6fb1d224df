/**
 * Fail-safe starts and deletions end to end (real API server + emulator + in-process controller),
 * the two defects of issue 17:
 *  1. a StartExecution whose answer is lost and whose re-sends are then throttled past one
 *     reconcile's retries must never produce a second execution (the next reconcile re-sends the
 *     SAME ClientToken, or adopts what the owner tag lists);
 *  2. deleting a PatchPolicy while its install runs waits the install out (finalizer kept, nothing
 *     cancelled) and keeps the cross-kind instance lock, so an EcsExtension on the same instances
 *     starts only after the patches are done.
 */
import { EventsV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FINALIZER, GROUP, OWNER_UID_TAG, VERSION } from '../../../src/api/common.js';
import { WaitingForInstanceLockReason } from '../../../src/api/conditions.js';
import {
  APPLY_PATCH_BASELINE_TEMPLATE,
  PATCH_POLICY_PLURAL,
  SCAN_REQUESTED_ANNOTATION,
  type PatchPolicy,
} from '../../../src/api/patchpolicy.js';
import type { ExecutionRecord } from '../../../src/emulator/index.js';
import { patchSeed } from '../../harness/fast-patchpolicy.js';
import {
  condition,
  createEcsExtension,
  instanceIds as ids,
  fleetSeed,
  getEcsExtension,
  NODE_PACKAGE,
  REGION,
  startStack,
  waitFor,
  waitForReady,
  type Stack,
} from '../../harness/stack.js';

const TERMINAL = new Set(['Success', 'Failed', 'Cancelled']);
const EXEC_ID = /exec-[0-9a-z]+/g;

/** Every OOS execution ID named anywhere in `value` (status, an Event note). */
function execIdsIn(value: unknown): string[] {
  return JSON.stringify(value ?? null).match(EXEC_ID) ?? [];
}

describe('an ambiguous StartExecution', () => {
  let stack: Stack;
  beforeAll(async () => {
    // 2 retries per call: the lost answer + 2 throttles fail the first reconcile's call, the next
    // reconcile's call meets the 3 remaining throttles and fails too.
    stack = await startStack({
      seed: fleetSeed('amb', 4),
      prefix: 'fs-amb',
      controllerArgs: ['--cloud-max-retries', '2'],
    });
  });
  afterAll(() => stack?.stop());

  it('an ambiguous StartExecution (answer lost, then 5 × Throttling.User) never produces a second execution', async () => {
    const { control } = stack.emu;
    // Rules are tried in order, the first with count left wins: the first StartExecution runs and
    // loses its answer, the next five are throttled.
    await control.addFaultRule({ action: 'StartExecution', kind: 'responseLoss', count: 1, id: 'lost' });
    await control.addFaultRule({
      action: 'StartExecution',
      kind: 'error',
      code: 'Throttling.User',
      httpStatus: 400,
      count: 5,
      id: 'throttled',
    });
    const targets = ids('amb', 1, 4);
    const created = await createEcsExtension(stack, 'ambiguous', {
      targets: { instanceIds: targets },
      rateControl: { concurrency: 4, maxErrors: 0 },
    });
    const uid = created.metadata.uid ?? '';

    // Every execution ID the status ever names, sampled until Ready.
    const seenInStatus = new Set<string>();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const obj = await getEcsExtension(stack, 'ambiguous').catch(() => undefined);
        for (const id of execIdsIn(obj?.status)) seenInStatus.add(id);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    let ready;
    try {
      ready = await waitForReady(stack, 'ambiguous', 'True', 50_000);
    } finally {
      sampling = false;
      await sampler;
    }
    for (const id of execIdsIn(ready.status)) seenInStatus.add(id);

    // The scenario happened: the lost answer and all five throttles were consumed.
    const rules = (await control.getFaults()).failNext ?? [];
    expect(rules.map((r) => [r.id, r.count])).toEqual([
      ['lost', 0],
      ['throttled', 0],
    ]);

    // Exactly one execution carries the owner tag, and it did the work.
    const owned = await control.listExecutions({ tagKey: OWNER_UID_TAG, tagValue: uid });
    expect(owned.map((e) => [e.status, e.items.length])).toEqual([['Success', 4]]);
    const only = owned[0] as ExecutionRecord;
    expect(only.clientToken).not.toBe('');
    expect(only.items.map((i) => i.instanceId).sort()).toEqual(targets);

    const states = await control.getPackageStates(REGION);
    const installed = states.filter((s) => s.templateName === NODE_PACKAGE).map((s) => s.instanceId);
    expect(new Set(installed)).toEqual(new Set(targets));
    expect(ready.status?.summary).toMatchObject({ targeted: 4, installed: 4, failed: 0 });

    // Status and Events never named another execution.
    expect([...seenInStatus].filter((id) => id !== only.executionId)).toEqual([]);
    const events = await stack.kc
      .makeApiClient(EventsV1Api)
      .listNamespacedEvent({ namespace: stack.namespace });
    const mine = events.items.filter((e) => e.regarding?.uid === uid || e.regarding?.name === 'ambiguous');
    const inEvents = new Set(mine.flatMap((e) => execIdsIn(e.note)));
    expect([...inEvents]).toEqual([only.executionId]);
    expect(mine.filter((e) => e.reason === 'ExecutionStarted').flatMap((e) => execIdsIn(e.note))).toEqual([
      only.executionId,
    ]);
  });
});

describe('deleting a PatchPolicy mid-install', () => {
  let stack: Stack;
  beforeAll(async () => {
    // timeScale 0.2: a patch scan takes 6 s, an install 12 s, a package install 4 s.
    stack = await startStack({
      seed: fleetSeed('unused', 0, { regions: patchSeed('fsp', 0, 4).regions }),
      prefix: 'fs-del',
      timeScale: 0.2,
    });
  });
  afterAll(() => stack?.stop());

  const policyRef = (name: string) => ({
    group: GROUP,
    version: VERSION,
    namespace: stack.namespace,
    plural: PATCH_POLICY_PLURAL,
    name,
  });
  const getPolicy = async (name: string): Promise<PatchPolicy | undefined> => {
    try {
      return (await stack.api.getNamespacedCustomObject(policyRef(name))) as PatchPolicy;
    } catch (err) {
      if ((err as { code?: number }).code === 404) return undefined;
      throw err;
    }
  };

  it('deleting a PatchPolicy mid-install waits out the install and keeps the instance lock', async () => {
    const { control } = stack.emu;
    const targets = ids('fsp', 1, 4);
    const policy = (await stack.api.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: stack.namespace,
      plural: PATCH_POLICY_PLURAL,
      body: {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: 'PatchPolicy',
        metadata: { name: 'patches', annotations: { [SCAN_REQUESTED_ANNOTATION]: 'now' } },
        spec: {
          regionId: REGION,
          targets: { instanceIds: targets },
          // An inline window open right now (every minute, for an hour).
          install: { maintenanceWindow: { schedule: '* * * * *', duration: '1h' }, minRemaining: '1m' },
        },
      },
    })) as PatchPolicy;
    const policyUid = policy.metadata.uid ?? '';
    const installs = async () =>
      (
        await control.listExecutions({
          tagKey: OWNER_UID_TAG,
          tagValue: policyUid,
          templateName: APPLY_PATCH_BASELINE_TEMPLATE,
        })
      ).filter((e) => e.parameters.action === 'install');

    // The scan runs, then the install starts on the four non-compliant instances.
    const running = await waitFor(
      'the install execution Running',
      async () => (await installs()).find((e) => e.status === 'Running'),
      60_000,
      100,
    );
    expect(running.items.map((i) => i.instanceId).sort()).toEqual(targets);

    // An EcsExtension on the same instances waits for the policy's lock.
    const ext = await createEcsExtension(stack, 'node', { targets: { instanceIds: targets } });
    const waiting = await waitFor(
      'node waiting for the instance lock',
      async () => {
        const obj = await getEcsExtension(stack, 'node');
        return condition(obj, 'Ready')?.reason === WaitingForInstanceLockReason ? obj : undefined;
      },
      30_000,
      100,
    );
    expect(condition(waiting, 'Ready')?.message).toContain(`PatchPolicy ${stack.namespace}/patches`);
    expect(await control.listExecutions({ tagKey: OWNER_UID_TAG, tagValue: ext.metadata.uid ?? '' })).toEqual(
      [],
    );

    // Delete the policy while its install runs.
    expect((await control.getExecution(running.executionId))?.status).toBe('Running');
    await stack.api.deleteNamespacedCustomObject(policyRef('patches'));

    // Sample (policy first, then the execution): whenever the policy is gone, the install had
    // already ended; while the install runs the policy is there with its finalizer.
    const samples: Array<{ exists: boolean; deleting: boolean; finalizer: boolean; exec: string }> = [];
    await waitFor(
      'the PatchPolicy gone',
      async () => {
        const obj = await getPolicy('patches');
        const exec = (await control.getExecution(running.executionId))?.status ?? 'unknown';
        samples.push({
          exists: obj !== undefined,
          deleting: obj?.metadata.deletionTimestamp !== undefined,
          finalizer: (obj?.metadata.finalizers ?? []).includes(FINALIZER),
          exec,
        });
        return obj === undefined;
      },
      60_000,
      100,
    );
    const whileRunning = samples.filter((s) => !TERMINAL.has(s.exec));
    expect(whileRunning.length, 'samples taken while the install still ran').toBeGreaterThan(0);
    expect(whileRunning.filter((s) => !(s.exists && s.deleting && s.finalizer))).toEqual([]);
    expect(samples.filter((s) => !s.exists).map((s) => s.exec)).toEqual(['Success']);

    // The install was waited out, not cancelled.
    const finished = (await installs()).filter((e) => e.executionId === running.executionId);
    expect(finished.map((e) => e.status)).toEqual(['Success']);
    expect(finished[0]?.items.map((i) => i.status)).toEqual(['Success', 'Success', 'Success', 'Success']);
    expect(await installs()).toHaveLength(1);

    // The EcsExtension then installs, and on no instance did its work overlap the patches.
    const ready = await waitForReady(stack, 'node', 'True', 60_000);
    expect(ready.status?.summary).toMatchObject({ targeted: 4, installed: 4 });
    const extExecs = await control.listExecutions({
      tagKey: OWNER_UID_TAG,
      tagValue: ext.metadata.uid ?? '',
    });
    expect(extExecs.length).toBeGreaterThan(0);
    const patchEnd = new Map((finished[0]?.items ?? []).map((i) => [i.instanceId, i.endedAtMs]));
    const overlaps: string[] = [];
    for (const e of extExecs) {
      for (const item of e.items) {
        const end = patchEnd.get(item.instanceId);
        if (item.startedAtMs === undefined || end === undefined || item.startedAtMs < end) {
          overlaps.push(
            `${item.instanceId}: ${e.executionId} item started ${item.startedAtMs}, install item ended ${end}`,
          );
        }
      }
    }
    expect(overlaps).toEqual([]);
    const covered = extExecs.flatMap((e) => e.items.map((i) => i.instanceId));
    expect(new Set(covered)).toEqual(new Set(targets));
  });
});
