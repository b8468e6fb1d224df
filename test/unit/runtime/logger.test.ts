import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/runtime/logger.js';

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
