import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { ApiError } from './errors.js';

/** A request as the signature verifier sees it. Header names are lower-case. */
export interface SignedRequest {
  method: string;
  /** URL path, e.g. `/`. */
  path: string;
  /** Decoded query parameters. */
  query: Record<string, string>;
  /** Header values per lower-case name (repeated headers keep every value). */
  headers: Record<string, string[]>;
  body: Buffer;
  /** Decoded form-body parameters (empty when the body is not form-encoded). */
  bodyParams: Record<string, string>;
}

/** Which signature scheme authenticated a request. */
export type SignatureScheme = 'ACS3-HMAC-SHA256' | 'HMAC-SHA1';

/** Maximum clock skew accepted for `x-acs-date` / `Timestamp` (15 minutes, as the real gateway). */
export const MAX_SKEW_MS = 15 * 60 * 1000;

/** Percent-encoding of openapi-core (`encodeURIComponent` plus `!'()*`). */
export function percentEncode(s: string): string {
  return encodeURIComponent(s)
    .replace(/!/g, '%21')
    .replace(/'/g, '%27')
    .replace(/\(/g, '%28')
    .replace(/\)/g, '%29')
    .replace(/\*/g, '%2A');
}

function header(req: SignedRequest, name: string): string | undefined {
  return req.headers[name]?.[0];
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Remembers signature nonces for the skew window to reject replays (`SignatureNonceUsed`). */
export class NonceCache {
  private readonly seen = new Map<string, number>();

  /** @throws ApiError `SignatureNonceUsed` (400) when the nonce was used within the window. */
  use(nonce: string, now = Date.now()): void {
    if (this.seen.has(nonce)) {
      throw new ApiError(400, 'SignatureNonceUsed', 'Specified signature nonce was used already.');
    }
    this.seen.set(nonce, now);
    if (this.seen.size > 10_000) {
      for (const [k, t] of this.seen) {
        if (now - t > MAX_SKEW_MS) this.seen.delete(k);
        else break;
      }
    }
  }
}

function checkTime(value: string | undefined, name: string): void {
  if (value === undefined)
    throw new ApiError(
      400,
      'MissingParameter',
      `The input parameter "${name}" that is mandatory for processing this request is not supplied.`,
    );
  const t = Date.parse(value);
  if (Number.isNaN(t))
    throw new ApiError(
      400,
      'InvalidTimeStamp.Format',
      `Specified time stamp or date value is not well formatted.`,
    );
  if (Math.abs(Date.now() - t) > MAX_SKEW_MS) {
    throw new ApiError(400, 'InvalidTimeStamp.Expired', 'Specified time stamp or date value is expired.');
  }
}

function lookupSecret(keys: ReadonlyMap<string, string>, id: string): string {
  const secret = keys.get(id);
  if (secret === undefined)
    throw new ApiError(404, 'InvalidAccessKeyId.NotFound', 'Specified access key is not found.');
  return secret;
}

const SIGNATURE_MISMATCH = (): ApiError =>
  new ApiError(400, 'SignatureDoesNotMatch', 'Specified signature is not matched with our calculation.');

/**
 * Verifies an ACS3-HMAC-SHA256 `Authorization` header exactly as openapi-core's
 * `getAuthorization` builds it: canonical request =
 * `METHOD\nPATH\nsorted k=encode(v)\ncanonical headers\nsigned headers\nx-acs-content-sha256`.
 */
function verifyAcs3(
  req: SignedRequest,
  auth: string,
  keys: ReadonlyMap<string, string>,
  nonces: NonceCache,
): string {
  const m = /^ACS3-HMAC-SHA256\s+Credential=([^,]+),\s*SignedHeaders=([^,]*),\s*Signature=([0-9a-f]+)$/.exec(
    auth.trim(),
  );
  if (!m)
    throw new ApiError(
      400,
      'IncompleteSignature',
      'The request signature does not conform to Aliyun standards.',
    );
  const [, accessKeyId, signedHeadersRaw, signature] = m as unknown as [string, string, string, string];
  const secret = lookupSecret(keys, accessKeyId);
  const signedHeaders = signedHeadersRaw.split(';').filter((h) => h !== '');
  if (!signedHeaders.includes('host') || !signedHeaders.includes('x-acs-date')) {
    throw new ApiError(400, 'IncompleteSignature', 'SignedHeaders must include host and x-acs-date.');
  }
  const payloadHash = header(req, 'x-acs-content-sha256') ?? '';
  if (payloadHash !== createHash('sha256').update(req.body).digest('hex')) {
    throw new ApiError(400, 'InvalidContentSha256', 'x-acs-content-sha256 does not match the request body.');
  }
  const query = Object.keys(req.query)
    .sort()
    .map((k) => `${k}=${percentEncode(req.query[k] ?? '')}`)
    .join('&');
  const canonicalHeaders = signedHeaders
    .map(
      (h) =>
        `${h}:${(req.headers[h] ?? [])
          .map((v) => v.trim())
          .sort()
          .join(',')}\n`,
    )
    .join('');
  const canonicalPath = req.path.replace(/\+/g, '%20').replace(/\*/g, '%2A').replace(/%7E/g, '~');
  const canonical = `${req.method}\n${canonicalPath}\n${query}\n${canonicalHeaders}\n${signedHeaders.join(';')}\n${payloadHash}`;
  const sts = `ACS3-HMAC-SHA256\n${createHash('sha256').update(canonical).digest('hex')}`;
  const expected = createHmac('sha256', secret).update(sts).digest('hex');
  if (!safeEqual(expected, signature)) throw SIGNATURE_MISMATCH();
  checkTime(header(req, 'x-acs-date'), 'x-acs-date');
  nonces.use(header(req, 'x-acs-signature-nonce') ?? '');
  return accessKeyId;
}

/**
 * Verifies a V1 RPC signature (`Signature` query parameter, HMAC-SHA1) exactly as openapi-core's
 * `getRPCSignature`: `METHOD&%2F&encode(sorted encode(k)=encode(v) joined by &)`, key `secret&`.
 * Query and form-body parameters are both signed.
 */
function verifyV1(req: SignedRequest, keys: ReadonlyMap<string, string>, nonces: NonceCache): string {
  const all: Record<string, string> = { ...req.query, ...req.bodyParams };
  const signature = all['Signature'] ?? '';
  delete all['Signature'];
  const accessKeyId = all['AccessKeyId'];
  if (accessKeyId === undefined) {
    throw new ApiError(
      400,
      'MissingParameter',
      'The input parameter "AccessKeyId" that is mandatory for processing this request is not supplied.',
    );
  }
  const secret = lookupSecret(keys, accessKeyId);
  if (all['SignatureMethod'] !== 'HMAC-SHA1') {
    throw new ApiError(400, 'InvalidSignatureMethod', 'Specified signature method is not supported.');
  }
  const canonical = Object.keys(all)
    .sort()
    .map((k) => `${percentEncode(k)}=${percentEncode(all[k] ?? '')}`)
    .join('&');
  const sts = `${req.method}&${percentEncode('/')}&${percentEncode(canonical)}`;
  const expected = createHmac('sha1', `${secret}&`).update(sts).digest('base64');
  if (!safeEqual(expected, signature)) throw SIGNATURE_MISMATCH();
  checkTime(all['Timestamp'], 'Timestamp');
  nonces.use(all['SignatureNonce'] ?? '');
  return accessKeyId;
}

/**
 * Authenticates a request by whichever scheme it carries: an `Authorization: ACS3-HMAC-SHA256 …`
 * header, or a V1 `Signature` query parameter.
 * @returns the AccessKey ID and the scheme.
 * @throws ApiError `InvalidAccessKeyId.NotFound` (404) for an unknown AccessKey ID,
 *   `SignatureDoesNotMatch` (400) for a wrong signature, `IncompleteSignature` / `MissingParameter`
 *   (400) for malformed or absent credentials, `InvalidTimeStamp.Expired` / `SignatureNonceUsed` (400).
 */
export function verifySignature(
  req: SignedRequest,
  keys: ReadonlyMap<string, string>,
  nonces: NonceCache,
): { accessKeyId: string; scheme: SignatureScheme } {
  const auth = header(req, 'authorization');
  if (auth !== undefined)
    return { accessKeyId: verifyAcs3(req, auth, keys, nonces), scheme: 'ACS3-HMAC-SHA256' };
  if (req.query['Signature'] !== undefined || req.bodyParams['Signature'] !== undefined) {
    return { accessKeyId: verifyV1(req, keys, nonces), scheme: 'HMAC-SHA1' };
  }
  throw new ApiError(
    400,
    'MissingParameter',
    'The input parameter "Signature" that is mandatory for processing this request is not supplied.',
  );
}
