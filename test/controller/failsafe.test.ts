/**
 * The one safe start path (issue 17) on the fast tier: real reconcilers and cloud layer against the
 * emulator, with the emulator's precise faults (lost answers, holds) and kube-side status-write
 * faults. Each case failed at 9637f27 (before the kit's start path) and passes now.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { AppRelease } from '../../src/api/apprelease.js';
import { OWNER_UID_TAG } from '../../src/api/common.js';
import type { EcsExtension } from '../../src/api/ecsextension.js';
import type { Resource } from '../../src/controllers/shared/deps.js';
import { decodeLockKeys, InstanceLock } from '../../src/controllers/shared/lock.js';
import { TransientError } from '../../src/runtime/errors.js';
import {
  fleetIds,
  fleetSeed,
  isReady,
  MemoryStore,
  REGION,
  startFastStack,
  type FastStack,
} from '../harness/fast.js';
import { appSpec, startAppReleaseStack, type AppReleaseStack } from '../harness/fast-apprelease.js';
import {
  patchSeed,
  reachInstallWindow,
  startPatchStack,
  type PatchStack,
} from '../harness/fast-patchpolicy.js';

let stop: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const f of stop) await f();
  stop = [];
});

async function extStack(o: Parameters<typeof startFastStack>[0]): Promise<FastStack> {
  const s = await startFastStack(o);
  stop.push(() => s.stop());
  return s;
}

function owned(st: { emu: FastStack['emu'] }, uid: string) {
  return st.emu.control.listExecutions({ tagKey: OWNER_UID_TAG, tagValue: uid });
}

/** A resource of another kind holding `ids` (in its status, as the lock reads it). */
function otherHolder(): Resource {
  return {
    apiVersion: 'ecsops.io/v1alpha1',
    kind: 'EcsExtension',
    metadata: { name: 'probe', namespace: 'default', uid: 'probe-uid' },
    spec: {},
  } as Resource;
}

describe('defect 1: an ambiguous StartExecution is resolved with its own ClientToken, never repeated with a new one', () => {
  it('answer lost, then 5 × Throttling.User: one execution, named in status, package installed on all 4', async () => {
    const st = await extStack({ seed: fleetSeed('am', 4) });
    await st.emu.control.addFaultRule({ action: 'StartExecution', kind: 'responseLoss' });
    await st.emu.control.addFaultRule({
      action: 'StartExecution',
      kind: 'error',
      code: 'Throttling.User',
      httpStatus: 400,
      count: 5,
    });
    const obj = st.apply('amb', { targets: { instanceIds: fleetIds('am', 1, 4) } });
    const first = await st.reconcile('amb');
    expect(first.error).toBeInstanceOf(TransientError);
    // The intent survived the failed call: a pending entry with its token and batch holds the lock.
    const pending = st.get('amb')?.status?.executions ?? [];
    expect(pending).toHaveLength(1);
    expect(pending[0]).toMatchObject({ pending: true, executionId: '' });
    expect(decodeLockKeys(pending[0]?.lockKeys)).toHaveLength(4);
    expect(await owned(st, obj.metadata.uid ?? '')).toHaveLength(1); // the lost answer acted

    const done = await st.until('amb', (o) => isReady(o));
    const execs = await owned(st, obj.metadata.uid ?? '');
    expect(execs).toHaveLength(1);
    expect(execs[0]?.clientToken).toBe(pending[0]?.clientToken);
    expect(isReady(done)).toBe(true);
    const startedEvents = st.events.events.filter((e) => e.reason === 'ExecutionStarted');
    expect(startedEvents.length).toBeGreaterThan(0);
    expect(startedEvents.every((e) => e.note.includes(execs[0]?.executionId ?? '?'))).toBe(true);
    const states = await Promise.all(
      fleetIds('am', 1, 4).map((id) => st.emu.control.getPackageStates(REGION, id)),
    );
    expect(states.every((x) => x.length === 1)).toBe(true);
  });

  it('the status write recording the intent fails (409): nothing is sent; the next reconcile starts once', async () => {
    const st = await extStack({ seed: fleetSeed('iw', 2) });
    const obj = st.apply('iw', { targets: { instanceIds: fleetIds('iw', 1, 2) } });
    st.store.patchFaults.push(new Error('409 Conflict: the object has been modified'));
    const first = await st.reconcile('iw');
    expect(first.error).toBeDefined();
    expect(await owned(st, obj.metadata.uid ?? '')).toHaveLength(0);
    await st.until('iw', (o) => isReady(o));
    expect(await owned(st, obj.metadata.uid ?? '')).toHaveLength(1);
  });

  it('the status write after the start fails (500) and the process restarts: the pending start is re-sent with its token, no duplicate', async () => {
    const st = await extStack({ seed: fleetSeed('pw', 3) });
    const obj = st.apply('pw', { targets: { instanceIds: fleetIds('pw', 1, 3) } });
    // intent write passes, the write after StartExecution (and its error-path retry) fail
    st.store.patchFaults.push(undefined, new Error('500 Internal Server Error'), new Error('500'));
    const first = await st.reconcile('pw');
    expect(first.error).toBeDefined();
    expect(st.get('pw')?.status?.executions?.[0]).toMatchObject({ pending: true });
    st.restart();
    await st.until('pw', (o) => isReady(o));
    expect(await owned(st, obj.metadata.uid ?? '')).toHaveLength(1);
  });
});

