import { describe, expect, it } from 'vitest';
import { CloudError, type CloudErrorInit } from '../../../src/cloud/errors.js';
import { isNotFound, toReconcileError } from '../../../src/controllers/shared/cloud-errors.js';
import { StalledError, TransientError } from '../../../src/runtime/errors.js';

function cloudError(over: Partial<CloudErrorInit>): CloudError {
  return new CloudError({
    code: 'Throttling.User',
    message: 'Request was denied due to user flow control.',
    action: 'StartExecution',
    product: 'oos',
    kind: 'transient',
    category: 'throttling',
    ...over,
  });
}

describe('toReconcileError', () => {
  const cases: Array<{
    name: string;
    err: CloudError;
    cls: typeof TransientError | typeof StalledError;
    reason: string;
  }> = [
    {
      name: 'throttling',
      err: cloudError({ httpStatus: 400 }),
      cls: TransientError,
      reason: 'Throttled',
    },
    {
      name: 'server (5xx)',
      err: cloudError({
        code: 'ServiceUnavailable',
        message: 'The request has failed due to a temporary failure of the server.',
        category: 'server',
        httpStatus: 503,
      }),
      cls: TransientError,
      reason: 'CloudUnavailable',
    },
    {
      name: 'network',
      err: cloudError({ code: 'NetworkError', message: 'ECONNRESET: socket hang up', category: 'network' }),
      cls: TransientError,
      reason: 'NetworkError',
    },
    {
      name: 'permission',
      err: cloudError({
        code: 'Forbidden.RAM',
        message: 'User not authorized to operate on the specified resource.',
        kind: 'permanent',
        category: 'permission',
        httpStatus: 403,
      }),
      cls: StalledError,
      reason: 'PermissionDenied',
    },
    {
      name: 'credentials',
      err: cloudError({
        code: 'InvalidAccessKeyId.NotFound',
        message: 'Specified access key is not found.',
        kind: 'permanent',
        category: 'credentials',
        httpStatus: 404,
      }),
      cls: StalledError,
      reason: 'InvalidCredentials',
    },
    {
      name: 'invalidParameter',
      err: cloudError({
        code: 'InvalidParameter',
        message: 'The specified parameter Parameters is not valid.',
        kind: 'permanent',
        category: 'invalidParameter',
        httpStatus: 400,
      }),
      cls: StalledError,
      reason: 'CloudRequestRejected',
    },
    {
      name: 'notFound',
      err: cloudError({
        code: 'EntityNotExists.Template',
        message: 'Template does not exist.',
        kind: 'permanent',
        category: 'notFound',
        httpStatus: 404,
      }),
      cls: StalledError,
      reason: 'CloudRequestRejected',
    },
  ];

  for (const c of cases) {
    it(`${c.name} → ${c.cls.name} ${c.reason}`, () => {
      const out = toReconcileError(c.err, 'OOS StartExecution');
      expect(out).toBeInstanceOf(c.cls);
      expect(out.reason).toBe(c.reason);
      expect(out.message.startsWith('OOS StartExecution: ')).toBe(true);
      expect(out.message).toContain(c.err.code);
      expect(out.cause).toBe(c.err);
    });
  }

  it('returns reconcile errors unchanged', () => {
    const stalled = new StalledError('InstanceNotFound', '1 instance(s) not found');
    const transient = new TransientError('Conflict', 'resourceVersion changed');
    expect(toReconcileError(stalled, 'x')).toBe(stalled);
    expect(toReconcileError(transient, 'x')).toBe(transient);
  });

  it('maps anything else to TransientError ReconcileError', () => {
    const out = toReconcileError(new Error('boom'), 'ECS DescribeInstances');
    expect(out).toBeInstanceOf(TransientError);
    expect(out.reason).toBe('ReconcileError');
    expect(out.message).toBe('ECS DescribeInstances: boom');
    expect(toReconcileError('a string', 'ctx').message).toBe('ctx: a string');
  });

  const secrets = ['abc123secretsig', 'xyzfakekeyid', 'fakeststoken999'];
  const leaky = [
    `Signature=${secrets[0]}&AccessKeyId=${secrets[1]}`,
    `GET https://ecs.cn-hangzhou.aliyuncs.com/?Action=DescribeInstances&Signature=${secrets[0]}&SecurityToken=${secrets[2]} failed`,
    `{"AccessKeyId":"${secrets[1]}","SecurityToken":"${secrets[2]}"}`,
  ];
  for (const text of leaky) {
    it(`does not let credentials through: ${text.slice(0, 40)}…`, () => {
      for (const err of [
        cloudError({ message: text }),
        cloudError({ message: text, kind: 'permanent', category: 'permission', code: 'Forbidden' }),
        new Error(text),
      ]) {
        const out = toReconcileError(err, 'ECS DescribeInstances');
        for (const s of secrets) expect(out.message).not.toContain(s);
        expect(out.message).toContain('ECS DescribeInstances');
      }
    });
  }

  it('sanitizes the context too (it may carry a URL)', () => {
    const out = toReconcileError(new Error('x'), 'GET https://oos.example/?Signature=abc123secretsig');
    expect(out.message).not.toContain('abc123secretsig');
  });
});

describe('isNotFound', () => {
  it('is true only for notFound CloudErrors', () => {
    expect(
      isNotFound(cloudError({ code: 'EntityNotExists.Template', kind: 'permanent', category: 'notFound' })),
    ).toBe(true);
    expect(isNotFound(cloudError({}))).toBe(false);
    expect(isNotFound(new Error('EntityNotExists'))).toBe(false);
  });
});
