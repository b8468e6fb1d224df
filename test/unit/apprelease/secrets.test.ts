/**
 * Secret-sourced env values of an AppRelease (secrets.ts): the document and parameter name, the
 * Stalled reasons of reading Secrets, the create-or-update of the OOS parameter, redaction of whole
 * outputs before the tail is cut (issue 21's finding), the revision ID (golden IDs of specs without
 * secretKeyRef, pinned at HEAD before envVars existed), and the command never carrying a value.
 */
import { describe, expect, it } from 'vitest';
import type { AppRelease, AppReleaseSpec } from '../../../src/api/apprelease.js';
import { CloudError } from '../../../src/cloud/errors.js';
import type { InvokeInstance, OosApi, SecretParameterRequest } from '../../../src/cloud/types.js';
import {
  encodeSecretDocument,
  readSecretValues,
  redactValues,
  secretParameterName,
  writeSecretParameter,
} from '../../../src/controllers/apprelease/secrets.js';
import type { SecretReader } from '../../../src/controllers/shared/secrets.js';
import { renderCommand, revisionOf } from '../../../src/controllers/apprelease/wrapper.js';
import { invocationOutcome } from '../../../src/controllers/shared/invocation-tracker.js';
import { StalledError } from '../../../src/runtime/errors.js';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

const base: AppReleaseSpec = {
  regionId: 'cn-hangzhou',
  targets: { tags: [{ key: 'app', value: 'shop' }] },
  application: 'shop',
  version: '1.0.0',
  artifact: { url: 'https://example.com/shop-1.0.0.tar.gz', sha256: 'a'.repeat(64) },
  hooks: { start: { script: './app.sh start' } },
} as AppReleaseSpec;

function obj(spec: AppReleaseSpec): AppRelease {
  return {
    apiVersion: 'ecsops.io/v1alpha1',
    kind: 'AppRelease',
    metadata: { name: 'shop', namespace: 'team-a', uid: 'uid-1' },
    spec,
  } as AppRelease;
}

function withSecretEnv(ref: { name: string; key: string }, envName = 'DB_PASSWORD'): AppReleaseSpec {
  return { ...base, install: { envVars: [{ name: envName, valueFrom: { secretKeyRef: ref } }] } };
}

function reader(secrets: Record<string, { rv: string; data: Record<string, string> }>): SecretReader {
  return {
    read: async (_ns, name) => {
      const s = secrets[name];
      return s
        ? {
            resourceVersion: s.rv,
            data: Object.fromEntries(Object.entries(s.data).map(([k, v]) => [k, b64(v)])),
          }
        : undefined;
    },
  };
}

async function stalled(p: Promise<unknown>): Promise<StalledError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof StalledError) return e;
    throw e;
  }
  throw new Error('expected StalledError');
}

describe('secret document and parameter name', () => {
  it('encodes KEY=<base64> lines joined by \\n', () => {
    expect(
      encodeSecretDocument([
        { name: 'A', value: 'pässwörd=1\n' },
        { name: 'B', value: 'x' },
      ]),
    ).toBe(`A=${b64('pässwörd=1\n')}\nB=${b64('x')}`);
  });

  it('derives a valid, stable name from namespace/name (no reserved prefix, ≤ 180, charset)', () => {
    const n = secretParameterName('team-a', 'shop');
    expect(n).toMatch(/^ecsops-[0-9a-f]{32}$/);
    expect(n).toBe(secretParameterName('team-a', 'shop'));
    expect(n).not.toBe(secretParameterName('team-b', 'shop'));
    expect(n).not.toMatch(/^(ALIYUN|ACS|ALIBABA|ALICLOUD|OOS)/i);
  });
});

