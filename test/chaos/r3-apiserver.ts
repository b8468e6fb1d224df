/**
 * R3 API-server outages. The controller reaches the API server through a TCP proxy, so the
 * script can both stop the real kube-apiserver and cut the controller off while the API server
 * stays up (a partition, during which the script changes specs). Three faults, mid-rollout:
 *  1. kube-apiserver stopped for `r3OutageS` seconds and restarted (same port, certificates,
 *     etcd data); a spec change right after the restart; etcd compacted.
 *  2. a partition of `r3PartitionS` seconds: every connection reset and new ones refused; during
 *     it two specs change and etcd is compacted, so the controller's watches can only resume
 *     through a 410 Gone and a relist.
 *  3. dropped watch connections (every connection reset once, no outage).
 * The controller (leader election off: with it on, losing the Lease for longer than the renew
 * deadline exits by design, as controller-runtime does) must recover without a restart (same
 * PID), reach Ready at the latest generation of every resource with every instance at the
 * latest spec's version (no missed change), and a sampler checks that no resource's
 * `status.observedGeneration` ever goes backwards (no stale status written over a newer one).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { startEmulator } from '../../src/emulator/index.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  chaosSeed,
  compactEtcd,
  ControllerProc,
  countDuplicates,
  createExtensions,
  createNamespace,
  ids,
  isReady,
  list,
  patchSpec,
  proxiedKubeconfig,
  Rng,
  TcpProxy,
  until,
  type Figure,
  type Obj,
} from './lib.js';
import type { ChaosContext } from './run.js';

/** Runs R3; see the module comment. */
export async function r3ApiServerOutage(ctx: ChaosContext): Promise<Figure> {
  const t0 = Date.now();
  const rng = new Rng(ctx.seed('R3'));
  const emu = await startEmulator({ seed: chaosSeed('ao', 300), timeScale: 0.03 });
  const ns = 'chaos-r3';
  const port = Number(new URL(ctx.cp.server).port);
  const proxy = new TcpProxy('127.0.0.1', port);
  await proxy.start();
  const kubeconfig = join(ctx.cp.dir, 'kubeconfig-chaos-proxy');
  writeFileSync(kubeconfig, proxiedKubeconfig(ctx.cp, proxy.port), { mode: 0o600 });
  let proc: ControllerProc | undefined;
  let sampling = true;
  const backwards: string[] = [];
  const want = new Map<string, string>(); // name → the version its latest spec asks for
  try {
    await createNamespace(ctx.kc, ns);
    proc = new ControllerProc({ kubeconfig, namespace: ns, emu, logLevel: 'info' });
    const pid = proc.pid;
    const owners = await createExtensions(ctx.kc, ns, 'ao', 3, 100, 'g1');
    for (let r = 0; r < 3; r++) want.set(`r${r}`, 'g1');
    // Sampler: observedGeneration per resource must never decrease.
    const seen = new Map<string, number>();
    const sampler = (async () => {
      while (sampling) {
        try {
          for (const o of await list(ctx.kc, ns, 'ecsextensions')) {
            const g = o.status?.observedGeneration ?? 0;
            const prev = seen.get(o.metadata.name) ?? 0;
            if (g < prev) backwards.push(`${o.metadata.name}: observedGeneration ${prev} → ${g}`);
            seen.set(o.metadata.name, Math.max(g, prev));
          }
        } catch {
          // outage
        }
        await sleep(200);
      }
    })();
    const started = async (): Promise<boolean> => (await emu.control.listExecutions({})).length > 0;
    const allConverged = async (): Promise<Obj[] | undefined> => {
      const objs = await list(ctx.kc, ns, 'ecsextensions');
      return objs.length === 3 && objs.every(isReady) ? objs : undefined;
    };
    const bump = async (name: string, v: string): Promise<void> => {
      await patchSpec(ctx.kc, ns, 'ecsextensions', name, { parameters: { version: v } });
      want.set(name, v);
    };

    // 1. kube-apiserver down mid-rollout.
    await until('the rollout started', started, 60_000, 100);
    await sleep(rng.float(0, 1500));
    const outageMs = ctx.profile.r3OutageS * 1000;
    const downAt = Date.now();
    await ctx.cp.stopApiServer();
    await sleep(Math.max(0, outageMs - (Date.now() - downAt)));
    await ctx.cp.startApiServer();
    const upAt = Date.now();
    const apiDownS = (upAt - downAt) / 1000;
    await bump('r0', 'g2');
    await compactEtcd(ctx.cp);
    await until('R3 converged after the API-server restart', allConverged, 180_000, 500);
    const recover1 = (Date.now() - upAt) / 1000;

    // 2. partition with spec changes during it.
    await bump('r1', 'g3');
    await until(
      'the g3 rollout started',
      async () =>
        (await emu.control.listExecutions({})).some((e) => JSON.stringify(e.parameters).includes('g3')),
      60_000,
      100,
    );
    const cutAt = Date.now();
    proxy.cut();
    await sleep(rng.float(1000, 3000));
    await bump('r1', 'g4');
    await bump('r2', 'g4');
    await compactEtcd(ctx.cp);
    await sleep(Math.max(0, ctx.profile.r3PartitionS * 1000 - (Date.now() - cutAt)));
    proxy.heal();
    const healAt = Date.now();
    await until('R3 converged after the partition', allConverged, 180_000, 500);
    const recover2 = (Date.now() - healAt) / 1000;

    // 3. dropped watch connections, then one more change.
    proxy.cut();
    proxy.heal();
    await sleep(500);
    await bump('r0', 'g5');
    const dropAt = Date.now();
    await until('R3 converged after dropped watches', allConverged, 120_000, 500);
    const recover3 = (Date.now() - dropAt) / 1000;

    // Every instance runs the version its resource's latest spec asks for.
    const states = await emu.control.getPackageStates('cn-hangzhou');
    let missed = 0;
    const missedDetails: string[] = [];
    const final = await list(ctx.kc, ns, 'ecsextensions');
    for (let r = 0; r < 3; r++) {
      const v = want.get(`r${r}`);
      const seenVersions: Record<string, number> = {};
      for (const id of ids('ao', r * 100 + 1, r * 100 + 100)) {
        const st = states.find((s) => s.instanceId === id);
        const got = (st?.parameters as { version?: string } | undefined)?.version ?? 'none';
        seenVersions[got] = (seenVersions[got] ?? 0) + 1;
        if (got !== v) missed++;
      }
      if (seenVersions[v ?? ''] !== 100) {
        const o = final.find((x) => x.metadata.name === `r${r}`);
        missedDetails.push(
          `r${r} wants ${v}, instances at ${JSON.stringify(seenVersions)}; spec ${JSON.stringify(o?.spec?.parameters)} generation ${o?.metadata.generation}, status ${JSON.stringify({ observedGeneration: o?.status?.observedGeneration, conditions: o?.status?.conditions, summary: o?.status?.summary })}`,
        );
      }
    }
    sampling = false;
    await sampler;
    const dup = await countDuplicates(emu, owners);
    const sameProcess = proc.alive && proc.pid === pid;
    const informerRestarts = proc.lines.filter((l) => l.includes('informer stopped on error')).length;
    const pass = sameProcess && missed === 0 && backwards.length === 0 && dup.duplicates === 0;
    return {
      id: 'R3',
      title: 'API-server outages',
      pass,
      seed: rng.seed,
      seconds: (Date.now() - t0) / 1000,
      line: `R3 API-server outages: kube-apiserver stopped ${apiDownS.toFixed(1)} s mid-rollout then restarted, a spec change and an etcd compaction right after → all Ready at the latest generation ${recover1.toFixed(1)} s after the restart; a ${ctx.profile.r3PartitionS} s partition with 3 spec changes and an etcd compaction during it → converged ${recover2.toFixed(1)} s after it healed; all connections dropped once → converged ${recover3.toFixed(1)} s after a further change; same controller process ${sameProcess ? 'yes' : 'NO'} (restarts 0), missed changes ${missed} instances, observedGeneration went backwards ${backwards.length} times, duplicates ${dup.duplicates}; informer restarts logged ${informerRestarts}`,
      details: [...missedDetails, ...backwards.slice(0, 5)],
    };
  } finally {
    sampling = false;
    await proc?.kill('SIGTERM');
    await proxy.stop();
    await ctx.cp.startApiServer();
    await ctx.deleteNamespace(ns);
    await emu.stop();
  }
}
