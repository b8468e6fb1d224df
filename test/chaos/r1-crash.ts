/**
 * R1 crash-restart: SIGKILL the compiled controller at random points while 5 EcsExtensions
 * converge over 500 instances, restart it at once, and count in the emulator how often each
 * (resource, action, round parameters, instance) ran. Half the kills land after a uniform random
 * delay from the (re)start (anywhere in the reconcile timeline: start-up, informer sync, reads,
 * StartExecution, status write, polling); the other half land the moment the emulator has
 * answered a StartExecution, i.e. between StartExecution and the status write. When every
 * resource is Ready, the next round patches every spec (a new package parameter → an `update`
 * round), so the kills keep landing mid-rollout.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { startEmulator } from '../../src/emulator/index.js';
import {
  chaosSeed,
  ControllerProc,
  countDuplicates,
  createExtensions,
  createNamespace,
  isReady,
  list,
  patchSpec,
  Rng,
  until,
  type Figure,
} from './lib.js';
import type { ChaosContext } from './run.js';

/** Runs R1 with `kills` SIGKILLs; see the module comment. */
export async function r1CrashRestart(ctx: ChaosContext, kills: number): Promise<Figure> {
  const t0 = Date.now();
  const rng = new Rng(ctx.seed('R1'));
  let onStart: (() => void) | undefined;
  const emu = await startEmulator({
    seed: chaosSeed('cr', 500),
    timeScale: 0.02,
    logger: (line) => {
      const l = line as { action?: string; status?: number };
      if (l.action === 'StartExecution' && l.status === 200) onStart?.();
    },
  });
  const ns = 'chaos-r1';
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
    let round = 1;
    const owners = await createExtensions(ctx.kc, ns, 'cr', 5, 100, `g${round}`);
    // Round 1 runs without kills: its length (start-up to all Ready) is the reconcile timeline the
    // timer kills are spread over.
    await until(
      'round 1 Ready',
      async () => {
        const objs = await list(ctx.kc, ns, 'ecsextensions');
        return objs.length === 5 && objs.every(isReady);
      },
      120_000,
      200,
    );
    const timelineMs = Date.now() - proc.startedAt;
    const counts = { timer: 0, afterStartExecution: 0 };
    for (let k = 0; k < kills; k++) {
      const objs = await list(ctx.kc, ns, 'ecsextensions');
      if (objs.length === 5 && objs.every(isReady)) {
        round++;
        for (const o of objs) {
          await patchSpec(ctx.kc, ns, 'ecsextensions', o.metadata.name, {
            parameters: { version: `g${round}` },
          });
        }
      }
      if (!proc.alive) proc = spawn();
      const window = rng.float() < 0.5;
      const delay = rng.float(0, timelineMs);
      const victim = proc;
      if (window) {
        // Kill on the next StartExecution answer (fallback: after `delay` + 6 s if none comes).
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
            counts.afterStartExecution++;
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
    await until(
      'every R1 resource Ready',
      async () => {
        const objs = await list(ctx.kc, ns, 'ecsextensions');
        return (
          objs.length === 5 && objs.every(isReady) && objs.every((o) => o.status?.summary?.installed === 100)
        );
      },
      240_000,
      500,
    );
    const convergeS = (Date.now() - readyAfter) / 1000;
    const dup = await countDuplicates(emu, owners);
    const crashes = procs.filter((p) => p.crashed).length;
    const states = await emu.control.getPackageStates('cn-hangzhou');
    const latest = states.filter(
      (s) => (s.parameters as { version?: string }).version === `g${round}`,
    ).length;
    const expectedItems = 500 * round;
    const pass = dup.duplicates === 0 && crashes === 0 && latest === 500;
    return {
      id: 'R1',
      title: 'crash-restart (SIGKILL)',
      pass,
      seed: rng.seed,
      seconds: (Date.now() - t0) / 1000,
      line: `R1 crash-restart: ${kills} SIGKILLs (${counts.afterStartExecution} right after a StartExecution answer, ${counts.timer} at a uniform delay over the ${(timelineMs / 1000).toFixed(1)} s from start-up to Ready of an undisturbed round) over ${round} rounds of 5 resources × 100 instances; ${dup.executions} executions, ${dup.itemsRun} instance runs (exactly once per instance per round: ${expectedItems}), duplicates ${dup.duplicates}; all Ready ${convergeS.toFixed(1)} s after the last restart; instances at the last round's version ${latest}/500; unexpected exits ${crashes}`,
      details: dup.examples,
    };
  } finally {
    for (const p of procs) await p.kill('SIGKILL');
    await ctx.deleteNamespace(ns);
    await emu.stop();
  }
}
