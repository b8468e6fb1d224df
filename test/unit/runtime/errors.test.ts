import { describe, expect, it } from 'vitest';
import {
  ReconcileError,
  StalledError,
  TransientError,
  isStalled,
  isTransient,
  reasonOf,
} from '../../../src/runtime/errors.js';
import { sanitizeError, sanitizeText } from '../../../src/runtime/sanitize.js';

describe('reconcile errors', () => {
  it('classifies stalled and transient errors', () => {
    const stalled = new StalledError('TemplateNotFound', 'template ACS-X does not exist');
    const transient = new TransientError('Throttling', 'throttled', { cause: new Error('429') });
    expect(isStalled(stalled)).toBe(true);
    expect(isStalled(transient)).toBe(false);
    expect(isStalled(new Error('x'))).toBe(false);
    expect(isTransient(transient)).toBe(true);
    expect(transient.cause).toBeInstanceOf(Error);
    expect(stalled).toBeInstanceOf(ReconcileError);
    expect(stalled.name).toBe('StalledError');
  });

  it('exposes the CamelCase reason, with a fallback for plain errors', () => {
    expect(reasonOf(new StalledError('InvalidParameter', 'm'))).toBe('InvalidParameter');
    expect(reasonOf(new Error('boom'))).toBe('ReconcileError');
    expect(reasonOf('text', 'Unknown')).toBe('Unknown');
  });
});

describe('sanitize', () => {
  it('strips URL query strings and secret values', () => {
    const msg =
      'GET https://oos.cn-hangzhou.aliyuncs.com/?Signature=abc%3D&AccessKeyId=FAKEKEY failed; ' +
      'accessKeySecret=not-a-real-secret "securityToken":"fake-token"';
    const out = sanitizeText(msg);
    expect(out).toContain('https://oos.cn-hangzhou.aliyuncs.com/?');
    expect(out).not.toContain('abc%3D');
    expect(out).not.toContain('not-a-real-secret');
    expect(out).not.toContain('fake-token');
  });

  it('truncates long messages', () => {
    expect(sanitizeError(new Error('x'.repeat(2000)), 100)).toHaveLength(100);
  });
});

describe('truncateBytes', () => {
  it('cuts on UTF-8 bytes without splitting characters', async () => {
    const { truncateBytes } = await import('../../../src/runtime/sanitize.js');
    expect(truncateBytes('short', 10)).toBe('short');
    const out = truncateBytes('é'.repeat(20), 11);
    expect(Buffer.byteLength(out)).toBeLessThanOrEqual(11);
    expect(out).toBe('éééé...');
  });
});
