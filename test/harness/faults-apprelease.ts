/**
 * The fault matrix's AppRelease scenario, sandbox subset: the real wrapper runs with bash per
 * instance directory (test/harness/fast-apprelease.ts), so "what the host runs" is read from the
 * host's files (`appDir/current`), not from a model. One schedule: v1 canary → pause → promote →
 * batches; v2 whose health check fails on one host of its second batch → automatic rollback; each
 * acting RunCommand (canary deploy, first batch deploy, rollback) with its drawn fault; then healed
 * and re-run fault-free with a healthy v3 that must reach every live host.
 */
import { createHash } from 'node:crypto';
import { existsSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  PROMOTE_REQUESTED_ANNOTATION,
  type AppRelease,
  type AppReleaseSpec,
} from '../../src/api/apprelease.js';
import { OWNER_UID_TAG, RECONCILE_REQUESTED_ANNOTATION } from '../../src/api/common.js';
import { revisionOf } from '../../src/controllers/apprelease/wrapper.js';
import type { InvocationRecord } from '../../src/emulator/index.js';
import { appSpec, startAppReleaseStack, type AppReleaseStack } from './fast-apprelease.js';
import {
  CLOUD_MAX_RETRIES,
  injectFault,
  knownAtOf,
  REGION,
  startFaultStack,
  type DrawTable,
  type FaultDraw,
  type RequestLine,
  type Violation,
} from './fast-faults.js';

/** The AppRelease scenario's acting calls. */
export const APP_ACTIONS = ['RunCommand:canary', 'RunCommand:batch', 'RunCommand:rollback'] as const;
export type AppSchedule = Record<(typeof APP_ACTIONS)[number], FaultDraw>;

/** app.sh of a version; `health` fails on the instance named `failHealthOn`. */
function appScript(version: string, failHealthOn = 'none'): string {
  return [
    '#!/bin/bash',
    'case "$1" in',
    `  start) echo "${version}" > "$APP_DIR/../running"; exit 0 ;;`,
    `  health) [ "$ECSOPS_INSTANCE_ID" = "${failHealthOn}" ] && { echo unhealthy; exit 1; }; exit 0 ;;`,
    'esac',
  ].join('\n');
}

const TERMINAL_INVOKE = new Set(['Success', 'Failed', 'Timeout', 'Invalid', 'Cancelled', 'Terminated']);

/**
 * Runs one AppRelease schedule over `count` (≤ 12) sandboxed instances; see the module comment.
 * @returns the invariant violations.
 */
