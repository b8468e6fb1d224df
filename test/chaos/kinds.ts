/**
 * R1 (SIGKILL crash-restart) and R6 (leader failover) for PatchPolicy and AppRelease: the same
 * kill schedules as the EcsExtension scenarios (r1-crash.ts, r6-leader.ts) over rounds of new
 * desired state, with a per-kind driver that creates the objects, starts the next round, judges
 * convergence and counts duplicate starts from the emulator's own records.
 *
 * PatchPolicy round r: every instance gets fresh Missing patches (emulator control API) and each
 * policy the scan-requested annotation `r<r>`; an inline window that is always open lets the
 * controller scan, then install (executions of 50, two installs at once, OOS concurrency 100 %). A duplicate is a second scan or install item for the same
 * (policy, operation, round, instance); an execution's round is the round current when the emulator
 * answered its StartExecution (a round only starts once the previous one converged).
 *
 * AppRelease round r: a new artifact (URL and sha256), hence a new revision, rolled out in
 * batches of 25 by RunCommand; the emulator in scripted mode answers every invocation with exit 0
 * and no output. A duplicate is a second RunCommand item for the same (release, action, revision,
 * instance), from the emulator's invocation records. Convergence is also read from the emulator:
 * every instance carries the revision tag `ecsops.io/app.<application>` of the current revision.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { OWNER_UID_TAG } from '../../src/api/common.js';
import { SCAN_REQUESTED_ANNOTATION } from '../../src/api/patchpolicy.js';
import { startEmulator, type Emulator, type Seed } from '../../src/emulator/index.js';
import { kubeRequestRaw } from '../harness/kube-raw.js';
import {
  API,
  ControllerProc,
  createNamespace,
  ids,
  isReady,
  list,
  metricSum,
  metricsText,
  patchSpec,
  REGION,
  Rng,
  until,
  type Figure,
  type Obj,
} from './lib.js';
import type { ChaosContext } from './run.js';

/** Duplicate count of one kind. */
export interface KindDuplicates {
  /** OOS executions (PatchPolicy) or Cloud Assistant invocations (AppRelease) of these owners. */
  starts: number;
  /** Instance runs (execution items not Skipped / invocation instances). */
  itemsRun: number;
  duplicates: number;
  examples: string[];
}

/** What R1 / R6 need to know about a kind. */
export interface KindDriver {
  kind: 'PatchPolicy' | 'AppRelease';
  plural: string;
  /** The cloud call whose answer the R1 "window" kills follow. */
  startAction: 'StartExecution' | 'RunCommand';
  /** Noun of `starts` in the report. */
  startNoun: string;
  /** Objects and instances per object. */
  count: number;
  per: number;
  /** Emulator seed: count × per instances `i-<prefix>NNNN`. */
  seed(): Seed;
  /** Sets up the emulator (scripted outcomes). */
  prepare(emu: Emulator): Promise<void>;
  /** Creates the objects at round 1; returns their UIDs. */
  create(ctx: ChaosContext, ns: string, emu: Emulator): Promise<Set<string>>;
  /** Starts `round` (the previous one converged). */
  advance(ctx: ChaosContext, ns: string, emu: Emulator, round: number): Promise<void>;
  /** Every object converged on `round`, judged from the objects AND the emulator. */
  converged(ctx: ChaosContext, ns: string, emu: Emulator, round: number): Promise<boolean>;
  /** Counts duplicate starts; `roundOf` maps execution IDs to the round current at their start. */
  duplicates(emu: Emulator, owners: Set<string>, roundOf: Map<string, number>): Promise<KindDuplicates>;
  /** Instance runs expected after `rounds` rounds when everything ran exactly once. */
  expectedItems(rounds: number): number;
  /** The result line's convergence check: instances at the last round's state. */
  latest(emu: Emulator, round: number): Promise<number>;
}

async function createObject(
  ctx: ChaosContext,
  ns: string,
  plural: string,
  body: Record<string, unknown>,
): Promise<Obj> {
  return (await kubeRequestRaw(ctx.kc, 'POST', `${API}/namespaces/${ns}/${plural}`, body)) as unknown as Obj;
}

