/**
 * The AppRelease wrapper run for real with bash in a temp dir, against an artifact served by a
 * local HTTP server, with Cloud Assistant's parameter substitution applied as the emulator does.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  COMMAND_LIMIT_BYTES,
  USER_CONTENT_BUDGET_BYTES,
  type AppReleaseSpec,
} from '../../../src/api/apprelease.js';
import {
  commandParameters,
  isTransientDownloadFailure,
  parseWrapperOutput,
  renderCommand,
  userContentBytes,
  WRAPPER_BODY,
  type WrapperAction,
} from '../../../src/controllers/apprelease/wrapper.js';
import { substituteParameters } from '../../../src/emulator/sandbox.js';

let root: string;
let server: Server;
let base: string;
let downloads = 0;
let healthStatus = 200;
const artifacts = new Map<string, Buffer>();

/** A tar.gz with app.sh printing its version. */
function makeArtifact(version: string): Buffer {
  const dir = mkdtempSync(join(root, 'art-'));
  writeFileSync(join(dir, 'app.sh'), `#!/bin/bash\necho "app ${version}"\n`);
  writeFileSync(join(dir, 'VERSION'), `${version}\n`);
  const out = join(root, `art-${version}.tar.gz`);
  execFileSync('tar', ['-czf', out, '-C', dir, '.']);
  return readFileSync(out);
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'ecsops-wrapper-'));
  for (const v of ['1', '2', '3']) artifacts.set(`/app-${v}.tar.gz`, makeArtifact(v));
  server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0] ?? '';
    if (path === '/reset.tar.gz') {
      req.socket.destroy(); // a transport failure: no answer at all (curl exit 52)
      return;
    }
    if (path === '/healthz') {
      res.writeHead(healthStatus).end('health');
      return;
    }
    const body = artifacts.get(path);
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    downloads++;
    res.writeHead(200, { 'content-type': 'application/gzip' }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(root, { recursive: true, force: true });
});

/** A spec whose hooks log to <appDir>/../events.log. */
function specFor(appDir: string, version: string, over: Partial<AppReleaseSpec> = {}): AppReleaseSpec {
  const body = artifacts.get(`/app-${version}.tar.gz`) as Buffer;
  const log = (what: string) => `echo "${what} $ECSOPS_REVISION $(cat VERSION)" >> "$APP_DIR/../events.log"`;
  return {
    regionId: 'cn-hangzhou',
    targets: { instanceIds: ['i-test'] },
    application: 'shop',
    version,
    artifact: { url: `${base}/app-${version}.tar.gz?Expires=1&Signature=secret`, sha256: sha(body) },
    install: { appDir, keepReleases: 3, env: { GREETING: `hello ${version}` } },
    hooks: {
      stop: { script: log('stop') },
      beforeInstall: { script: log('beforeInstall') },
      afterInstall: { script: log('afterInstall') },
      start: { script: `${log('start')}\n[ "$GREETING" = "hello ${version}" ] || exit 9` },
      validate: { script: 'bash ./app.sh | grep -q app' },
    },
    healthCheck: { exec: { script: 'test -f VERSION' }, periodSeconds: 1, failureThreshold: 2 },
    ...over,
  };
}

