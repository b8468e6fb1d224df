/**
 * R2 cloud faults: the same scenario twice in one script — fault-free, then with 30 %
 * `Throttling.User`, 5 % HTTP 5xx, 2 % connection resets (1 % before the action runs, 1 % lost
 * responses after it ran) and 200 ms ± 150 ms latency on every action. Both must converge; the
 * faulty run may use at most 2 × the fault-free run's calls (every attempt counts, failed ones
 * too); lost StartExecution responses must not produce duplicate executions.
 */
import { startEmulator } from '../../src/emulator/index.js';
import {
  chaosSeed,
  ControllerProc,
  countDuplicates,
  createExtensions,
  createNamespace,
  isReady,
  list,
  Rng,
  until,
  type Figure,
} from './lib.js';
import type { ChaosContext } from './run.js';

interface Run {
  calls: number;
  byAction: Record<string, number>;
  seconds: number;
  duplicates: number;
  executions: number;
  crashed: boolean;
}

async function converge(ctx: ChaosContext, label: string, faultSeed: number | undefined): Promise<Run> {
  const { r2Resources: n, r2Instances: per } = ctx.profile;
  const emu = await startEmulator({ seed: chaosSeed('cf', n * per), timeScale: 0.01 });
  const ns = `chaos-r2-${label}`;
  let proc: ControllerProc | undefined;
  try {
    await createNamespace(ctx.kc, ns);
    if (faultSeed !== undefined) {
      await emu.control.setFaults({
        seed: faultSeed,
        actions: {
          '*': {
            throttleRate: 0.3,
            errorRate: 0.05,
            resetRate: 0.01,
            responseLossRate: 0.01,
            latencyMs: 200,
            latencyJitterMs: 150,
          },
        },
      });
    }
    proc = new ControllerProc({ kubeconfig: ctx.cp.kubeconfigPath, namespace: ns, emu, logLevel: 'info' });
    await proc.metricsPort;
    await emu.control.resetRequestCounts();
    const t0 = Date.now();
    const owners = await createExtensions(ctx.kc, ns, 'cf', n, per, 'g1');
    await until(
      `R2 ${label}: every resource Ready`,
      async () => {
        if (!proc?.alive) throw new Error(`controller exited: ${JSON.stringify(proc?.exit)}`);
        const objs = await list(ctx.kc, ns, 'ecsextensions');
        return (
          objs.length === n && objs.every(isReady) && objs.every((o) => o.status?.summary?.installed === per)
        );
      },
      // Under 30 % throttling the adaptive limiter sits near its 1 call/s floor: ~3 s per instance.
      300_000 + n * per * 3_000,
      500,
    );
    const seconds = (Date.now() - t0) / 1000;
    const byAction = await emu.control.requestCounts();
    const dup = await countDuplicates(emu, owners);
    return {
      calls: Object.values(byAction).reduce((a, b) => a + b, 0),
      byAction,
      seconds,
      duplicates: dup.duplicates,
      executions: dup.executions,
      crashed: proc.crashed,
    };
  } finally {
    await proc?.kill('SIGTERM');
    await ctx.deleteNamespace(ns);
    await emu.stop();
  }
}

/** Runs R2; see the module comment. */
export async function r2CloudFaults(ctx: ChaosContext): Promise<Figure> {
  const t0 = Date.now();
  const rng = new Rng(ctx.seed('R2'));
  const faultSeed = rng.int(1, 2 ** 31);
  const clean = await converge(ctx, 'clean', undefined);
  ctx.log(`R2 fault-free: ${clean.calls} calls in ${clean.seconds.toFixed(1)} s`);
  const faulty = await converge(ctx, 'faults', faultSeed);
  const ratio = faulty.calls / clean.calls;
  const pass =
    ratio <= 2 && faulty.duplicates === 0 && clean.duplicates === 0 && !faulty.crashed && !clean.crashed;
  const fmt = (r: Run): string =>
    Object.entries(r.byAction)
      .sort()
      .map(([a, c]) => `${a} ${c}`)
      .join(', ');
  const { r2Resources: n, r2Instances: per } = ctx.profile;
  return {
    id: 'R2',
    title: 'cloud faults',
    pass,
    seed: rng.seed,
    seconds: (Date.now() - t0) / 1000,
    line: `R2 cloud faults: ${n} resources × ${per} instances converged fault-free with ${clean.calls} calls in ${clean.seconds.toFixed(1)} s and under 30 % Throttling.User + 5 % 5xx + 1 % resets + 1 % lost responses + 200±150 ms latency (emulator fault seed ${faultSeed}) with ${faulty.calls} calls in ${faulty.seconds.toFixed(1)} s: call ratio ${ratio.toFixed(2)} (limit 2); executions ${clean.executions} / ${faulty.executions}, duplicates ${faulty.duplicates}`,
    details: [`fault-free calls: ${fmt(clean)}`, `with faults: ${fmt(faulty)}`],
  };
}
