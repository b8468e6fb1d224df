import { describe, expect, it } from 'vitest';
import type { TemplateParameter } from '../../../src/cloud/types.js';
import { validateParameters } from '../../../src/controllers/shared/parameters.js';

const WHAT = 'package template ACS-Extension-node-1853370294850618 v3';

const declared: Record<string, TemplateParameter> = {
  version: { type: 'String', required: true },
  port: { type: 'Number', required: false, default: 8080 },
  enabled: { type: 'Boolean', required: false, default: true },
  hosts: { type: 'List', required: false, default: [] },
  settings: { type: 'Json', required: false, default: {} },
  channel: { type: 'String', required: false, default: 'stable', allowedValues: ['stable', 'beta'] },
};

describe('validateParameters', () => {
  interface Case {
    name: string;
    values: Record<string, unknown>;
    decl?: Record<string, TemplateParameter>;
    reason?: string;
    /** Substrings of the message (always includes the parameter name). */
    message?: string[];
  }
  const cases: Case[] = [
    {
      name: 'valid input',
      values: { version: '1.2.3', port: 9090, enabled: false, hosts: ['a'], settings: { a: 1 } },
    },
    { name: 'only the required parameter', values: { version: '1.2.3' } },
    { name: 'Number as numeric string', values: { version: 'x', port: '9090' } },
    { name: 'Boolean as "true"/"false" string', values: { version: 'x', enabled: 'false' } },
    { name: 'allowed value', values: { version: 'x', channel: 'beta' } },
    { name: 'no declared parameters and none given', values: {}, decl: {} },
    {
      name: 'undeclared parameters (sorted, with the declared list)',
      values: { version: 'x', zeta: 1, alpha: 2 },
      reason: 'ParameterNotDeclared',
      message: ['alpha, zeta', WHAT, 'declared: channel, enabled, hosts, port, settings, version'],
    },
    {
      name: 'undeclared when the template declares none',
      values: { foo: 1 },
      decl: {},
      reason: 'ParameterNotDeclared',
      message: ['foo', 'declared: none'],
    },
    {
      name: 'missing required parameter',
      values: { port: 1 },
      reason: 'MissingRequiredParameter',
      message: ['version', WHAT, 'spec.parameters'],
    },
    {
      name: 'String given a number',
      values: { version: 3 },
      reason: 'InvalidParameterValue',
      message: ['parameter version', 'String'],
    },
    {
      name: 'Number given a non-numeric string',
      values: { version: 'x', port: 'eighty' },
      reason: 'InvalidParameterValue',
      message: ['parameter port', 'Number'],
    },
    {
      name: 'Number given an empty string',
      values: { version: 'x', port: '  ' },
      reason: 'InvalidParameterValue',
      message: ['parameter port', 'Number'],
    },
    {
      name: 'Boolean given "yes"',
      values: { version: 'x', enabled: 'yes' },
      reason: 'InvalidParameterValue',
      message: ['parameter enabled', 'Boolean'],
    },
    {
      name: 'Boolean given a number',
      values: { version: 'x', enabled: 1 },
      reason: 'InvalidParameterValue',
      message: ['parameter enabled', 'Boolean'],
    },
    {
      name: 'List given a string',
      values: { version: 'x', hosts: 'a,b' },
      reason: 'InvalidParameterValue',
      message: ['parameter hosts', 'List'],
    },
    {
      name: 'Json given a string',
      values: { version: 'x', settings: '{"a":1}' },
      reason: 'InvalidParameterValue',
      message: ['parameter settings', 'Json'],
    },
    {
      name: 'Json given null',
      values: { version: 'x', settings: null },
      reason: 'InvalidParameterValue',
      message: ['parameter settings', 'Json'],
    },
    {
      name: 'value outside AllowedValues',
      values: { version: 'x', channel: 'nightly' },
      reason: 'InvalidParameterValue',
      message: ['parameter channel', 'must be one of "stable", "beta"'],
    },
  ];

  for (const c of cases) {
    it(c.reason ? `${c.name} → ${c.reason}` : `${c.name} → no problem`, () => {
      const problem = validateParameters(c.values, c.decl ?? declared, WHAT);
      if (!c.reason) {
        expect(problem).toBeUndefined();
        return;
      }
      expect(problem?.reason).toBe(c.reason);
      for (const part of c.message ?? []) expect(problem?.message).toContain(part);
    });
  }

  it('reports undeclared parameters before missing required ones', () => {
    expect(validateParameters({ bogus: 1 }, declared, WHAT)?.reason).toBe('ParameterNotDeclared');
  });

  // OOS receives parameters as text, so "2" is the same value as an allowed 2.
  it('accepts a numeric string that equals a numeric AllowedValue', () => {
    const decl: Record<string, TemplateParameter> = {
      replicas: { type: 'Number', required: true, allowedValues: [1, 2, 3] },
    };
    expect(validateParameters({ replicas: '2' }, decl, WHAT)).toBeUndefined();
  });
});