/** Renders the command as the controller does, substitutes parameters as Cloud Assistant does, runs bash. */
async function run(
  action: WrapperAction,
  revision: string,
  spec: AppReleaseSpec,
  fetch = false,
  secretDocument?: string,
  env: Record<string, string> = {},
): Promise<{ code: number | null; output: string; wallMs: number }> {
  const rendered = renderCommand({
    action,
    revision,
    spec,
    owner: 'ns/x',
    fetch,
    ...(secretDocument !== undefined ? { secretParameter: SECRET_PARAMETER } : {}),
  });
  // Cloud Assistant resolves {{oos-secret:…}} on the instance; here the test does.
  const content = substituteParameters(
    rendered.replace(`{{oos-secret:${SECRET_PARAMETER}}}`, secretDocument ?? ''),
    commandParameters(action, revision),
    {
      instanceId: 'i-test',
      regionId: 'cn-hangzhou',
      invokeId: 't-1',
      commandId: 'c-1',
    },
  );
  const t0 = Date.now();
  return new Promise((resolve) => {
    const p = spawn('bash', ['-c', content], { env: { PATH: process.env.PATH ?? '', HOME: root, ...env } });
    let output = '';
    p.stdout.on('data', (b: Buffer) => (output += b.toString()));
    p.stderr.on('data', (b: Buffer) => (output += b.toString()));
    p.on('close', (code) => resolve({ code, output, wallMs: Date.now() - t0 }));
  });
}

const SECRET_PARAMETER = 'ecsops-test-0123abcd';

/** A secret document as the controller encodes it: lines `KEY=<base64 of value>`. */
function secretDocument(values: Record<string, string>): string {
  return Object.entries(values)
    .map(([k, v]) => `${k}=${Buffer.from(v, 'utf8').toString('base64')}`)
    .join('\n');
}

/** Every file under dir (recursive) whose content contains `needle`. */
function filesContaining(dir: string, needle: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && readFileSync(p).includes(needle)) out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out;
}

/** Every path under dir (relative), excluding the wrapper's logs and last-result marker. */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const rel = relative(dir, p);
      if (rel.startsWith('.ecsops/logs') || rel === '.ecsops/last-result' || rel === '.ecsops/lock') continue;
      out.push(e.isSymbolicLink() ? `${rel} -> ${readlinkSync(p)}` : rel);
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.sort();
}

function events(appDir: string): string[] {
  const f = join(appDir, '..', 'events.log');
  return existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n') : [];
}

function newAppDir(): string {
  const d = mkdtempSync(join(root, 'host-'));
  return join(d, 'app');
}

