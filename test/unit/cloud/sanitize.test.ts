import { afterEach, describe, expect, it } from 'vitest';
import {
  clearRegisteredSecrets,
  MAX_REGISTERED_SECRETS,
  registerSecret,
  registeredSecretCount,
  REDACTED,
  sanitizeErrorText,
} from '../../../src/util/sanitize.js';

// Obviously fake values, shaped like the real thing.
const FAKE_SECRET = 'FakeSecretFakeSecretFakeSe1234'; // 30 mixed alphanumerics
// Built at run time: the AccessKey-ID shape the sanitizer must catch, without a key-like literal in source.
const FAKE_AK_ID = 'LTAI' + 'FAKE'.repeat(4);
const FAKE_STS = 'CAISFakeStsTokenFakeStsTokenFakeStsToken0123456789';

describe('sanitizeErrorText', () => {
  afterEach(() => clearRegisteredSecrets());

  it.each([
    [
      'query string of a V1 URL',
      `connect https://ecs.cn-hangzhou.aliyuncs.com/?Action=X&Signature=abc%3D&AccessKeyId=${FAKE_AK_ID} failed`,
      ['Signature=abc', FAKE_AK_ID],
    ],
    [
      'httpx read-timeout path',
      'ReadTimeout: 1000. POST /?SecurityToken=tok123456&Signature=sig failed.',
      ['tok123456', 'Signature=sig'],
    ],
    [
      'Authorization header',
      'headers: {Authorization: ACS3-HMAC-SHA256 Credential=ak,SignedHeaders=host,Signature=deadbeef}',
      ['deadbeef', 'Credential=ak'],
    ],
    [
      'JSON credential fields',
      `{"AccessKeySecret":"s3cr3t-value","securityToken":"abc-token-xyz"}`,
      ['s3cr3t-value', 'abc-token-xyz'],
    ],
    [
      'key=value pairs',
      'AccessKeySecret=plainsecretvalue SecurityToken: tokentokentoken',
      ['plainsecretvalue', 'tokentokentoken'],
    ],
    ['AccessKey ID shape', `key ${FAKE_AK_ID} denied`, [FAKE_AK_ID]],
    ['AccessKey secret shape', `secret is ${FAKE_SECRET}.`, [FAKE_SECRET]],
    ['STS token shape', `token ${FAKE_STS} expired`, [FAKE_STS]],
  ])('removes %s', (_name, input, forbidden) => {
    const out = sanitizeErrorText(input);
    for (const f of forbidden) expect(out).not.toContain(f);
    expect(out).toContain(REDACTED);
  });

  it('removes registered secrets verbatim and URL-encoded', () => {
    const secret = 'my+custom/secret=value';
    registerSecret(secret);
    const out = sanitizeErrorText(`a ${secret} b ${encodeURIComponent(secret)} c`);
    expect(out).not.toContain(secret);
    expect(out).not.toContain(encodeURIComponent(secret));
    expect(out).toBe(`a ${REDACTED} b ${REDACTED} c`);
  });

  it('does not double-redact a registered secret inside a key=value pair', () => {
    registerSecret('registered-secret-value');
    expect(sanitizeErrorText('AccessKeySecret=registered-secret-value x')).toBe(
      `AccessKeySecret=${REDACTED} x`,
    );
  });

  it('ignores too-short registered values', () => {
    registerSecret('abc');
    expect(sanitizeErrorText('abc def')).toBe('abc def');
  });

  it('keeps ordinary Alibaba Cloud error text intact', () => {
    const text =
      'code: 403, You are not authorized to operate on the specified resource. request id: 0C1CB646-1DE4-4AD0-B4A4-7D47DD52E931 instance i-bp67acfmxazb4ph1 exec-0123456789abcdef0 NextToken=abc';
    expect(sanitizeErrorText(text)).toBe(text);
  });

  it('truncates to the maximum length', () => {
    const out = sanitizeErrorText('x'.repeat(5000), 100);
    expect(out).toHaveLength(100);
    expect(out.endsWith('…[truncated]')).toBe(true);
    expect(sanitizeErrorText('y'.repeat(2000))).toHaveLength(1024);
  });

  it('accepts non-string input', () => {
    expect(sanitizeErrorText(42)).toBe('42');
  });

  it('removes the longest registered secret whole when one contains another', () => {
    registerSecret('inner-secret');
    registerSecret('outer-inner-secret-x');
    registerSecret('inner-secret-and-more');
    expect(sanitizeErrorText('a outer-inner-secret-x b inner-secret-and-more c inner-secret d')).toBe(
      `a ${REDACTED} b ${REDACTED} c ${REDACTED} d`,
    );
  });

  it('keeps the registry bounded under STS rotation; the latest token is still redacted', () => {
    // Rotating token-like values that no shape rule catches, so only the registry redacts them.
    const token = (i: number) => `rotating/token+${i}=value`;
    for (let i = 0; i < 10_000; i++) {
      registerSecret(token(i));
      expect(registeredSecretCount()).toBeLessThanOrEqual(MAX_REGISTERED_SECRETS);
    }
    expect(registeredSecretCount()).toBe(MAX_REGISTERED_SECRETS);
    const latest = token(9_999);
    expect(sanitizeErrorText(`x ${latest} ${encodeURIComponent(latest)} y`)).toBe(
      `x ${REDACTED} ${REDACTED} y`,
    );
    expect(sanitizeErrorText(`x ${token(10_000 - MAX_REGISTERED_SECRETS)} y`)).not.toContain('rotating');
    // Evicted long ago: neither kept in memory nor matched.
    expect(sanitizeErrorText(`x ${token(0)} y`)).toBe(`x ${token(0)} y`);
  });

  it('re-registering a value makes it the most recent', () => {
    const configured = 'configured-accesskey-secret';
    registerSecret(configured);
    for (let i = 0; i < MAX_REGISTERED_SECRETS - 1; i++) registerSecret(`other-value-${i}`);
    registerSecret(configured); // e.g. resolved again by the provider
    registerSecret('one-more-value');
    expect(registeredSecretCount()).toBe(MAX_REGISTERED_SECRETS);
    expect(sanitizeErrorText(configured)).toBe(REDACTED);
    expect(sanitizeErrorText('other-value-0')).toBe('other-value-0'); // the least recent went instead
    expect(sanitizeErrorText('other-value-1')).toBe(REDACTED);
  });

  it('keeps a pattern shared by two values until both are evicted', () => {
    const raw = 'a/b+c=d-value';
    registerSecret(raw);
    registerSecret(encodeURIComponent(raw)); // its encoded form, registered as a value too
    for (let i = 0; i < MAX_REGISTERED_SECRETS - 1; i++) registerSecret(`filler-value-${i}`);
    // `raw` was evicted; the encoded form is still registered and still redacted.
    expect(sanitizeErrorText(raw)).toBe(raw);
    expect(sanitizeErrorText(encodeURIComponent(raw))).toBe(REDACTED);
  });
});
