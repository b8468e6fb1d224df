/**
 * Traffic control benchmark (issue 24): REAL HTTP traffic through the emulator's ALB while an
 * AppRelease rollout or a PatchPolicy install with reboots runs, with and without
 * `spec.trafficControl`.
 * `npm run bench:traffic [-- --rate N] [--min-requests N] [--only a,b,c,d] [--out DIR]`.
 *
 * Outside vitest: its own control plane (test/harness/controlplane.ts), then the fixture of
 * test/harness/traffic-scenarios.ts (the one test/integration/traffic/traffic-e2e.test.ts uses):
 * the real controller in process, the emulator in sandbox mode, the demo app (python3 HTTP server,
 * graceful on SIGTERM) on 12 instances behind one ALB (wrr, weights 100…50, health checks on
 * /healthz), each instance's boot hook starting the app after a patch reboot. A steady load
 * (test/harness/load.ts, autocannon: `--rate` req/s, default 300, 16 keep-alive connections
 * re-opened every 20 requests) runs for the whole of each scenario:
 * - a: AppRelease 1.4.2 → 1.4.3 with trafficControl (drainSeconds 2, healthyTimeoutSeconds 60,
 *   default maxDrained 25 %), until Succeeded and `--min-requests` (default 20,000) ended;
 * - b: the same rollout (1.4.3 → 1.4.4) without trafficControl, until Succeeded;
 * - c: a PatchPolicy install (3 missing patches, the kernel one needs a reboot, rebootIfNeeded,
 *   window open now) with trafficControl, until done and `--min-requests` ended;
 * - d: the same install without trafficControl, until done.
 * Results: bench/results/traffic.md and .json (per scenario: requests, failed requests by status,
 * per-version answers per 5-second window, the change's duration, batch starts, settings).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { format, resolveConfig } from 'prettier';
import { startControlPlane } from '../harness/controlplane.js';
import { windows } from '../harness/load.js';
import { REPO_ROOT } from '../harness/paths.js';
import {
  DEFAULT_SETTINGS,
  FIXTURE_HEALTH_CHECK_INTERVAL_SECONDS,
  FIXTURE_TIME_SCALE,
  FIXTURE_WEIGHTS,
  labelled,
  runPatch,
  runRollout,
  startTrafficFixture,
  stepShares,
  type ScenarioResult,
  type ScenarioSettings,
  type TrafficFixture,
} from '../harness/traffic-scenarios.js';

const args = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const rate = Number(arg('--rate') ?? DEFAULT_SETTINGS.rate);
const minRequests = Number(arg('--min-requests') ?? 20_000);
const only = arg('--only')?.split(',');
const outDir = resolve(arg('--out') ?? join(REPO_ROOT, 'bench/results'));
const TC = { drainSeconds: 2, healthyTimeoutSeconds: 60 };
/** Real seconds of `model` emulator seconds. */
const secs = (model: number): number => +(model * FIXTURE_TIME_SCALE).toFixed(3);

const withTc: ScenarioSettings = {
  ...DEFAULT_SETTINGS,
  rate,
  minRequests,
  maxDurationMs: Math.max(240_000, Math.ceil((minRequests / rate) * 1000) * 2),
};
const withoutTc: ScenarioSettings = { ...withTc, minRequests: 0 };

interface Row {
  scenario: string;
  what: string;
  result: ScenarioResult;
  /** Answers per version with readable labels, and 5-second windows. */
  byVersion: Record<string, number>;
  windows: Array<{ t: number; failed: number; byVersion: Record<string, number> }>;
  /** AppRelease: the new version's share per batch step (see stepShares). */
  newShareBySteps?: number[];
}

function row(f: TrafficFixture, scenario: string, what: string, r: ScenarioResult): Row {
  const out: Row = {
    scenario,
    what,
    result: r,
    byVersion: labelled(f, r.load.byVersion),
    windows: windows(r.load.buckets, 5).map((w) => ({
      t: w.t,
      failed: w.failed,
      byVersion: labelled(f, w.byVersion),
    })),
  };
  if (r.kind === 'AppRelease') out.newShareBySteps = stepShares(f, r, r.toVersion).map((x) => +x.toFixed(3));
  process.stdout.write(
    `[bench] ${scenario}: requests ${r.load.requests}, failed ${r.load.failed} ${JSON.stringify(r.load.byStatus)}, change ${(r.changeMs / 1000).toFixed(1)} s\n`,
  );
  return out;
}

function table(r: Row): string {
  const versions = [...new Set(r.windows.flatMap((w) => Object.keys(w.byVersion)))].sort();
  const start = Math.floor(r.result.changeStartSecond / 5) * 5;
  const done = Math.floor(r.result.changeDoneSecond / 5) * 5;
  const batches = r.result.batchStartSeconds.map((s) => Math.floor(s / 5) * 5);
  const lines = [
    `| window (s) | ${versions.join(' | ')} | failed | |`,
    `|---|${versions.map(() => '---:').join('|')}|---:|---|`,
  ];
  for (const w of r.windows) {
    const marks = [
      w.t === start ? 'change applied' : '',
      ...batches.map((b, i) => (b === w.t ? `batch ${i} starts` : '')),
      w.t === done ? 'done' : '',
    ].filter(Boolean);
    lines.push(
      `| ${w.t}–${w.t + 5} | ${versions.map((v) => w.byVersion[v] ?? 0).join(' | ')} | ${w.failed} | ${marks.join(', ')} |`,
    );
  }
  return lines.join('\n');
}