describe('AppRelease wrapper (real bash)', () => {
  it('deploys: download, verify, unpack, hooks in order, swap, health; markers per step', async () => {
    const appDir = newAppDir();
    const r = await run('deploy', 'rev1', specFor(appDir, '1'));
    expect(r.code, r.output).toBe(0);
    const report = parseWrapperOutput(r.output);
    expect(report.result).toEqual({ ok: true });
    expect(report.steps.map((s) => s.name)).toEqual([
      'prepare',
      'download',
      'verify',
      'unpack',
      'stop',
      'beforeInstall',
      'swap',
      'afterInstall',
      'start',
      'validate',
      'health',
      'prune',
    ]);
    expect(readlinkSync(join(appDir, 'current'))).toBe('releases/rev1');
    expect(events(appDir)).toEqual(['beforeInstall rev1 1', 'afterInstall rev1 1', 'start rev1 1']);
    // env values are on the host only in a 0600 file, never in the output
    expect(statSync(join(appDir, 'releases', 'rev1.ecsops', 'env')).mode & 0o777).toBe(0o600);
    expect(r.output).not.toContain('hello 1');
  });

  it('refuses a sha256 mismatch before anything changes', async () => {
    const appDir = newAppDir();
    expect((await run('deploy', 'rev1', specFor(appDir, '1'))).code).toBe(0);
    const before = tree(appDir);
    const eventsBefore = events(appDir);
    const bad = specFor(appDir, '2');
    bad.artifact.sha256 = 'a'.repeat(64);
    const r = await run('deploy', 'rev2', bad);
    expect(r.code).not.toBe(0);
    expect(r.output).toContain('sha256 mismatch');
    expect(parseWrapperOutput(r.output)).toMatchObject({
      failedStep: 'verify',
      result: { ok: false, step: 'verify' },
    });
    expect(tree(appDir)).toEqual(before);
    expect(events(appDir)).toEqual(eventsBefore); // the running release was not even stopped
    expect(readFileSync(join(appDir, '.ecsops', 'last-result'), 'utf8')).toContain('step=verify');
  });

  it("runs the PREVIOUS revision's stop hook, then the new hooks", async () => {
    const appDir = newAppDir();
    const s1 = specFor(appDir, '1');
    s1.hooks.stop = { script: 'echo "stop-of-rev1 $ECSOPS_REVISION" >> "$APP_DIR/../events.log"' };
    const s2 = specFor(appDir, '2');
    s2.hooks.stop = { script: 'echo "stop-of-rev2" >> "$APP_DIR/../events.log"' };
    expect((await run('deploy', 'rev1', s1)).code).toBe(0);
    expect((await run('deploy', 'rev2', s2)).code).toBe(0);
    expect(events(appDir)).toEqual([
      'beforeInstall rev1 1',
      'afterInstall rev1 1',
      'start rev1 1',
      'stop-of-rev1 rev1',
      'beforeInstall rev2 2',
      'afterInstall rev2 2',
      'start rev2 2',
    ]);
  });

  it('swaps current atomically: a reader never sees it missing during 40 swaps', async () => {
    const appDir = newAppDir();
    const lean = (v: string): AppReleaseSpec => {
      const s = specFor(appDir, v);
      s.hooks = { start: { script: 'true' } };
      delete s.healthCheck;
      return s;
    };
    expect((await run('deploy', 'rev1', lean('1'))).code).toBe(0);
    expect((await run('deploy', 'rev2', lean('2'))).code).toBe(0);
    const stopFile = join(appDir, '..', 'stop-reader');
    const reader = spawn('bash', [
      '-c',
      `n=0; while [ ! -e "${stopFile}" ]; do [ -e "${appDir}/current/VERSION" ] || echo MISSING; n=$((n+1)); done; echo "reads=$n"`,
    ]);
    let seen = '';
    reader.stdout.on('data', (b: Buffer) => (seen += b.toString()));
    const closed = new Promise((r) => reader.on('close', r));
    for (let i = 0; i < 20; i++) {
      expect((await run('rollback', 'rev1', lean('1'))).code).toBe(0);
      expect((await run('rollback', 'rev2', lean('2'))).code).toBe(0);
    }
    writeFileSync(stopFile, '');
    await closed;
    expect(Number(/reads=(\d+)/.exec(seen)?.[1])).toBeGreaterThan(100);
    expect(seen).not.toContain('MISSING');
    expect(readdirSync(appDir).filter((f) => f.startsWith('.current'))).toEqual([]);
  });

  it('keeps keepReleases releases on disk (the running one included)', async () => {
    const appDir = newAppDir();
    for (const v of ['1', '2', '3']) {
      const s = specFor(appDir, v);
      s.install = { ...s.install, keepReleases: 2 };
      expect((await run('deploy', `rev${v}`, s)).code).toBe(0);
    }
    expect(readdirSync(join(appDir, 'releases')).sort()).toEqual([
      'rev2',
      'rev2.ecsops',
      'rev3',
      'rev3.ecsops',
    ]);
  });

  it('a failing start leaves a marker naming the step, on disk and as the last output line', async () => {
    const appDir = newAppDir();
    const s = specFor(appDir, '1');
    s.hooks.start = { script: 'echo "cannot bind port" >&2; exit 3' };
    const r = await run('deploy', 'rev1', s);
    expect(r.code).toBe(3);
    expect(r.output.trim().split('\n').at(-1)).toBe(
      'ecsops-result action=deploy revision=rev1 result=failed step=start rc=3',
    );
    expect(r.output).toContain('cannot bind port'); // the hook log tail
    expect(readFileSync(join(appDir, '.ecsops', 'last-result'), 'utf8').trim()).toBe(
      'ecsops-result action=deploy revision=rev1 result=failed step=start rc=3',
    );
    expect(parseWrapperOutput(r.output)).toMatchObject({ failedStep: 'start', result: { rc: 3 } });
    expect(r.output).not.toContain('ecsops-step validate');
  });

  it('re-running the same revision is idempotent (no second download, same tree)', async () => {
    const appDir = newAppDir();
    const s = specFor(appDir, '1');
    expect((await run('deploy', 'rev1', s)).code).toBe(0);
    const before = tree(appDir);
    const n = downloads;
    const r = await run('deploy', 'rev1', s);
    expect(r.code).toBe(0);
    expect(r.output).toContain('already on disk');
    expect(downloads).toBe(n);
    expect(tree(appDir)).toEqual(before);
  });

  it('rolls back to a revision on disk in under 2 s of script time', async () => {
    const appDir = newAppDir();
    expect((await run('deploy', 'rev1', specFor(appDir, '1'))).code).toBe(0);
    expect((await run('deploy', 'rev2', specFor(appDir, '2'))).code).toBe(0);
    const r = await run('rollback', 'rev1', specFor(appDir, '1'));
    expect(r.code, r.output).toBe(0);
    const report = parseWrapperOutput(r.output);
    expect(report.steps.map((x) => x.name)).toEqual(['prepare', 'stop', 'swap', 'start', 'health', 'prune']);
    expect(report.steps.reduce((n, x) => n + x.ms, 0)).toBeLessThan(2000);
    expect(r.wallMs).toBeLessThan(2000);
    expect(readlinkSync(join(appDir, 'current'))).toBe('releases/rev1');
    expect(events(appDir).slice(-2)).toEqual(['stop rev2 2', 'start rev1 1']);
  });

  it('rollback to none (no stable revision) stops the current one and removes current', async () => {
    const appDir = newAppDir();
    expect((await run('deploy', 'rev1', specFor(appDir, '1'))).code).toBe(0);
    const r = await run('rollback', 'none', specFor(appDir, '1'));
    expect(r.code).toBe(0);
    expect(r.output).toContain('ecsops-result action=rollback revision=none result=ok');
    expect(existsSync(join(appDir, 'current'))).toBe(false);
    expect(events(appDir).at(-1)).toBe('stop rev1 1');
  });

  it('rollback to a revision not on disk, without its artifact, fails at download and changes nothing', async () => {
    const appDir = newAppDir();
    expect((await run('deploy', 'rev2', specFor(appDir, '2'))).code).toBe(0);
    const before = tree(appDir);
    const r = await run('rollback', 'rev1', specFor(appDir, '1'));
    expect(r.code).toBe(3);
    expect(r.output).toContain('cannot be downloaded again');
    expect(parseWrapperOutput(r.output)).toMatchObject({
      failedStep: 'download',
      result: { ok: false, rc: 3 },
    });
    expect(readlinkSync(join(appDir, 'current'))).toBe('releases/rev2');
    expect(tree(appDir)).toEqual(before);
  });

  it('rollback to a revision not on disk, carrying its artifact, deploys it (hooks, env, health)', async () => {
    const appDir = newAppDir();
    expect((await run('deploy', 'rev2', specFor(appDir, '2'))).code).toBe(0);
    const r = await run('rollback', 'rev1', specFor(appDir, '1'), true);
    expect(r.code, r.output).toBe(0);
    expect(parseWrapperOutput(r.output).steps.map((x) => x.name)).toEqual([
      'prepare',
      'download',
      'verify',
      'unpack',
      'stop',
      'beforeInstall',
      'swap',
      'afterInstall',
      'start',
      'validate',
      'health',
      'prune',
    ]);
    expect(r.output).toContain('ecsops-result action=rollback revision=rev1 result=ok');
    expect(readlinkSync(join(appDir, 'current'))).toBe('releases/rev1');
    expect(events(appDir).slice(-2)).toEqual(['afterInstall rev1 1', 'start rev1 1']);
  });

  it('a download refused in transport is reported as a transient failure; a bad checksum is not', async () => {
    const appDir = newAppDir();
    const closed = specFor(appDir, '1', {
      artifact: { url: `${base}/reset.tar.gz`, sha256: 'a'.repeat(64) },
    });
    const r = await run('deploy', 'rev1', closed);
    const report = parseWrapperOutput(r.output);
    expect(report.failedStep).toBe('download');
    expect(isTransientDownloadFailure(report, r.code ?? undefined)).toBe(true);
    const bad = specFor(appDir, '1', {
      artifact: { url: `${base}/app-1.tar.gz`, sha256: 'a'.repeat(64) },
    });
    const v = await run('deploy', 'rev1', bad);
    const vr = parseWrapperOutput(v.output);
    expect(vr.failedStep).toBe('verify');
    expect(isTransientDownloadFailure(vr, v.code ?? undefined)).toBe(false);
    const missing = specFor(appDir, '1', {
      artifact: { url: `${base}/no-such.tar.gz`, sha256: 'a'.repeat(64) },
    });
    const m = await run('deploy', 'rev1', missing);
    expect(isTransientDownloadFailure(parseWrapperOutput(m.output), m.code ?? undefined)).toBe(false); // HTTP 404
  });

  it('checks HTTP health on the host with the expected status codes', async () => {
    const appDir = newAppDir();
    const port = Number(new URL(base).port);
    const s = specFor(appDir, '1', {
      healthCheck: {
        http: { port, path: '/healthz', expectStatus: [200, 204] },
        periodSeconds: 1,
        failureThreshold: 2,
      },
    });
    healthStatus = 204;
    expect((await run('deploy', 'rev1', s)).code).toBe(0);
    healthStatus = 500;
    const r = await run('deploy', 'rev1', s);
    healthStatus = 200;
    expect(parseWrapperOutput(r.output).failedStep).toBe('health');
    expect(r.output).toContain('health probe 2: HTTP 500');
  });

  it("probes HTTP health on the instance's own address ($ECS_PRIVATE_IP) when set", async () => {
    // A server on another loopback address only, as the demo app binds $ECS_PRIVATE_IP:$PORT.
    const ip = `127.252.${process.pid % 250}.7`;
    const own = createServer((_req, res) => res.writeHead(200).end('ok'));
    await new Promise<void>((r) => own.listen(0, ip, r));
    try {
      const port = (own.address() as AddressInfo).port;
      const appDir = newAppDir();
      const s = specFor(appDir, '1', {
        healthCheck: { http: { port, path: '/healthz' }, periodSeconds: 1, failureThreshold: 1 },
      });
      const r = await run('deploy', 'rev1', s, false, undefined, { ECS_PRIVATE_IP: ip });
      expect(r.code, r.output).toBe(0);
      const local = await run('deploy', 'rev1', s); // no ECS_PRIVATE_IP: 127.0.0.1, nothing there
      expect(parseWrapperOutput(local.output).failedStep).toBe('health');
    } finally {
      await new Promise<void>((r) => own.close(() => r()));
    }
  });

  it('uninstall removes only what the wrapper owns: a foreign file in appDir survives', async () => {
    const appDir = newAppDir();
    expect((await run('deploy', 'rev1', specFor(appDir, '1'))).code).toBe(0);
    writeFileSync(join(appDir, 'operator-notes.txt'), 'keep me\n');
    const r = await run('uninstall', 'rev1', specFor(appDir, '1'));
    expect(r.code, r.output).toBe(0);
    expect(r.output).toContain('holds other files; left in place');
    expect(readdirSync(appDir)).toEqual(['operator-notes.txt']); // releases/, .ecsops/, current gone
    expect(readFileSync(join(appDir, 'operator-notes.txt'), 'utf8')).toBe('keep me\n');
    expect(events(appDir).at(-1)).toBe('stop rev1 1');
  });

  it('exports the secret document to the hooks and redacts its values from the output', async () => {
    const appDir = newAppDir();
    const password = 'pa55-w0rd-Zq9xKt';
    const token = 'tok-7f3a9c1e5b2d';
    const pem = '-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX\n-----END KEY-----\n';
    const s = specFor(appDir, '1');
    s.hooks.start = {
      script: [
        'set -x', // xtrace of the hook itself also reaches the log
        'printf "%s|%s|%s" "$DB_PASSWORD" "$API_TOKEN" "$TLS_KEY" > "$APP_DIR/../seen"',
        'echo "password=$DB_PASSWORD token=$API_TOKEN"',
        // the value straddles the 300-character cut: redacted before cutting, nothing of it remains
        'printf "%0290d%s\\n" 0 "$DB_PASSWORD"',
        'printf "%s" "$TLS_KEY"',
        'exit 3',
      ].join('\n'),
    };
    const doc = secretDocument({ DB_PASSWORD: password, API_TOKEN: token, TLS_KEY: pem });
    const r = await run('deploy', 'rev1', s, false, doc);
    expect(r.code).toBe(3);
    expect(
      parseWrapperOutput(r.output)
        .steps.map((x) => x.name)
        .slice(0, 2),
    ).toEqual(['prepare', 'secrets']);
    expect(readFileSync(join(appDir, '..', 'seen'), 'utf8')).toBe(`${password}|${token}|${pem}`);
    expect(r.output).toContain('password=*** token=***');
    expect(r.output).toMatch(/^0{290}\*\*\*$/m);
    for (const secret of [password, token, password.slice(0, 10), 'MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX'])
      expect(r.output).not.toContain(secret);
    // the wrapper writes no value to disk (the hook's own log is the hook's doing, and 0700)
    expect(filesContaining(join(appDir, 'releases'), password)).toEqual([]);
    expect(statSync(join(appDir, '.ecsops', 'logs')).mode & 0o777).toBe(0o700);
  });

  it('rollback exports the secrets too (same step)', async () => {
    const appDir = newAppDir();
    const password = 'rollback-S3cret-value';
    const s1 = specFor(appDir, '1');
    s1.hooks.start = { script: 'printf "%s" "${DB_PASSWORD:-unset}" > "$APP_DIR/../seen"' };
    const doc = secretDocument({ DB_PASSWORD: password });
    expect((await run('deploy', 'rev1', s1)).code).toBe(0);
    expect(readFileSync(join(appDir, '..', 'seen'), 'utf8')).toBe('unset');
    expect((await run('deploy', 'rev2', specFor(appDir, '2'))).code).toBe(0);
    const r = await run('rollback', 'rev1', s1, false, doc);
    expect(r.code, r.output).toBe(0);
    expect(parseWrapperOutput(r.output).steps.map((x) => x.name)).toEqual([
      'prepare',
      'secrets',
      'stop',
      'swap',
      'start',
      'health',
      'prune',
    ]);
    expect(readFileSync(join(appDir, '..', 'seen'), 'utf8')).toBe(password);
  });

  it('refuses a malformed secret document at step secrets, before any hook, printing no value', async () => {
    for (const bad of [
      'GOOD=aGVsbG8td29ybGQ=\nnot a line',
      'GOOD=aGVsbG8td29ybGQ=\n1BAD=eA==',
      'X=not*base64',
    ]) {
      const appDir = newAppDir();
      const r = await run('deploy', 'rev1', specFor(appDir, '1'), false, bad);
      expect(r.code).toBe(2);
      expect(parseWrapperOutput(r.output)).toMatchObject({
        failedStep: 'secrets',
        result: { ok: false, rc: 2 },
      });
      expect(r.output).toMatch(/ecsops: secret line \d is not KEY=<base64>/);
      expect(r.output).not.toContain('hello-world');
      expect(events(appDir)).toEqual([]);
    }
  });

  it('renders env entries without a literal value (taken from a Secret) by leaving them out', () => {
    const s = specFor('/opt/x', '1');
    (s.install as { env: unknown }).env = {
      PORT: '8080',
      DB_PASSWORD: { valueFrom: { secretKeyRef: { name: 'db', key: 'password' } } },
    };
    (s.install as { envVars: unknown }).envVars = [
      { name: 'MODE', value: 'prod' },
      { name: 'API_TOKEN', valueFrom: { secretKeyRef: { name: 'api', key: 'token' } } },
    ];
    const cmd = renderCommand({ action: 'deploy', revision: 'r', spec: s, owner: 'a/b' });
    const b64 = (v: string) => Buffer.from(v).toString('base64');
    expect(cmd).toContain(`E+=(MODE ${b64('prod')})\nE+=(PORT ${b64('8080')})`);
    expect(cmd).not.toContain('DB_PASSWORD');
    expect(cmd).not.toContain('API_TOKEN');
  });

  it('uninstall runs the stop hook and removes appDir', async () => {
    const appDir = newAppDir();
    expect((await run('deploy', 'rev1', specFor(appDir, '1'))).code).toBe(0);
    const r = await run('uninstall', 'rev1', specFor(appDir, '1'));
    expect(r.code).toBe(0);
    expect(existsSync(appDir)).toBe(false);
    expect(events(appDir).at(-1)).toBe('stop rev1 1');
  });
});

