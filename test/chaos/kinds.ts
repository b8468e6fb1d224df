/**
 * The kinds R1 (SIGKILL crash-restart, r1-crash.ts) and R6 (leader failover, r6-leader.ts) run
 * for: one {@link KindDriver} per kind creates the objects, starts the next round of desired
 * state, judges convergence and counts duplicate starts from the emulator's own records; a
 * {@link KindRun} holds what both figures share (emulator, namespace, controller processes,
 * rounds, the outcome).
 *
 * EcsExtension round r: every resource's package parameter `version` becomes `g<r>` (an `update`
 * round). A duplicate is a second execution item for the same (resource, action, parameters,
 * instance).
 *
 * PatchPolicy round r: every instance gets fresh Missing patches (emulator control API) and each
 * policy the scan-requested annotation `r<r>`; an inline window that is always open lets the
 * controller scan, then install (executions of 50, two installs at once, OOS concurrency 100 %).
 * A duplicate is a second scan or install item for the same (policy, operation, round, instance);
 * an execution's round is the round current when the emulator answered its StartExecution (a
 * round only starts once the previous one converged).
 *
 * AppRelease round r: a new artifact (URL and sha256), hence a new revision, rolled out in
 * batches of 25 by RunCommand; the emulator in scripted mode answers every invocation with exit 0
 * and no output. A duplicate is a second RunCommand item for the same (release, action, revision,
 * instance), from the emulator's invocation records. Convergence is also read from the emulator:
 * every instance carries the revision tag `ecsops.io/app.<application>` of the current revision.
 */
import { createHash } from 'node:crypto';
import { OWNER_UID_TAG } from '../../src/api/common.js';
import { SCAN_REQUESTED_ANNOTATION } from '../../src/api/patchpolicy.js';
import { startEmulator, type Emulator, type Seed } from '../../src/emulator/index.js';
import { kubeRequestRaw } from '../harness/kube-raw.js';
import {
  API,
  chaosSeed,
  ControllerProc,
  countDuplicates,
  createExtensions,
  createNamespace,
  createOwners,
  fleetSeed,
  ids,
  isReady,
  list,
  patchSpec,
  REGION,
  tallyRuns,
  until,
  type ControllerOptions,
  type DuplicateReport,
  type Obj,
  type RunTally,
} from './lib.js';
import type { ChaosContext } from './run.js';

/** Duplicate count of one kind. */
export interface KindDuplicates extends RunTally {
  /** OOS executions (EcsExtension, PatchPolicy) or Cloud Assistant invocations (AppRelease) of these owners. */
  starts: number;
}

/** The words of a kind's R1 / R6 result lines (EcsExtension keeps the words its figures always had). */
export interface KindWords {
  /** After the figure's title and the ID in its line: `` (EcsExtension) or `, <kind>`. */
  label: string;
  /** The state a round ends in, as a noun (`Ready`, `convergence`) and as "all …" (`Ready`, `converged`). */
  goal: string;
  done: string;
  /** What the last round set on an instance: `version`, `state`. */
  state: string;
  /** After "exactly once per instance": what else a run key holds (`, operation (scan, install)`). */
  runUnit: string;
  /** R6's name for the rounds: `rollout rounds`, `rounds`. */
  rounds: string;
}

