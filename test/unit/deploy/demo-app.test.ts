/**
 * The demo application of deploy/examples/apprelease.yaml (web.sh of each deploy/examples/artifacts/web-<version> dir),
 * run by hand as its hooks run it:
 *  - the copies differ only in their two settings (APP_VERSION, APP_FAIL), and ShellCheck passes;
 *  - `start` serves HTTP on $ECS_PRIVATE_IP:$PORT (/, /healthz, /metrics in the Prometheus text
 *    format, which promtool accepts), `health` checks the revision, the bad build answers 500 and
 *    its error counter rises, `stop` ends the server (SIGTERM; an idle keep-alive connection does
 *    not hold it up) and frees the address;
 *  - graceful stop: a keep-alive connection open when the stop hook sends SIGTERM is still served
 *    (its next request answered with `Connection: close`) while new connections are refused.
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../harness/paths.js';
import { findTool, toolPath } from '../../tools/tools.js';

const ARTIFACTS = join(REPO_ROOT, 'deploy/examples/artifacts');
const builds = readdirSync(ARTIFACTS).filter((d) => d.startsWith('web-'));
const shellcheck = findTool('shellcheck');
const promtool = findTool('promtool');
const tmp = mkdtempSync(join(tmpdir(), 'ecsops-demo-app-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A loopback address of this test's own (127.253.x.y) and a port free on it. */
async function freeAddress(): Promise<{ ip: string; port: number }> {
  const ip = `127.253.${process.pid % 250}.${1 + Math.floor(Math.random() * 250)}`;
  const port = await new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, ip, () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
  return { ip, port };
}

/** Runs `bash web.sh <cmd>` in `dir` with the hooks' environment. */
function hook(dir: string, cmd: string, env: Record<string, string>) {
  return spawnSync('bash', ['web.sh', cmd], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 30_000,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmp, APP_DIR: dir, ...env },
  });
}

function get(url: string, agent?: Agent): Promise<{ status: number; body: string; version: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: agent ?? false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body, version: String(res.headers['x-web-version']) }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

describe('demo app copies', () => {
  const settings = /^APP_(VERSION|FAIL)=.*$/gm;
  const text = (b: string) => readFileSync(join(ARTIFACTS, b, 'web.sh'), 'utf8');

  it('differ only in APP_VERSION and APP_FAIL', () => {
    expect(builds).toEqual(expect.arrayContaining(['web-1.4.2', 'web-1.4.3', 'web-1.4.3-bad']));
    const base = text('web-1.4.2').replace(settings, '');
    for (const b of builds) {
      expect(text(b).replace(settings, ''), b).toBe(base);
      expect(text(b), b).toMatch(new RegExp(`^APP_VERSION=${b.slice(4).replace(/\./g, '\\.')} `, 'm'));
      expect(text(b), b).toMatch(b.endsWith('-bad') ? /^APP_FAIL=1 /m : /^APP_FAIL=0 /m);
    }
  });

  it.skipIf(shellcheck.skip)('pass ShellCheck', () => {
    const res = spawnSync(
      toolPath(shellcheck),
      builds.map((b) => join(ARTIFACTS, b, 'web.sh')),
      {
        encoding: 'utf8',
      },
    );
    expect(res.stdout + res.stderr).toBe('');
    expect(res.status).toBe(0);
  });
});