describe('readSecretValues', () => {
  const spec = withSecretEnv({ name: 'db', key: 'password' });
  it('reads the values and the Secrets resourceVersions', async () => {
    const r = await readSecretValues(
      reader({ db: { rv: '42', data: { password: 'correct-horse' } } }),
      obj(spec),
    );
    expect(r.entries).toEqual([{ name: 'DB_PASSWORD', value: 'correct-horse' }]);
    expect(r.versions).toMatch(/^db@42;refs=[0-9a-f]{12}$/);
    const other = await readSecretValues(
      reader({ db: { rv: '42', data: { password: 'correct-horse', p2: 'another-value' } } }),
      obj(withSecretEnv({ name: 'db', key: 'p2' })),
    );
    expect(other.versions).not.toBe(r.versions); // another key of the same Secret version
  });

  it('is Stalled SecretNotFound for a missing Secret or key, naming them', async () => {
    const e1 = await stalled(readSecretValues(reader({}), obj(spec)));
    expect(e1.reason).toBe('SecretNotFound');
    expect(e1.message).toContain('team-a/db');
    const e2 = await stalled(
      readSecretValues(reader({ db: { rv: '1', data: { user: 'someone-long' } } }), obj(spec)),
    );
    expect(e2.reason).toBe('SecretNotFound');
    expect(e2.message).toContain('no key password');
  });

  it('refuses values under 8 characters without naming the value', async () => {
    const e = await stalled(
      readSecretValues(reader({ db: { rv: '1', data: { password: 'short7!' } } }), obj(spec)),
    );
    expect(e.reason).toBe('InvalidSecretValue');
    expect(e.message).toContain('team-a/db key password');
    expect(e.message).not.toContain('short7!');
  });

  it('refuses a document above 4,096 characters', async () => {
    const e = await stalled(
      readSecretValues(reader({ db: { rv: '1', data: { password: 'x'.repeat(3100) } } }), obj(spec)),
    );
    expect(e.reason).toBe('InvalidSecretValue');
    expect(e.message).toContain('4096');
  });

  it('passes on a reader 403 (SecretForbidden)', async () => {
    const forbidden: SecretReader = {
      read: () => Promise.reject(new StalledError('SecretForbidden', 'may not read Secret team-a/db')),
    };
    expect((await stalled(readSecretValues(forbidden, obj(spec)))).reason).toBe('SecretForbidden');
  });
});

describe('writeSecretParameter (create or update, idempotent)', () => {
  function fakeOos(existing: Set<string>) {
    const calls: string[] = [];
    const err = (code: string, category: 'notFound' | 'other') =>
      new CloudError({ code, message: code, action: 'x', product: 'oos', kind: 'permanent', category });
    const oos = {
      createSecretParameter: async (r: SecretParameterRequest) => {
        calls.push(`create:${r.clientToken ?? ''}`);
        if (existing.has(r.name)) throw err('EntityAlreadyExists.SecretParameter', 'other');
        existing.add(r.name);
        return { name: r.name };
      },
      updateSecretParameter: async (name: string) => {
        calls.push('update');
        if (!existing.has(name)) throw err('EntityNotExists.SecretParameter', 'notFound');
        return { name };
      },
    } as unknown as OosApi;
    return { oos, calls };
  }
  const req = { name: 'ecsops-x', uid: 'u', owner: 'ns/n', document: 'A=eA==', versions: 'db@1' };

  it('creates when never confirmed; an AlreadyExists answer (lost create) becomes an update', async () => {
    const f = fakeOos(new Set());
    await writeSecretParameter(f.oos, { ...req, created: false });
    await writeSecretParameter(f.oos, { ...req, created: false });
    expect(f.calls.map((c) => c.split(':')[0])).toEqual(['create', 'create', 'update']);
    expect(f.calls[0]).toBe(f.calls[1]); // same ClientToken for the same versions
  });

  it('updates when confirmed; a NotFound answer (deleted outside) becomes a create', async () => {
    const f = fakeOos(new Set());
    await writeSecretParameter(f.oos, { ...req, created: true });
    expect(f.calls.map((c) => c.split(':')[0])).toEqual(['update', 'create']);
  });
});

