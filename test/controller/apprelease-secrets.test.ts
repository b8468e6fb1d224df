/**
 * AppRelease Secret-sourced env values on the fast tier (real reconciler, cloud layer, emulator in
 * sandbox mode): Stalled reasons of reading Secrets, intent before the parameter exists, a lost
 * CreateSecretParameter answer, the delete path keeping the finalizer while DeleteSecretParameter
 * fails, and commands that carry only the `{{oos-secret:…}}` reference.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppReleaseSpec } from '../../src/api/apprelease.js';
import { OWNER_UID_TAG } from '../../src/api/common.js';
import { secretParameterName } from '../../src/controllers/apprelease/secrets.js';
import type { SecretReader } from '../../src/controllers/shared/secrets.js';
import { StalledError } from '../../src/runtime/errors.js';
import { REGION } from '../harness/fast.js';
import { appSpec, readyOf, startAppReleaseStack, type AppReleaseStack } from '../harness/fast-apprelease.js';

const VALUE = `fast-${Math.random().toString(36).slice(2, 14)}`;
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

describe('AppRelease Secret-sourced env (fast tier)', () => {
  let s: AppReleaseStack;
  const secrets = new Map<string, { rv: string; data: Record<string, string> }>();
  let forbidden = false;
  const reader: SecretReader = {
    read: async (ns, name) => {
      if (forbidden) throw new StalledError('SecretForbidden', `may not read Secret ${ns}/${name}`);
      const x = secrets.get(`${ns}/${name}`);
      return x ? { resourceVersion: x.rv, data: x.data } : undefined;
    },
  };

  beforeAll(async () => {
    s = await startAppReleaseStack({
      seed: {
        regions: {
          [REGION]: { generate: [{ count: 2, idPrefix: 'i-fs', tags: [{ key: 'app', value: 'shop' }] }] },
        },
      },
      secrets: reader,
    });
  });
  afterAll(() => s.stop());

  function spec(): AppReleaseSpec {
    const v = s.artifacts.add('shop-s', { 'app.sh': '#!/bin/bash\nexit 0\n' }, s.root);
    const base = appSpec(s, v, { strategy: { batchSize: '100%' } });
    return {
      ...base,
      install: {
        ...base.install,
        envVars: [{ name: 'API_KEY', valueFrom: { secretKeyRef: { name: 'api', key: 'key' } } }],
      },
      hooks: { ...base.hooks, start: { script: `printf '%s' "$API_KEY" > "$APP_DIR/../seen"` } },
    };
  }

  it('Stalled SecretNotFound / SecretForbidden / InvalidSecretValue, naming the Secret and key only', async () => {
    s.apply('shop', spec());
    let obj = await s.until('shop', (o) => o?.status?.conditions?.some((c) => c.type === 'Stalled') === true);
    const stalled = () => obj?.status?.conditions?.find((c) => c.type === 'Stalled');
    expect(stalled()).toMatchObject({ status: 'True', reason: 'SecretNotFound' });
    expect(stalled()?.message).toContain('default/api');

    secrets.set('default/api', { rv: '1', data: { key: b64('Sh0rt!x') } });
    forbidden = true;
    await s.reconcile('shop');
    obj = s.get('shop');
    expect(stalled()).toMatchObject({ reason: 'SecretForbidden' });
    forbidden = false;
    await s.reconcile('shop');
    obj = s.get('shop');
    expect(stalled()).toMatchObject({ reason: 'InvalidSecretValue' });
    expect(JSON.stringify(obj)).not.toContain('Sh0rt!x');
    expect(await s.emu.control.listInvocations()).toEqual([]); // nothing sent while stalled
  });

  it('a lost CreateSecretParameter answer: the re-send (same ClientToken) succeeds; Ready; hooks see the value', async () => {
    secrets.set('default/api', { rv: '2', data: { key: b64(VALUE) } });
    await s.emu.control.addFaultRule({ action: 'CreateSecretParameter', kind: 'responseLoss' });
    const obj = await s.until('shop', (o) => readyOf(o)?.status === 'True');
    const name = secretParameterName('default', 'shop');
    expect(obj?.status?.secretParameter).toMatchObject({ name });
    expect(obj?.status?.secretParameter?.secretVersions).toMatch(/^api@2;refs=/);
    for (const id of ['i-fs0001', 'i-fs0002'])
      expect(readFileSync(`${s.root}/${id}/seen`, 'utf8')).toBe(VALUE);
    const invs = (await s.emu.control.listInvocations()).filter(
      (v) => v.tags[OWNER_UID_TAG] === obj?.metadata.uid,
    );
    expect(invs.length).toBeGreaterThan(0);
    for (const v of invs) {
      expect(v.content).toContain(`{{oos-secret:${name}}}`);
      expect(v.content).not.toContain(VALUE);
      expect(v.content).not.toContain(b64(VALUE));
    }
    expect(JSON.stringify(obj)).not.toContain(VALUE);
  });

  it('delete: a failing DeleteSecretParameter keeps the finalizer; the retry deletes it', async () => {
    const name = secretParameterName('default', 'shop');
    const oos = s.cloud.oos(REGION);
    expect(await oos.getSecretParameter(name)).toBeDefined();
    const rule = await s.emu.control.addFaultRule({
      action: 'DeleteSecretParameter',
      code: 'ServiceUnavailable',
      httpStatus: 503,
      count: 50,
    });
    s.store.delete('default', 'shop');
    for (let i = 0; i < 5; i++) await s.reconcile('shop').catch(() => undefined);
    expect(s.get('shop')?.metadata.finalizers?.length).toBeGreaterThan(0);
    expect(await oos.getSecretParameter(name)).toBeDefined();
    await s.emu.control.removeFaultRule(rule);
    const gone = await s.until('shop', (o) => o === undefined);
    expect(gone).toBeUndefined();
    expect(await oos.getSecretParameter(name)).toBeUndefined();
  });
});