async function annotate(
  ctx: ChaosContext,
  ns: string,
  plural: string,
  name: string,
  ann: Record<string, string>,
) {
  await kubeRequestRaw(
    ctx.kc,
    'PATCH',
    `${API}/namespaces/${ns}/${plural}/${name}`,
    { metadata: { annotations: ann } },
    'application/merge-patch+json',
  );
}

function genSeed(prefix: string, total: number): Seed {
  return {
    regions: {
      [REGION]: {
        generate: [{ count: total, idPrefix: `i-${prefix}`, tags: [{ key: 'fleet', value: prefix }] }],
      },
    },
  };
}

/** PatchPolicy: scan on request, install inside an always-open inline window. */
export function patchPolicyDriver(prefix: string, count = 3, per = 100): KindDriver {
  const all = ids(prefix, 1, count * per);
  const patchesOf = (round: number) =>
    [1, 2].map((n) => ({
      kbId: `KB-${prefix}-r${round}-${n}`,
      title: `chaos fix ${n} of round ${round}`,
      rebootRequired: false,
    }));
  const reseed = (emu: Emulator, round: number) =>
    emu.control.addInstances(
      REGION,
      all.map((instanceId) => ({
        instanceId,
        tags: [{ key: 'fleet', value: prefix }],
        patches: patchesOf(round),
      })),
    );
  const installedAll = async (emu: Emulator, round: number): Promise<number> => {
    const inst = await emu.control.listInstances(REGION);
    const mine = new Set(all);
    return inst.filter(
      (i) =>
        mine.has(i.instanceId) &&
        i.patches.length === 2 &&
        i.patches.every((p) => p.status === 'Installed' && p.kbId.startsWith(`KB-${prefix}-r${round}-`)),
    ).length;
  };
  return {
    kind: 'PatchPolicy',
    plural: 'patchpolicies',
    startAction: 'StartExecution',
    startNoun: 'executions',
    count,
    per,
    seed: () => genSeed(prefix, count * per),
    prepare: (emu) => reseed(emu, 1).then(() => undefined),
    async create(ctx, ns) {
      const owners = new Set<string>();
      for (let r = 0; r < count; r++) {
        const o = await createObject(ctx, ns, 'patchpolicies', {
          apiVersion: 'ecsops.io/v1alpha1',
          kind: 'PatchPolicy',
          metadata: { name: `p${r}`, annotations: { [SCAN_REQUESTED_ANNOTATION]: 'r1' } },
          spec: {
            regionId: REGION,
            targets: { instanceIds: all.slice(r * per, r * per + per) },
            interval: '1h',
            rateControl: { concurrency: '100%', maxErrors: 0 },
            install: {
              maintenanceWindow: { schedule: '0 * * * *', duration: '2h' },
              minRemaining: '10m',
              parallelBatches: 2,
            },
          },
        });
        owners.add(o.metadata.uid ?? '');
      }
      return owners;
    },
    async advance(ctx, ns, emu, round) {
      await reseed(emu, round);
      for (let r = 0; r < count; r++)
        await annotate(ctx, ns, 'patchpolicies', `p${r}`, { [SCAN_REQUESTED_ANNOTATION]: `r${round}` });
    },
    async converged(ctx, ns, emu, round) {
      const objs = await list(ctx.kc, ns, 'patchpolicies');
      const ok =
        objs.length === count &&
        objs.every(
          (o) =>
            isReady(o) &&
            o.status?.['lastHandledScanAt'] === `r${round}` &&
            o.status?.summary?.['compliant'] === per &&
            ((o.status?.['executions'] as unknown[] | undefined) ?? []).length === 0,
        );
      return ok && (await installedAll(emu, round)) === count * per;
    },
    async duplicates(emu, owners, roundOf) {
      const mine = (await emu.control.listExecutions({})).filter((e) =>
        owners.has(e.tags[OWNER_UID_TAG] ?? ''),
      );
      const seen = new Map<string, number>();
      let itemsRun = 0;
      for (const e of mine) {
        const round = roundOf.get(e.executionId) ?? 'unrecorded';
        for (const item of e.items) {
          if (item.status === 'Skipped') continue;
          itemsRun++;
          const key = `${e.tags[OWNER_UID_TAG]}|${String(e.parameters['action'])}|r${round}|${item.instanceId}`;
          seen.set(key, (seen.get(key) ?? 0) + 1);
        }
      }
      const dups = [...seen.entries()].filter(([, n]) => n > 1);
      return {
        starts: mine.length,
        itemsRun,
        duplicates: dups.reduce((a, [, n]) => a + n - 1, 0),
        examples: dups.slice(0, 3).map(([k, n]) => `${k} ×${n}`),
      };
    },
    expectedItems: (rounds) => 2 * count * per * rounds, // one scan and one install per instance per round
    latest: installedAll,
  };
}

