/**
 * src/main.ts `buildController` (the controller wired as `ecsops controller` wires it, nothing
 * started): `--controllers` registers exactly the controllers it names, under the names the flag
 * validates; and the registry it serves passes `promtool check metrics` (names, HELP, types,
 * units, no gauge named like a counter). The live scrape after real reconciles is checked in
 * test/integration/runtime/metrics-promtool.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { CONTROLLER_NAMES, parseConfig } from '../../../src/config.js';
import { buildController } from '../../../src/main.js';
import { DROPPED_DEFAULT_METRICS } from '../../../src/metrics/registry.js';
import { createLogger } from '../../../src/runtime/logger.js';
import { findTool, toolPath, toolTitle } from '../../tools/tools.js';

const dir = mkdtempSync(join(tmpdir(), 'ecsops-build-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const kubeconfig = join(dir, 'kubeconfig');
writeFileSync(
  kubeconfig,
  [
    'apiVersion: v1',
    'kind: Config',
    'clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]',
    'users: [{name: u, user: {token: fake-token}}]',
    'contexts: [{name: c, context: {cluster: c, user: u}}]',
    'current-context: c',
  ].join('\n'),
);

function build(controllers?: string) {
  const cfg = parseConfig(
    ['--kubeconfig', kubeconfig, ...(controllers !== undefined ? ['--controllers', controllers] : [])],
    {},
  );
  return buildController(cfg, {
    logger: createLogger({ level: 'silent' }),
    cloud: { credential: { accessKeyId: 'fake-id', accessKeySecret: 'fake-secret' } },
  });
}

describe('buildController --controllers', () => {
  it('registers every controller by default, under the names --controllers accepts', () => {
    expect(build().manager.controllers().sort()).toEqual([...CONTROLLER_NAMES].sort());
  });

  const cases: Array<{ value: string; want: string[] }> = [
    { value: 'ecsextension', want: ['ecsextension'] },
    {
      value: '*,-apprelease',
      want: ['ecsextension', 'instancedisruptionbudget', 'maintenancewindow', 'patchpolicy'],
    },
    {
      value: '*,-patchpolicy,-maintenancewindow',
      want: ['apprelease', 'ecsextension', 'instancedisruptionbudget'],
    },
    { value: 'instancedisruptionbudget', want: ['instancedisruptionbudget'] },
    { value: 'maintenancewindow', want: ['maintenancewindow'] },
    { value: 'patchpolicy,maintenancewindow', want: ['maintenancewindow', 'patchpolicy'] },
    { value: 'apprelease', want: ['apprelease'] },
  ];
  for (const c of cases) {
    it(`"${c.value}" registers ${c.want.join(', ')}`, () => {
      expect(build(c.value).manager.controllers().sort()).toEqual(c.want);
    });
  }

  it('is ready once the enabled controllers alone have synced (readiness names only them)', () => {
    expect(build('ecsextension').manager.readyz()).toEqual({
      ok: false,
      detail: 'caches not synced: ecsextension',
    });
  });
});

const promtool = findTool('promtool');

function checkMetrics(text: string): { status: number | null; out: string } {
  const res = spawnSync(toolPath(promtool), ['check', 'metrics'], {
    input: text,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: res.status, out: `${res.stdout}${res.stderr}`.trim() };
}

describe.skipIf(promtool.skip)(`promtool check metrics ${toolTitle(promtool)}`, () => {
  it('passes on the registry the controller serves (every family it registers)', async () => {
    const { registry } = build();
    const text = await registry.metrics();
    for (const family of [
      'controller_runtime_reconcile_total',
      'workqueue_depth',
      'leader_election_master_status',
      'ecsops_cloud_api_requests_total',
      'ecsops_executions_started_total',
      'ecsops_resource_instances',
      'ecsops_patch_instances',
      'ecsops_apprelease_rollouts_total',
      'process_cpu_seconds_total',
      'nodejs_active_handles',
    ]) {
      expect(text).toContain(`# TYPE ${family} `);
    }
    expect(checkMetrics(text)).toEqual({ status: 0, out: '' });
  });

  it("fails on prom-client's unfiltered defaults (the gauges createRegistry drops)", async () => {
    const raw = new Registry();
    collectDefaultMetrics({ register: raw });
    const { status, out } = checkMetrics(await raw.metrics());
    expect(status).toBe(3);
    for (const name of DROPPED_DEFAULT_METRICS) {
      expect(out).toContain(`${name} non-counter metrics should not have "_total" suffix`);
    }
  });
});