describe('defect 2: one lock discipline', () => {
  let ar: AppReleaseStack | undefined;
  afterEach(async () => {
    await ar?.stop();
    ar = undefined;
  });

  it('AppRelease holds its instances from before RunCommand is sent (check and hold in one turn, intent in status)', async () => {
    ar = await startAppReleaseStack({
      seed: {
        regions: {
          [REGION]: { generate: [{ count: 3, idPrefix: 'i-lk', tags: [{ key: 'app', value: 'shop' }] }] },
        },
      },
    });
    const s = ar;
    const v1 = s.artifacts.add('shop-1', { 'app.sh': '#!/bin/bash\nexit 0\n' }, s.root);
    const rule = await s.emu.control.addFaultRule({ action: 'RunCommand', kind: 'hold' });
    s.apply('shop', appSpec(s, v1, { strategy: { canary: { instances: 1, pause: false } } }));
    const reconcile = s.reconcile('shop');
    const [held] = await s.emu.control.waitForHold(rule);
    expect(held?.instanceIds).toHaveLength(1);
    // While RunCommand is on the wire: another kind sees the instance held, in this process and in status.
    const probe = otherHolder();
    expect(s.lock.check(probe, held?.instanceIds ?? []).held.map((h) => h.holder.name)).toEqual(['shop']);
    const tracked = (s.get('shop') as AppRelease).status?.executions ?? [];
    expect(tracked).toMatchObject([{ pending: true, action: 'deploy' }]);
    const fresh = new InstanceLock();
    fresh.addSource('AppRelease', s.store); // a second process sees only the API server's status
    expect(fresh.check(probe, held?.instanceIds ?? []).held).toHaveLength(1);
    await s.emu.control.releaseHolds(rule);
    expect((await reconcile).error).toBeUndefined();
    expect((s.get('shop') as AppRelease).status?.executions?.[0]?.executionId).toMatch(/^t-/);
  });

  it('PatchPolicy scans publish no lock keys (DESIGN §1 locks installs only)', async () => {
    const s: PatchStack = await startPatchStack({ seed: patchSeed('sc', 0, 3), timeScale: 0.05 });
    stop.push(() => s.stop());
    s.apply('scan', {
      targets: { tags: [{ key: 'fleet', value: 'sc' }] },
      scan: { schedule: '0 3 * * *', timeZone: 'UTC' },
    });
    s.store.annotate('default', 'scan', { 'ecsops.io/scan-requested-at': 'now' });
    await s.reconcile('scan');
    const executions = s.get('scan')?.status?.executions ?? [];
    expect(executions.length).toBeGreaterThan(0);
    expect(executions.every((e) => e.action === 'scan' && e.lockKeys === undefined)).toBe(true);
    await s.settle('scan');
  });

  it('EcsExtension Uninstall waits for another resource holding the instances', async () => {
    const lock = new InstanceLock();
    const others = new MemoryStore<Resource>();
    lock.addSource('AppRelease', others);
    const st = await extStack({ seed: fleetSeed('un', 2), lock });
    const ids = fleetIds('un', 1, 2);
    const obj = st.apply('un', { targets: { instanceIds: ids }, deletionPolicy: 'Uninstall' });
    await st.until('un', (o) => isReady(o));
    const holder = others.apply({
      apiVersion: 'ecsops.io/v1alpha1',
      kind: 'AppRelease',
      metadata: { name: 'shop', namespace: 'default' },
      spec: {},
    });
    lock.hold(holder, ids);
    st.store.delete('default', 'un');
    for (let i = 0; i < 3; i++) await st.reconcile('un');
    const uninstalls = (await owned(st, obj.metadata.uid ?? '')).filter(
      (e) => e.parameters.action === 'uninstall',
    );
    expect(uninstalls).toHaveLength(0);
    expect(st.get('un')).toBeDefined();
    lock.hold(holder, []);
    await st.until('un', (o) => o === undefined);
    const after = (await owned(st, obj.metadata.uid ?? '')).filter(
      (e) => e.parameters.action === 'uninstall',
    );
    expect(after).toHaveLength(1);
  });

  it('a resource that goes Stalled while its execution runs still records the result and releases its hold', async () => {
    const lock = new InstanceLock();
    const st = await extStack({ seed: fleetSeed('sl', 2), lock, timeScale: 0.05 });
    lock.addSource('EcsExtension', st.store);
    const ids = fleetIds('sl', 1, 2);
    const obj = st.apply('stall', { targets: { instanceIds: ids } });
    await st.reconcile('stall');
    expect(st.get('stall')?.status?.executions).toHaveLength(1);
    // The spec breaks while the install runs: the template does not exist.
    st.apply('stall', { targets: { instanceIds: ids }, packageName: 'ACS-Extension-missing-2' });
    const first = await st.reconcile('stall');
    expect(first.error?.name).toBe('StalledError');
    const [exec] = await owned(st, obj.metadata.uid ?? '');
    const terminal = ['Success', 'Failed', 'Cancelled'];
    for (let i = 0; i < 500; i++) {
      if (terminal.includes((await owned(st, obj.metadata.uid ?? ''))[0]?.status ?? '')) break;
      await sleep(20);
    }
    // Stalled for this generation: the driver still polls the tracked work.
    st.clock.advance(10_000); // past the shared execution listing's age bound
    const after = await st.reconcile('stall');
    expect(after.error).toBeUndefined();
    const o = st.get('stall') as EcsExtension;
    expect(o.status?.executions).toBeUndefined();
    expect(o.status?.conditions?.find((c) => c.type === 'Stalled')?.reason).toBe('TemplateNotFound');
    expect(lock.check(otherHolder(), ids).held).toEqual([]);
    expect(exec?.status).toBeDefined();
  });
});