/** AppRelease: a new artifact each round, batches of 25, scripted Cloud Assistant (exit 0). */
export function appReleaseDriver(prefix: string, count = 3, per = 100): KindDriver {
  const all = ids(prefix, 1, count * per);
  const artifact = (round: number) => ({
    url: `https://artifacts.example.com/chaos/${prefix}/g${round}.tar.gz`,
    sha256: createHash('sha256').update(`${prefix}-g${round}`).digest('hex'),
  });
  const app = (r: number) => `${prefix}${r}`;
  /** Instances whose revision tag equals the current revision of their release. */
  const tagged = async (emu: Emulator, revisions: Map<string, string>): Promise<number> => {
    const inst = await emu.control.listInstances(REGION);
    const byId = new Map(inst.map((i) => [i.instanceId, i]));
    let n = 0;
    for (let r = 0; r < count; r++) {
      const rev = revisions.get(app(r));
      if (!rev) continue;
      for (const id of all.slice(r * per, r * per + per))
        if (byId.get(id)?.tags[`ecsops.io/app.${app(r)}`] === rev) n++;
    }
    return n;
  };
  let lastRevisions = new Map<string, string>();
  return {
    kind: 'AppRelease',
    plural: 'appreleases',
    startAction: 'RunCommand',
    startNoun: 'invocations',
    count,
    per,
    seed: () => genSeed(prefix, count * per),
    // Scripted mode: every invocation succeeds after its modelled run time (no output).
    prepare: (emu) =>
      emu.control.scriptInvocation({ contains: 'ecsops AppRelease', exitCode: 0, delayMs: 5000 }),
    async create(ctx, ns) {
      const owners = new Set<string>();
      for (let r = 0; r < count; r++) {
        const o = await createObject(ctx, ns, 'appreleases', {
          apiVersion: 'ecsops.io/v1alpha1',
          kind: 'AppRelease',
          metadata: { name: `a${r}` },
          spec: {
            regionId: REGION,
            targets: { instanceIds: all.slice(r * per, r * per + per) },
            application: app(r),
            version: 'g1',
            artifact: artifact(1),
            hooks: { start: { script: 'echo start', timeoutSeconds: 30 } },
            strategy: { batchSize: 25, maxErrors: 0 },
          },
        });
        owners.add(o.metadata.uid ?? '');
      }
      return owners;
    },
    async advance(ctx, ns, _emu, round) {
      for (let r = 0; r < count; r++)
        await patchSpec(ctx.kc, ns, 'appreleases', `a${r}`, {
          version: `g${round}`,
          artifact: artifact(round),
        });
    },
    async converged(ctx, ns, emu) {
      const objs = await list(ctx.kc, ns, 'appreleases');
      if (objs.length !== count) return false;
      const ok = objs.every(
        (o) =>
          isReady(o) &&
          o.status?.['currentRevision'] !== undefined &&
          o.status?.['stableRevision'] === o.status?.['currentRevision'] &&
          o.status?.summary?.['updated'] === per,
      );
      if (!ok) return false;
      lastRevisions = new Map(
        objs.map((o) => [String(o.spec?.['application']), String(o.status?.['currentRevision'])]),
      );
      return (await tagged(emu, lastRevisions)) === count * per;
    },
    async duplicates(emu, owners) {
      const mine = (await emu.control.listInvocations()).filter((i) =>
        owners.has(i.tags[OWNER_UID_TAG] ?? ''),
      );
      const seen = new Map<string, number>();
      let itemsRun = 0;
      for (const inv of mine) {
        for (const it of inv.instances) {
          itemsRun++;
          const key = `${inv.tags[OWNER_UID_TAG]}|${String(inv.parameters['action'])}|${String(inv.parameters['revision'])}|${it.instanceId}`;
          seen.set(key, (seen.get(key) ?? 0) + 1);
        }
      }
      const dups = [...seen.entries()].filter(([, n]) => n > 1);
      return {
        starts: mine.length,
        itemsRun,
        duplicates: dups.reduce((a, [, n]) => a + n - 1, 0),
        examples: dups.slice(0, 3).map(([k, n]) => `${k} ×${n}`),
      };
    },
    expectedItems: (rounds) => count * per * rounds, // one deploy per instance per round
    latest: (emu) => tagged(emu, lastRevisions),
  };
}

