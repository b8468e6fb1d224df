/**
 * The emulator additions AppRelease relies on, through the real cloud layer (SDK, signatures):
 * sandbox mode (RunShellScript really runs with bash, parameters substituted, Timeout enforced,
 * StopInvocation kills), and ECS TagResources / UntagResources with tags in DescribeInstances.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isCloudError } from '../../../src/cloud/errors.js';
import type { EcsApi } from '../../../src/cloud/types.js';
import { fleetIds, fleetSeed, startCloudStack, type CloudStack } from '../../harness/fast.js';

const REGION = 'cn-hangzhou';

async function waitDone(ecs: EcsApi, invokeId: string, ms = 20_000) {
  const until = Date.now() + ms;
  for (;;) {
    const [inv] = await ecs.describeInvocations({ invokeId, includeOutput: true });
    if (inv && ['Success', 'Failed', 'PartialFailed', 'Stopped'].includes(inv.invocationStatus)) return inv;
    if (Date.now() > until) throw new Error(`invocation ${invokeId} not done: ${JSON.stringify(inv)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('emulator: sandbox mode and instance tags', () => {
  let s: CloudStack;
  let ecs: EcsApi;
  const ids = fleetIds('sb', 1, 3);
  beforeAll(async () => {
    s = await startCloudStack({ seed: fleetSeed('sb', 3), emulator: { sandbox: true } });
    ecs = s.cloud.ecs(REGION);
  });
  afterAll(() => s.stop());

  it('runs RunShellScript with bash, substituting {{ACS::InstanceId}} and custom parameters', async () => {
    process.env.ALIBABA_CLOUD_ACCESS_KEY_ID = 'must-not-leak';
    try {
      const { invokeId } = await ecs.runCommand({
        type: 'RunShellScript',
        commandContent:
          'echo "on {{ACS::InstanceId}} say {{greeting}}"; echo "key=${ALIBABA_CLOUD_ACCESS_KEY_ID:-unset}"; [ "{{ACS::InstanceId}}" = "' +
          ids[1] +
          '" ] && exit 4; exit 0',
        instanceIds: ids,
        timeoutSeconds: 60,
        enableParameter: true,
        parameters: { greeting: 'hello' },
        terminationMode: 'ProcessTree',
      });
      const inv = await waitDone(ecs, invokeId);
      const by = new Map(inv.instances.map((i) => [i.instanceId, i]));
      expect(by.get(ids[0] as string)?.output).toBe(`on ${ids[0]} say hello\nkey=unset\n`);
      expect(by.get(ids[0] as string)).toMatchObject({ invocationStatus: 'Success', exitCode: 0 });
      expect(by.get(ids[1] as string)).toMatchObject({ invocationStatus: 'Failed', exitCode: 4 });
      expect(inv.invocationStatus).toBe('PartialFailed');
    } finally {
      delete process.env.ALIBABA_CLOUD_ACCESS_KEY_ID;
    }
  });

  it('rejects a command that references an undefined custom parameter', async () => {
    const err = await ecs
      .runCommand({
        type: 'RunShellScript',
        commandContent: 'echo {{missing}}',
        instanceIds: [ids[0] as string],
        enableParameter: true,
        parameters: {},
      })
      .catch((e: unknown) => e);
    expect(isCloudError(err) && err.code).toBe('InvalidParameter');
  });

  it('StopInvocation kills the running process (Terminated)', async () => {
    const { invokeId } = await ecs.runCommand({
      type: 'RunShellScript',
      commandContent: 'sleep 30; echo never',
      instanceIds: [ids[2] as string],
      timeoutSeconds: 60,
    });
    await new Promise((r) => setTimeout(r, 300));
    await ecs.stopInvocation(invokeId);
    const inv = await waitDone(ecs, invokeId, 5_000);
    expect(inv.instances[0]?.invocationStatus).toBe('Terminated');
    expect(inv.instances[0]?.output ?? '').not.toContain('never');
  });

  it('enforces Timeout in real seconds (Timeout, ExecutionTimeout)', async () => {
    const t0 = Date.now();
    const { invokeId } = await ecs.runCommand({
      type: 'RunShellScript',
      commandContent: 'echo started; sleep 60',
      instanceIds: [ids[0] as string],
      timeoutSeconds: 10,
    });
    const inv = await waitDone(ecs, invokeId, 20_000);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(inv.instances[0]).toMatchObject({ invocationStatus: 'Timeout', errorCode: 'ExecutionTimeout' });
    expect(inv.instances[0]?.output).toBe('started\n');
  }, 30_000);

  it('TagResources / UntagResources change the tags DescribeInstances returns', async () => {
    await ecs.tagResources(
      [ids[0] as string, ids[1] as string],
      [{ key: 'ecsops.io/app.shop', value: 'r1' }],
    );
    await ecs.tagResources([ids[1] as string], [{ key: 'ecsops.io/app.shop', value: 'r2' }]);
    const tagged = await ecs.describeInstances({ tags: [{ key: 'ecsops.io/app.shop' }] });
    expect(
      Object.fromEntries(
        tagged.map((i) => [i.instanceId, i.tags.find((t) => t.key === 'ecsops.io/app.shop')?.value]),
      ),
    ).toEqual({ [ids[0] as string]: 'r1', [ids[1] as string]: 'r2' });
    await ecs.untagResources([ids[0] as string], ['ecsops.io/app.shop']);
    const after = await ecs.describeInstances({ tags: [{ key: 'ecsops.io/app.shop' }] });
    expect(after.map((i) => i.instanceId)).toEqual([ids[1]]);
    // the fleet tag is untouched
    expect((await ecs.describeInstances({ instanceIds: [ids[0] as string] }))[0]?.tags).toEqual([
      { key: 'fleet', value: 'sb' },
    ]);
  });

  it('TagResources refuses reserved prefixes and more than 20 tags per instance, changing nothing', async () => {
    const bad = await ecs
      .tagResources([ids[2] as string], [{ key: 'aliyun:x', value: 'v' }])
      .catch((e: unknown) => e);
    expect(isCloudError(bad) && bad.code).toBe('InvalidTagKey.Malformed');
    const many = Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, value: 'v' }));
    const tooMany = await ecs.tagResources([ids[2] as string], many).catch((e: unknown) => e);
    expect(isCloudError(tooMany) && tooMany.code).toBe('InvalidTagCount');
    expect((await ecs.describeInstances({ instanceIds: [ids[2] as string] }))[0]?.tags).toHaveLength(1);
  });
});