export async function runAppSandboxSchedule(
  sched: AppSchedule,
  o: { count?: number; table?: DrawTable; stats?: Record<string, unknown> } = {},
): Promise<Violation[]> {
  const count = o.count ?? 12;
  const requests: RequestLine[] = [];
  let armed: { err: Error; action: string; live: boolean } | undefined;
  let patchFired = false;
  const s: AppReleaseStack = await startAppReleaseStack({
    seed: {
      regions: {
        [REGION]: { generate: [{ count, idPrefix: 'i-as', tags: [{ key: 'app', value: 'shop' }] }] },
      },
    },
    emulator: {
      logger: (line) => {
        const l = line as RequestLine;
        requests.push(l);
        if (armed && !armed.live && l.status === 200 && l.action === armed.action) {
          armed.live = true;
          s.store.patchFaults.push(armed.err);
          patchFired = true;
        }
      },
    },
  });
  const violations: Violation[] = [];
  const named = new Set<string>();
  const firstNamed = new Map<string, number>();
  const uidHolder = { uid: '' };
  const patch = s.store.patchStatus.bind(s.store);
  s.store.patchStatus = async (obj, st) => {
    const out = await patch(obj, st);
    for (const e of st.executions ?? []) if (e.executionId) named.add(e.executionId);
    for (const b of st.rollout?.batches ?? []) for (const id of b.invokeIds) named.add(id);
    for (const id of st.rollout?.rollback?.invokeIds ?? []) named.add(id);
    for (const r of st.instances ?? []) if (r.executionId?.startsWith('t-')) named.add(r.executionId);
    const now = Date.now();
    for (const id of named) if (!firstNamed.has(id)) firstNamed.set(id, now);
    return out;
  };
  let restartRule: string | undefined;
  const ruleLeft = async (id: string): Promise<number> => {
    const r = ((await s.emu.control.getFaults()).failNext ?? []).find((x) => x.id === id);
    return r ? (r.count ?? 1) : 0;
  };
  const drive = async (done: (x: AppRelease | undefined) => boolean, maxRounds = 400): Promise<boolean> => {
    for (let i = 0; i < maxRounds; i++) {
      const step = await s.reconcile('shop');
      if (restartRule && (await ruleLeft(restartRule)) === 0) {
        restartRule = undefined;
        s.restart();
      }
      if (done(s.get('shop'))) return true;
      const wait = step.error ? 1_000 : (step.result?.requeueAfterMs ?? 1_000);
      s.clock.advance(Math.min(wait, 60_000));
      await sleep(step.error ? 2 : Math.min(20, Math.max(2, wait / 100)));
    }
    return done(s.get('shop'));
  };
  const live = async () =>
    (await s.emu.control.listInstances(REGION))
      .filter((i) => i.tags['app'] === 'shop')
      .map((i) => i.instanceId)
      .sort();
  const ids = await live();
  const failHealthOn = ids[4] ?? ids[ids.length - 1] ?? 'none'; // in v2's second batch
  /** Installs one draw in front of the next RunCommand with `action`; see injectFault in fast-faults.ts. */
  const inject = async (d: FaultDraw, paramAction: string) => {
    const uid = s.get('shop')?.metadata.uid ?? uidHolder.uid;
    const match = { ownerUid: uid, parameter: { key: 'action', value: paramAction } };
    const before = requests.length;
    const rules: Array<[string, number, number]> = []; // id, count, needed for a hit
    const add = async (r: Omit<Parameters<typeof s.emu.control.addFaultRule>[0], 'match'>, need: number) => {
      const id = await s.emu.control.addFaultRule({ ...r, match });
      rules.push([id, r.count ?? 1, need]);
      return id;
    };
    let heal = async (): Promise<void> => {};
    const victims = ids.filter((id) => id !== failHealthOn);
    const victim = victims[d.pick % victims.length] as string;
    patchFired = false;
    switch (d.fault) {
      case 'throttledPastRetries':
        await add(
          {
            action: 'RunCommand',
            code: 'Throttling.User',
            httpStatus: 400,
            count: CLOUD_MAX_RETRIES + 1 + (d.extra % 3),
          },
          CLOUD_MAX_RETRIES + 1,
        );
        break;
      case 'serverError5xx':
        await add(
          {
            action: 'RunCommand',
            code: d.variant ? 'InternalError' : 'ServiceUnavailable',
            httpStatus: d.variant ? 500 : 503,
            count: 1 + (d.extra % 3),
          },
          1,
        );
        break;
      case 'resetBefore':
        await add({ action: 'RunCommand', kind: 'reset' }, 1);
        break;
      case 'answerLostAfter':
        await add({ action: 'RunCommand', kind: 'responseLoss' }, 1);
        break;
      case 'restartAfterLostAnswer':
        restartRule = await add({ action: 'RunCommand', kind: 'responseLoss' }, 1);
        break;
      case 'statusPatchAfterStartFails':
        armed = {
          err: new Error(
            d.variant ? '409 Conflict: the object has been modified' : '500 Internal Server Error',
          ),
          action: 'RunCommand',
          live: false,
        };
        break;
      case 'instanceStopped':
      case 'agentOffline':
        await s.emu.control.updateInstance(
          REGION,
          victim,
          d.fault === 'instanceStopped' ? { status: 'Stopped' } : { cloudAssistantOnline: false },
        );
        heal = async () => {
          await s.emu.control.updateInstance(REGION, victim, {
            status: 'Running',
            cloudAssistantOnline: true,
          });
        };
        break;
      case 'instanceReleased':
        await s.emu.control.releaseInstance(REGION, victim);
        ids.splice(ids.indexOf(victim), 1);
        break;
      case 'none':
        break;
    }
    return {
      async hit(): Promise<boolean> {
        if (d.fault === 'statusPatchAfterStartFails') return patchFired;
        if (rules.length === 0) return requests.slice(before).some((r) => r.action === 'RunCommand');
        for (const [id, n, need] of rules) if (n - (await ruleLeft(id)) < need) return false;
        return true;
      },
      async end(): Promise<void> {
        for (const [id] of rules) await s.emu.control.removeFaultRule(id);
        armed = undefined;
        restartRule = undefined;
        await heal();
      },
    };
  };
  const host = (id: string): string | undefined => {
    const link = join(s.appDir(id), 'current');
    return existsSync(link) ? readlinkSync(link).replace(/^releases\//, '') : undefined;
  };
  const phaseIn =
    (...p: string[]) =>
    (x: AppRelease | undefined) =>
      p.includes(x?.status?.phase ?? '');
  const phases: string[] = [];
  const record = async (action: (typeof APP_ACTIONS)[number], f: Awaited<ReturnType<typeof inject>>) => {
    phases.push(`${action}→${s.get('shop')?.status?.phase ?? '?'}`);
    o.table?.add('AppRelease(sandbox)', action, sched[action].fault, await f.hit());
    await f.end();
  };
  try {
    const v1 = s.artifacts.add('shop-1', { 'app.sh': appScript('1') }, s.root);
    const v2 = s.artifacts.add('shop-2', { 'app.sh': appScript('2', failHealthOn) }, s.root);
    const v3 = s.artifacts.add('shop-3', { 'app.sh': appScript('3') }, s.root);
    const spec = (a: typeof v1, version: string, pause: boolean): AppReleaseSpec =>
      appSpec(s, a, { version, strategy: { batchSize: 3, canary: { instances: 1, pause }, maxErrors: 0 } });

    // 1. v1: canary (its deploy RunCommand faulted), paused
    const created = s.apply('shop', spec(v1, '1.0.0', true));
    uidHolder.uid = created.metadata.uid ?? '';
    let f = await inject(sched['RunCommand:canary'], 'deploy');
    await drive(phaseIn('Paused', 'Failed', 'RolledBack', 'Succeeded'));
    await record('RunCommand:canary', f);
    // 2. promote: the batches (the first batch's deploy faulted)
    f = await inject(sched['RunCommand:batch'], 'deploy');
    s.store.annotate('default', 'shop', { [PROMOTE_REQUESTED_ANNOTATION]: '2026-06-01T12:00:00Z' });
    await drive(phaseIn('Succeeded', 'Failed', 'RolledBack'));
    await record('RunCommand:batch', f);
    if (s.get('shop')?.status?.phase !== 'Succeeded') {
      // the fault-free re-run of v1 (a fault left it failed or rolled back): re-requested
      s.store.annotate('default', 'shop', { [RECONCILE_REQUESTED_ANNOTATION]: 'v1-rerun' });
      await drive(phaseIn('Succeeded'));
    }
    // 3. v2: health fails on one host of batch 2 → automatic rollback (its RunCommand faulted)
    f = await inject(sched['RunCommand:rollback'], 'rollback');
    s.apply('shop', spec(v2, '2.0.0', false));
    const rolledBack = await drive(phaseIn('RolledBack', 'Failed'));
    await record('RunCommand:rollback', f);
    if (!rolledBack || s.get('shop')?.status?.phase !== 'RolledBack') await drive(phaseIn('RolledBack'));
    const after = s.get('shop');
    const stable = after?.status?.stableRevision;
    if (after?.status?.phase === 'RolledBack')
      for (const r of after.status.instances ?? [])
        if (
          r.state === 'RolledBack' &&
          (await live()).includes(r.instanceId) &&
          host(r.instanceId) !== stable
        )
          violations.push({
            invariant: 'no terminal status the emulator contradicts',
            detail: `${r.instanceId} RolledBack but the host runs ${host(r.instanceId) ?? 'nothing'}, stable ${stable}`,
          });
    // 4. the fault-free re-run: a healthy v3 reaches every live host
    const v3obj = s.apply('shop', spec(v3, '3.0.0', false));
    const rev3 = revisionOf(v3obj.spec);
    const ok = await drive((x) => x?.status?.phase === 'Succeeded' && x.status.currentRevision === rev3, 800);
    if (!ok)
      violations.push({
        invariant: 'the fault-free re-run converges',
        detail: `phase ${s.get('shop')?.status?.phase}: ${JSON.stringify(s.get('shop')?.status?.conditions?.find((c) => c.type === 'Ready'))}`,
      });
    else
      for (const id of await live())
        if (host(id) !== rev3)
          violations.push({
            invariant: 'no terminal status the emulator contradicts',
            detail: `Succeeded at ${rev3} but ${id} runs ${host(id) ?? 'nothing'}`,
          });
    // the emulator's invocation records
    const mine = (await s.emu.control.listInvocations()).filter(
      (v) => v.tags[OWNER_UID_TAG] === uidHolder.uid,
    );
    violations.push(...checkInvocations(mine, named, requests, (id) => knownAtOf(id, firstNamed, requests)));
    if (o.stats)
      Object.assign(o.stats, {
        phases,
        invocations: mine.map((v) => `${String(v.parameters['action'])}:${v.instances.length}`),
      });
  } finally {
    await s.stop();
  }
  return violations;
}

/**
 * Invariants over one owner's invocations: none for the same (action, revision) starts on an
 * instance while an earlier one runs there, or before the earlier one reached the controller
 * (`knownAt`); every one ends; every one reached the controller (named in status, or its
 * RunCommand answer delivered).
 */
export function checkInvocations(
  invs: InvocationRecord[],
  named: Set<string>,
  requests: RequestLine[],
  knownAt?: (id: string) => number | undefined,
): Violation[] {
  const out: Violation[] = [];
  const delivered = new Set(
    requests
      .filter((r) => r.status === 200 && (r as { invokeId?: string }).invokeId)
      .map((r) => (r as { invokeId?: string }).invokeId as string),
  );
  const key = (v: InvocationRecord) =>
    `${String(v.parameters['action'])}|${String(v.parameters['revision'])}`;
  const runs = invs.flatMap((v) =>
    v.instances.map((i) => ({ v, i, from: i.startedAtMs ?? Date.parse(i.creationTime), to: i.finishedAtMs })),
  );
  for (const a of runs)
    for (const b of runs) {
      if (a.v === b.v || a.i.instanceId !== b.i.instanceId || key(a.v) !== key(b.v)) continue;
      if (b.from < a.from || (b.from === a.from && a.v.invokeId >= b.v.invokeId)) continue;
      if (a.to === undefined || a.to > b.from)
        out.push({
          invariant: 'no second start while an earlier one runs',
          detail: `${b.v.invokeId} (${key(b.v)}) started on ${b.i.instanceId} while ${a.v.invokeId} ran`,
        });
      const known = knownAt?.(a.v.invokeId);
      const bSent =
        requests.find((r) => r.status === 200 && r.invokeId === b.v.invokeId)?.receivedAtMs ?? b.from;
      if (knownAt && (known === undefined || known > bSent))
        out.push({
          invariant: 'no second start while an earlier one is unrecorded',
          detail: `${b.v.invokeId} (${key(b.v)}) started on ${b.i.instanceId} before ${a.v.invokeId} reached the controller`,
        });
    }
  for (const v of invs) {
    for (const i of v.instances)
      if (!TERMINAL_INVOKE.has(i.status))
        out.push({ invariant: 'every start ends', detail: `${v.invokeId} on ${i.instanceId}: ${i.status}` });
    if (!named.has(v.invokeId) && !delivered.has(v.invokeId))
      out.push({
        invariant: 'every start recorded',
        detail: `${v.invokeId} (${key(v)}) never in status nor delivered to the controller`,
      });
  }
  return out;
}

// ---------------------------------------------------------------- scripted (≥ 120 instances)

/** A syntactically valid artifact (never downloaded: the scripted model runs no wrapper). */
function scriptedArtifact(version: string) {
  return {
    url: `http://127.0.0.1:9/shop-${version}.tar.gz`,
    sha256: createHash('sha256').update(`shop-${version}`).digest('hex'),
  };
}

/**
 * Each host's modelled revision, from the emulator's invocation records: the revision of its last
 * run (by finish time) that succeeded, or failed after the swap (`start` / `validate` / `health`).
 */
export function modelledRevisions(invs: InvocationRecord[]): Map<string, string | undefined> {
  const runs = invs
    .flatMap((v) => v.instances.map((i) => ({ v, i })))
    .filter(({ i }) => i.finishedAtMs !== undefined)
    .sort((a, b) => (a.i.finishedAtMs ?? 0) - (b.i.finishedAtMs ?? 0));
  const out = new Map<string, string | undefined>();
  for (const { v, i } of runs) {
    const swapped = i.status === 'Success' || /result=failed step=(start|validate|health)/.test(i.output);
    if (!swapped) continue;
    const action = String(v.parameters['action']);
    const rev = String(v.parameters['revision']);
    out.set(i.instanceId, action === 'uninstall' || rev === 'none' ? undefined : rev);
  }
  return out;
}

/**
 * Runs one AppRelease schedule over `count` (≥ 120) instances on scripted invocations (the
 * emulator models the wrapper: {@link modelledRevisions}): v1 canary → pause → promote → batches of
 * 25 %; v2 whose health fails on one host of its second batch → automatic rollback; then, healed and
 * fault-free, a healthy v3 must reach every live host. A PatchPolicy-free, EcsExtension-free run:
 * the cross-kind overlap is checked by the PatchPolicy scenario.
 */
export async function runAppScriptedSchedule(
  sched: AppSchedule,
  o: { count?: number; table?: DrawTable; stats?: Record<string, unknown> } = {},
): Promise<Violation[]> {
  const count = o.count ?? 120;
  const s = await startFaultStack({
    seed: {
      regions: {
        [REGION]: { generate: [{ count, idPrefix: 'i-ap', tags: [{ key: 'app', value: 'shop' }] }] },
      },
    },
  });
  const violations: Violation[] = [];
  try {
    const live = async () =>
      (await s.emu.control.listInstances(REGION))
        .filter((i) => i.tags['app'] === 'shop')
        .map((i) => i.instanceId)
        .sort();
    const ids = await live();
    const spec = (version: string, pause: boolean): AppReleaseSpec => ({
      regionId: REGION,
      targets: { tags: [{ key: 'app', value: 'shop' }] },
      application: 'shop',
      version,
      artifact: scriptedArtifact(version),
      install: { appDir: '/opt/shop', keepReleases: 3 },
      hooks: { start: { script: './app.sh start' } },
      healthCheck: { exec: { script: './app.sh health' }, periodSeconds: 1, failureThreshold: 1 },
      strategy: { batchSize: '25%', canary: { instances: 1, pause }, maxErrors: 0 },
      rollback: { automatic: true },
    });
    const rev2 = revisionOf(spec('2.0.0', false));
    const failHealthOn = ids[Math.min(ids.length - 1, 1 + Math.ceil(ids.length / 4) + 3)] as string; // batch 2
    await s.emu.control.scriptInvocation({
      instanceId: failHealthOn,
      parameters: { action: 'deploy', revision: rev2 },
      wrapper: true,
      exitCode: 1,
      failStep: 'health',
      delayMs: 2_000,
    });
    await s.emu.control.scriptInvocation({ wrapper: true, delayMs: 2_000 });
    const created = s.applyApp('shop', spec('1.0.0', true));
    const uid = created.metadata.uid ?? '';
    const keys = ['app/shop'];
    const get = () => s.app.get('default', 'shop');
    const phaseIn =
      (...p: string[]) =>
      () =>
        p.includes(get()?.status?.phase ?? '');
    const targets = async () => (await live()).filter((id) => id !== failHealthOn);
    const phases: string[] = [];
    const step = async (
      action: (typeof APP_ACTIONS)[number],
      paramAction: string,
      act: () => void,
      done: () => boolean,
    ) => {
      const d = sched[action];
      const f = await injectFault(s, d, 'RunCommand', { uid, paramAction, targets });
      act();
      await s.drive(keys, done, { maxRounds: 400, maxStepMs: 60_000 });
      o.table?.add('AppRelease(scripted)', action, d.fault, await f.hit());
      phases.push(`${action}→${get()?.status?.phase ?? '?'}`);
      await f.cleanup();
      await f.heal();
    };
    await step(
      'RunCommand:canary',
      'deploy',
      () => {},
      phaseIn('Paused', 'Failed', 'RolledBack', 'Succeeded'),
    );
    await step(
      'RunCommand:batch',
      'deploy',
      () => s.app.annotate('default', 'shop', { [PROMOTE_REQUESTED_ANNOTATION]: '2026-06-01T12:00:00Z' }),
      phaseIn('Succeeded', 'Failed', 'RolledBack'),
    );
    await step(
      'RunCommand:rollback',
      'rollback',
      () => s.applyApp('shop', spec('2.0.0', false)),
      phaseIn('RolledBack', 'Failed'),
    );
    await s.drive(keys, phaseIn('RolledBack', 'Failed'), { maxRounds: 400, maxStepMs: 60_000 });
    const mine = async () =>
      (await s.emu.control.listInvocations()).filter((v) => v.tags[OWNER_UID_TAG] === uid);
    const lies = async (what: string) => {
      const x = get();
      const model = modelledRevisions(await mine());
      const alive = new Set(await live());
      for (const r of x?.status?.instances ?? []) {
        if (!alive.has(r.instanceId)) continue;
        const want =
          r.state === 'Updated'
            ? x?.status?.currentRevision
            : r.state === 'RolledBack'
              ? x?.status?.stableRevision
              : null;
        if (want !== null && model.get(r.instanceId) !== want)
          violations.push({
            invariant: 'no terminal status the emulator contradicts',
            detail: `${what}: ${r.instanceId} ${r.state} (${want}) but the host model runs ${model.get(r.instanceId) ?? 'nothing'}`,
          });
      }
    };
    await lies('after rollback');
    // the fault-free re-run: a healthy v3 reaches every live host
    const v3 = s.applyApp('shop', spec('3.0.0', false));
    const rev3 = revisionOf(v3.spec);
    const ok = await s.drive(
      keys,
      () => get()?.status?.phase === 'Succeeded' && get()?.status?.currentRevision === rev3,
      {
        maxRounds: 800,
        maxStepMs: 60_000,
      },
    );
    if (!ok)
      violations.push({
        invariant: 'the fault-free re-run converges',
        detail: `phase ${get()?.status?.phase}: ${JSON.stringify(get()?.status?.conditions?.find((c) => c.type === 'Ready'))}`,
      });
    else {
      const model = modelledRevisions(await mine());
      for (const id of await live())
        if (model.get(id) !== rev3)
          violations.push({
            invariant: 'no terminal status the emulator contradicts',
            detail: `Succeeded at ${rev3} but the host model of ${id} runs ${model.get(id) ?? 'nothing'}`,
          });
    }
    await lies('after v3');
    const invs = await mine();
    violations.push(...checkInvocations(invs, s.recorded.get(uid) ?? new Set(), s.requests, s.knownAt));
    if (o.stats)
      Object.assign(o.stats, {
        phases,
        invocations: invs.map((v) => `${String(v.parameters['action'])}:${v.instances.length}`),
      });
  } finally {
    await s.stop();
  }
  return violations;
}
