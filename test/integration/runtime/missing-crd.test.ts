/**
 * A cluster with only the EcsExtension CRD installed (a control plane of its own, so the shared one
 * keeps every CRD): the real controller
 *  - with `--controllers=ecsextension` becomes ready (/readyz 200) and logs nothing above info;
 *  - with every controller enabled stays unready, saying why on /readyz, and logs one readable
 *    error line per missing CRD (its name, how to install it, how to leave its controller out) —
 *    not a client-library dump per retry; once the CRDs are installed it becomes ready by itself.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config.js';
import { DEMO_ACCESS_KEY } from '../../../src/emulator/index.js';
import { startController } from '../../../src/main.js';
import { createLogger } from '../../../src/runtime/logger.js';
import { freePort, startControlPlane, type ControlPlane } from '../../harness/controlplane.js';
import { applyCrd } from '../../harness/env.js';
import { REPO_ROOT } from '../../harness/paths.js';
import { waitFor } from '../../harness/stack.js';

/** The controllers whose CRD is missing, and its plural. */
const MISSING: Record<string, string> = {
  maintenancewindow: 'maintenancewindows',
  patchpolicy: 'patchpolicies',
  apprelease: 'appreleases',
  instancedisruptionbudget: 'instancedisruptionbudgets',
};

let cp: ControlPlane;
let kc: KubeConfig;

function crdFile(plural: string): Record<string, unknown> {
  return parse(readFileSync(join(REPO_ROOT, 'crds', `ecsops.io_${plural}.yaml`), 'utf8')) as Record<
    string,
    unknown
  >;
}

beforeAll(async () => {
  cp = await startControlPlane({ users: [] });
  kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  await applyCrd(kc, crdFile('ecsextensions'));
});

afterAll(async () => {
  await cp?.stop();
});

interface Line {
  level: string;
  msg: string;
  raw: string;
  controller?: string;
  failures?: number;
}

/** Starts the in-process controller on free ports, capturing its log lines (debug and up). */
async function start(extraArgs: string[]) {
  const [metricsPort, probePort] = [await freePort(), await freePort()];
  const cfg = parseConfig([
    '--kubeconfig',
    cp.kubeconfigPath,
    '--leader-elect',
    'false',
    '--metrics-bind-address',
    `127.0.0.1:${metricsPort}`,
    '--health-probe-bind-address',
    `127.0.0.1:${probePort}`,
    '--shutdown-timeout',
    '2s',
    ...extraArgs,
  ]);
  const lines: Line[] = [];
  const logger = createLogger({
    level: 'debug',
    destination: {
      write: (s: string) => void lines.push({ ...(JSON.parse(s) as Omit<Line, 'raw'>), raw: s }),
    },
  });
  const abort = new AbortController();
  const running = startController(cfg, {
    logger,
    signal: abort.signal,
    cloud: { credential: { accessKeyId: DEMO_ACCESS_KEY.id, accessKeySecret: DEMO_ACCESS_KEY.secret } },
    onLeadershipLost: () => undefined,
  });
  running.catch(() => undefined);
  const readyz = async (): Promise<{ status: number; body: string }> => {
    const res = await fetch(`http://127.0.0.1:${probePort}/readyz`, { signal: AbortSignal.timeout(2000) });
    return { status: res.status, body: await res.text() };
  };
  /** What an admin sees at the default level (info). */
  const visible = () => lines.filter((l) => l.level !== 'debug' && l.level !== 'trace');
  const stop = async () => {
    abort.abort(new Error('test done'));
    await running.then((c) => c.stop()).catch(() => undefined);
  };
  return { running, lines, visible, readyz, stop };
}

