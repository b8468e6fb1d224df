import { ApiException } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { ERROR_SUMMARY_MAX_LENGTH, createLogger, errorSummary } from '../../../src/runtime/logger.js';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const destination = { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) };
  return { lines, log: createLogger({ level: 'debug', destination }) };
}

describe('createLogger', () => {
  it('writes JSON with string levels and ISO timestamps', () => {
    const { lines, log } = capture();
    log.info({ controller: 'widget' }, 'hello');
    expect(lines[0]).toMatchObject({ level: 'info', msg: 'hello', controller: 'widget' });
    expect(String(lines[0]?.time)).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    expect(lines[0]).not.toHaveProperty('pid');
  });

  it('redacts credential fields at every depth up to three levels', () => {
    const { lines, log } = capture();
    log.info(
      {
        accessKeySecret: 'fake-secret-0',
        config: { accessKeySecret: 'fake-secret-1', securityToken: 'fake-token-1', regionId: 'cn-hangzhou' },
        a: { b: { password: 'fake-pw-2', c: { token: 'fake-token-3' } } },
        req: { headers: { authorization: 'ACS3-HMAC-SHA256 fake', 'x-acs-security-token': 'fake-sts' } },
      },
      'secrets',
    );
    const text = JSON.stringify(lines[0]);
    for (const secret of [
      'fake-secret-0',
      'fake-secret-1',
      'fake-token-1',
      'fake-pw-2',
      'fake-token-3',
      'ACS3',
      'fake-sts',
    ]) {
      expect(text).not.toContain(secret);
    }
    expect(text).toContain('cn-hangzhou');
  });

  it('serializes err with type, message and stack and redacts its secret properties', () => {
    const { lines, log } = capture();
    const err = Object.assign(new TypeError('bad thing'), {
      accessKeySecret: 'fake-secret-9',
      code: 'Throttling',
    });
    log.error({ err }, 'failed');
    const e = lines[0]?.err as Record<string, unknown>;
    expect(e.type).toBe('TypeError');
    expect(e.message).toBe('bad thing');
    expect(String(e.stack)).toContain('bad thing');
    expect(e.code).toBe('Throttling');
    expect(e.accessKeySecret).toBe('[REDACTED]');
  });

  it('honours the level', () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'warn', destination: { write: (s: string) => void lines.push(s) } });
    log.info('dropped');
    log.warn('kept');
    expect(lines).toHaveLength(1);
  });
});

/** client-node's ApiException for the 429 a starting API server answers (body = the raw Status JSON). */
function tooManyRequests(): ApiException<string> {
  const status = {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: 'storage is (re)initializing',
    reason: 'TooManyRequests',
    details: { retryAfterSeconds: 1 },
    code: 429,
  };
  return new ApiException(429, 'Unknown API Status Code!', JSON.stringify(status), {
    'audit-id': '6c3f2f0e-2d9b-4a53-9f83-2f1f0b8a4c11',
    'cache-control': 'no-cache, private',
    'content-type': 'application/json',
    date: 'Mon, 07 Dec 2026 11:00:00 GMT',
    'retry-after': '1',
    'x-kubernetes-pf-flowschema-uid': 'ad3b0c3e-7c62-4a0b-9f3e-5f3a8f1d2c10',
    'x-kubernetes-pf-prioritylevel-uid': '0b5e9c1e-7a41-4c2f-8d7e-1c2b3a4d5e6f',
  });
}

