import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
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
});