/** Starts the emulator of a kind scenario; `onStart` sees every successful start call. */
async function kindEmulator(
  d: KindDriver,
  timeScale: number,
  onStart: (executionId: string | undefined) => void,
): Promise<Emulator> {
  const emu = await startEmulator({
    seed: d.seed(),
    timeScale,
    logger: (line) => {
      const l = line as { action?: string; status?: number; executionId?: string };
      if (l.action === d.startAction && l.status === 200) onStart(l.executionId);
    },
  });
  await d.prepare(emu);
  return emu;
}

/** R1 for one kind; see the module comment and r1-crash.ts. */
export async function r1CrashRestartKind(
  ctx: ChaosContext,
  kills: number,
  d: KindDriver,
  id: string,
): Promise<Figure> {
  const t0 = Date.now();
  const rng = new Rng(ctx.seed(id));
  let onStart: (() => void) | undefined;
  let round = 1;
  const roundOf = new Map<string, number>();
  const emu = await kindEmulator(d, 0.02, (executionId) => {
    if (executionId && !roundOf.has(executionId)) roundOf.set(executionId, round);
    onStart?.();
  });
  const ns = `chaos-${id.toLowerCase()}`;
  const procs: ControllerProc[] = [];
  const spawn = (): ControllerProc => {
    const p = new ControllerProc({
      kubeconfig: ctx.cp.kubeconfigPath,
      namespace: ns,
      emu,
      logLevel: 'warn',
      extraArgs: ['--cloud-qps', '500'],
    });
    procs.push(p);
    return p;
  };
  try {
    await createNamespace(ctx.kc, ns);
    let proc = spawn();
    const owners = await d.create(ctx, ns, emu);
    await until(`${id} round 1 converged`, () => d.converged(ctx, ns, emu, round), 180_000, 200);
    const timelineMs = Date.now() - proc.startedAt;
    const counts = { timer: 0, afterStart: 0 };
    for (let k = 0; k < kills; k++) {
      if (await d.converged(ctx, ns, emu, round).catch(() => false)) {
        round++;
        await d.advance(ctx, ns, emu, round);
      }
      if (!proc.alive) proc = spawn();
      const window = rng.float() < 0.5;
      const delay = rng.float(0, timelineMs);
      const victim = proc;
      if (window) {
        let fired = false;
        await new Promise<void>((resolve) => {
          const t = setTimeout(() => {
            onStart = undefined;
            resolve();
          }, delay + 6000);
          onStart = () => {
            onStart = undefined;
            victim.child.kill('SIGKILL');
            clearTimeout(t);
            counts.afterStart++;
            fired = true;
            resolve();
          };
        });
        if (!fired) counts.timer++;
      } else {
        await sleep(delay);
        counts.timer++;
      }
      await victim.kill('SIGKILL');
      if (victim.exit?.signal !== 'SIGKILL')
        throw new Error(`controller exited on its own: ${JSON.stringify(victim.exit)}\n${victim.tail()}`);
      proc = spawn();
    }
    const readyAfter = Date.now();
    await until(`every ${id} resource converged`, () => d.converged(ctx, ns, emu, round), 300_000, 500);
    const convergeS = (Date.now() - readyAfter) / 1000;
    const dup = await d.duplicates(emu, owners, roundOf);
    const crashes = procs.filter((p) => p.crashed).length;
    const latest = await d.latest(emu, round);
    const total = d.count * d.per;
    const pass = dup.duplicates === 0 && crashes === 0 && latest === total;
    return {
      id,
      title: `crash-restart (SIGKILL), ${d.kind}`,
      pass,
      seed: rng.seed,
      seconds: (Date.now() - t0) / 1000,
      line: `${id} crash-restart, ${d.kind}: ${kills} SIGKILLs (${counts.afterStart} right after a ${d.startAction} answer, ${counts.timer} at a uniform delay over the ${(timelineMs / 1000).toFixed(1)} s from start-up to convergence of an undisturbed round) over ${round} rounds of ${d.count} resources × ${d.per} instances; ${dup.starts} ${d.startNoun}, ${dup.itemsRun} instance runs (exactly once per instance${d.kind === 'PatchPolicy' ? ', operation (scan, install)' : ''} per round: ${d.expectedItems(round)}), duplicates ${dup.duplicates}; all converged ${convergeS.toFixed(1)} s after the last restart; instances at the last round's state ${latest}/${total}; unexpected exits ${crashes}`,
      details: dup.examples,
    };
  } finally {
    for (const p of procs) await p.kill('SIGKILL');
    await ctx.deleteNamespace(ns);
    await emu.stop();
  }
}

