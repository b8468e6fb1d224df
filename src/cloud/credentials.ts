/**
 * Credentials for the cloud layer: the `@alicloud/credentials` default provider chain, or an
 * explicit AccessKey pair (tests, emulator), wrapped so that
 * - every resolved AccessKey secret / STS token is registered with the sanitizer;
 * - a resolution failure becomes a {@link CredentialResolutionError} whose message names the
 *   chain and the environment variables to set, and never contains a secret.
 */
import CredentialModule, {
  DefaultCredentialsProvider,
  StaticAKCredentialsProvider,
  StaticSTSCredentialsProvider,
  type CredentialsProvider,
} from '@alicloud/credentials';
import { registerSecret, sanitizeErrorText } from '../util/sanitize.js';
import { CloudError, CredentialResolutionError } from './errors.js';
import { cjsDefault } from './interop.js';

const Credential = cjsDefault(CredentialModule);
/** The `Credential` object openapi-core expects in `Config.credential`. */
export type SdkCredential = InstanceType<typeof Credential>;
type ResolvedCredentials = Awaited<ReturnType<CredentialsProvider['getCredentials']>>;

/** An explicit AccessKey pair (optionally an STS session). */
export interface StaticCredential {
  accessKeyId: string;
  accessKeySecret: string;
  securityToken?: string;
}

/** Where credentials come from: explicit, a custom provider, or (neither) the default chain. */
export interface CredentialSourceOptions {
  credential?: StaticCredential;
  /** Any `@alicloud/credentials` provider (e.g. a test double). Ignored when `credential` is set. */
  credentialsProvider?: CredentialsProvider;
}

/** Human guidance appended to every resolution failure. Names variables, never values. */
export const CREDENTIAL_CHAIN_HELP =
  'the @alicloud/credentials default chain tried, in order: ' +
  '(1) environment ALIBABA_CLOUD_ACCESS_KEY_ID + ALIBABA_CLOUD_ACCESS_KEY_SECRET (+ ALIBABA_CLOUD_SECURITY_TOKEN); ' +
  '(2) RRSA OIDC role: ALIBABA_CLOUD_ROLE_ARN + ALIBABA_CLOUD_OIDC_PROVIDER_ARN + ALIBABA_CLOUD_OIDC_TOKEN_FILE; ' +
  '(3) CLI profile ~/.aliyun/config.json (ALIBABA_CLOUD_PROFILE); ' +
  '(4) profile file ALIBABA_CLOUD_CREDENTIALS_FILE or ~/.alibabacloud/credentials; ' +
  '(5) ECS RAM role from instance metadata (ALIBABA_CLOUD_ECS_METADATA; disable with ALIBABA_CLOUD_ECS_METADATA_DISABLED=true); ' +
  '(6) ALIBABA_CLOUD_CREDENTIALS_URI. Set one of them';

/** Provider decorator: registers secrets, validates, and turns failures into CredentialResolutionError. */
class GuardedCredentialsProvider implements CredentialsProvider {
  constructor(
    private readonly inner: CredentialsProvider,
    private readonly explicit: boolean,
  ) {}

  getProviderName = (): string => this.inner.getProviderName();

  getCredentials = async (): Promise<ResolvedCredentials> => {
    let creds: ResolvedCredentials;
    try {
      creds = await this.inner.getCredentials();
    } catch (err) {
      // Guidance first: the CloudError message is truncated to 1024 characters.
      const detail = sanitizeErrorText(err instanceof Error ? err.message : String(err), 200);
      const where = this.explicit ? 'from the configured credential' : `— ${CREDENTIAL_CHAIN_HELP}`;
      throw new CredentialResolutionError(
        `no Alibaba Cloud credential could be resolved ${where}. Cause: ${detail}`,
      );
    }
    registerSecret(creds.accessKeySecret);
    registerSecret(creds.securityToken);
    if (!creds.accessKeyId || !creds.accessKeySecret) {
      throw new CredentialResolutionError(
        `the resolved Alibaba Cloud credential has an empty AccessKey ID or secret; ${CREDENTIAL_CHAIN_HELP}`,
      );
    }
    return creds;
  };
}

/**
 * Builds the credentials provider for the given options: explicit `credential` (AccessKey or
 * STS), else `credentialsProvider`, else `DefaultCredentialsProvider` (the default chain; see
 * {@link CREDENTIAL_CHAIN_HELP}). The explicit secret and token are registered with the
 * sanitizer immediately. Throws nothing; resolution happens on first use.
 */
export function createCredentialsProvider(opts: CredentialSourceOptions = {}): CredentialsProvider {
  const c = opts.credential;
  if (c) {
    registerSecret(c.accessKeySecret);
    registerSecret(c.securityToken);
    const inner = c.securityToken
      ? StaticSTSCredentialsProvider.builder()
          .withAccessKeyId(c.accessKeyId)
          .withAccessKeySecret(c.accessKeySecret)
          .withSecurityToken(c.securityToken)
          .build()
      : StaticAKCredentialsProvider.builder()
          .withAccessKeyId(c.accessKeyId)
          .withAccessKeySecret(c.accessKeySecret)
          .build();
    return new GuardedCredentialsProvider(inner, true);
  }
  if (opts.credentialsProvider) return new GuardedCredentialsProvider(opts.credentialsProvider, true);
  return new GuardedCredentialsProvider(DefaultCredentialsProvider.builder().build(), false);
}

/** Wraps a provider in the `Credential` object that openapi-core's `Config.credential` takes. */
export function toSdkCredential(provider: CredentialsProvider): SdkCredential {
  return new Credential(null, provider);
}

/** What a successful credential check reports (never any key material). */
export interface CredentialIdentity {
  /** e.g. `default/env`, `default/oidc_role_arn`, `static_ak`. */
  providerName: string;
}

/**
 * Resolves a credential once from `provider` (default: the default chain), for `/readyz`.
 * Resolves `{ providerName }`. Rejects with a transient `CloudError` (code
 * `CredentialsUnavailable`, category `credentials`, product `credentials`, action
 * `ResolveCredentials`; transient because a credential source such as the metadata service or
 * an OIDC token file may become readable) whose message names the chain and the environment
 * variables to set; the message never contains a secret.
 */
export async function checkCredentials(
  provider: CredentialsProvider = createCredentialsProvider(),
): Promise<CredentialIdentity> {
  try {
    const creds = await provider.getCredentials();
    return { providerName: creds.providerName || provider.getProviderName() };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new CloudError({
      code: 'CredentialsUnavailable',
      message,
      action: 'ResolveCredentials',
      product: 'credentials',
      kind: 'transient',
      category: 'credentials',
    });
  }
}
