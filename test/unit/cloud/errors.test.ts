import { ClientError, ServerError, ThrottlingError } from '@alicloud/openapi-core';
import { describe, expect, it } from 'vitest';
import {
  classifyCode,
  CloudError,
  CredentialResolutionError,
  isCloudError,
  toCloudError,
} from '../../../src/cloud/errors.js';

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
    ['InvalidSecurityToken.Expired', 400, 'permanent', 'credentials'],
    ['EntityNotExists.Template', 404, 'permanent', 'notFound'],
    ['InvalidInstanceIds.NotFound', 404, 'permanent', 'notFound'],
    ['InvalidParameter', 400, 'permanent', 'invalidParameter'],
    ['InvalidParameter.TemplateName', 400, 'permanent', 'invalidParameter'],
    ['MissingParameter', 400, 'permanent', 'invalidParameter'],
    ['InvalidInstanceId.Malformed', 400, 'permanent', 'invalidParameter'],
    ['SomethingNew', 502, 'transient', 'server'],
    ['SomethingNew', 429, 'transient', 'throttling'],
    ['SomethingNew', 400, 'permanent', 'other'],
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

  it('maps credential resolution failures to permanent credentials errors', () => {
    const ce = toCloudError(new CredentialResolutionError('no credential'), 'oos', 'ListTemplates');
    expect(ce).toMatchObject({ code: 'CredentialsUnavailable', kind: 'permanent', category: 'credentials' });
  });

  it('maps non-JSON bodies and unknown errors', () => {
    expect(toCloudError(new SyntaxError('Unexpected token <'), 'oos', 'X')).toMatchObject({
      code: 'InvalidResponse',
      kind: 'transient',
    });
    expect(toCloudError('weird', 'oos', 'X')).toMatchObject({
      code: 'UnknownError',
      kind: 'permanent',
      category: 'other',
    });
  });
});
