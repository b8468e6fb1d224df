/**
 * R7 load: N EcsExtensions (2 instances each, disjoint; every 4th with `deletionPolicy:
 * Uninstall`) created at once, converged, then deleted at once with one DELETE collection call.
 * Figures: time to all Ready and to all gone, every finalizer removed (no object left), the
 * Uninstall resources' packages removed and the Orphan ones' kept, `workqueue_depth` 0 at the end
 * and the controller's peak RSS (VmHWM) within the Deployment's 384 MiB memory limit (it runs
 * with the shipped NODE_OPTIONS heap cap).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { startEmulator } from '../../src/emulator/index.js';
import { kubeRequestRaw } from '../harness/kube-raw.js';
import {
  API,
  chaosSeed,
  ControllerProc,
  createExtension,
  createNamespace,
  ids,
  isReady,
  list,
  metricSum,
  metricsText,
  peakRssMb,
  Rng,
  until,
  type Figure,
} from './lib.js';
import type { ChaosContext } from './run.js';

const MEMORY_LIMIT_MB = 384;

/** Runs R7; see the module comment. */
export async function r7Load(ctx: ChaosContext): Promise<Figure> {
  const t0 = Date.now();
  const rng = new Rng(ctx.seed('R7'));
  const n = ctx.profile.r7Resources;
  const emu = await startEmulator({ seed: chaosSeed('ld', n * 2), timeScale: 0.01 });
  const ns = 'chaos-r7';
  let proc: ControllerProc | undefined;
  try {
    await createNamespace(ctx.kc, ns);
    proc = new ControllerProc({
      kubeconfig: ctx.cp.kubeconfigPath,
      namespace: ns,
      emu,
      logLevel: 'info',
      extraArgs: ['--execution-poll-min', '1s', '--execution-poll-max', '5s'],
    });
    const port = await proc.metricsPort;
    // Create all at once (20 requests in flight), in a seeded random order.
    const order = Array.from({ length: n }, (_, i) => i).sort(() => rng.float() - 0.5);
    const uninstall = new Set(order.filter((i) => i % 4 === 0));
    const createdAt = Date.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        while (next < n) {
          const i = order[next++]!;
          await createExtension(
            ctx.kc,
            ns,
            `load-${i}`,
            ids('ld', i * 2 + 1, i * 2 + 2),
            'g1',
            uninstall.has(i) ? { deletionPolicy: 'Uninstall' } : {},
          );
        }
      }),
    );
    await until(
      `all ${n} R7 resources Ready`,
      async () => {
        if (!proc?.alive) throw new Error(`controller exited: ${JSON.stringify(proc?.exit)}`);
        const objs = await list(ctx.kc, ns, 'ecsextensions');
        return objs.length === n && objs.every(isReady);
      },
      600_000,
      2000,
    );
    const readyS = (Date.now() - createdAt) / 1000;
    const deletedAt = Date.now();
    await kubeRequestRaw(ctx.kc, 'DELETE', `${API}/namespaces/${ns}/ecsextensions`);
    let left = n;
    await until(
      `all ${n} R7 resources gone`,
      async () => {
        if (!proc?.alive) throw new Error(`controller exited: ${JSON.stringify(proc?.exit)}`);
        left = (await list(ctx.kc, ns, 'ecsextensions')).length;
        return left === 0;
      },
      600_000,
      1000,
    );
    const goneS = (Date.now() - deletedAt) / 1000;
    await sleep(2000);
    const text = await metricsText(port);
    const depth = metricSum(text, 'workqueue_depth');
    const rss = peakRssMb(proc.pid);
    const states = await emu.control.getPackageStates('cn-hangzhou');
    let wrongUninstall = 0;
    let wrongOrphan = 0;
    for (let i = 0; i < n; i++) {
      const present = ids('ld', i * 2 + 1, i * 2 + 2).filter((id) =>
        states.some((s) => s.instanceId === id),
      ).length;
      if (uninstall.has(i) && present > 0) wrongUninstall++;
      if (!uninstall.has(i) && present !== 2) wrongOrphan++;
    }
    const pass =
      left === 0 &&
      depth === 0 &&
      rss <= MEMORY_LIMIT_MB &&
      wrongUninstall === 0 &&
      wrongOrphan === 0 &&
      !proc.crashed;
    return {
      id: 'R7',
      title: 'load',
      pass,
      seed: rng.seed,
      seconds: (Date.now() - t0) / 1000,
      line: `R7 load: ${n} EcsExtensions (2 instances each, ${uninstall.size} with deletionPolicy Uninstall) created at once → all Ready in ${readyS.toFixed(1)} s; deleted at once → all gone (every finalizer removed) in ${goneS.toFixed(1)} s; objects left ${left}; Uninstall resources with packages left ${wrongUninstall}, Orphan resources missing packages ${wrongOrphan}; workqueue_depth ${depth} at the end; controller peak RSS ${rss.toFixed(0)} MiB (limit ${MEMORY_LIMIT_MB} MiB, heap cap from the shipped NODE_OPTIONS)`,
    };
  } finally {
    await proc?.kill('SIGTERM');
    await ctx.deleteNamespace(ns);
    await emu.stop();
  }
}
