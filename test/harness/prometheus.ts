/**
 * A real Prometheus server for the integration and e2e tiers (and `npm run local`): the binary
 * test/tools/build.sh builds from Go modules in the same `go build` as promtool (cached under
 * ~/.cache/ecsops/tools/prometheus-<version>/; nothing is built here), started on 127.0.0.1 with
 * a free port, its own temp dir (config, TSDB, log) and one scrape job `web` whose targets come
 * from a file_sd file this module rewrites (atomically, as the Prometheus docs ask), e.g. the
 * emulator's sandboxed instances running the demo app (deploy/examples/artifacts/web-*).
 * Stopped by PID (SIGTERM, SIGKILL after a grace period); also SIGKILLed when this process exits.
 *
 * Prometheus facts relied on (https://prometheus.io/docs/prometheus/latest/configuration/configuration/#file_sd_config,
 * https://prometheus.io/docs/prometheus/latest/querying/api/#instant-queries): file_sd files are
 * JSON lists of `{ targets: ["host:port"], labels: {...} }`, re-read on change; `GET
 * /api/v1/query?query=` answers `{ status, data: { resultType, result } }` with vector samples as
 * `{ metric, value: [<unix seconds>, "<number>"] }` and a scalar as `[<unix seconds>, "<number>"]`;
 * `GET /-/ready` answers 200 once the server serves queries.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EmulatorControl } from '../../src/emulator/index.js';
import { findTool, type ToolLookup } from '../tools/tools.js';
import { freePort } from './controlplane.js';

/**
 * Looks the Prometheus server binary up (test/tools/build.sh --check prometheus); never builds.
 * `path` is the binary (~/.cache/ecsops/tools/prometheus-<version>/prometheus) when it is built;
 * `skip` is true when it is missing outside CI (use with `describe.skipIf`, `toolTitle`).
 * `quiet`: no warning when missing.
 */
export function prometheusTool(opts: { quiet?: boolean } = {}): ToolLookup {
  return findTool('prometheus', opts);
}

/** One scrape target: `address` = `host:port`; `labels` are added to every series it yields. */
export interface PrometheusTarget {
  address: string;
  labels?: Record<string, string>;
}

/** One sample of an instant query: its labels and value (NaN / ±Inf as numbers). */
export interface PromSample {
  metric: Record<string, string>;
  value: number;
}

/** An instant query's answer: `vector` (samples) or `scalar` (one sample with no labels). */
export interface PromQueryResult {
  resultType: string;
  samples: PromSample[];
}

/** A running Prometheus server. */
export interface RunningPrometheus {
  /** `http://127.0.0.1:PORT` (the HTTP API and /metrics of Prometheus itself). */
  url: string;
  pid: number;
  /** Its temp dir (prometheus.yml, targets.json, data/, prometheus.log); removed by stop(). */
  dir: string;
  /** Scrape interval, seconds. */
  scrapeIntervalSeconds: number;
  /** Replaces the scrape targets (file_sd; Prometheus picks the change up within seconds). */
  setTargets(targets: PrometheusTarget[]): void;
  /** Instant query (`GET /api/v1/query`). @throws Error on a transport error or a non-success answer. */
  query(promql: string): Promise<PromQueryResult>;
  /**
   * The single number of a query: a scalar, or a vector with exactly one sample; undefined for an
   * empty vector. @throws Error when the vector has more than one sample or the query fails.
   */
  value(promql: string): Promise<number | undefined>;
  /**
   * Polls `value(promql)` every 250 ms until `accept(value)` holds; resolves with that value.
   * @throws Error after `timeoutMs` (default 30 s) with the last value or error.
   */
  waitForValue(
    promql: string,
    accept: (v: number | undefined) => boolean,
    timeoutMs?: number,
  ): Promise<number | undefined>;
  /** Waits until `count` targets report `up == 1`. @throws Error after `timeoutMs` (default 30 s). */
  waitForTargetsUp(count: number, timeoutMs?: number): Promise<void>;
  /** The last `lines` lines of its log (for failure messages). */
  logTail(lines?: number): string;
  /** SIGTERM by PID, SIGKILL after `graceMs` (default 10 s); removes the temp dir. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

/** Options of {@link startPrometheus}. */
export interface PrometheusOptions {
  /** The prometheus binary (e.g. `toolPath(prometheusTool())`). */
  binary: string;
  /** Initial targets of job `web`; default none. */
  targets?: PrometheusTarget[];
  /** Scrape and rule evaluation interval, seconds; default 1. */
  scrapeIntervalSeconds?: number;
  /** Listen port on 127.0.0.1; default a free one. */
  port?: number;
  /** Where its temp dir is created (e.g. a run dir a guard cleans up); default the OS temp dir. */
  parentDir?: string;
  /** Give up waiting for /-/ready after this long; default 60 s. */
  readyTimeoutMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Children not stopped yet: SIGKILLed when this process exits (a test that failed mid-way). */
const live = new Set<ChildProcess>();
let exitHook = false;
function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    for (const c of live) c.kill('SIGKILL');
  });
}

