/**
 * `promtool check metrics` on a live scrape of the running controller's /metrics (real API server,
 * emulator, an EcsExtension reconciled to Ready so counters, histograms and per-resource gauges
 * carry series): exit 0 and no lint output. This keeps the scrape clean — prom-client's
 * `nodejs_active_*_total` gauges (dropped by src/metrics/registry.ts) made it exit 3 — and checks
 * our own families' names, HELP, types and units.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createEcsExtension,
  fleetSeed,
  instanceIds,
  startStack,
  waitForReady,
  type Stack,
} from '../../harness/stack.js';
import { findTool, toolPath, toolTitle } from '../../tools/tools.js';

const promtool = findTool('promtool');

describe.skipIf(promtool.skip)(`promtool check metrics on a live scrape ${toolTitle(promtool)}`, () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ seed: fleetSeed('prom', 4), prefix: 'prom' });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('exits 0 on /metrics after a reconcile that talked to the cloud', async () => {
    await createEcsExtension(stack, 'node', { targets: { instanceIds: instanceIds('prom', 1, 4) } });
    await waitForReady(stack, 'node');
    const port = stack.controller?.probes.metricsPort;
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(res.status).toBe(200);
    const scrape = await res.text();
    // The scrape carries samples of every kind of family the controller exports.
    for (const series of [
      /^controller_runtime_reconcile_total\{controller="ecsextension",result="requeue_after"\} [1-9]/m,
      /^controller_runtime_reconcile_time_seconds_count\{controller="ecsextension"\} [1-9]/m,
      /^workqueue_adds_total\{name="ecsextension",controller="ecsextension"\} [1-9]/m,
      /^ecsops_cloud_api_requests_total\{product="oos",action="[A-Za-z]+",code="OK"\} [1-9]/m,
      /^ecsops_cloud_api_request_duration_seconds_count\{product="oos",action="[A-Za-z]+"\} [1-9]/m,
      /^ecsops_executions_started_total\{template="[^"]+",action="install"\} [1-9]/m,
      /^ecsops_resource_instances\{kind="EcsExtension",namespace="[^"]+",name="node",state="installed"\} 4$/m,
      /^process_cpu_seconds_total [0-9.]+$/m,
      /^nodejs_active_handles\{type="[A-Za-z]+"\} [0-9]+$/m,
    ]) {
      expect(scrape).toMatch(series);
    }
    const check = spawnSync(toolPath(promtool), ['check', 'metrics'], {
      input: scrape,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect({ status: check.status, output: `${check.stdout}${check.stderr}`.trim() }).toEqual({
      status: 0,
      output: '',
    });
  });
});
