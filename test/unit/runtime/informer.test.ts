/**
 * CustomResourceInformer's failure logging against a scripted fake API server (node:http) and a
 * fake clock: start-up retries (connection refused, 429 while storage initializes) stay at debug
 * until they persist for INFORMER_QUIET_RETRY_MS; a missing CRD (404) is one error line naming it,
 * not repeated within INFORMER_REPEAT_LOG_MS; every line is short and carries the reason.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FakeClock } from '../../../src/runtime/clock.js';
import {
  CustomResourceInformer,
  INFORMER_QUIET_RETRY_MS,
  INFORMER_REPEAT_LOG_MS,
} from '../../../src/runtime/informer.js';
import { createLogger } from '../../../src/runtime/logger.js';

const group = 'informer-test.ecsops.io';
const plural = 'widgets';
const crd = `${plural}.${group}`;

type Reply = (res: ServerResponse) => void;

/** A Kubernetes `Status` reply as kube-apiserver sends it, with the headers client-node dumps. */
function status(code: number, reason: string, message: string): Reply {
  return (res) => {
    res.writeHead(code, {
      'content-type': 'application/json',
      'audit-id': '6c3f2f0e-2d9b-4a53-9f83-2f1f0b8a4c11',
      'cache-control': 'no-cache, private',
      'retry-after': '1',
      'x-kubernetes-pf-flowschema-uid': 'ad3b0c3e-7c62-4a0b-9f3e-5f3a8f1d2c10',
      'x-kubernetes-pf-prioritylevel-uid': '0b5e9c1e-7a41-4c2f-8d7e-1c2b3a4d5e6f',
    });
    res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason, code }));
  };
}

const storageInitializing = status(429, 'TooManyRequests', 'storage is (re)initializing');
const notFound = status(404, 'NotFound', 'the server could not find the requested resource');
const forbidden = status(
  403,
  'Forbidden',
  `${crd} is forbidden: User "system:serviceaccount:ecsops-system:ecsops" cannot list resource "${plural}" in API group "${group}" at the cluster scope`,
);
const emptyList: Reply = (res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(
    JSON.stringify({
      apiVersion: `${group}/v1`,
      kind: 'WidgetList',
      metadata: { resourceVersion: '7' },
      items: [],
    }),
  );
};

/** A fake API server: LIST answers with `reply()`; WATCH answers 200 and stays open. */
class FakeApiServer {
  reply: Reply = emptyList;
  lists = 0;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(readonly port: number) {}

  async listen(): Promise<void> {
    this.server = createServer((req, res) => {
      if (new URL(req.url ?? '/', 'http://x').searchParams.get('watch') === 'true') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.flushHeaders();
        return;
      }
      this.lists++;
      this.reply(res);
    });
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => this.server?.listen(this.port, '127.0.0.1', resolve));
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/** A port that was free a moment ago (nothing listens on it yet: connections are refused). */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

interface Line {
  level: string;
  msg: string;
  error?: string;
  failures?: number;
  failingForMs?: number;
  raw: string;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(opts: { listening: boolean; notFoundHint?: string }) {
  const port = await freePort();
  const api = new FakeApiServer(port);
  if (opts.listening) await api.listen();
  cleanups.push(() => api.close());
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'fake', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 'fake-token' }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'u' }],
    currentContext: 'fake',
  });
  const lines: Line[] = [];
  const logger = createLogger({
    level: 'debug',
    destination: {
      write: (s: string) => void lines.push({ ...(JSON.parse(s) as Omit<Line, 'raw'>), raw: s }),
    },
  });
  const clock = new FakeClock();
  const informer = new CustomResourceInformer({
    kubeConfig: kc,
    group,
    version: 'v1',
    plural,
    logger,
    clock,
    ...(opts.notFoundHint ? { notFoundHint: opts.notFoundHint } : {}),
  });
  cleanups.push(() => informer.stop());
  const failures = () => lines.filter((l) => l.msg !== 'informer synced' && l.failures !== undefined);
  /** Runs the pending restart (`ms` later on the fake clock) and waits for its outcome to be logged. */
  const retry = async (ms: number): Promise<void> => {
    const before = lines.length;
    await clock.advance(ms);
    await vi.waitFor(() => expect(lines.length).toBeGreaterThan(before), { timeout: 5000 });
  };
  return { api, informer, lines, clock, failures, retry };
}

/** Every failure line is one short JSON line with the reason, never client-node's dump. */
function expectReadable(lines: Line[]): void {
  for (const l of lines) {
    expect(l.raw.trimEnd()).not.toContain('\n');
    expect(l.raw).not.toMatch(/HTTP-Code|Headers|audit-id|flowschema/);
    expect(l.raw.length).toBeLessThan(600);
  }
}

