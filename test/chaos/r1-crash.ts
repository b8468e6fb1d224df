/**
 * R1 crash-restart: SIGKILL the compiled controller at random points while a kind's objects
 * converge (EcsExtension: 5 resources × 100 instances; PatchPolicy, AppRelease: 3 × 100, see
 * kinds.ts), restart it at once, and count in the emulator how often each (resource, action,
 * round, instance) ran. Half the kills land after a uniform random delay from the (re)start
 * (anywhere in the reconcile timeline: start-up, informer sync, reads, the start call, status
 * write, polling); the other half land the moment the emulator has answered a start call
 * (StartExecution, RunCommand), i.e. between it and the status write. When every object has
 * converged, the next round starts (new desired state), so the kills keep landing mid-rollout.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { KindRun, type KindDriver } from './kinds.js';
import { Rng, type Figure } from './lib.js';
import type { ChaosContext } from './run.js';

/** Runs R1 for the kind of `d` with `kills` SIGKILLs as figure `id`; see the module comment. */
export async function r1CrashRestart(
  ctx: ChaosContext,
  kills: number,
  d: KindDriver,
  id: string,
): Promise<Figure> {
  const t0 = Date.now();
  const rng = new Rng(ctx.seed(id));
  const run = await KindRun.start(ctx, d, id, 0.02);
  const spawn = () => run.controller({ logLevel: 'warn', extraArgs: ['--cloud-qps', '500'] });
  try {
    let proc = spawn();
    await run.create();
    // Round 1 runs without kills: its length (start-up to convergence) is the reconcile timeline
    // the timer kills are spread over.
    await run.settle(`${id} round 1 ${d.words.done}`, 180_000, 200);
    const timelineMs = Date.now() - proc.startedAt;
    const counts = { timer: 0, afterStart: 0 };
    for (let k = 0; k < kills; k++) {
      await run.nextRoundIfConverged();
      if (!proc.alive) proc = spawn();
      const window = rng.float() < 0.5;
      const delay = rng.float(0, timelineMs);
      const victim = proc;
      if (window) {
        // Kill on the next start call's answer (fallback: after `delay` + 6 s if none comes).
        let fired = false;
        await new Promise<void>((resolve) => {
          const t = setTimeout(() => {
            run.onStart = undefined;
            resolve();
          }, delay + 6000);
          run.onStart = () => {
            run.onStart = undefined;
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
    await run.settle(`every ${id} resource ${d.words.done}`, 300_000, 500);
    const convergeS = (Date.now() - readyAfter) / 1000;
    const { dup, crashes, latest, total } = await run.outcome();
    const pass = dup.duplicates === 0 && crashes === 0 && latest === total;
    return {
      id,
      title: `crash-restart (SIGKILL)${d.words.label}`,
      pass,
      seed: rng.seed,
      seconds: (Date.now() - t0) / 1000,
      line: `${id} crash-restart${d.words.label}: ${kills} SIGKILLs (${counts.afterStart} right after a ${d.startAction} answer, ${counts.timer} at a uniform delay over the ${(timelineMs / 1000).toFixed(1)} s from start-up to ${d.words.goal} of an undisturbed round) over ${run.round} rounds of ${d.count} resources × ${d.per} instances; ${run.runs(dup)}, duplicates ${dup.duplicates}; ${run.converges(convergeS, 'the last restart', latest, total)}; unexpected exits ${crashes}`,
      details: dup.examples,
    };
  } finally {
    await run.stop();
  }
}