describe('errorSummary', () => {
  it('turns an ApiException (429 with headers and body) into one short line with the reason', () => {
    const err = tooManyRequests();
    expect(err.message.length).toBeGreaterThan(500); // what used to reach the log
    expect(errorSummary(err)).toBe('HTTP 429 TooManyRequests: storage is (re)initializing');
  });

  const cases: Array<{ name: string; err: unknown; want: string }> = [
    {
      name: 'a 404 Status',
      err: new ApiException(
        404,
        'Unknown API Status Code!',
        '{"kind":"Status","status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","code":404}',
        { 'content-type': 'application/json' },
      ),
      want: 'HTTP 404 NotFound: the server could not find the requested resource',
    },
    {
      name: 'a body that is not a Status',
      err: new ApiException(404, 'Unknown API Status Code!', '404 page not found\n', {}),
      want: 'HTTP 404 Not Found: 404 page not found',
    },
    {
      name: 'a failed watch (statusCode, status text as message)',
      err: Object.assign(new Error('Too Many Requests'), { statusCode: 429 }),
      want: 'HTTP 429 Too Many Requests',
    },
    {
      name: 'a refused connection (undici hides the reason in the cause)',
      err: new TypeError('fetch failed', {
        cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' }),
      }),
      want: 'fetch failed: connect ECONNREFUSED 127.0.0.1:6443',
    },
    {
      name: 'an AggregateError cause without a message of its own',
      err: new TypeError('fetch failed', {
        cause: Object.assign(new AggregateError([new Error('connect ECONNREFUSED ::1:6443')], ''), {
          code: 'ECONNREFUSED',
        }),
      }),
      want: 'fetch failed: connect ECONNREFUSED ::1:6443',
    },
    {
      name: 'an error caused by an ApiException',
      err: new Error('status patch of ns/x failed', { cause: tooManyRequests() }),
      want: 'status patch of ns/x failed: HTTP 429 TooManyRequests: storage is (re)initializing',
    },
    { name: 'a string', err: 'plain\ntext', want: 'plain text' },
    {
      name: 'a URL with a signature',
      err: new Error(`GET https://oos.aliyuncs.com/?Signature=abc&AccessKeyId=${'FAKE'.repeat(4)} failed`),
      want: 'GET https://oos.aliyuncs.com/?[REDACTED] failed',
    },
  ];
  for (const c of cases) {
    it(`summarizes ${c.name}`, () => {
      expect(errorSummary(c.err)).toBe(c.want);
    });
  }

  it('cuts long messages', () => {
    const s = errorSummary(new Error('x'.repeat(1000)));
    expect(s.length).toBe(ERROR_SUMMARY_MAX_LENGTH);
  });
});

describe('the err serializer', () => {
  it('logs an ApiException as one short line: status and reason, no headers, body or stack', () => {
    const raw: string[] = [];
    const log = createLogger({ level: 'info', destination: { write: (s: string) => void raw.push(s) } });
    log.warn({ err: tooManyRequests() }, 'list failed');
    expect(raw).toHaveLength(1);
    const line = raw[0] ?? '';
    expect(line.trimEnd()).not.toContain('\n');
    expect(line.length).toBeLessThan(250);
    expect(line).not.toMatch(/audit-id|retry-after|HTTP-Code|Headers|stack/);
    expect(JSON.parse(line)).toMatchObject({
      level: 'warn',
      msg: 'list failed',
      err: {
        type: 'ApiException',
        code: 429,
        message: 'HTTP 429 TooManyRequests: storage is (re)initializing',
      },
    });
  });

  it('keeps the dump of a causing ApiException out too, and the wrapper its own stack', () => {
    const raw: string[] = [];
    const log = createLogger({ level: 'info', destination: { write: (s: string) => void raw.push(s) } });
    log.error({ err: new TypeError('list failed', { cause: tooManyRequests() }) }, 'failed');
    const line = raw[0] ?? '';
    expect(line).not.toMatch(/audit-id|retry-after|HTTP-Code|Headers/);
    const err = (JSON.parse(line) as { err: Record<string, unknown> }).err;
    expect(err).toMatchObject({
      type: 'TypeError',
      message: 'list failed: HTTP 429 TooManyRequests: storage is (re)initializing',
    });
    expect(String(err.stack)).toMatch(/^TypeError: list failed\n\s+at /);
  });
});

describe('sanitizeError (status messages, Events and the other log sites)', () => {
  it("gives a Kubernetes API error as one short line, not client-node's dump", async () => {
    const { sanitizeError } = await import('../../../src/runtime/sanitize.js');
    const dump = Object.assign(
      new Error(
        'HTTP-Code: 409\nMessage: Unknown API Status Code!\nBody: "{\\"kind\\":\\"Status\\",\\"reason\\":\\"Conflict\\",\\"message\\":\\"the object has been modified\\"}"\nHeaders: {"audit-id":"x","date":"y"}',
      ),
      { code: 409, body: '{"kind":"Status","reason":"Conflict","message":"the object has been modified"}' },
    );
    expect(sanitizeError(dump)).toBe('HTTP 409 Conflict: the object has been modified');
    expect(sanitizeError(new Error('wrapped', { cause: dump }))).toBe(
      'wrapped: HTTP 409 Conflict: the object has been modified',
    );
    expect(sanitizeError(new Error('plain failure'))).toBe('plain failure');
  });
});