function report(rows: Row[], wallMs: number): string {
  const s = withTc;
  const out = [
    '# Traffic control under real HTTP traffic (issue 24)',
    '',
    `\`npm run bench:traffic\` (test/bench/traffic.bench.ts), ${new Date().toISOString().slice(0, 10)}, ` +
      `${cpus().length} cores; whole run ${(wallMs / 1000).toFixed(0)} s.`,
    '',
    'The real controller (in process) and API server, the emulator in sandbox mode (time scale ' +
      `${FIXTURE_TIME_SCALE}: ALB health checks every ${secs(FIXTURE_HEALTH_CHECK_INTERVAL_SECONDS)} s, 3 passes → healthy, 3 failures → unhealthy; ALB changes applied after ${secs(3)} s; a reboot's Stopping ${secs(3)} s), ` +
      'the demo app (deploy/examples/artifacts/web-*: python3 HTTP server, graceful SIGTERM, boot hook after a reboot) ' +
      `on 12 instances behind one emulated ALB (wrr, weights ${FIXTURE_WEIGHTS.join(', ')}; port 8080). ` +
      `Load: autocannon 9.0.0, overallRate ${s.rate} req/s, ${s.connections} keep-alive connections, each re-opened every ` +
      `${s.reconnectEvery} requests (open connections stay pinned to their backend, new ones are scheduled afresh); ` +
      'failed = non-2xx answers + connection errors + timeouts (5 s). With trafficControl: ' +
      `\`${JSON.stringify(TC)}\`, default maxDrained (25 % = 3 of 12); those runs keep sending until the change is done ` +
      `and ${s.minRequests.toLocaleString('en-US')} requests ended; the runs without it stop when the change is done.`,
    '',
    '| scenario | requests | failed | by status | change took | batches | answers by version |',
    '|---|---:|---:|---|---:|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.scenario}: ${r.what} | ${r.result.load.requests} | ${r.result.load.failed} | ${JSON.stringify(r.result.load.byStatus)} | ` +
        `${(r.result.changeMs / 1000).toFixed(1)} s | ${r.result.detail} | ${JSON.stringify(r.byVersion)} |`,
    ),
    '',
  ];
  for (const r of rows) {
    out.push(`## ${r.scenario}: ${r.what}`, '');
    if (r.newShareBySteps)
      out.push(
        `Share of ${r.result.toVersion} among answers, per batch step (before batch 0 starts, then from each batch's start — its drain, with trafficControl — to the next one's, the last up to Succeeded): ${r.newShareBySteps.join(' → ')}.`,
        '',
      );
    out.push(table(r), '');
  }
  return out.join('\n');
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const cp = await startControlPlane();
  const rows: Row[] = [];
  let f: TrafficFixture | undefined;
  try {
    f = await startTrafficFixture({ kubeconfigPath: cp.kubeconfigPath, prefix: 'trafficbench' });
    const want = (s: string) => !only || only.includes(s);
    if (want('a'))
      rows.push(
        row(
          f,
          'a',
          'AppRelease 1.4.2 → 1.4.3 with trafficControl',
          await runRollout(f, 'a', '1.4.3', TC, withTc),
        ),
      );
    if (want('b'))
      rows.push(
        row(
          f,
          'b',
          'AppRelease 1.4.3 → 1.4.4 without trafficControl',
          await runRollout(f, 'b', '1.4.4', null, withoutTc),
        ),
      );
    if (want('c'))
      rows.push(
        row(
          f,
          'c',
          'PatchPolicy install with reboots, with trafficControl',
          await runPatch(f, 'bench-c', TC, withTc),
        ),
      );
    if (want('d'))
      rows.push(
        row(
          f,
          'd',
          'PatchPolicy install with reboots, without trafficControl',
          await runPatch(f, 'bench-d', null, withoutTc),
        ),
      );
  } finally {
    await f?.stop();
    await cp.stop();
  }
  const wallMs = Date.now() - t0;
  mkdirSync(outDir, { recursive: true });
  const suffix = only ? `-${only.join('_')}` : '';
  const json = join(outDir, `traffic${suffix}.json`);
  const data = {
    settings: { withTrafficControl: withTc, withoutTrafficControl: withoutTc, trafficControl: TC },
    cores: cpus().length,
    wallMs,
    scenarios: rows.map((r) => ({
      ...r,
      result: { ...r.result, load: { ...r.result.load, buckets: undefined } },
      seconds: r.result.load.buckets,
    })),
  };
  writeFileSync(json, await format(JSON.stringify(data), { ...(await resolveConfig(json)), filepath: json }));
  const md = join(outDir, `traffic${suffix}.md`);
  const text = report(rows, wallMs);
  writeFileSync(md, await format(text, { ...(await resolveConfig(md)), filepath: md }));
  process.stdout.write(text);
}

await main();
