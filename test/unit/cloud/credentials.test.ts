import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkCredentials, createCredentialsProvider } from '../../../src/cloud/credentials.js';
import { isCloudError } from '../../../src/cloud/errors.js';
import { clearRegisteredSecrets, sanitizeErrorText } from '../../../src/util/sanitize.js';

/** Obviously fake; a named constant so secret scanners see no key-like literal. */
const FAKE_SECRET = 'fake-secret-for-unit-test';

const CHAIN_VARS = [
  'ALIBABA_CLOUD_ACCESS_KEY_ID',
  'ALIBABA_CLOUD_ACCESS_KEY_SECRET',
  'ALIBABA_CLOUD_SECURITY_TOKEN',
  'ALIBABA_CLOUD_ROLE_ARN',
  'ALIBABA_CLOUD_OIDC_PROVIDER_ARN',
  'ALIBABA_CLOUD_OIDC_TOKEN_FILE',
  'ALIBABA_CLOUD_PROFILE',
  'ALIBABA_CLOUD_CREDENTIALS_FILE',
  'ALIBABA_CLOUD_CREDENTIALS_URI',
  'ALIBABA_CLOUD_ECS_METADATA',
  'ALIBABA_CLOUD_ECS_METADATA_DISABLED',
  'ALIBABA_CLOUD_CLI_PROFILE_DISABLED',
  'HOME',
];

describe('credentials', () => {
  let saved: Record<string, string | undefined>;
  beforeEach(() => {
    saved = Object.fromEntries(CHAIN_VARS.map((k) => [k, process.env[k]]));
    for (const k of CHAIN_VARS) delete process.env[k];
    // An empty home (no CLI profile, no credentials file) and no instance metadata.
    process.env['HOME'] = mkdtempSync(join(tmpdir(), 'ecsops-cred-'));
    process.env['ALIBABA_CLOUD_ECS_METADATA_DISABLED'] = 'true';
  });
  afterEach(() => {
    // Remove the temporary home made in beforeEach (it must not outlive the test).
    const home = process.env['HOME'];
    if (home && home.startsWith(join(tmpdir(), 'ecsops-cred-')))
      rmSync(home, { recursive: true, force: true });
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    clearRegisteredSecrets();
  });

  it('resolves an explicit AccessKey pair and registers its secret with the sanitizer', async () => {
    const provider = createCredentialsProvider({
      credential: { accessKeyId: 'fake-id', accessKeySecret: FAKE_SECRET },
    });
    await expect(checkCredentials(provider)).resolves.toEqual({ providerName: 'static_ak' });
    expect(sanitizeErrorText(`x ${FAKE_SECRET} y`)).toBe('x [REDACTED] y');
  });

  it('resolves the default chain from environment variables', async () => {
    process.env['ALIBABA_CLOUD_ACCESS_KEY_ID'] = 'fake-env-id';
    process.env['ALIBABA_CLOUD_ACCESS_KEY_SECRET'] = 'fake-env-secret-value';
    const id = await checkCredentials(createCredentialsProvider());
    expect(id.providerName).toBe('default/env');
    expect(sanitizeErrorText('fake-env-secret-value')).toBe('[REDACTED]');
  });

  it('a missing credential is a transient CloudError naming the chain and its env vars', async () => {
    const err = await checkCredentials(createCredentialsProvider()).catch((e: unknown) => e);
    expect(isCloudError(err)).toBe(true);
    expect(err).toMatchObject({
      code: 'CredentialsUnavailable',
      kind: 'transient',
      category: 'credentials',
      action: 'ResolveCredentials',
    });
    const message = (err as Error).message;
    for (const v of [
      'ALIBABA_CLOUD_ACCESS_KEY_ID',
      'ALIBABA_CLOUD_ACCESS_KEY_SECRET',
      'ALIBABA_CLOUD_ROLE_ARN',
      'ALIBABA_CLOUD_OIDC_TOKEN_FILE',
      'ALIBABA_CLOUD_CREDENTIALS_URI',
    ]) {
      expect(message).toContain(v);
    }
  });

  it('never puts secrets from a failing provider into the error', async () => {
    const secret = 'LeakySecretLeakySecretLeaky123';
    const provider = createCredentialsProvider({
      credentialsProvider: {
        getProviderName: () => 'custom',
        getCredentials: () => Promise.reject(new Error(`denied for secret ${secret}`)),
      },
    });
    const err = (await checkCredentials(provider).catch((e: unknown) => e)) as Error;
    expect(err.message).not.toContain(secret);
    expect(err.message).toContain('from the configured credential');
  });

  it('rejects a resolved credential without a secret', async () => {
    const provider = createCredentialsProvider({
      credentialsProvider: {
        getProviderName: () => 'custom',
        getCredentials: async () =>
          ({ accessKeyId: 'id', accessKeySecret: '', securityToken: '', providerName: 'custom' }) as never,
      },
    });
    await expect(checkCredentials(provider)).rejects.toMatchObject({ code: 'CredentialsUnavailable' });
  });
});
