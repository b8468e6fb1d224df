/**
 * OOS encrypted parameters through the real cloud layer (SDK, signatures) against the emulator:
 * Create/Update/Get/Delete with ClientToken idempotency and the documented name/value limits, and
 * `{{oos-secret:NAME}}` resolved only on the instance side in sandbox mode (the invocation's
 * stored content and every answer keep the placeholder; the body log sees the value only in the
 * Create/Update requests).
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isCloudError } from '../../../src/cloud/errors.js';
import type { EcsApi, OosApi } from '../../../src/cloud/types.js';
import type { BodyLogEntry } from '../../../src/emulator/index.js';
import { fleetIds, fleetSeed, startCloudStack, type CloudStack } from '../../harness/fast.js';

const REGION = 'cn-hangzhou';
const sha256 = (v: string) => createHash('sha256').update(v).digest('hex');
const VALUE = `s3cr3t-${Math.random().toString(36).slice(2, 12)}`;

async function waitDone(ecs: EcsApi, invokeId: string, ms = 20_000) {
  const until = Date.now() + ms;
  for (;;) {
    const [inv] = await ecs.describeInvocations({ invokeId, includeOutput: true });
    if (inv && ['Success', 'Failed', 'PartialFailed', 'Stopped'].includes(inv.invocationStatus)) return inv;
    if (Date.now() > until) throw new Error(`invocation ${invokeId} not done`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function failure(p: Promise<unknown>): Promise<{ code: string; category: string }> {
  try {
    await p;
  } catch (e) {
    if (isCloudError(e)) return { code: e.code, category: e.category };
    throw e;
  }
  throw new Error('expected a failure');
}

describe('emulator: OOS encrypted parameters and {{oos-secret:…}}', () => {
  let s: CloudStack;
  let oos: OosApi;
  let ecs: EcsApi;
  const bodies: BodyLogEntry[] = [];
  const ids = fleetIds('sp', 1, 2);
  beforeAll(async () => {
    s = await startCloudStack({
      seed: fleetSeed('sp', 2),
      emulator: { sandbox: true, bodyLogger: (e) => bodies.push(e) },
    });
    oos = s.cloud.oos(REGION);
    ecs = s.cloud.ecs(REGION);
  });
  afterAll(() => s.stop());

  it('creates idempotently by ClientToken, refuses a taken name, updates, reads metadata, deletes', async () => {
    const req = { name: 'ecsops-test-1', value: VALUE, clientToken: 'tok-1' };
    const a = await oos.createSecretParameter(req);
    const again = await oos.createSecretParameter(req); // lost answer re-sent
    expect(again).toEqual(a);
    expect(await failure(oos.createSecretParameter({ ...req, clientToken: 'tok-2' }))).toMatchObject({
      code: 'EntityAlreadyExists.SecretParameter',
    });
    const u = await oos.updateSecretParameter('ecsops-test-1', `${VALUE}-2`);
    expect(u.parameterVersion).toBe(2);
    expect(await oos.getSecretParameter('ecsops-test-1')).toMatchObject({ name: 'ecsops-test-1' });
    await oos.deleteSecretParameter('ecsops-test-1');
    await oos.deleteSecretParameter('ecsops-test-1'); // already gone: success
    expect(await oos.getSecretParameter('ecsops-test-1')).toBeUndefined();
    expect(await failure(oos.updateSecretParameter('ecsops-test-1', VALUE))).toMatchObject({
      category: 'notFound',
    });
  });

  it('enforces the documented name and value limits', async () => {
    for (const name of ['OOS-x', 'aliyun-x', 'acs_x', 'ALIBABA1', 'alicloud', 'a b', 'x'.repeat(181)])
      expect(await failure(oos.createSecretParameter({ name, value: VALUE }))).toMatchObject({
        code: 'InvalidParameter',
      });
    expect(
      await failure(oos.createSecretParameter({ name: 'ecsops-long', value: 'v'.repeat(4097) })),
    ).toMatchObject({ code: 'InvalidParameter' });
    await oos.createSecretParameter({ name: 'ecsops-max', value: 'v'.repeat(4096) });
    await oos.deleteSecretParameter('ecsops-max');
  });

  it('resolves {{oos-secret:NAME}} on the instance only; answers keep the placeholder', async () => {
    bodies.length = 0;
    await oos.createSecretParameter({ name: 'ecsops-sandbox', value: VALUE, clientToken: 'tok-sb' });
    const { invokeId } = await ecs.runCommand({
      type: 'RunShellScript',
      // The script compares a digest, so the value itself is never printed.
      commandContent: `S='{{oos-secret:ecsops-sandbox}}'; [ "$(printf '%s' "$S" | sha256sum | cut -c1-64)" = '${sha256(VALUE)}' ] && echo match-{{ACS::InstanceId}}`,
      instanceIds: ids,
      timeoutSeconds: 60,
      enableParameter: true,
      parameters: {},
    });
    const inv = await waitDone(ecs, invokeId);
    expect(inv.invocationStatus).toBe('Success');
    for (const i of inv.instances) expect(i.output).toBe(`match-${i.instanceId}\n`);
    const [withContent] = await ecs.describeInvocations({ invokeId, includeOutput: true });
    expect(withContent?.commandContent).toContain('{{oos-secret:ecsops-sandbox}}');
    const hits = bodies.filter((b) => JSON.stringify(b).includes(VALUE));
    expect(hits.map((b) => b.action)).toEqual(['CreateSecretParameter']);
    expect(JSON.stringify(hits[0]?.response)).not.toContain(VALUE);
  });

  it('fails the invocation on an instance when the parameter does not exist', async () => {
    const { invokeId } = await ecs.runCommand({
      type: 'RunShellScript',
      commandContent: `echo '{{oos-secret:ecsops-missing}}'`,
      instanceIds: [ids[0] as string],
      timeoutSeconds: 60,
      enableParameter: true,
      parameters: {},
    });
    const inv = await waitDone(ecs, invokeId);
    expect(inv.invocationStatus).toBe('Failed');
    expect(inv.instances[0]?.errorInfo).toContain('ecsops-missing');
  });
});
