import { ClientError, ServerError, ThrottlingError } from '@alicloud/openapi-core';
import { describe, expect, it } from 'vitest';
import {
  abortedError,
  classifyCode,
  CloudError,
  CredentialResolutionError,
  isAborted,
  isCloudError,
  isErrnoCode,
  toCloudError,
} from '../../../src/cloud/errors.js';
import { isAborted as isAbortedFromIndex } from '../../../src/cloud/index.js';

describe('classifyCode', () => {
  it.each([
    ['Throttling', undefined, 'transient', 'throttling'],
    ['Throttling.User', 400, 'transient', 'throttling'],
    ['Throttling.Api', 400, 'transient', 'throttling'],
    ['Rejected.Throttling', 400, 'transient', 'throttling'],
    ['ServiceUnavailable', 503, 'transient', 'server'],
    ['InternalError', 500, 'transient', 'server'],
    ['OperationConflict', 409, 'transient', 'other'],
    ['IncorrectInstanceStatus', 403, 'transient', 'other'],
    ['Forbidden.RAM', 403, 'permanent', 'permission'],
    ['Forbidden', 403, 'permanent', 'permission'],
    ['NoPermission', 403, 'permanent', 'permission'],
    ['InvalidAccessKeyId.NotFound', 404, 'permanent', 'credentials'],
    ['InvalidAccessKeyId', 400, 'permanent', 'credentials'],
    ['SignatureDoesNotMatch', 400, 'permanent', 'credentials'],
    // A refreshed STS token or a recovered credential source fixes these.
    ['InvalidSecurityToken.Expired', 400, 'transient', 'credentials'],
    ['InvalidSecurityToken.TokenExpired', 400, 'transient', 'credentials'],
    ['CredentialsUnavailable', undefined, 'transient', 'credentials'],
    ['InvalidSecurityToken.Malformed', 400, 'permanent', 'credentials'],
    ['InvalidAccessKeyId.Inactive', 400, 'permanent', 'credentials'],
    ['IncompleteSignature', 400, 'permanent', 'credentials'],
    ['EntityNotExists.Template', 404, 'permanent', 'notFound'],
    ['InvalidInstanceIds.NotFound', 404, 'permanent', 'notFound'],
    ['InvalidParameter', 400, 'permanent', 'invalidParameter'],
    ['InvalidParameter.TemplateName', 400, 'permanent', 'invalidParameter'],
    ['MissingParameter', 400, 'permanent', 'invalidParameter'],
    ['InvalidInstanceId.Malformed', 400, 'permanent', 'invalidParameter'],
    ['SomethingNew', 502, 'transient', 'server'],
    ['SomethingNew', 429, 'transient', 'throttling'],
    ['SomethingNew', 400, 'permanent', 'other'],
    ['SomethingNew', undefined, 'transient', 'unknown'],
    ['UnknownError', undefined, 'transient', 'unknown'],
  ] as const)('%s (HTTP %s) → %s/%s', (code, status, kind, category) => {
    expect(classifyCode(code, status)).toEqual({ kind, category });
  });
});

