/**
 * R2 cloud faults: the same scenario three times in one script —
 * 1. fault-free;
 * 2. in the emulator's quota mode, the way the real service throttles: more than 20 arrivals per
 *    second of one action are answered `Throttling.User`, plus 5 % HTTP 5xx and 2 % connection
 *    resets (1 % before the action runs, 1 % lost responses after it ran). It must converge within
 *    3 × the fault-free time (the rate gate's AIMD must not collapse after a throttle burst);
 * 3. random faults: 30 % `Throttling.User`, 5 % HTTP 5xx, 2 % resets and 200 ms ± 150 ms latency
 *    on every action — a convergence check (random throttling is not how the service behaves).
 * Every run must converge; the faulty runs may use at most 2 × the fault-free run's calls (every
 * attempt counts, failed ones too); lost StartExecution responses must not produce duplicates.
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

type Faults = { kind: 'random' | 'quota'; seed: number } | undefined;

async function converge(ctx: ChaosContext, label: string, faults: Faults): Promise<Run> {
  const { r2Resources: n, r2Instances: per } = ctx.profile;
  const emu = await startEmulator({ seed: chaosSeed('cf', n * per), timeScale: 0.01 });
  const ns = `chaos-r2-${label}`;
  let proc: ControllerProc | undefined;
  try {
    await createNamespace(ctx.kc, ns);
    if (faults?.kind === 'random') {
      await emu.control.setFaults({
        seed: faults.seed,
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
    } else if (faults?.kind === 'quota') {
      await emu.control.setFaults({
        seed: faults.seed,
        quota: { '*': 20 },
        actions: { '*': { errorRate: 0.05, resetRate: 0.01, responseLossRate: 0.01 } },
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
  const quota = await converge(ctx, 'quota', { kind: 'quota', seed: faultSeed });
  ctx.log(`R2 quota mode: ${quota.calls} calls in ${quota.seconds.toFixed(1)} s`);
  const faulty = await converge(ctx, 'faults', { kind: 'random', seed: faultSeed });
  const ratio = faulty.calls / clean.calls;
  const quotaRatio = quota.calls / clean.calls;
  const timeRatio = quota.seconds / clean.seconds;
  const pass =
    ratio <= 2 &&
    quotaRatio <= 2 &&
    timeRatio <= 3 &&
    [clean, quota, faulty].every((r) => r.duplicates === 0 && !r.crashed);
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
    line: `R2 cloud faults: ${n} resources × ${per} instances converged fault-free with ${clean.calls} calls in ${clean.seconds.toFixed(1)} s; in quota mode (Throttling.User above 20 arrivals/s per action + 5 % 5xx + 1 % resets + 1 % lost responses) with ${quota.calls} calls in ${quota.seconds.toFixed(1)} s: time ratio ${timeRatio.toFixed(2)} (limit 3), call ratio ${quotaRatio.toFixed(2)} (limit 2); under 30 % random Throttling.User + 5 % 5xx + 1 % resets + 1 % lost responses + 200±150 ms latency (emulator fault seed ${faultSeed}) with ${faulty.calls} calls in ${faulty.seconds.toFixed(1)} s: call ratio ${ratio.toFixed(2)} (limit 2); executions ${clean.executions} / ${quota.executions} / ${faulty.executions}, duplicates ${quota.duplicates} / ${faulty.duplicates}`,
    details: [
      `fault-free calls: ${fmt(clean)}`,
      `quota mode: ${fmt(quota)}`,
      `random faults: ${fmt(faulty)}`,
    ],
  };
}
