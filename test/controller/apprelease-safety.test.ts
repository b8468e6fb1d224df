/**
 * AppRelease host safety on the fast tier (real reconciler, real cloud layer, emulator in sandbox
 * mode): an object stored before the appDir / env-name rules (the in-memory store, like etcd,
 * does not re-validate it) is Stalled `InvalidSpec` before any command reaches a host; two
 * AppReleases whose appDirs overlap on an instance are `ConflictingResource` (shared claims).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppRelease, AppReleaseSpec } from '../../src/api/apprelease.js';
import { OWNER_UID_TAG } from '../../src/api/common.js';
import { StalledError } from '../../src/runtime/errors.js';
import { REGION } from '../harness/fast.js';
import {
  appSpec,
  readyOf,
  startAppReleaseStack,
  type AppReleaseStack,
  type Artifact,
} from '../harness/fast-apprelease.js';

const APP_SH = '#!/bin/bash\nexit 0\n';

const stalledOf = (o: AppRelease | undefined) => o?.status?.conditions?.find((c) => c.type === 'Stalled');

async function invocationsOf(s: AppReleaseStack, obj: AppRelease | undefined): Promise<unknown[]> {
  return (await s.emu.control.listInvocations()).filter((v) => v.tags[OWNER_UID_TAG] === obj?.metadata.uid);
}

describe('AppRelease host safety (fast tier, emulator sandbox)', () => {
  let s: AppReleaseStack;
  let art: Artifact;
  beforeAll(async () => {
    s = await startAppReleaseStack({
      seed: {
        regions: {
          [REGION]: { generate: [{ count: 4, idPrefix: 'i-sf', tags: [{ key: 'app', value: 'shop' }] }] },
        },
      },
    });
    art = s.artifacts.add('shop-1', { 'app.sh': APP_SH }, s.root);
  });
  afterAll(() => s.stop());

  const lean = (over: Partial<AppReleaseSpec> = {}): AppReleaseSpec =>
    appSpec(s, art, {
      healthCheck: undefined,
      strategy: { batchSize: '100%', maxErrors: 0 },
      hooks: { start: { script: 'true' } },
      ...over,
    } as Partial<AppReleaseSpec>);

  it.each([
    ['/opt/../etc', "install.appDir must not contain '.' or '..' segments (got /opt/../etc)"],
    ['/usr', 'install.appDir must be a directory of its own at least two segments deep'],
    ['/', 'never a system root like /, /bin, /boot, /dev, /etc, /lib*'],
  ])('a stored appDir %s is Stalled InvalidSpec before any command', async (appDir, message) => {
    const name = `bad-${appDir.replace(/[^a-z]/g, '') || 'root'}`;
    const spec = lean();
    spec.install = { ...spec.install, appDir };
    s.apply(name, spec);
    const step = await s.reconcile(name);
    expect(step.error).toBeInstanceOf(StalledError);
    const obj = s.get(name);
    expect(stalledOf(obj)).toMatchObject({ status: 'True', reason: 'InvalidSpec' });
    expect(stalledOf(obj)?.message).toContain(message);
    expect(readyOf(obj)?.status).toBe('False');
    expect(await invocationsOf(s, obj)).toHaveLength(0);
  });

  it('deleting a stored bad appDir with deletionPolicy Uninstall sends no uninstall (retried, reason named)', async () => {
    const spec = { ...lean(), deletionPolicy: 'Uninstall' as const };
    spec.install = { ...spec.install, appDir: '/var' };
    s.apply('bad-delete', spec);
    expect((await s.reconcile('bad-delete')).error).toBeInstanceOf(StalledError);
    expect(s.get('bad-delete')?.metadata.finalizers?.length).toBeGreaterThan(0);
    s.store.delete('default', 'bad-delete');
    const step = await s.reconcile('bad-delete');
    expect(step.error?.message).toContain('(got /var)');
    const obj = s.get('bad-delete');
    expect(obj?.metadata.finalizers?.length).toBeGreaterThan(0); // kept until fixed or Orphan
    expect(await invocationsOf(s, obj)).toHaveLength(0);
  });

  it('a stored env name that is not a shell variable name is Stalled InvalidSpec', async () => {
    const spec = lean();
    spec.install = { ...spec.install, env: { 'X;rm -rf /': 'v' } };
    s.apply('bad-env', spec);
    expect((await s.reconcile('bad-env')).error).toBeInstanceOf(StalledError);
    const obj = s.get('bad-env');
    expect(stalledOf(obj)).toMatchObject({ reason: 'InvalidSpec' });
    expect(stalledOf(obj)?.message).toContain('is not a shell variable name');
    expect(await invocationsOf(s, obj)).toHaveLength(0);
  });

  it('two AppReleases whose appDirs nest on shared instances: the newer one is ConflictingResource', async () => {
    const older = lean({
      application: 'shop',
      targets: { instanceIds: ['i-sf0001', 'i-sf0002', 'i-sf0003'] },
    });
    s.apply('older', older);
    await s.until('older', (o) => readyOf(o)?.status === 'True');
    // another application (no ConflictingRelease), installed INSIDE the older one's appDir
    const nested = lean({
      application: 'web',
      targets: { instanceIds: ['i-sf0003', 'i-sf0004'] },
      install: { appDir: `${s.root}/{{ACS::InstanceId}}/app/web`, keepReleases: 2 },
    });
    s.apply('newer', nested);
    const step = await s.reconcile('newer');
    expect(step.error).toBeInstanceOf(StalledError);
    const stalled = stalledOf(s.get('newer'));
    expect(stalled?.reason).toBe('ConflictingResource');
    expect(stalled?.message).toContain('default/older');
    expect(stalled?.message).toContain(`overlaps appDir ${s.root}/{{ACS::InstanceId}}/app/web`);
    expect(stalled?.message).toContain('on 1 of the same instance');
    expect(await invocationsOf(s, s.get('newer'))).toHaveLength(0);
    expect((await s.reconcile('older')).error).toBeUndefined(); // the older one keeps them

    // a sibling directory does not overlap (/…/app vs /…/web): the newer one proceeds
    s.apply('newer', {
      ...nested,
      install: { appDir: `${s.root}/{{ACS::InstanceId}}/web`, keepReleases: 2 },
    });
    const obj = await s.until('newer', (o) => readyOf(o)?.status === 'True');
    expect(stalledOf(obj)).toBeUndefined();
  });
});