function parseValue(v: unknown): number {
  const s = Array.isArray(v) ? String(v[1]) : String(v);
  return s === '+Inf' ? Infinity : s === '-Inf' ? -Infinity : Number(s);
}

/** Parses an instant query answer of the HTTP API. @throws Error on `status: error`. */
export function parseQueryAnswer(body: unknown): PromQueryResult {
  const b = body as {
    status?: string;
    error?: string;
    errorType?: string;
    data?: { resultType?: string; result?: unknown };
  };
  if (b?.status !== 'success' || !b.data) {
    throw new Error(`prometheus: query failed: ${b?.errorType ?? '?'}: ${b?.error ?? JSON.stringify(body)}`);
  }
  const { resultType = '', result } = b.data;
  if (resultType === 'scalar') return { resultType, samples: [{ metric: {}, value: parseValue(result) }] };
  if (resultType !== 'vector') throw new Error(`prometheus: unexpected resultType ${resultType}`);
  return {
    resultType,
    samples: (result as Array<{ metric: Record<string, string>; value: unknown }>).map((r) => ({
      metric: r.metric,
      value: parseValue(r.value),
    })),
  };
}

/**
 * The targets of the emulator's instances in `regionId` (control API): `<privateIpAddress>:<port>`,
 * labelled `instance_id`, `zone_id` and `region_id`. In sandbox mode the addresses are the
 * instances' own loopback addresses, where the demo app listens.
 */
export async function emulatorTargets(
  control: EmulatorControl,
  regionId: string,
  port: number,
): Promise<PrometheusTarget[]> {
  return (await control.listInstances(regionId)).map((i) => ({
    address: `${i.privateIpAddress}:${port}`,
    labels: { instance_id: i.instanceId, zone_id: i.zoneId, region_id: regionId },
  }));
}

function config(scrape: number): string {
  // JSON is YAML: no YAML writer needed.
  return JSON.stringify(
    {
      global: {
        scrape_interval: `${scrape}s`,
        evaluation_interval: `${scrape}s`,
        scrape_timeout: `${scrape}s`,
      },
      scrape_configs: [
        {
          job_name: 'web',
          file_sd_configs: [{ files: ['targets.json'], refresh_interval: '5s' }],
        },
      ],
    },
    null,
    2,
  );
}

/**
 * Starts Prometheus and waits until it is ready (`/-/ready`).
 * @throws Error when it exits or is not ready within `readyTimeoutMs` (with its log tail); it is
 *   killed and its dir removed then.
 */