const LEASE_MS = 4000;
const RETRY_MS = 500;
const SHUTDOWN_MS = 3000;
/** The manager's bounded wait for aborted reconciles after the shutdown deadline (src/runtime/manager.ts). */
const ABORT_GRACE_MS = 5000;

/** R6 for one kind; see the module comment and r6-leader.ts. */
export async function r6LeaderFailoverKind(ctx: ChaosContext, d: KindDriver, id: string): Promise<Figure> {
  const t0 = Date.now();
  const rng = new Rng(ctx.seed(id));
  const kills = ctx.profile.r6Kills;
  let round = 1;
  const roundOf = new Map<string, number>();
  const emu = await kindEmulator(d, 0.05, (executionId) => {
    if (executionId && !roundOf.has(executionId)) roundOf.set(executionId, round);
  });
  const ns = `chaos-${id.toLowerCase()}`;
  const lease = `ecsops-chaos-${id.toLowerCase()}`;
  const procs: ControllerProc[] = [];
  const replicas: Record<string, ControllerProc> = {};
  const start = (name: string): ControllerProc => {
    const p = new ControllerProc({
      kubeconfig: ctx.cp.kubeconfigPath,
      namespace: ns,
      emu,
      name,
      logLevel: 'info',
      extraArgs: [
        '--leader-elect',
        'true',
        '--leader-election-id',
        lease,
        '--leader-election-namespace',
        ns,
        '--lease-duration',
        `${LEASE_MS}ms`,
        '--renew-deadline',
        '3s',
        '--retry-period',
        `${RETRY_MS}ms`,
        '--cloud-qps',
        '500',
        '--shutdown-timeout',
        `${SHUTDOWN_MS}ms`,
      ],
    });
    procs.push(p);
    replicas[name] = p;
    return p;
  };
  const holder = async (): Promise<string | undefined> => {
    const l = (await kubeRequestRaw(
      ctx.kc,
      'GET',
      `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/${lease}`,
    )) as {
      spec?: { holderIdentity?: string };
    };
    return l.spec?.holderIdentity || undefined;
  };
  try {
    await createNamespace(ctx.kc, ns);
    start('replica-a');
    start('replica-b');
    let leader = await until('a leader', holder, 60_000, 100);
    const owners = await d.create(ctx, ns, emu);
    const handovers: Array<{ signal: string; ms: number }> = [];
    const statusErrors: string[] = [];
    for (let k = 0; k < kills; k++) {
      if (await d.converged(ctx, ns, emu, round).catch(() => false)) {
        round++;
        await d.advance(ctx, ns, emu, round);
      }
      await sleep(rng.float(500, 4000));
      const signal = k % 2 === 0 ? 'SIGKILL' : 'SIGTERM';
      const victim = replicas[leader]!;
      const other = leader === 'replica-a' ? 'replica-b' : 'replica-a';
      const killedAt = Date.now();
      victim.child.kill(signal);
      const next = await until(
        `hand-over to ${other}`,
        async () => ((await holder()) === other ? other : undefined),
        30_000,
        50,
      );
      handovers.push({ signal, ms: Date.now() - killedAt });
      await victim.kill('SIGKILL');
      leader = next;
      start(victim.opts.name!);
      await until(
        'leader_election_master_status 1 on the leader and 0 on the standby',
        async () => {
          const [lt, st] = await Promise.all([
            metricsText(await replicas[leader]!.metricsPort),
            metricsText(await replicas[victim.opts.name!]!.metricsPort),
          ]);
          return (
            metricSum(lt, 'leader_election_master_status') === 1 &&
            metricSum(st, 'leader_election_master_status') === 0
          );
        },
        15_000,
        200,
      ).catch((e: unknown) => statusErrors.push(`kill ${k + 1}: ${(e as Error).message.slice(0, 200)}`));
    }
    const readyAfter = Date.now();
    await until(`every ${id} resource converged`, () => d.converged(ctx, ns, emu, round), 300_000, 500);
    const convergeS = (Date.now() - readyAfter) / 1000;
    const dup = await d.duplicates(emu, owners, roundOf);
    const crashes = procs.filter((p) => p.crashed).length;
    const latest = await d.latest(emu, round);
    const total = d.count * d.per;
    const max = (sig: string): number =>
      Math.max(0, ...handovers.filter((h) => h.signal === sig).map((h) => h.ms));
    const target = LEASE_MS + RETRY_MS;
    const bound = LEASE_MS + 2 * 2.2 * RETRY_MS;
    const overTarget = handovers.filter((h) => h.signal === 'SIGKILL' && h.ms > target).length;
    const termBound = SHUTDOWN_MS + ABORT_GRACE_MS + RETRY_MS;
    const pass =
      dup.duplicates === 0 &&
      crashes === 0 &&
      latest === total &&
      statusErrors.length === 0 &&
      max('SIGKILL') <= bound &&
      max('SIGTERM') <= termBound;
    return {
      id,
      title: `leader failover, ${d.kind}`,
      pass,
      seed: rng.seed,
      seconds: (Date.now() - t0) / 1000,
      findings:
        overTarget > 0
          ? [`${overTarget} SIGKILL hand-over(s) above lease + retry (max ${max('SIGKILL')} ms)`]
          : [],
      line: `${id} leader failover, ${d.kind}: ${kills} leader kills during ${round} rounds of ${d.count} × ${d.per} instances (${handovers.filter((h) => h.signal === 'SIGKILL').length} SIGKILL, ${handovers.filter((h) => h.signal === 'SIGTERM').length} SIGTERM); max hand-over SIGKILL ${max('SIGKILL')} ms, SIGTERM ${max('SIGTERM')} ms (SIGKILL: issue target lease + retry = ${target} ms exceeded ${overTarget} times; elector bound lease + 2 × 2.2 × retry = ${bound} ms; SIGTERM drain ≤ ${termBound} ms); ${dup.starts} ${d.startNoun}, ${dup.itemsRun} instance runs (exactly once per instance${d.kind === 'PatchPolicy' ? ', operation' : ''} per round: ${d.expectedItems(round)}), duplicates ${dup.duplicates}; all converged ${convergeS.toFixed(1)} s after the last kill; instances at the last round's state ${latest}/${total}; leader_election_master_status wrong after ${statusErrors.length} hand-overs; unexpected exits ${crashes}`,
      details: [
        `hand-overs (ms): ${handovers.map((h) => `${h.signal === 'SIGKILL' ? 'K' : 'T'}${h.ms}`).join(' ')}`,
        ...dup.examples,
        ...statusErrors,
      ],
    };
  } finally {
    for (const p of procs) await p.kill('SIGKILL');
    await ctx.deleteNamespace(ns);
    await emu.stop();
  }
}
