/**
 * The one error type of the cloud layer, and the table that classifies Alibaba Cloud error
 * codes into transient/permanent kinds and categories.
 *
 * Every rejection of an `OosApi` / `EcsApi` method is a {@link CloudError}. Its `message` is
 * sanitized ({@link sanitizeErrorText}); it carries no `cause` (SDK errors hold the signed
 * request, including query-string signatures and STS tokens).
 *
 * Only failures known to need a change by someone (bad parameters, missing entities, denied
 * permissions, wrong AccessKey or signature, an explicit 4xx code the table does not know) are
 * `permanent`. Everything unclassified — an error of unknown shape, any socket errno, an expired
 * STS token, a credential source that cannot be read right now — is `transient`, so the
 * controller keeps retrying with backoff rather than stalling the resource forever.
 */
import { AlibabaCloudError, ThrottlingError } from '@alicloud/openapi-core';
import { sanitizeErrorText } from '../util/sanitize.js';
import type { CloudProduct } from './types.js';

/** `transient`: retrying later may succeed. `permanent`: it will not without a change. */
export type CloudErrorKind = 'transient' | 'permanent';

export type CloudErrorCategory =
  | 'throttling'
  | 'server'
  | 'network'
  | 'permission'
  | 'invalidParameter'
  | 'notFound'
  | 'credentials'
  /** The caller's `AbortSignal` aborted the call (code `Aborted`). */
  | 'aborted'
  /** An error of unknown shape (code `UnknownError`): transient, but not retried in the layer. */
  | 'unknown'
  | 'other';

/** `CloudError.code` of a call stopped by the caller's `AbortSignal` (see {@link isAborted}). */
export const ABORTED_CODE = 'Aborted';

/** Fields of a {@link CloudError}. */
export interface CloudErrorInit {
  /** Alibaba Cloud error `Code` (e.g. `Forbidden.RAM`), or `NetworkError` / a layer code. */
  code: string;
  /** Unsanitized text; the constructor sanitizes it. */
  message: string;
  action: string;
  /** `credentials` for failures to resolve a credential outside any API call. */
  product: CloudProduct | 'credentials';
  kind: CloudErrorKind;
  category: CloudErrorCategory;
  httpStatus?: number;
  requestId?: string;
  /** Server-requested wait before a retry, in milliseconds (`x-acs-retry-after`). */
  retryAfterMs?: number;
  /** True when the service is known not to have acted on the request (throttled, refused). */
  rejectedBeforeProcessing?: boolean;
  /** HTTP attempts made, including retries. */
  attempts?: number;
}

/** An Alibaba Cloud API failure, classified where it is born. */
export class CloudError extends Error {
  override readonly name = 'CloudError';
  readonly code: string;
  readonly action: string;
  readonly product: CloudProduct | 'credentials';
  readonly kind: CloudErrorKind;
  readonly category: CloudErrorCategory;
  readonly httpStatus?: number;
  readonly requestId?: string;
  /** Server-requested wait before a retry, in milliseconds (`x-acs-retry-after`). */
  readonly retryAfterMs?: number;
  /** True when the service did not act on the request, so even a non-idempotent call may be re-sent. */
  readonly rejectedBeforeProcessing: boolean;
  /** HTTP attempts made before this error was returned (1 = no retry). */
  attempts: number;

  constructor(init: CloudErrorInit) {
    super(sanitizeErrorText(`${init.product.toUpperCase()} ${init.action}: ${init.code}: ${init.message}`));
    this.code = init.code;
    this.action = init.action;
    this.product = init.product;
    this.kind = init.kind;
    this.category = init.category;
    if (init.httpStatus !== undefined) this.httpStatus = init.httpStatus;
    if (init.requestId !== undefined) this.requestId = init.requestId;
    if (init.retryAfterMs !== undefined) this.retryAfterMs = init.retryAfterMs;
    this.rejectedBeforeProcessing = init.rejectedBeforeProcessing ?? false;
    this.attempts = init.attempts ?? 1;
  }

  /**
   * True for errors worth an immediate in-layer retry with backoff: transient throttling, server,
   * network and state-conflict (`other`) errors. False for permanent errors and for the transient
   * categories an immediate re-send cannot fix: `credentials` (the provider hands out the same
   * cached token until it refreshes it; the reconcile-level backoff retries later), `unknown`
   * (an error of unknown shape may be a local bug, and a write may have been processed) and
   * `aborted` (the caller asked to stop).
   */
  get retryable(): boolean {
    return (
      this.kind === 'transient' &&
      this.category !== 'credentials' &&
      this.category !== 'unknown' &&
      this.category !== 'aborted'
    );
  }
}

/** Type guard for {@link CloudError}. */
export function isCloudError(err: unknown): err is CloudError {
  return err instanceof CloudError;
}

/**
 * True when `err` is a {@link CloudError} with code `Aborted`: the call was stopped because the
 * `AbortSignal` given to `CloudClients.oos/ecs(regionId, { signal })` aborted. Such an error says
 * nothing about the service; callers usually just stop (they are shutting down or lost leadership).
 */