describe('CustomResourceInformer failure logging', () => {
  it('logs start-up retries (connection refused, then 429 storage initializing) at debug only', async () => {
    const { api, informer, lines, failures, retry } = await setup({ listening: false });
    await informer.start(); // connection refused
    expect(informer.hasSynced()).toBe(false);
    await retry(1000); // refused again
    await api.listen();
    api.reply = storageInitializing;
    await retry(2000);
    await retry(4000);
    api.reply = emptyList;
    await retry(8000);
    expect(informer.hasSynced()).toBe(true);

    const failed = failures().filter((l) => l.msg !== 'informer recovered');
    expect(failed.map((l) => [l.level, l.error])).toEqual([
      ['debug', expect.stringMatching(/^fetch failed: connect ECONNREFUSED 127\.0\.0\.1:\d+$/)],
      ['debug', expect.stringMatching(/^fetch failed: connect ECONNREFUSED/)],
      ['debug', 'HTTP 429 TooManyRequests: storage is (re)initializing'],
      ['debug', 'HTTP 429 TooManyRequests: storage is (re)initializing'],
    ]);
    expect(lines.filter((l) => l.level !== 'debug')).toEqual([]);
    expect(lines.find((l) => l.msg === 'informer recovered')).toMatchObject({ level: 'debug', failures: 4 });
    expect(informer.lastError()).toBeUndefined();
    expectReadable(lines);
  });

  it(`escalates transient failures to warn once they persist for ${INFORMER_QUIET_RETRY_MS / 1000} s, then repeats at most every ${INFORMER_REPEAT_LOG_MS / 60_000} min`, async () => {
    const { api, informer, clock, lines, failures, retry } = await setup({ listening: true });
    api.reply = storageInitializing;
    const t0 = clock.now();
    await informer.start();
    // Restart delays double from 1 s to the 30 s cap: failures at 0, 1, 3, 7, 15, 31, 61, … s.
    let delay = 1000;
    while (clock.now() - t0 < INFORMER_QUIET_RETRY_MS + INFORMER_REPEAT_LOG_MS + 60_000) {
      await retry(delay);
      delay = Math.min(delay * 2, 30_000);
    }
    // The first failure at ≥ 30 s is a warn; the same problem again only ≥ 5 min later.
    const warnAt = [31_000, 31_000 + INFORMER_REPEAT_LOG_MS];
    for (const l of failures()) {
      const at = l.failingForMs ?? -1;
      expect(l.level, `failure ${at} ms into the outage`).toBe(warnAt.includes(at) ? 'warn' : 'debug');
    }
    const warns = lines.filter((l) => l.level === 'warn');
    expect(warns).toHaveLength(2);
    expect(warns[0]).toMatchObject({
      msg: 'informer stopped on error; restarting',
      error: 'HTTP 429 TooManyRequests: storage is (re)initializing',
      failures: 6,
    });
    expect(informer.lastError()).toBe('HTTP 429 TooManyRequests: storage is (re)initializing');

    api.reply = emptyList;
    await retry(30_000);
    expect(informer.hasSynced()).toBe(true);
    // The outage was reported above debug, so the recovery is too.
    expect(lines.at(-2)).toMatchObject({ level: 'info', msg: 'informer recovered' });
    expectReadable(lines);
  });

  it('reports a missing CRD as one error line naming it and the fix, not repeated on every retry', async () => {
    const hint = 'install it with "kubectl apply --server-side -f crds/"';
    const { api, informer, clock, lines, failures, retry } = await setup({
      listening: true,
      notFoundHint: hint,
    });
    api.reply = notFound;
    const t0 = clock.now();
    await informer.start();
    for (const ms of [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]) await retry(ms);
    expect(api.lists).toBe(8);
    const errors = lines.filter((l) => l.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]?.msg).toBe(
      `CustomResourceDefinition ${crd} is not installed (the API server does not serve ${group}/v1 ${plural}): ${hint}`,
    );
    expect(errors[0]?.error).toBe('HTTP 404 NotFound: the server could not find the requested resource');
    expect(
      failures()
        .filter((l) => l.level !== 'error')
        .every((l) => l.level === 'debug'),
    ).toBe(true);
    expect(informer.lastError()).toBe(`CustomResourceDefinition ${crd} is not installed`);

    // Still missing 5 minutes after the first line: said once more.
    while (clock.now() - t0 < INFORMER_REPEAT_LOG_MS) await retry(30_000);
    expect(lines.filter((l) => l.level === 'error')).toHaveLength(2);

    // Installed: the cache syncs, and the recovery is logged.
    api.reply = emptyList;
    await retry(30_000);
    expect(informer.hasSynced()).toBe(true);
    expect(informer.lastError()).toBeUndefined();
    expect(lines.find((l) => l.msg === 'informer recovered')).toMatchObject({ level: 'info' });
    expectReadable(lines);
  });

  it('reports a forbidden list (RBAC) as an error at once, with the API server message', async () => {
    const { api, informer, lines } = await setup({ listening: true });
    api.reply = forbidden;
    await informer.start();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 'error',
      msg: `cannot list/watch ${crd}: access denied, check the controller's RBAC; restarting`,
      error: expect.stringMatching(
        /^HTTP 403 Forbidden: widgets\.informer-test\.ecsops\.io is forbidden: User/,
      ),
    });
    expectReadable(lines);
  });
});