describe('toCloudError', () => {
  it('maps a ClientError with the Alibaba body', () => {
    const err = new ClientError({
      statusCode: 403,
      code: 'Forbidden.RAM',
      message: 'code: 403, denied request id: R-1',
      requestId: 'R-1',
      data: {
        Code: 'Forbidden.RAM',
        Message: 'User not authorized to operate on the specified resource.',
        RequestId: 'R-1',
      },
    });
    const ce = toCloudError(err, 'oos', 'StartExecution');
    expect(ce).toBeInstanceOf(CloudError);
    expect(isCloudError(ce)).toBe(true);
    expect(ce).toMatchObject({
      code: 'Forbidden.RAM',
      httpStatus: 403,
      requestId: 'R-1',
      action: 'StartExecution',
      product: 'oos',
      kind: 'permanent',
      category: 'permission',
    });
    expect(ce.message).toContain('User not authorized');
    expect(ce.retryable).toBe(false);
    expect(ce.cause).toBeUndefined();
  });

  it('keeps retryAfter (ms) of a ThrottlingError and marks it rejected before processing', () => {
    const err = new ThrottlingError({
      statusCode: 400,
      code: 'Throttling.User',
      message: 'm',
      retryAfter: 1500,
      requestId: 'undefined',
      data: {},
    });
    const ce = toCloudError(err, 'ecs', 'DescribeInstances');
    expect(ce).toMatchObject({
      code: 'Throttling.User',
      kind: 'transient',
      category: 'throttling',
      retryAfterMs: 1500,
      rejectedBeforeProcessing: true,
    });
    expect(ce.requestId).toBeUndefined();
  });

  it('maps a ServerError without code by status', () => {
    const ce = toCloudError(
      new ServerError({ statusCode: 502, code: 'undefined', message: 'bad gateway', data: {} }),
      'oos',
      'ListExecutions',
    );
    expect(ce).toMatchObject({
      code: 'UnknownError',
      kind: 'transient',
      category: 'server',
      httpStatus: 502,
    });
  });

  it.each([
    ['ECONNRESET', false],
    ['ECONNREFUSED', true],
    ['ETIMEDOUT', false],
  ])('maps socket error %s to NetworkError', (errno, notSent) => {
    const e = Object.assign(new Error(`connect ${errno} 127.0.0.1:1`), { code: errno });
    const ce = toCloudError(e, 'ecs', 'RunCommand');
    expect(ce).toMatchObject({
      code: 'NetworkError',
      kind: 'transient',
      category: 'network',
      rejectedBeforeProcessing: notSent,
    });
  });

  it('maps httpx timeouts and strips the signed query from their message', () => {
    const e = Object.assign(
      new Error('ReadTimeout: 10. POST /?AccessKeyId=ak&Signature=c2lnbmF0dXJl failed.'),
      { name: 'RequestTimeoutError' },
    );
    const ce = toCloudError(e, 'oos', 'ListExecutions');
    expect(ce).toMatchObject({ code: 'NetworkError', category: 'network', rejectedBeforeProcessing: false });
    expect(ce.message).not.toContain('c2lnbmF0dXJl');
    const c = toCloudError(
      Object.assign(new Error('ConnectTimeout: Connect http://x/?a=b failed.'), {
        name: 'RequestTimeoutError',
      }),
      'oos',
      'X',
    );
    // httpx reports ConnectTimeout on reused sockets while awaiting the response: not proof of "not sent".
    expect(c.rejectedBeforeProcessing).toBe(false);
  });

  it.each(['EPROTO', 'EMFILE', 'ENOBUFS', 'EAI_NONAME', 'UND_ERR_CLOSED', 'UND_ERR_HEADERS_TIMEOUT'])(
    'maps any errno-shaped code (%s) to a transient NetworkError',
    (errno) => {
      const e = Object.assign(new Error(`${errno}: something on the socket`), { code: errno });
      const ce = toCloudError(e, 'oos', 'ListExecutions');
      expect(ce).toMatchObject({ code: 'NetworkError', kind: 'transient', category: 'network' });
      expect(ce.retryable).toBe(true);
      expect(ce.rejectedBeforeProcessing).toBe(false);
    },
  );

  it.each([
    ['ECONNRESET', true],
    ['EAI_AGAIN', true],
    ['EPROTO', true],
    ['UND_ERR_SOCKET', true],
    ['UND_ERR_BODY_TIMEOUT', true],
    ['ERR_INVALID_URL', false],
    ['ERR_STREAM_PREMATURE_CLOSE', false],
    ['Econnreset', false],
    ['E', false],
    ['Forbidden.RAM', false],
  ])('isErrnoCode(%s) = %s', (code, want) => {
    expect(isErrnoCode(code)).toBe(want);
  });

  it('maps credential resolution failures to transient credentials errors, not retried in the layer', () => {
    const ce = toCloudError(new CredentialResolutionError('no credential'), 'oos', 'ListTemplates');
    expect(ce).toMatchObject({ code: 'CredentialsUnavailable', kind: 'transient', category: 'credentials' });
    expect(ce.retryable).toBe(false);
  });

  it('makes an expired STS token transient (credentials) and a wrong AccessKey permanent', () => {
    const expired = toCloudError(
      new ClientError({ statusCode: 400, code: 'InvalidSecurityToken.Expired', message: 'm', data: {} }),
      'ecs',
      'DescribeInstances',
    );
    expect(expired).toMatchObject({ kind: 'transient', category: 'credentials' });
    expect(expired.retryable).toBe(false);
    const wrongKey = toCloudError(
      new ClientError({ statusCode: 404, code: 'InvalidAccessKeyId.NotFound', message: 'm', data: {} }),
      'ecs',
      'DescribeInstances',
    );
    expect(wrongKey).toMatchObject({ kind: 'permanent', category: 'credentials' });
  });

  it('maps non-JSON bodies and unknown errors', () => {
    expect(toCloudError(new SyntaxError('Unexpected token <'), 'oos', 'X')).toMatchObject({
      code: 'InvalidResponse',
      kind: 'transient',
    });
    const unknown = toCloudError('weird', 'oos', 'X');
    expect(unknown).toMatchObject({ code: 'UnknownError', kind: 'transient', category: 'unknown' });
    // Transient for the reconcile backoff, but not re-sent at once by the layer.
    expect(unknown.retryable).toBe(false);
    expect(toCloudError(new TypeError('x is not a function'), 'oos', 'X')).toMatchObject({
      code: 'UnknownError',
      kind: 'transient',
    });
  });
});

describe('isAborted', () => {
  it('recognises the Aborted CloudError only', () => {
    const aborted = abortedError('ecs', 'DescribeInstances', new Error('leadership lost'), 2);
    expect(aborted).toMatchObject({
      code: 'Aborted',
      kind: 'transient',
      category: 'aborted',
      attempts: 2,
      action: 'DescribeInstances',
    });
    expect(aborted.retryable).toBe(false);
    expect(aborted.message).toContain('leadership lost');
    expect(isAborted(aborted)).toBe(true);
    expect(isAbortedFromIndex(aborted)).toBe(true);
    expect(isAborted(toCloudError(new Error('x'), 'oos', 'X'))).toBe(false);
    expect(isAborted(new DOMException('aborted', 'AbortError'))).toBe(false);
    expect(isAborted(undefined)).toBe(false);
  });
});