export function isAborted(err: unknown): err is CloudError {
  return err instanceof CloudError && err.code === ABORTED_CODE;
}

/**
 * The {@link CloudError} for a call stopped by an aborted signal: code `Aborted`, kind
 * `transient`, category `aborted` (never `retryable`). `reason` is the signal's `reason`; only
 * its message is kept (sanitized).
 */
export function abortedError(
  product: CloudProduct,
  action: string,
  reason?: unknown,
  attempts = 0,
): CloudError {
  const why = reason instanceof Error ? reason.message : reason === undefined ? 'aborted' : String(reason);
  return new CloudError({
    code: ABORTED_CODE,
    message: `call aborted by the caller (${why})`,
    action,
    product,
    kind: 'transient',
    category: 'aborted',
    attempts,
  });
}

/** Classification of one error code. */
export interface Classification {
  kind: CloudErrorKind;
  category: CloudErrorCategory;
}

interface Rule extends Classification {
  test: (code: string) => boolean;
}

const is =
  (...codes: string[]) =>
  (c: string) =>
    codes.includes(c);
const startsWith =
  (...prefixes: string[]) =>
  (c: string) =>
    prefixes.some((p) => c.startsWith(p));

/** `InvalidSecurityToken.Expired` and the other `InvalidSecurityToken.*` codes about expiry. */
function isSecurityTokenExpiry(code: string): boolean {
  return code.startsWith('InvalidSecurityToken') && /expire/i.test(code);
}

/**
 * THE classification table (first match wins). Sources: reference §1.5 (Terraform provider
 * `errors.go` NeedRetry, ERRSHAPE fixtures) and §3.18.
 */
const RULES: readonly Rule[] = [
  // Throttling.User, Throttling.Api, Rejected.Throttling, ... (Terraform matches /Throttling/).
  { test: (c) => c.includes('Throttling'), kind: 'transient', category: 'throttling' },
  { test: is('NetworkError'), kind: 'transient', category: 'network' },
  {
    test: (c) =>
      is('ServiceUnavailable', 'InternalError', 'InvalidResponse')(c) || c.startsWith('InternalError.'),
    kind: 'transient',
    category: 'server',
  },
  // Retried by Terraform for ECS/OOS operations: state conflicts that clear on their own. CLB
  // (`BackendServer.configuring`, `ServiceIsConfiguring`, `SystemBusy`) and ALB
  // (`IncorrectStatus.ServerGroup` while an asynchronous change applies, `Conflict.Lock`,
  // `IdempotenceProcessing`): retried by Terraform's alicloud provider too
  // (docs/reference-load-balancers.md).
  {
    test: (c) =>
      is(
        'OperationConflict',
        'IncorrectInstanceStatus',
        'InvalidOperation.Conflict',
        'LastTokenProcessing',
        'Conflict',
        'BackendServer.configuring',
        'ServiceIsConfiguring',
        'SystemBusy',
        'Conflict.Lock',
        'IdempotenceProcessing',
      )(c) || c.toLowerCase() === 'incorrectstatus.servergroup',
    kind: 'transient',
    category: 'other',
  },
  // An expired STS token is replaced by the next refresh of the credential provider; a
  // credential source that cannot be read now (metadata service, OIDC token file) may recover.
  {
    test: (c) => isSecurityTokenExpiry(c) || c === 'CredentialsUnavailable',
    kind: 'transient',
    category: 'credentials',
  },
  {
    test: (c) =>
      startsWith('InvalidAccessKeyId', 'InvalidSecurityToken', 'InvalidCredentials')(c) ||
      is('SignatureDoesNotMatch', 'IncompleteSignature', 'SignatureNonceUsed', 'InvalidTimeStamp.Expired')(c),
    kind: 'permanent',
    category: 'credentials',
  },
  {
    test: (c) => startsWith('Forbidden', 'NoPermission', 'AccessDenied')(c) || c === 'Unauthorized',
    kind: 'permanent',
    category: 'permission',
  },
  {
    test: (c) =>
      c.startsWith('EntityNotExists') ||
      c.endsWith('.NotFound') ||
      c.endsWith('NotFound') ||
      c.startsWith('ResourceNotFound'),
    kind: 'permanent',
    category: 'notFound',
  },
  {
    test: (c) =>
      startsWith('InvalidParameter', 'MissingParameter', 'ParameterMissing', 'Invalid')(c) ||
      c.startsWith('Missing'),
    kind: 'permanent',
    category: 'invalidParameter',
  },
];

/**
 * Classifies an Alibaba Cloud error `code` (with the HTTP status when known) using the table
 * above; unknown codes fall back on the status: ≥ 500 → transient `server`, 429 → transient
 * `throttling`, another 4xx (the service named a client error) → permanent `other`, no status or
 * anything else → transient `unknown`. Never throws.
 */