describe('AppRelease command size', () => {
  it('a spec exactly at the admission budget renders a command within the RunCommand limit', () => {
    const appDir = `/opt/${'a'.repeat(251)}`; // the longest appDir (256)
    const s = specFor(appDir, '1');
    const used = userContentBytes(s);
    // fill the start hook so the Base64 user content is exactly the budget
    const room = USER_CONTENT_BUDGET_BYTES - used;
    const startB64 = Math.ceil(Buffer.byteLength(s.hooks.start.script) / 3) * 4;
    s.hooks.start.script += '#'.repeat(
      Math.floor((room + startB64) / 4) * 3 - Buffer.byteLength(s.hooks.start.script),
    );
    expect(userContentBytes(s)).toBeLessThanOrEqual(USER_CONTENT_BUDGET_BYTES);
    expect(userContentBytes(s)).toBeGreaterThan(USER_CONTENT_BUDGET_BYTES - 4);
    const cmd = renderCommand({
      action: 'deploy',
      revision: 'abcdef012345',
      spec: s,
      owner: `${'n'.repeat(63)}/${'m'.repeat(253)}`,
      secretParameter: 's'.repeat(180), // the longest OOS parameter name
    });
    expect(Buffer.byteLength(cmd)).toBeLessThanOrEqual(COMMAND_LIMIT_BYTES);
  });

  it('a secret parameter adds exactly one header line; a name OOS would refuse is never rendered', () => {
    const input = { action: 'deploy' as const, revision: 'r', spec: specFor('/opt/x', '1'), owner: 'a/b' };
    const plain = renderCommand(input).split('\n');
    const secret = renderCommand({ ...input, secretParameter: 'ecsops-0123abcd' }).split('\n');
    expect(secret.filter((l) => !plain.includes(l))).toEqual(["SECRET_ENV='{{oos-secret:ecsops-0123abcd}}'"]);
    expect(secret).toHaveLength(plain.length + 1);
    for (const bad of ["x'; rm -rf /; '", 'a}}b', '', 's'.repeat(181)])
      expect(() => renderCommand({ ...input, secretParameter: bad })).toThrow(
        /invalid OOS secret parameter name/,
      );
  });

  it('the wrapper body has no {{…}} that Cloud Assistant would take for a parameter', () => {
    expect(WRAPPER_BODY).not.toContain('{{');
    const cmd = renderCommand({
      action: 'deploy',
      revision: 'r',
      spec: specFor('/opt/x', '1'),
      owner: 'a/b',
    });
    expect(cmd.match(/\{\{[^}]*\}\}/g)?.sort()).toEqual([
      '{{ACS::InstanceId}}',
      '{{action}}',
      '{{revision}}',
    ]);
  });
});