describe('a cluster with only the EcsExtension CRD', () => {
  it('--controllers=ecsextension becomes ready and logs nothing above info', async () => {
    const c = await start(['--controllers', 'ecsextension']);
    try {
      const running = await c.running;
      expect(running.manager.controllers()).toEqual(['ecsextension']);
      const ready = await waitFor(
        '/readyz 200',
        async () => ((await c.readyz()).status === 200 ? true : undefined),
        30_000,
      );
      expect(ready).toBe(true);
      expect((await c.readyz()).body).toBe('ok\n');
      expect(c.visible().filter((l) => l.level !== 'info')).toEqual([]);
      expect(c.visible().find((l) => l.msg === 'starting ecsops controller')?.raw).toContain(
        '"controllers":["ecsextension"]',
      );
    } finally {
      await c.stop();
    }
  });

  it('with every controller: one readable error line per missing CRD, /readyz says why, and it heals once they are installed', async () => {
    const c = await start([]);
    try {
      // Every missing kind's informer has failed at least three times (restarts after 1 s, 2 s).
      await waitFor(
        'three failed starts of each missing informer',
        async () =>
          Object.keys(MISSING).every((ctl) =>
            c.lines.some((l) => l.controller === ctl && (l.failures ?? 0) >= 3),
          ) || undefined,
        30_000,
      );
      const errors = c.visible().filter((l) => l.level === 'error');
      expect(errors.map((l) => l.controller).sort()).toEqual([
        'apprelease',
        'instancedisruptionbudget',
        'maintenancewindow',
        'patchpolicy',
      ]);
      const without: Record<string, string> = {
        maintenancewindow: '*,-patchpolicy,-maintenancewindow',
        patchpolicy: '*,-patchpolicy',
        apprelease: '*,-apprelease',
        instancedisruptionbudget: '*,-instancedisruptionbudget',
      };
      for (const e of errors) {
        const plural = MISSING[e.controller ?? ''];
        expect(e.msg).toBe(
          `CustomResourceDefinition ${plural}.ecsops.io is not installed (the API server does not serve ecsops.io/v1alpha1 ${plural}): ` +
            `install it with "kubectl apply --server-side -f crds/" (Helm chart: deploy/helm/ecsops/crds/), ` +
            `or run without this controller: --controllers=${without[e.controller ?? '']}`,
        );
        expect(e.raw.trimEnd()).not.toContain('\n');
        expect(e.raw).not.toMatch(/HTTP-Code|Headers|audit-id|Unknown API Status Code/);
        expect(e.raw.length).toBeLessThan(600);
      }
      // Nothing else above info: the retries are at debug.
      expect(c.visible().filter((l) => l.level !== 'info' && l.level !== 'error')).toEqual([]);

      const notReady = await c.readyz();
      expect(notReady.status).toBe(503);
      expect(notReady.body).toBe(
        'not ready: caches not synced: ' +
          'maintenancewindow (CustomResourceDefinition maintenancewindows.ecsops.io is not installed), ' +
          'patchpolicy (CustomResourceDefinition patchpolicies.ecsops.io is not installed), ' +
          'apprelease (CustomResourceDefinition appreleases.ecsops.io is not installed), ' +
          'instancedisruptionbudget (CustomResourceDefinition instancedisruptionbudgets.ecsops.io is not installed)\n',
      );

      // The fix the line names, with no restart.
      for (const plural of Object.values(MISSING)) await applyCrd(kc, crdFile(plural));
      await c.running;
      await waitFor(
        '/readyz 200',
        async () => ((await c.readyz()).status === 200 ? true : undefined),
        60_000,
      );
      expect(
        c
          .visible()
          .filter((l) => l.msg === 'informer recovered')
          .map((l) => [l.level, l.controller])
          .sort(),
      ).toEqual([
        ['info', 'apprelease'],
        ['info', 'instancedisruptionbudget'],
        ['info', 'maintenancewindow'],
        ['info', 'patchpolicy'],
      ]);
      expect(c.visible().filter((l) => l.level === 'error')).toHaveLength(4);
    } finally {
      await c.stop();
    }
  });
});