export function classifyCode(code: string, httpStatus?: number): Classification {
  for (const rule of RULES) {
    if (rule.test(code)) return { kind: rule.kind, category: rule.category };
  }
  if (httpStatus !== undefined && httpStatus >= 500) return { kind: 'transient', category: 'server' };
  if (httpStatus === 429) return { kind: 'transient', category: 'throttling' };
  if (httpStatus !== undefined && httpStatus >= 400) return { kind: 'permanent', category: 'other' };
  return { kind: 'transient', category: 'unknown' };
}

/**
 * True for an errno-shaped code (`ECONNRESET`, `EPROTO`, `EMFILE`, `EAI_AGAIN`, ...) or an undici
 * code (`UND_ERR_*`): every such error is a network error (transient). Node's own `ERR_*` codes
 * are not errnos.
 */
export function isErrnoCode(code: string): boolean {
  if (code.startsWith('UND_ERR_')) return true;
  return /^E[A-Z]+(?:_[A-Z]+)*$/.test(code) && !code.startsWith('ERR_');
}

/** Node.js socket error codes known to be network errors (any other errno is one too, see {@link isErrnoCode}). */
const NETWORK_ERRNOS = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);
/** Errors meaning the request never reached the service (safe to re-send any request). */
const NOT_SENT_ERRNOS = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** Marker error thrown by the credential provider wrapper (see `credentials.ts`). */
export class CredentialResolutionError extends Error {
  override readonly name = 'CredentialResolutionError';
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' && v !== 'undefined' ? v : undefined;
}

/**
 * Maps anything thrown while calling `action` to a {@link CloudError}:
 * - openapi-core `ThrottlingError` / `ClientError` / `ServerError` (`AlibabaCloudError`): code,
 *   HTTP status, request ID, and `retryAfter` (openapi-core parses the `x-acs-retry-after`
 *   header with `parseInt` and its own retry loop sleeps that many **milliseconds**; we keep the
 *   same unit);
 * - socket / timeout errors from the HTTP layer (any errno-shaped code such as `ECONNRESET` or
 *   `EPROTO`, any `UND_ERR_*`, `RequestTimeoutError`, ...): code `NetworkError`, transient
 *   `network`;
 * - {@link CredentialResolutionError}: code `CredentialsUnavailable` (transient, `credentials`:
 *   the credential source may be readable on the next try);
 * - a response body that is not JSON (`SyntaxError`): code `InvalidResponse` (transient `server`);
 * - anything else: code `UnknownError`, transient `unknown` (not retried in the layer).
 * Never throws. An existing `CloudError` is returned as is.
 */
export function toCloudError(err: unknown, product: CloudProduct, action: string): CloudError {
  if (err instanceof CloudError) return err;
  if (err instanceof AlibabaCloudError) {
    const code = str(err.code) ?? 'UnknownError';
    const httpStatus = typeof err.statusCode === 'number' ? err.statusCode : undefined;
    const data = (err as { data?: Record<string, unknown> }).data;
    const message = str(data?.['Message']) ?? str(data?.['message']) ?? err.message;
    const c = classifyCode(code, httpStatus);
    const retryAfter =
      err instanceof ThrottlingError && typeof err.retryAfter === 'number' && err.retryAfter > 0
        ? err.retryAfter
        : undefined;
    return new CloudError({
      code,
      message,
      action,
      product,
      ...c,
      ...(httpStatus !== undefined ? { httpStatus } : {}),
      ...(str(err.requestId) ? { requestId: str(err.requestId) as string } : {}),
      ...(retryAfter !== undefined ? { retryAfterMs: retryAfter } : {}),
      rejectedBeforeProcessing: c.category === 'throttling',
    });
  }
  if (err instanceof CredentialResolutionError) {
    return new CloudError({
      code: 'CredentialsUnavailable',
      message: err.message,
      action,
      product,
      kind: 'transient',
      category: 'credentials',
    });
  }
  const e = err as { code?: unknown; name?: unknown; message?: unknown } | undefined;
  const errno = typeof e?.code === 'string' ? e.code : undefined;
  const name = typeof e?.name === 'string' ? e.name : '';
  const text = typeof e?.message === 'string' ? e.message : String(err);
  if (
    (errno !== undefined && (NETWORK_ERRNOS.has(errno) || isErrnoCode(errno))) ||
    /Timeout/i.test(name) ||
    /^(Connect|Read)Timeout/.test(text)
  ) {
    // Not `ConnectTimeout`: httpx arms its connect timer on reused keep-alive sockets too, where
    // it fires while waiting for the response — the request may well have been processed.
    const connectPhase = errno !== undefined && NOT_SENT_ERRNOS.has(errno);
    return new CloudError({
      code: 'NetworkError',
      message: `${errno ?? name}: ${text}`,
      action,
      product,
      kind: 'transient',
      category: 'network',
      rejectedBeforeProcessing: connectPhase,
    });
  }
  if (err instanceof SyntaxError) {
    return new CloudError({
      code: 'InvalidResponse',
      message: `response body is not JSON: ${text}`,
      action,
      product,
      kind: 'transient',
      category: 'server',
    });
  }
  return new CloudError({
    code: 'UnknownError',
    message: text,
    action,
    product,
    kind: 'transient',
    category: 'unknown',
  });
}
