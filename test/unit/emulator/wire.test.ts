import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Emulator } from '../../../src/emulator/index.js';
import { DEMO_ACCESS_KEY, startEmulator } from '../../../src/emulator/index.js';
import { call, callError, sdkClient } from './helpers.js';

const OTHER = { id: 'test-only-key-id', secret: 'test-only-secret-value' };

describe('emulator wire protocol', () => {
  let emu: Emulator;
  beforeAll(async () => {
    emu = await startEmulator({
      timeScale: 0.01,
      accessKeys: [DEMO_ACCESS_KEY, OTHER],
      seed: {
        regions: {
          'cn-hangzhou': { generate: { count: 3, idPrefix: 'i-wire', tags: { 'a b': "x (y)!*'~" } } },
        },
      },
    });
  });
  afterAll(() => emu.stop());

  for (const alg of ['acs3', 'v1'] as const) {
    describe(alg, () => {
      it('accepts a correctly signed request with awkward characters and answers with a RequestId', async () => {
        const body = await call(sdkClient(emu.endpoint, OTHER, alg), 'ecs', 'DescribeInstances', {
          RegionId: 'cn-hangzhou',
          Tag: [{ Key: 'a b', Value: "x (y)!*'~" }],
          InstanceIds: JSON.stringify(['i-wire0001', 'i-wire0002']),
        });
        expect(body['RequestId']).toMatch(/^[0-9A-F-]{36}$/);
        const ids = (body['Instances'] as { Instance: Array<{ InstanceId: string }> }).Instance.map(
          (i) => i.InstanceId,
        );
        expect(ids).toEqual(['i-wire0001', 'i-wire0002']);
      });

      it('rejects an unknown AccessKey ID with InvalidAccessKeyId.NotFound 404', async () => {
        const e = await callError(
          call(sdkClient(emu.endpoint, { id: 'nobody-key', secret: 'x' }, alg), 'oos', 'ListTemplates', {}),
        );
        expect(e.code).toBe('InvalidAccessKeyId.NotFound');
        expect(e.statusCode).toBe(404);
        expect(Object.keys(e.data).sort()).toEqual(
          ['Code', 'HostId', 'Message', 'Recommend', 'RequestId'].sort(),
        );
      });

      it('rejects a wrong secret with SignatureDoesNotMatch 400', async () => {
        const e = await callError(
          call(
            sdkClient(emu.endpoint, { id: OTHER.id, secret: 'wrong-secret' }, alg),
            'oos',
            'ListTemplates',
            {},
          ),
        );
        expect(e.code).toBe('SignatureDoesNotMatch');
        expect(e.statusCode).toBe(400);
      });
    });
  }

  it('answers an unknown action with InvalidAction.NotFound 404', async () => {
    const e = await callError(
      call(sdkClient(emu.endpoint, DEMO_ACCESS_KEY), 'ecs', 'DeleteInstance', { RegionId: 'cn-hangzhou' }),
    );
    expect(e.code).toBe('InvalidAction.NotFound');
    expect(e.statusCode).toBe(404);
  });

  it('answers a missing required parameter with MissingParameter 400 naming it', async () => {
    const e = await callError(call(sdkClient(emu.endpoint, DEMO_ACCESS_KEY), 'ecs', 'DescribeInstances', {}));
    expect(e.code).toBe('MissingParameter');
    expect(e.statusCode).toBe(400);
    expect(String(e.data['Message'])).toContain('RegionId');
  });

  it('answers an invalid MaxResults with InvalidParameter 400', async () => {
    const e = await callError(
      call(sdkClient(emu.endpoint, DEMO_ACCESS_KEY), 'oos', 'ListExecutions', {
        RegionId: 'cn-hangzhou',
        MaxResults: 500,
      }),
    );
    expect(e.code).toBe('InvalidParameter');
    expect(e.statusCode).toBe(400);
  });

  it('refuses a replayed V1 request (same SignatureNonce)', async () => {
    // A raw replay of a captured V1 request: the first use succeeds, the second is refused.
    // Build a V1 request by hand with a fixed nonce.
    const { createHmac } = await import('node:crypto');
    const { percentEncode } = await import('../../../src/emulator/signature.js');
    const q: Record<string, string> = {
      Action: 'ListPatchBaselines',
      Format: 'json',
      Version: '2019-06-01',
      Timestamp: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
      SignatureNonce: 'fixed-nonce-for-replay-test',
      SignatureMethod: 'HMAC-SHA1',
      SignatureVersion: '1.0',
      AccessKeyId: DEMO_ACCESS_KEY.id,
    };
    const canon = Object.keys(q)
      .sort()
      .map((k) => `${percentEncode(k)}=${percentEncode(q[k] as string)}`)
      .join('&');
    q['Signature'] = createHmac('sha1', `${DEMO_ACCESS_KEY.secret}&`)
      .update(`POST&%2F&${percentEncode(canon)}`)
      .digest('base64');
    const captured = new URLSearchParams(q).toString();
    const first = await fetch(`http://${emu.endpoint}/?${captured}`, { method: 'POST' });
    expect(first.status).toBe(200);
    const second = await fetch(`http://${emu.endpoint}/?${captured}`, { method: 'POST' });
    expect(second.status).toBe(400);
    expect(((await second.json()) as { Code: string }).Code).toBe('SignatureNonceUsed');
  });

  it('counts authenticated requests per action and the control port refuses signed requests', async () => {
    await emu.control.resetRequestCounts();
    const c = sdkClient(emu.endpoint, DEMO_ACCESS_KEY);
    await call(c, 'oos', 'ListPatchBaselines', {});
    await call(c, 'oos', 'ListPatchBaselines', {});
    await call(c, 'ecs', 'DescribeSnapshots', { RegionId: 'cn-hangzhou' });
    expect(await emu.control.requestCounts()).toEqual({ ListPatchBaselines: 2, DescribeSnapshots: 1 });
    const viaControl = await callError(
      call(sdkClient(emu.controlUrl.replace('http://', ''), DEMO_ACCESS_KEY), 'oos', 'ListTemplates', {}),
    );
    expect(viaControl.statusCode).toBe(403);
  });
});
