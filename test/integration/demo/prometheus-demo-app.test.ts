/**
 * The demo application (deploy/examples/artifacts/web-*) scraped by a real Prometheus: the
 * emulator in sandbox mode runs 3 instances, two with the good build (web-1.4.2) and one with
 * the bad one (web-1.4.3-bad), each listening on its own loopback address (ECS_PRIVATE_IP) and
 * port 8080; Prometheus (the binary test/tools/build.sh builds; nothing is built here) scrapes
 * them through file_sd every second; a bounded traffic loop sends requests to each; the error rate
 * read back through the HTTP API is 0 for the good build and > 0 for the bad one, per instance
 * and per version (joined on web_version_info). Stopping the emulator stops the servers.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EcsApi } from '../../../src/cloud/types.js';
import { fleetSeed, startCloudStack, type CloudStack } from '../../harness/fast.js';
import { REPO_ROOT } from '../../harness/paths.js';
import {
  emulatorTargets,
  prometheusTool,
  startPrometheus,
  type RunningPrometheus,
} from '../../harness/prometheus.js';
import { startTraffic } from '../../harness/traffic.js';
import { toolPath, toolTitle } from '../../tools/tools.js';

const REGION = 'cn-hangzhou';
const PORT = 8080;
const GOOD = { dir: 'web-1.4.2', version: '1.4.2' };
const BAD = { dir: 'web-1.4.3-bad', version: '1.4.3-bad' };
const prometheus = prometheusTool();

/** Error ratio over the last 5 s of the instances matching `ids` (a regex of instance IDs). */
const errorRate = (ids: string) =>
  `sum(rate(web_request_errors_total{instance_id=~"${ids}"}[5s])) / sum(rate(web_requests_total{instance_id=~"${ids}"}[5s]))`;
/** The same by version: the app's counters joined with web_version_info on the target. */
const ERROR_RATE_BY_VERSION =
  'sum by (version) (rate(web_request_errors_total[5s]) * on (instance) group_left (version) web_version_info)' +
  ' / sum by (version) (rate(web_requests_total[5s]) * on (instance) group_left (version) web_version_info)';

async function waitDone(ecs: EcsApi, invokeId: string, ms = 60_000) {
  const until = Date.now() + ms;
  for (;;) {
    const [inv] = await ecs.describeInvocations({ invokeId, includeOutput: true });
    if (inv && ['Success', 'Failed', 'PartialFailed', 'Stopped'].includes(inv.invocationStatus)) return inv;
    if (Date.now() > until) throw new Error(`invocation ${invokeId} not done: ${JSON.stringify(inv)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.skipIf(prometheus.skip)(`demo app scraped by a real Prometheus ${toolTitle(prometheus)}`, () => {
  let s: CloudStack;
  let prom: RunningPrometheus | undefined;
  let root: string;
  let ids: string[];
  let ips: Map<string, string>;

  /** Installs `build` on `instanceIds` and starts it as the AppRelease hooks do (web.sh start). */
  async function deploy(instanceIds: string[], build: { dir: string; version: string }): Promise<void> {
    const ecs = s.cloud.ecs(REGION);
    const file = readFileSync(join(REPO_ROOT, 'deploy/examples/artifacts', build.dir, 'web.sh')).toString(
      'base64',
    );
    const { invokeId } = await ecs.runCommand({
      type: 'RunShellScript',
      commandContent: [
        'set -e',
        `d=${root}/{{ACS::InstanceId}}/web`,
        'mkdir -p "$d" && cd "$d"',
        `printf '%s' '${file}' | base64 -d > web.sh`,
        `APP_DIR="$d" PORT=${PORT} ECSOPS_REVISION=${build.version} ECSOPS_INSTANCE_ID={{ACS::InstanceId}} bash web.sh start`,
        'cat web.status',
      ].join('\n'),
      instanceIds,
      enableParameter: true,
      parameters: {},
      timeoutSeconds: 60,
    });
    const inv = await waitDone(ecs, invokeId);
    for (const i of inv.instances) expect(i.invocationStatus, i.output).toBe('Success');
  }

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'ecsops-demo-'));
    s = await startCloudStack({ seed: fleetSeed('demo', 3), emulator: { sandbox: { rootDir: root } } });
    const instances = await s.emu.control.listInstances(REGION);
    ids = instances.map((i) => i.instanceId);
    ips = new Map(instances.map((i) => [i.instanceId, i.privateIpAddress]));
    await deploy(ids.slice(0, 2), GOOD);
    await deploy(ids.slice(2), BAD);
    prom = await startPrometheus({
      binary: toolPath(prometheus),
      targets: await emulatorTargets(s.emu.control, REGION, PORT),
      scrapeIntervalSeconds: 1,
    });
  });
  afterAll(async () => {
    await prom?.stop();
    await s?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('every instance serves on its own loopback address, same port', async () => {
    for (const id of ids) {
      const ip = ips.get(id) as string;
      expect(ip).toMatch(/^127\.\d+\.\d+\.\d+$/);
      const res = await fetch(`http://${ip}:${PORT}/healthz`);
      expect(await res.text()).toBe(`ok ${id === ids[2] ? BAD.version : GOOD.version}\n`);
    }
    await prom?.waitForTargetsUp(3);
  });

  it('the error rate is 0 for the good build and > 0 for the bad one', async () => {
    const p = prom as RunningPrometheus;
    const traffic = startTraffic({
      targets: ids.map((id) => `http://${ips.get(id)}:${PORT}`),
      maxRequests: 20_000,
      durationMs: 60_000,
      intervalMs: 10,
    });
    try {
      // what a gate reads: > 0 for the bad instance (all its requests fail), 0 for the good ones
      const measured = (v: number | undefined) => v !== undefined && !Number.isNaN(v);
      expect(await p.waitForValue(errorRate(ids[2] as string), (v) => measured(v) && (v as number) > 0)).toBe(
        1,
      );
      expect(await p.waitForValue(errorRate(`${ids[0]}|${ids[1]}`), measured)).toBe(0);
      const byVersion = Object.fromEntries(
        (await p.query(ERROR_RATE_BY_VERSION)).samples.map((x) => [x.metric['version'], x.value]),
      );
      expect(byVersion).toEqual({ [GOOD.version]: 0, [BAD.version]: 1 });
    } finally {
      await traffic.stop();
    }
    // the loop's own view: only the bad instance failed, with 500s
    const r = traffic.result;
    expect(r.byTarget[`http://${ips.get(ids[2] as string)}:${PORT}`]?.ok).toBe(0);
    for (const id of ids.slice(0, 2)) expect(r.byTarget[`http://${ips.get(id)}:${PORT}`]?.failed).toBe(0);
    expect(Object.keys(r.byStatus).sort()).toEqual(['200', '500']);
    expect(r.byVersion[GOOD.version]).toBeGreaterThan(0);
    expect(r.byVersion[BAD.version]).toBeGreaterThan(0);
  });

  it('stopping the emulator stops the servers it started', async () => {
    await s.stop();
    for (const id of ids) {
      const err = await fetch(`http://${ips.get(id)}:${PORT}/healthz`, {
        signal: AbortSignal.timeout(2000),
      }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, id).toBeDefined();
    }
  });
});
