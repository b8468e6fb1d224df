import { describe, expect, it } from 'vitest';
import {
  allPages,
  base64Text,
  bool,
  countMap,
  jsonObject,
  MAX_PAGES,
  num,
  PAGINATION_INCOMPLETE,
  tagList,
  tagMap,
} from '../../../src/cloud/convert.js';
import { isCloudError } from '../../../src/cloud/errors.js';
import { extractParameters, parseTemplateContent } from '../../../src/cloud/template.js';

describe('converters', () => {
  it('num/bool/base64', () => {
    expect(num('3')).toBe(3);
    expect(num('100%')).toBe(100);
    expect(num('abc')).toBeUndefined();
    expect(bool('true')).toBe(true);
    expect(bool('False')).toBe(false);
    expect(bool('yes')).toBeUndefined();
    expect(base64Text(Buffer.from('héllo\n').toString('base64'))).toBe('héllo\n');
  });

  it('jsonObject parses JSON strings, keeps invalid text as raw', () => {
    expect(jsonObject('{"a":1}')).toEqual({ a: 1 });
    expect(jsonObject({ a: 1 })).toEqual({ a: 1 });
    expect(jsonObject('not json')).toEqual({ raw: 'not json' });
    expect(jsonObject('[1]')).toEqual({ raw: [1] });
    expect(jsonObject('')).toEqual({});
  });

  it('countMap converts string counts; tagMap and tagList normalise tags', () => {
    expect(countMap('{"Success":"2","Failed":0}')).toEqual({ Success: 2, Failed: 0 });
    expect(tagMap('{"k":"v"}')).toEqual({ k: 'v' });
    expect(tagList({ Tag: [{ TagKey: 'env', TagValue: 'prod' }] })).toEqual([{ key: 'env', value: 'prod' }]);
    expect(tagList([{ Key: 'a' }])).toEqual([{ key: 'a', value: '' }]);
  });

  const LIST = { product: 'oos', action: 'ListThings' } as const;

  it('allPages follows NextToken to the last page', async () => {
    const pages: Record<string, { items: number[]; nextToken?: string }> = {
      '': { items: [1], nextToken: 'a' },
      a: { items: [2], nextToken: 'b' },
      b: { items: [3] },
    };
    expect(await allPages(LIST, async (t) => pages[t ?? ''] as { items: number[] })).toEqual([1, 2, 3]);
  });

  it('allPages rejects instead of returning a partial list when the page cap is hit', async () => {
    let calls = 0;
    const err = await allPages(LIST, async () => ({ items: [calls], nextToken: `t${++calls}` }), {
      maxPages: 5,
    }).catch((e: unknown) => e);
    expect(calls).toBe(5);
    expect(isCloudError(err)).toBe(true);
    expect(err).toMatchObject({
      code: PAGINATION_INCOMPLETE,
      kind: 'transient',
      category: 'server',
      action: 'ListThings',
      product: 'oos',
    });
    expect((err as Error).message).toContain('ListThings');
    expect((err as Error).message).toContain('5 pages');
  });

  it('allPages with atMaxPages stop resolves the first maxPages pages instead of rejecting', async () => {
    let calls = 0;
    const items = await allPages(LIST, async () => ({ items: [calls], nextToken: `t${++calls}` }), {
      maxPages: 3,
      atMaxPages: 'stop',
    });
    expect(items).toEqual([0, 1, 2]);
    expect(calls).toBe(3);
    // A repeated token still rejects (before the bound is reached, or on the last page).
    for (const maxPages of [5, 2]) {
      let n = 0;
      await expect(
        allPages(LIST, async () => ({ items: [n++], nextToken: 'same' }), { maxPages, atMaxPages: 'stop' }),
      ).rejects.toMatchObject({ code: PAGINATION_INCOMPLETE, kind: 'transient' });
      expect(n).toBe(2);
    }
  });

  it('allPages enforces MAX_PAGES by default', async () => {
    let calls = 0;
    await expect(allPages(LIST, async () => ({ items: [], nextToken: `t${++calls}` }))).rejects.toMatchObject(
      { code: PAGINATION_INCOMPLETE },
    );
    expect(calls).toBe(MAX_PAGES);
  });

  it('allPages rejects a repeated token instead of looping or truncating', async () => {
    let calls = 0;
    await expect(allPages(LIST, async () => ({ items: [calls++], nextToken: 'same' }))).rejects.toMatchObject(
      { code: PAGINATION_INCOMPLETE, kind: 'transient' },
    );
    expect(calls).toBe(2);
  });

  it('allPages passes fetch errors through unchanged', async () => {
    const boom = new Error('boom');
    await expect(allPages(LIST, () => Promise.reject(boom))).rejects.toBe(boom);
  });
});

describe('template content', () => {
  const yamlTemplate = `
FormatVersion: OOS-2019-06-01
Parameters:
  action:
    Type: String
    Default: install
    AllowedValues: [install, uninstall]
  packageName:
    Type: String
    Description:
      en: Package template name
      zh-cn: 包名
  retentionDays:
    Type: Number
    Default: 7
    MinValue: 1
    MaxValue: 65536
Tasks: []
`;

  it('parses YAML and JSON and extracts parameters', () => {
    const doc = parseTemplateContent(yamlTemplate, 'YAML');
    expect(extractParameters(doc)).toEqual({
      action: {
        type: 'String',
        default: 'install',
        allowedValues: ['install', 'uninstall'],
        required: false,
      },
      packageName: { type: 'String', description: 'Package template name', required: true },
      retentionDays: { type: 'Number', default: 7, minValue: 1, maxValue: 65536, required: false },
    });
    const json = parseTemplateContent(JSON.stringify({ Parameters: { x: { Type: 'Json', Default: {} } } }));
    expect(extractParameters(json)).toEqual({ x: { type: 'Json', default: {}, required: false } });
    expect(extractParameters({})).toEqual({});
  });

  it('throws on content that is not a mapping', () => {
    expect(() => parseTemplateContent('- a\n- b', 'YAML')).toThrow();
    expect(() => parseTemplateContent('{bad', 'JSON')).toThrow();
  });
});
