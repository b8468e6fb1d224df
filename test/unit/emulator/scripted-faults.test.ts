import { $OpenApiUtil, OpenApiUtil } from '@alicloud/openapi-core';
import * as $dara from '@darabonba/typescript';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { rpcParams } from '../../../src/cloud/sdk.js';
import type { Emulator, Seed } from '../../../src/emulator/index.js';
import { DEMO_ACCESS_KEY, RUN_COMMAND_TEMPLATE, startEmulator } from '../../../src/emulator/index.js';
import { call, callError, sdkClient, waitFor } from './helpers.js';

const REGION = 'cn-hangzhou';
const OWNER = 'ecsops.io/owner-uid';

const seed: Seed = {
  regions: {
    [REGION]: {
      instances: [
        { instanceId: 'i-a1', tags: { env: 'prod' } },
        { instanceId: 'i-b1', tags: { env: 'dev' } },
        { instanceId: 'i-c1' },
      ],
    },
  },
};

/** What an SDK call ended in: `ok`, `<status>:<code>`, or `reset` (ECONNRESET / socket hang up). */
async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    const err = e as { code?: string; statusCode?: number; message?: string };
    if (/ECONNRESET|socket hang up/.test(`${err.message} ${err.code}`)) return 'reset';
    return `${err.statusCode}:${err.code}`;
  }
}

/** Settles within `ms`? Resolves to whether `p` settled. */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((r) => setTimeout(r, ms));
  return done;
}

