import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../../..');
/** The project's Node (24), as the npm scripts use it. */
const NODE = resolve(ROOT, 'node_modules/.bin/node');

function ecsops(...args: string[]) {
  const r = spawnSync(NODE, ['--import', 'tsx', 'src/cli.ts', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('ecsops emulator (command line)', () => {
  it.each(['--help', '-h'])('%s prints the help and exits 0 without an error line', (flag) => {
    const r = ecsops('emulator', flag);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.stdout).not.toMatch(/error/i);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Usage: emulator');
    expect(r.stdout).toContain('--time-scale');
  });

  it('still fails on an invalid flag, with commander’s one error line and exit code 1', () => {
    const r = ecsops('emulator', '--port', 'not-a-port');
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([
      "error: option '--port <port>' argument 'not-a-port' is invalid. expected a port number 0-65535",
    ]);
  });

  it('--request-log appends one JSON line per API request, stamped at arrival, flushed on SIGTERM', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'ecsops-emu-log-')), 'requests.jsonl');
    const child = spawn(
      NODE,
      [
        '--import',
        'tsx',
        'src/cli.ts',
        'emulator',
        '--port',
        '0',
        '--control-port',
        '0',
        '--request-log',
        file,
      ],
      { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      let out = '';
      const endpoint = await new Promise<string>((done, fail) => {
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /emulator endpoint:\s+(\S+)/.exec(out);
          if (m?.[1]) done(m[1]);
        });
        child.once('exit', () => fail(new Error(`emulator exited: ${out}`)));
      });
      const before = Date.now();
      // An unsigned V1 request: answered with an error, and logged like any other.
      const res = await fetch(`http://${endpoint}/?Action=DescribeRegions&Version=2014-05-26`);
      expect(res.status).toBeGreaterThanOrEqual(400);
      const exited = new Promise((done) => child.once('exit', done));
      child.kill('SIGTERM');
      await exited;
      const lines = readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines).toHaveLength(1);
      expect(lines[0]?.['action']).toBe('DescribeRegions');
      expect(lines[0]?.['receivedAtMs']).toBeGreaterThanOrEqual(before);
      expect(lines[0]?.['receivedAtMs']).toBeLessThanOrEqual(Date.now());
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