/** What R1 / R6 need to know about a kind. */
export interface KindDriver {
  kind: 'EcsExtension' | 'PatchPolicy' | 'AppRelease';
  words: KindWords;
  /**
   * R6 also reports instance runs, the time to convergence after the last kill and the last
   * round's state, and gates on that state (false for EcsExtension: its R6 figure never did).
   */
  r6Convergence: boolean;
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

/** The words of the kinds added after EcsExtension. */
function kindWords(kind: string, runUnit = ''): KindWords {
  return {
    label: `, ${kind}`,
    goal: 'convergence',
    done: 'converged',
    state: 'state',
    runUnit,
    rounds: 'rounds',
  };
}

/** An execution count as a kind's duplicate count. */
function fromExecutions({ executions, itemsRun, duplicates, examples }: DuplicateReport): KindDuplicates {
  return { starts: executions, itemsRun, duplicates, examples };
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

/**
 * EcsExtension: resources `r0…` over `per` instances each; a round is a new package parameter
 * `version` (`g<round>`), converged when every resource is Ready with all `per` installed.
 */
export function ecsExtensionDriver(prefix: string, count: number, per = 100): KindDriver {
  return {
    kind: 'EcsExtension',
    words: {
      label: '',
      goal: 'Ready',
      done: 'Ready',
      state: 'version',
      runUnit: '',
      rounds: 'rollout rounds',
    },
    r6Convergence: false,
    startAction: 'StartExecution',
    startNoun: 'executions',
    count,
    per,
    seed: () => chaosSeed(prefix, count * per),
    prepare: () => Promise.resolve(),
    create: (ctx, ns) => createExtensions(ctx.kc, ns, prefix, count, per, 'g1'),
    async advance(ctx, ns, _emu, round) {
      for (let r = 0; r < count; r++)
        await patchSpec(ctx.kc, ns, 'ecsextensions', `r${r}`, { parameters: { version: `g${round}` } });
    },
    async converged(ctx, ns) {
      const objs = await list(ctx.kc, ns, 'ecsextensions');
      return (
        objs.length === count &&
        objs.every(isReady) &&
        objs.every((o) => o.status?.summary?.installed === per)
      );
    },
    duplicates: async (emu, owners) => fromExecutions(await countDuplicates(emu, owners)),
    expectedItems: (rounds) => count * per * rounds, // one install or update per instance per round
    async latest(emu, round) {
      const states = await emu.control.getPackageStates(REGION);
      return states.filter((s) => (s.parameters as { version?: string }).version === `g${round}`).length;
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
    words: kindWords('PatchPolicy', ', operation (scan, install)'),
    r6Convergence: true,
    startAction: 'StartExecution',
    startNoun: 'executions',
    count,
    per,
    seed: () => fleetSeed(prefix, count * per),
    prepare: (emu) => reseed(emu, 1).then(() => undefined),
    create: (ctx, ns) =>
      createOwners(count, (r) =>
        createObject(ctx, ns, 'patchpolicies', {
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
        }),
      ),
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
    duplicates: async (emu, owners, roundOf) =>
      fromExecutions(
        await countDuplicates(
          emu,
          owners,
          (e, instanceId) =>
            `${e.tags[OWNER_UID_TAG]}|${String(e.parameters['action'])}|r${roundOf.get(e.executionId) ?? 'unrecorded'}|${instanceId}`,
        ),
      ),
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
    words: kindWords('AppRelease'),
    r6Convergence: true,
    startAction: 'RunCommand',
    startNoun: 'invocations',
    count,
    per,
    seed: () => fleetSeed(prefix, count * per),
    // Scripted mode: every invocation succeeds after its modelled run time (no output).
    prepare: (emu) =>
      emu.control.scriptInvocation({ contains: 'ecsops AppRelease', exitCode: 0, delayMs: 5000 }),
    create: (ctx, ns) =>
      createOwners(count, (r) =>
        createObject(ctx, ns, 'appreleases', {
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
        }),
      ),
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
      const runs = mine.flatMap((inv) =>
        inv.instances.map(
          (it) =>
            `${inv.tags[OWNER_UID_TAG]}|${String(inv.parameters['action'])}|${String(inv.parameters['revision'])}|${it.instanceId}`,
        ),
      );
      return { starts: mine.length, ...tallyRuns(runs) };
    },
    expectedItems: (rounds) => count * per * rounds, // one deploy per instance per round
    latest: (emu) => tagged(emu, lastRevisions),
  };
}

/**
 * One kind scenario (an R1 or R6 figure): the emulator (every successful start call mapped to the
 * round current at its answer), the namespace, the controller processes, the rounds and the
 * outcome. {@link KindRun.stop} stops all of it.
 */
export class KindRun {
  round = 1;
  /** Called on every successful start call (R1's window kills). */
  onStart: (() => void) | undefined;
  readonly ns: string;
  readonly procs: ControllerProc[] = [];
  private readonly roundOf = new Map<string, number>();
  private owners = new Set<string>();
  private emu!: Emulator;

  private constructor(
    readonly ctx: ChaosContext,
    readonly d: KindDriver,
    readonly id: string,
  ) {
    this.ns = `chaos-${id.toLowerCase()}`;
  }

  /** Starts the emulator at `timeScale` and creates the namespace. */
  static async start(ctx: ChaosContext, d: KindDriver, id: string, timeScale: number): Promise<KindRun> {
    const run = new KindRun(ctx, d, id);
    run.emu = await startEmulator({
      seed: d.seed(),
      timeScale,
      logger: (line) => {
        const l = line as { action?: string; status?: number; executionId?: string };
        if (l.action !== d.startAction || l.status !== 200) return;
        if (l.executionId && !run.roundOf.has(l.executionId)) run.roundOf.set(l.executionId, run.round);
        run.onStart?.();
      },
    });
    try {
      await d.prepare(run.emu);
      await createNamespace(ctx.kc, run.ns);
    } catch (err) {
      await run.stop();
      throw err;
    }
    return run;
  }

  /** Starts a controller in the namespace against the emulator. */
  controller(opts: Omit<ControllerOptions, 'kubeconfig' | 'namespace' | 'emu'>): ControllerProc {
    const p = new ControllerProc({
      kubeconfig: this.ctx.cp.kubeconfigPath,
      namespace: this.ns,
      emu: this.emu,
      ...opts,
    });
    this.procs.push(p);
    return p;
  }

  /** Creates the objects (round 1). */
  async create(): Promise<void> {
    this.owners = await this.d.create(this.ctx, this.ns, this.emu);
  }

  /** Every object converged on the current round. */
  converged(): Promise<boolean> {
    return this.d.converged(this.ctx, this.ns, this.emu, this.round);
  }

  /** Waits until every object converged on the current round; `what` names the wait. */
  async settle(what: string, timeoutMs: number, intervalMs: number): Promise<void> {
    await until(what, () => this.converged(), timeoutMs, intervalMs);
  }

  /** Starts the next round when the current one converged, so the kills land mid-rollout. */
  async nextRoundIfConverged(): Promise<void> {
    if (await this.converged().catch(() => false)) {
      this.round++;
      await this.d.advance(this.ctx, this.ns, this.emu, this.round);
    }
  }

  /** Duplicates, unexpected exits and the instances at the last round's state. */
  async outcome(): Promise<{ dup: KindDuplicates; crashes: number; latest: number; total: number }> {
    return {
      dup: await this.d.duplicates(this.emu, this.owners, this.roundOf),
      crashes: this.procs.filter((p) => p.crashed).length,
      latest: await this.d.latest(this.emu, this.round),
      total: this.d.count * this.d.per,
    };
  }

  /** The result line's "N starts, M instance runs (exactly once …: X)" part. */
  runs(dup: KindDuplicates): string {
    const { d } = this;
    return `${dup.starts} ${d.startNoun}, ${dup.itemsRun} instance runs (exactly once per instance${d.words.runUnit} per round: ${d.expectedItems(this.round)})`;
  }

  /** The result line's "all … s after …; instances at the last round's …" part. */
  converges(seconds: number, after: string, latest: number, total: number): string {
    const { words } = this.d;
    return `all ${words.done} ${seconds.toFixed(1)} s after ${after}; instances at the last round's ${words.state} ${latest}/${total}`;
  }

  /** Kills every controller, deletes the namespace, stops the emulator. */
  async stop(): Promise<void> {
    for (const p of this.procs) await p.kill('SIGKILL');
    await this.ctx.deleteNamespace(this.ns);
    await this.emu.stop();
  }
}