export async function startPrometheus(opts: PrometheusOptions): Promise<RunningPrometheus> {
  const scrape = opts.scrapeIntervalSeconds ?? 1;
  const dir = mkdtempSync(join(opts.parentDir ?? tmpdir(), 'ecsops-prometheus-'));
  const logPath = join(dir, 'prometheus.log');
  const targetsPath = join(dir, 'targets.json');
  const setTargets = (targets: PrometheusTarget[]): void => {
    const tmp = `${targetsPath}.tmp`;
    writeFileSync(
      tmp,
      JSON.stringify(targets.map((t) => ({ targets: [t.address], labels: t.labels ?? {} }))),
    );
    renameSync(tmp, targetsPath);
  };
  setTargets(opts.targets ?? []);
  writeFileSync(join(dir, 'prometheus.yml'), config(scrape));
  const logTail = (lines = 20): string => {
    try {
      return readFileSync(logPath, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  };

  let child: ChildProcess | undefined;
  let port = 0;
  // A free port may be taken between the probe and Prometheus' bind: try a few.
  for (let attempt = 0; attempt < 3 && !child; attempt++) {
    port = opts.port ?? (await freePort());
    const c = spawn(
      opts.binary,
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--storage.tsdb.retention.time=2h',
        '--log.level=info',
      ],
      { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    track(c);
    const chunks: Buffer[] = [];
    c.stderr?.on('data', (b: Buffer) => {
      chunks.push(b);
      writeFileSync(logPath, b, { flag: 'a' });
    });
    c.on('error', () => undefined);
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 60_000);
    let ready = false;
    while (Date.now() < deadline && c.exitCode === null && c.signalCode === null) {
      try {
        const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) });
        if (res.status === 200) {
          ready = true;
          break;
        }
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    if (ready) {
      child = c;
      break;
    }
    const exited = c.exitCode !== null || c.signalCode !== null;
    if (!exited) {
      c.kill('SIGKILL');
      await new Promise((r) => c.once('exit', r));
    }
    const inUse = /address already in use/.test(Buffer.concat(chunks).toString());
    if (!(exited && inUse && opts.port === undefined)) {
      const tail = logTail();
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`prometheus did not become ready on ${url}:\n${tail}`);
    }
  }
  if (!child) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error('prometheus: no free port after 3 attempts');
  }
  const proc = child;
  const url = `http://127.0.0.1:${port}`;

  const query = async (promql: string): Promise<PromQueryResult> => {
    const res = await fetch(`${url}/api/v1/query?${new URLSearchParams({ query: promql })}`, {
      signal: AbortSignal.timeout(10_000),
    });
    return parseQueryAnswer(await res.json());
  };
  const value = async (promql: string): Promise<number | undefined> => {
    const r = await query(promql);
    if (r.samples.length > 1) {
      throw new Error(`prometheus: ${promql} gave ${r.samples.length} samples, want at most 1`);
    }
    return r.samples[0]?.value;
  };
  let stopped: Promise<void> | undefined;
  return {
    url,
    pid: proc.pid as number,
    dir,
    scrapeIntervalSeconds: scrape,
    setTargets,
    query,
    value,
    async waitForValue(promql, accept, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      let last: unknown;
      for (;;) {
        try {
          const v = await value(promql);
          if (accept(v)) return v;
          last = v;
        } catch (err) {
          last = err;
        }
        if (Date.now() > deadline) {
          throw new Error(`prometheus: ${promql} not accepted after ${timeoutMs} ms; last: ${String(last)}`);
        }
        await sleep(250);
      }
    },
    async waitForTargetsUp(count, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const up = await value('count(up == 1)').catch(() => undefined);
        if ((up ?? 0) >= count) return;
        if (Date.now() > deadline) {
          const targets = await fetch(`${url}/api/v1/targets`)
            .then((r) => r.text())
            .catch((e: unknown) => String(e));
          throw new Error(`prometheus: ${up ?? 0}/${count} targets up after ${timeoutMs} ms: ${targets}`);
        }
        await sleep(250);
      }
    },
    logTail,
    stop(graceMs = 10_000) {
      stopped ??= (async () => {
        if (proc.exitCode === null && proc.signalCode === null) {
          const exited = new Promise((r) => proc.once('exit', r));
          try {
            process.kill(proc.pid as number, 'SIGTERM');
          } catch {
            // exited meanwhile
          }
          const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
          await exited;
          clearTimeout(timer);
        }
        rmSync(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}