describe('emulator scripted fault rules (kind, id, match), holds, PATCH and quota', () => {
  let emu: Emulator;
  let client: ReturnType<typeof sdkClient>;
  let lines: Array<Record<string, unknown>>;
  beforeEach(async () => {
    lines = [];
    emu = await startEmulator({
      timeScale: 0.01,
      seed,
      logger: (l) => lines.push(l as Record<string, unknown>),
    });
    client = sdkClient(emu.endpoint, DEMO_ACCESS_KEY);
  });
  afterEach(() => emu.stop());

  const startExec = (ids: string[], token: string, tags: Record<string, string> = {}) =>
    call(client, 'oos', 'StartExecution', {
      RegionId: REGION,
      TemplateName: RUN_COMMAND_TEMPLATE,
      ClientToken: token,
      Tags: JSON.stringify(tags),
      Parameters: JSON.stringify({
        commandContent: 'echo hi',
        targets: { Type: 'ResourceIds', RegionId: REGION, ResourceIds: ids },
        rateControl: { Mode: 'Concurrency', Concurrency: 1, MaxErrors: 0 },
      }),
    }) as Promise<{ Execution: { ExecutionId: string } }>;
  const describe1 = (ids: string[]) =>
    call(client, 'ecs', 'DescribeInstances', { RegionId: REGION, InstanceIds: JSON.stringify(ids) });
  const runCommand = (id: string) =>
    call(client, 'ecs', 'RunCommand', {
      RegionId: REGION,
      Type: 'RunShellScript',
      CommandContent: 'echo hi',
      InstanceId: [id],
    });

  it('responseLoss runs the action then resets; reset resets before it; scoped to one instance', async () => {
    await emu.control.setFaults({
      failNext: [
        { action: 'StartExecution', kind: 'reset', match: { instanceId: 'i-a1' } },
        { action: 'StartExecution', kind: 'responseLoss', match: { instanceId: 'i-b1' } },
      ],
    });
    // Another instance is not in scope of either rule: it passes and consumes nothing.
    expect(await outcome(startExec(['i-c1'], 'tok-c'))).toBe('ok');
    expect(await outcome(startExec(['i-a1'], 'tok-a'))).toBe('reset');
    expect(await outcome(startExec(['i-b1'], 'tok-b'))).toBe('reset');
    const execs = await emu.control.listExecutions({});
    expect(execs.map((e) => e.clientToken).sort()).toEqual(['tok-b', 'tok-c']); // reset: nothing; lost: done
    // Both rules are used up: the next requests pass, and the lost one's retry finds its execution.
    expect(await outcome(startExec(['i-a1'], 'tok-a'))).toBe('ok');
    const again = await startExec(['i-b1'], 'tok-b');
    expect(again.Execution.ExecutionId).toBe(execs.find((e) => e.clientToken === 'tok-b')?.executionId);
    const codes = lines.filter((l) => l['action'] === 'StartExecution').map((l) => l['code'] ?? l['status']);
    expect(codes).toEqual([200, 'ConnectionReset', 'ResponseLost', 200, 200]);
  });

  it('counts skip and count only over matching requests', async () => {
    await emu.control.setFaults({
      failNext: [
        {
          action: 'RunCommand',
          code: 'Forbidden.RAM',
          httpStatus: 403,
          skip: 1,
          count: 1,
          match: { instanceId: 'i-a1' },
        },
      ],
    });
    const seen: string[] = [];
    for (const id of ['i-b1', 'i-a1', 'i-b1', 'i-a1', 'i-a1']) seen.push(await outcome(runCommand(id)));
    expect(seen).toEqual(['ok', 'ok', 'ok', '403:Forbidden.RAM', 'ok']);
  });

  it('matches by tag (ECS Tag.N, any value or one value) and by owner UID (OOS Tags JSON)', async () => {
    await emu.control.setFaults({
      failNext: [
        {
          action: 'DescribeInstances',
          code: 'Throttling.User',
          httpStatus: 400,
          match: { tag: { key: 'env' } },
        },
        {
          action: 'TagResources',
          code: 'Forbidden.RAM',
          httpStatus: 403,
          match: { tag: { key: 'app', value: 'web' } },
        },
        { action: 'StartExecution', code: 'Forbidden.RAM', httpStatus: 403, match: { ownerUid: 'uid-1' } },
      ],
    });
    expect(await outcome(call(client, 'ecs', 'DescribeInstances', { RegionId: REGION }))).toBe('ok');
    expect(
      await outcome(
        call(client, 'ecs', 'DescribeInstances', { RegionId: REGION, Tag: [{ Key: 'env', Value: 'prod' }] }),
      ),
    ).toBe('400:Throttling.User');
    const tag = (value: string) =>
      call(client, 'ecs', 'TagResources', {
        RegionId: REGION,
        ResourceType: 'instance',
        ResourceId: ['i-c1'],
        Tag: [{ Key: 'app', Value: value }],
      });
    expect(await outcome(tag('db'))).toBe('ok');
    expect(await outcome(tag('web'))).toBe('403:Forbidden.RAM');
    expect(await outcome(startExec(['i-c1'], 'tok-2', { [OWNER]: 'uid-2' }))).toBe('ok');
    expect(await outcome(startExec(['i-c1'], 'tok-1', { [OWNER]: 'uid-1' }))).toBe('403:Forbidden.RAM');
  });

  it('adds and removes single rules without touching the rest of the configuration', async () => {
    await emu.control.setFaults({ seed: 5, retryAfterMs: 7 });
    const id = await emu.control.addFaultRule({
      action: 'DescribeInstances',
      code: 'Forbidden.RAM',
      httpStatus: 403,
      count: 100,
    });
    expect(id).toMatch(/^rule-\d+$/);
    expect(await emu.control.addFaultRule({ action: 'ListTemplates', kind: 'reset', id: 'mine' })).toBe(
      'mine',
    );
    await expect(emu.control.addFaultRule({ action: 'X', kind: 'reset', id: 'mine' })).rejects.toThrow(
      /400.*already in use/,
    );
    await expect(emu.control.addFaultRule({ action: 'X' })).rejects.toThrow(/400.*needs code and httpStatus/);
    await expect(emu.control.addFaultRule({ action: 'X', kind: 'bogus' as 'reset' })).rejects.toThrow(
      /400.*kind/,
    );
    expect(await outcome(describe1(['i-a1']))).toBe('403:Forbidden.RAM');
    expect(await emu.control.removeFaultRule(id)).toBe(true);
    expect(await emu.control.removeFaultRule(id)).toBe(false);
    expect(await outcome(describe1(['i-a1']))).toBe('ok');
    const cfg = await emu.control.getFaults();
    expect(cfg).toMatchObject({ seed: 5, retryAfterMs: 7, failNext: [{ id: 'mine', kind: 'reset' }] });
  });

  it('holds matching requests unanswered until released, then processes them', async () => {
    const ruleId = await emu.control.addFaultRule({
      action: 'StartExecution',
      kind: 'hold',
      id: 'gate',
      count: 2,
      match: { instanceId: 'i-a1' },
    });
    const t0 = Date.now();
    const first = startExec(['i-a1'], 'h1');
    const second = startExec(['i-a1', 'i-b1'], 'h2');
    const held = await emu.control.waitForHold(ruleId, 5000, 2);
    expect(held.map((h) => h.action)).toEqual(['StartExecution', 'StartExecution']);
    expect(held[0]?.heldSinceMs).toBeGreaterThanOrEqual(t0);
    expect(held[0]?.requestId).toMatch(/^[0-9A-F-]{36}$/);
    expect(held[1]?.instanceIds).toEqual(['i-a1', 'i-b1']);
    // Out of scope, or once the count is used up: not held.
    expect(await outcome(startExec(['i-b1'], 'h3'))).toBe('ok');
    expect(await outcome(startExec(['i-a1'], 'h4'))).toBe('ok');
    expect(await settlesWithin(first, 150)).toBe(false);
    expect((await emu.control.listExecutions({})).map((e) => e.clientToken).sort()).toEqual(['h3', 'h4']);
    expect(await emu.control.releaseHolds(ruleId)).toBe(2);
    const [a, b] = await Promise.all([first, second]);
    expect(a.Execution.ExecutionId).toMatch(/^exec-/);
    expect(b.Execution.ExecutionId).toMatch(/^exec-/);
    expect(await emu.control.listHolds()).toEqual([]);
    expect((await emu.control.listExecutions({})).map((e) => e.clientToken).sort()).toEqual([
      'h1',
      'h2',
      'h3',
      'h4',
    ]);
    await expect(emu.control.waitForHold(ruleId, 50)).rejects.toThrow(/holds 0 of 1/);
  });

  it('releases held requests on removeFaultRule, clearFaults and reset, so nothing hangs', async () => {
    for (const release of [
      (id: string) => emu.control.removeFaultRule(id),
      () => emu.control.clearFaults(),
      () => emu.control.reset(),
    ]) {
      const id = await emu.control.addFaultRule({ action: 'DescribeInstances', kind: 'hold' });
      const p = describe1(['i-a1']);
      await emu.control.waitForHold(id);
      expect(await settlesWithin(p, 50)).toBe(false);
      await release(id);
      expect(await outcome(p)).toBe('ok');
    }
  });

  it('processes a held request whose client gave up (the work is done, the answer goes nowhere)', async () => {
    const id = await emu.control.addFaultRule({ action: 'StartExecution', kind: 'hold' });
    const params = rpcParams('StartExecution', '2019-06-01');
    const req = new $OpenApiUtil.OpenApiRequest({
      query: OpenApiUtil.query({
        RegionId: REGION,
        TemplateName: RUN_COMMAND_TEMPLATE,
        ClientToken: 'gave-up',
        Parameters: JSON.stringify({
          commandContent: 'echo hi',
          targets: { Type: 'ResourceIds', RegionId: REGION, ResourceIds: ['i-c1'] },
        }),
      }),
    });
    const gaveUp = client.callApi(params, req, new $dara.RuntimeOptions({ readTimeout: 100 }));
    expect(await outcome(gaveUp)).not.toBe('ok');
    expect(await emu.control.listExecutions({})).toEqual([]);
    expect(await emu.control.releaseHolds(id)).toBe(1);
    await waitFor(async () => (await emu.control.listExecutions({})).length === 1);
    await waitFor(async () => lines.some((l) => l['action'] === 'StartExecution'));
    expect(lines.find((l) => l['action'] === 'StartExecution')).toMatchObject({
      status: 200,
      clientGone: true,
    });
  });

  it('PATCH /faults merges without re-seeding the PRNG; maps merge key by key, null removes', async () => {
    const cfg = { seed: 42, actions: { DescribeInstances: { throttleRate: 0.5 } } };
    const run = async (n: number) => {
      const out: string[] = [];
      for (let i = 0; i < n; i++) out.push(await outcome(describe1(['i-a1'])));
      return out;
    };
    await emu.control.setFaults(cfg);
    const straight = await run(16);
    expect(straight).toContain('ok');
    expect(straight).toContain('400:Throttling.User');
    await emu.control.setFaults(cfg);
    const head = await run(8);
    const after = await emu.control.patchFaults({
      retryAfterMs: 9,
      actions: { ListTemplates: { errorRate: 1 } },
    });
    expect(after.actions).toEqual({
      DescribeInstances: { throttleRate: 0.5 },
      ListTemplates: { errorRate: 1 },
    });
    expect([...head, ...(await run(8))]).toEqual(straight);
    expect(await outcome(call(client, 'oos', 'ListTemplates', {}))).toBe('503:ServiceUnavailable');
    const removed = await emu.control.patchFaults({ actions: { ListTemplates: null }, retryAfterMs: null });
    expect(removed).toEqual({ seed: 42, actions: { DescribeInstances: { throttleRate: 0.5 } } });
  });

  it('quota: of 5 simultaneous arrivals 3 are admitted and 2 throttled; the budget refills after a second', async () => {
    await emu.control.setFaults({ retryAfterMs: 250 });
    await emu.control.setQuota('DescribeInstances', 3);
    const burst = () => Promise.all(Array.from({ length: 5 }, () => outcome(describe1(['i-a1']))));
    const first = await burst();
    expect(first.filter((o) => o === 'ok')).toHaveLength(3);
    expect(first.filter((o) => o === '400:Throttling.User')).toHaveLength(2);
    // Other actions have no quota; this one stays throttled (with Retry-After) for the rest of the second.
    expect(await outcome(call(client, 'oos', 'ListTemplates', {}))).toBe('ok');
    const e = await callError(describe1(['i-a1']));
    expect((e as unknown as { retryAfter?: number }).retryAfter).toBe(250);
    await new Promise((r) => setTimeout(r, 1100));
    expect((await burst()).filter((o) => o === 'ok')).toHaveLength(3);
    // '*' gives each action its own budget; setQuota(undefined) removes an entry.
    await emu.control.setQuota('*', 1);
    await emu.control.setQuota('DescribeInstances', undefined);
    expect((await emu.control.getFaults()).quota).toEqual({ '*': 1 });
    await new Promise((r) => setTimeout(r, 1100));
    const mixed = await Promise.all([
      outcome(describe1(['i-a1'])),
      outcome(describe1(['i-a1'])),
      outcome(call(client, 'oos', 'ListTemplates', {})),
    ]);
    expect(mixed.filter((o) => o === 'ok')).toHaveLength(2);
    await expect(emu.control.setQuota('X', -1)).rejects.toThrow(/400.*quota/);
  });

  it('logs every instance ID a request names as instanceIds, keeping the single instanceId', async () => {
    await describe1(['i-a1', 'i-b1']);
    await runCommand('i-c1');
    await call(client, 'ecs', 'TagResources', {
      RegionId: REGION,
      ResourceType: 'instance',
      ResourceId: ['i-b1', 'i-a1'],
      Tag: [{ Key: 'k', Value: 'v' }],
    });
    await startExec(['i-c1', 'i-a1'], 'log-1');
    await call(client, 'oos', 'ListInstancePackageStates', { RegionId: REGION, InstanceId: 'i-b1' });
    await call(client, 'ecs', 'DescribeInstances', { RegionId: REGION });
    expect(lines.map((l) => [l['action'], l['instanceIds'], l['instanceId']])).toEqual([
      ['DescribeInstances', ['i-a1', 'i-b1'], undefined],
      ['RunCommand', ['i-c1'], undefined],
      ['TagResources', ['i-b1', 'i-a1'], undefined],
      ['StartExecution', ['i-c1', 'i-a1'], undefined],
      ['ListInstancePackageStates', ['i-b1'], 'i-b1'],
      ['DescribeInstances', undefined, undefined],
    ]);
  });
});