describe('defect 3: deleting a PatchPolicy mid-install waits out the install and keeps its hold', () => {
  it('keeps the finalizer and the lock until the install execution ended; it is not cancelled', async () => {
    const lock = new InstanceLock();
    const s = await startPatchStack({ seed: patchSeed('dp', 0, 3), lock, timeScale: 0.05 });
    stop.push(() => s.stop());
    lock.addSource('PatchPolicy', s.store);
    const created = await reachInstallWindow(s, 'delme', 'dp');
    const uid = created.metadata.uid ?? '';
    const ids = fleetIds('dp', 1, 3);
    expect((await s.executions(uid, 'install')).length).toBeGreaterThan(0);

    s.store.delete('default', 'delme');
    await s.reconcile('delme');
    let install = (await s.executions(uid, 'install'))[0];
    expect(['Started', 'Running']).toContain(install?.status);
    expect(s.get('delme')).toBeDefined(); // the finalizer stays while patches run
    expect(lock.check(otherHolder(), ids).held.length).toBe(3);

    for (let i = 0; i < 500 && s.get('delme'); i++) {
      await s.reconcile('delme');
      await sleep(20);
    }
    expect(s.get('delme')).toBeUndefined();
    install = (await s.executions(uid, 'install'))[0];
    expect(install?.status).toBe('Success');
    expect(lock.check(otherHolder(), ids).held).toEqual([]);
  });
});
