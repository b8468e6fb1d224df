/**
 * The runtime copy of the AppRelease host rules (appDir, env names) and the appDir overlap rule of
 * the ConflictingResource check; the admission copy (CEL) is exercised against the real API server
 * in test/integration/apprelease/admission.test.ts with the same messages.
 */
import { describe, expect, it } from 'vitest';
import { appDirProblem, envNameProblem, type AppReleaseSpec } from '../../../src/api/apprelease.js';
import { appDirsOverlap, hostInputProblem } from '../../../src/controllers/apprelease/safety.js';

describe('appDirProblem (runtime copy of the CEL rules)', () => {
  it.each(['/', '/usr', '/etc/', '//var', '/lib64', '/opt', '/{{ACS::InstanceId}}'])(
    'refuses %s (too shallow)',
    (d) => {
      expect(appDirProblem(d)).toContain('at least two segments deep');
    },
  );
  it.each(['/opt/../etc', '/opt/./x', '/opt/x/..'])('refuses %s (dot segments)', (d) => {
    expect(appDirProblem(d)).toBe(`install.appDir must not contain '.' or '..' segments (got ${d})`);
  });
  it.each(['opt/app', '/opt/app;rm', '/opt/$(id)', `/opt/${'a'.repeat(260)}`])(
    'refuses %s (pattern)',
    (d) => {
      expect(appDirProblem(d)).toContain('must be an absolute path');
    },
  );
  it.each(['/opt/app', '/var/lib/app', '/opt/{{ACS::InstanceId}}/app', '/srv/a..b/.c'])('accepts %s', (d) => {
    expect(appDirProblem(d)).toBeUndefined();
  });
});

describe('hostInputProblem', () => {
  const spec = (install: unknown, application = 'shop') =>
    ({ application, install }) as unknown as AppReleaseSpec;
  it('checks the default appDir, env keys and envVars names', () => {
    expect(hostInputProblem(spec(undefined))).toBeUndefined(); // /opt/shop
    expect(hostInputProblem(spec({ appDir: '/usr' }))).toContain('(got /usr)');
    expect(hostInputProblem(spec({ env: { GOOD: 'x', 'BAD KEY': 'y' } }))).toContain('"BAD KEY"');
    expect(hostInputProblem(spec({ envVars: [{ name: '1X', value: 'v' }] }))).toContain('"1X"');
    expect(envNameProblem('_ok_1')).toBeUndefined();
  });
});

describe('appDirsOverlap', () => {
  it.each([
    ['/opt/app', '/opt/app', true],
    ['/opt/app', '/opt/app/', true],
    ['/opt/app', '/opt/app/web', true],
    ['/opt/app/web', '/opt/app', true],
    ['/opt/app', '/opt/app2', false],
    ['/opt/app', '/srv/app', false],
    ['/opt/{{ACS::InstanceId}}/app', '/opt/i-abc123/app', true],
    ['/opt/{{ACS::InstanceId}}/app', '/opt/{{ACS::InstanceId}}/app/x', true],
    ['/opt/{{ACS::InstanceId}}/app', '/opt/{{ACS::InstanceId}}/web', false],
    ['/opt/x-{{ACS::InstanceId}}', '/opt/x-i-1', true],
    ['/opt/x-{{ACS::InstanceId}}', '/opt/y-i-1', false],
  ])('%s vs %s: %s', (a, b, want) => {
    expect(appDirsOverlap(a, b)).toBe(want);
    expect(appDirsOverlap(b, a)).toBe(want);
  });
});