describe('redaction after assembly (issue 21)', () => {
  const inst = (output: string): InvokeInstance =>
    ({ instanceId: 'i-1', invocationStatus: 'Failed', exitCode: 1, output }) as InvokeInstance;

  it('a hook printing password=<value> where the tail cut removes "pa": the value never survives', () => {
    const value = 'Tr0ub4dor-and-3-more-xyz';
    // The 1024-character tail starts 2 characters into "password=".
    const head = `${'x'.repeat(99)}\npassword=${value}\n`;
    const output = head + 'y'.repeat(1126 - head.length);
    expect(output.slice(-1024).startsWith('ssword=')).toBe(true);
    const out = invocationOutcome(inst(output), 1024).output ?? '';
    expect(out).not.toContain(value);
    expect(out).toContain('[REDACTED]');
  });

  it('a Secret value the tail cut in the middle is not left partly in the tail', () => {
    const value = 'Xk9-secret-value-23char'; // 23 characters
    const head = `${'x'.repeat(100)}value is ${value}\n`;
    const cutAt = 100 + 'value is '.length + 6; // the tail keeps the last 17 characters of the value
    const output = head + 'y'.repeat(1024 + cutAt - head.length);
    expect(output.slice(-1024).startsWith(value.slice(6))).toBe(true);
    const out = invocationOutcome(inst(output), 1024, (t) => redactValues(t, [value], [])).output ?? '';
    expect(out).not.toContain(value.slice(6));
  });

  it('redacts secret values and inline env values of 4+ characters, longest first', () => {
    expect(redactValues('a=abcd-long b=abcd c=abc', ['abcd-long'], ['abcd', 'abc'])).toBe(
      'a=[REDACTED] b=[REDACTED] c=abc',
    );
  });
});

describe('revision ID', () => {
  // Pinned at HEAD 01165d4 (before install.envVars existed), with that commit's revisionOf.
  const golden: Array<[string, AppReleaseSpec, string]> = [
    ['minimal', base, 'b25b591b9144'],
    [
      'inline env',
      { ...base, install: { appDir: '/opt/shop', env: { DB_PASSWORD: 'hunter2-e2e', MODE: 'prod' } } },
      'b426d140db33',
    ],
    [
      'full',
      {
        ...base,
        artifact: { ...base.artifact, format: 'zip' },
        install: { appDir: '/srv/{{ACS::InstanceId}}/shop', user: 'app', keepReleases: 5, env: { A: 'b' } },
        hooks: { stop: { script: 'stop', timeoutSeconds: 10 }, start: { script: 'start' } },
        healthCheck: { http: { port: 8080, path: '/healthz' }, periodSeconds: 2 },
      } as AppReleaseSpec,
      '4cebf842aeea',
    ],
  ];
  it.each(golden)('specs without secretKeyRef keep their revision ID (%s)', (_n, spec, id) => {
    expect(revisionOf(spec)).toBe(id);
  });

  it('hashes the reference (Secret name and key), which alone is in the spec', () => {
    const a = revisionOf(withSecretEnv({ name: 'db', key: 'password' }));
    expect(revisionOf(withSecretEnv({ name: 'db', key: 'password' }))).toBe(a);
    expect(revisionOf(withSecretEnv({ name: 'db', key: 'password2' }))).not.toBe(a);
    expect(revisionOf(withSecretEnv({ name: 'db2', key: 'password' }))).not.toBe(a);
  });
});

describe('the command never carries a Secret-sourced value', () => {
  it('renders SECRET_ENV with the placeholder, inline values only for value entries', () => {
    const spec: AppReleaseSpec = {
      ...base,
      install: {
        env: { MODE: 'production' },
        envVars: [
          { name: 'DB_PASSWORD', valueFrom: { secretKeyRef: { name: 'db', key: 'password' } } },
          { name: 'REGION_NAME', value: 'hangzhou-1' },
        ],
      },
    };
    const cmd = renderCommand({
      action: 'deploy',
      revision: 'r1',
      spec,
      owner: 'ns/n',
      secretParameter: 'ecsops-abc',
    });
    expect(cmd).toContain(`SECRET_ENV='{{oos-secret:ecsops-abc}}'`);
    expect(cmd).toContain(`E+=(REGION_NAME ${b64('hangzhou-1')})`);
    expect(cmd).toContain(`E+=(MODE ${b64('production')})`);
    expect(cmd).not.toMatch(/E\+=\(DB_PASSWORD/);
  });
});