/** GET through a keep-alive agent: status, body, `Connection` header, whether the socket was reused. */
function getKeepAlive(
  url: string,
  agent: Agent,
): Promise<{ status: number; body: string; connection: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body,
          connection: String(res.headers['connection']),
          reused: req.reusedSocket,
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

describe('demo app graceful stop', () => {
  it('a keep-alive connection open during SIGTERM gets its answer (Connection: close), then it exits', async () => {
    const dir = mkdtempSync(join(tmp, 'graceful-'));
    copyFileSync(join(ARTIFACTS, 'web-1.4.3', 'web.sh'), join(dir, 'web.sh'));
    const { ip, port } = await freeAddress();
    const env = { ECS_PRIVATE_IP: ip, PORT: String(port), ECSOPS_REVISION: 'r9', ECSOPS_INSTANCE_ID: 'i-g' };
    const base = `http://${ip}:${port}`;
    const started = hook(dir, 'start', env);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      expect(started.status, started.stderr).toBe(0);
      const first = await getKeepAlive(`${base}/`, agent);
      expect(first.status).toBe(200);
      expect(first.connection).not.toBe('close');
      // the stop hook (SIGTERM, then waits) runs while the connection is open
      const stop = spawn('bash', ['web.sh', 'stop'], {
        cwd: dir,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmp, APP_DIR: dir, ...env },
        stdio: 'ignore',
      });
      const stopped = new Promise<number | null>((r) => stop.on('exit', (code) => r(code)));
      // no new connections once the listening socket is closed…
      for (let i = 0; ; i++) {
        const refused = await get(`${base}/healthz`).then(
          () => false,
          () => true,
        );
        if (refused) break;
        if (i > 100) throw new Error('the server kept accepting new connections after SIGTERM');
        await new Promise((r) => setTimeout(r, 10));
      }
      // …but the open keep-alive connection is still served, and told to close
      expect(await getKeepAlive(`${base}/`, agent)).toEqual({
        status: 200,
        body: 'hello from web r9 on i-g\n',
        connection: 'close',
        reused: true,
      });
      expect(await stopped).toBe(0);
      expect(readFileSync(join(dir, 'web.log'), 'utf8')).toBe(
        `web r9 listening on ${ip}:${port}\nweb r9 stopped\n`,
      );
    } finally {
      agent.destroy();
      hook(dir, 'stop', env);
    }
  });
});

describe('demo app server', () => {
  for (const build of ['web-1.4.2', 'web-1.4.3-bad']) {
    const bad = build.endsWith('-bad');
    it(`${build}: serves, counts${bad ? ' its 500s' : ''}, stops gracefully`, async () => {
      const dir = mkdtempSync(join(tmp, `${build}-`));
      copyFileSync(join(ARTIFACTS, build, 'web.sh'), join(dir, 'web.sh'));
      const { ip, port } = await freeAddress();
      const env = {
        ECS_PRIVATE_IP: ip,
        PORT: String(port),
        ECSOPS_REVISION: 'r7',
        ECSOPS_INSTANCE_ID: 'i-demo',
      };
      const base = `http://${ip}:${port}`;
      const started = hook(dir, 'start', env);
      try {
        expect(started.status, started.stderr).toBe(0);
        expect(readFileSync(join(dir, 'web.status'), 'utf8')).toContain(`web r7 (${base}) started`);
        expect(hook(dir, 'health', env).status).toBe(0);
        expect(hook(dir, 'health', { ...env, ECSOPS_REVISION: 'r6' }).status).not.toBe(0);

        expect(await get(`${base}/healthz`)).toMatchObject({ status: 200, body: 'ok r7\n', version: 'r7' });
        for (let i = 0; i < 3; i++) {
          expect(await get(`${base}/`)).toMatchObject(
            bad
              ? { status: 500, body: 'error from web r7 on i-demo\n' }
              : { status: 200, body: 'hello from web r7 on i-demo\n' },
          );
        }
        const metrics = (await get(`${base}/metrics`)).body;
        expect(metrics).toContain(`web_requests_total{code="200"} ${bad ? 0 : 3}\n`);
        expect(metrics).toContain(`web_requests_total{code="500"} ${bad ? 3 : 0}\n`);
        expect(metrics).toContain(`web_request_errors_total ${bad ? 3 : 0}\n`);
        expect(metrics).toContain('web_version_info{version="r7"} 1\n');
        if (!promtool.skip) {
          const check = spawnSync(toolPath(promtool), ['check', 'metrics'], {
            input: metrics,
            encoding: 'utf8',
          });
          expect(check.stdout + check.stderr).toBe('');
        }

        // graceful stop: an idle keep-alive connection left open does not keep the server from
        // stopping (it closes after 2 s idle); then the address is free
        const agent = new Agent({ keepAlive: true, maxSockets: 1 });
        await get(`${base}/`, agent);
        const stopped = hook(dir, 'stop', env);
        expect(stopped.status, stopped.stderr).toBe(0);
        agent.destroy();
        expect(existsSync(join(dir, 'web.pid'))).toBe(false);
        expect(existsSync(join(dir, 'web.status'))).toBe(false);
        expect(readFileSync(join(dir, 'web.log'), 'utf8')).toBe(
          `web r7 listening on ${ip}:${port}\nweb r7 stopped\n`,
        );
        await expect(get(`${base}/healthz`)).rejects.toThrow(/ECONNREFUSED/);
        expect(hook(dir, 'health', env).status).not.toBe(0);
      } finally {
        hook(dir, 'stop', env);
      }
    });
  }
});
