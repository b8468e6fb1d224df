/**
 * Success/failure conditions (CEL over `result` / `results`, src/controllers/shared/analysis/
 * conditions.ts) and query templating (template.ts): the value forms, NaN and infinities, vector
 * macros, errors as one line, and placeholders rendered from checked IDs only.
 */
import { describe, expect, it } from 'vitest';
import { conditionProblem, evaluateCondition } from '../../../src/controllers/shared/analysis/conditions.js';
import { judge } from '../../../src/controllers/shared/analysis/gate.js';
import { renderQuery, unknownPlaceholders } from '../../../src/controllers/shared/analysis/template.js';

describe('evaluateCondition', () => {
  it.each<[string, number[], boolean]>([
    ['result < 0.05', [0.01], true],
    ['result < 0.05', [0.05], false],
    ['result < 1', [0.5], true], // int literal against a double
    ['result == 0', [0], true],
    ['result >= 5 && result <= 10', [7], true],
    ['result > 1 || result < -1', [0], false],
    ['!(result > 1)', [0], true],
    ['result < 0.05', [NaN], false],
    ['isNaN(result) || result < 0.05', [NaN], true],
    ['isInf(result)', [Infinity], true],
    ['result > 1000000.0', [Infinity], true],
    ['result[0] < 1 && result[1] > 1', [0, 2], true],
    ['result.all(r, r < 0.05)', [0.01, 0.2], false],
    ['result.exists(r, r > 0.1)', [0.01, 0.2], true],
    ['size(result) == 3', [1, 2, 3], true],
    ['size(results) == 1 && results[0] == 2.0', [2], true],
    ['results.all(r, r < 3.0)', [1, 2], true],
    ['size(results) == 0 || results[0] < 1.0', [], true],
  ])('%s with %j → %s', (expr, values, expected) => {
    expect(evaluateCondition(expr, values)).toBe(expected);
  });

  it.each<[string, number[], RegExp]>([
    [
      'result < 0.05',
      [0.01, 0.02],
      /^the query returned 2 samples, so result is a list: use result\[i\] or result.all\(r, ...\), or aggregate in the query \(no such overload: .*\)$/,
    ],
    ['result[5] < 1', [0.01, 0.02], /index out of bounds|out of range/i],
  ])('%s with %j throws one line', (expr, values, message) => {
    expect(() => evaluateCondition(expr, values)).toThrow(message);
  });
});

describe('conditionProblem', () => {
  it('accepts bool expressions over result and results', () => {
    for (const e of ['result < 0.05', 'result.all(r, r < 1.0)', 'isNaN(result)', 'size(results) > 0'])
      expect(conditionProblem(e), e).toBeUndefined();
  });
  it.each([
    ['result <', /^Unexpected token: EOF$/],
    ['foo > 1', /^Unknown variable: foo$/],
    ['"text"', /not bool/],
    ['1 + 2', /not bool/],
    ['process.exit(1)', /Unknown variable: process/],
  ])('%s → %s', (expr, message) => {
    expect(conditionProblem(expr)).toMatch(message);
  });
});

describe('judge (Argo Rollouts rules)', () => {
  const m = { name: 'm', query: 'q' };
  it.each<[string | undefined, string | undefined, number, string]>([
    ['result < 1', undefined, 0.5, 'Successful'],
    ['result < 1', undefined, 2, 'Failed'],
    [undefined, 'result > 1', 2, 'Failed'],
    [undefined, 'result > 1', 0.5, 'Successful'],
    ['result < 1', 'result > 5', 0.5, 'Successful'],
    ['result < 1', 'result > 5', 9, 'Failed'],
    ['result < 1', 'result > 5', 3, 'Inconclusive'],
    ['result < 10', 'result > 5', 7, 'Failed'], // failureCondition wins
  ])('success %s, failure %s, value %d → %s', (ok, bad, v, outcome) => {
    expect(judge({ ...m, successCondition: ok, failureCondition: bad }, [v]).outcome).toBe(outcome);
  });
});

describe('renderQuery', () => {
  const ctx = {
    instanceIds: ['i-bp1a', 'i-bp1b', 'i-bp1a'],
    ips: ['127.10.0.1', '10.0.0.2'],
    zones: ['cn-hangzhou-h', 'cn-hangzhou-k'],
    batch: 2,
  };
  it('renders every placeholder (lists de-duplicated, dots as [.] in the regex forms)', () => {
    expect(
      renderQuery(
        'a{id=~"{{instanceIdsRegex}}",ip=~"({{ipsRegex}}):.*",zone=~"{{zonesRegex}}"} {{instanceIds}} {{ips}} {{zones}} {{batch}}',
        ctx,
      ),
    ).toBe(
      'a{id=~"i-bp1a|i-bp1b",ip=~"(127[.]10[.]0[.]1|10[.]0[.]0[.]2):.*",zone=~"cn-hangzhou-h|cn-hangzhou-k"} i-bp1a,i-bp1b 127.10.0.1,10.0.0.2 cn-hangzhou-h,cn-hangzhou-k 2',
    );
  });
  it('leaves a query without placeholders alone', () => {
    expect(renderQuery('sum(up)', ctx)).toBe('sum(up)');
  });
  it('refuses unknown placeholders (also with spaces) and IDs with other characters', () => {
    expect(unknownPlaceholders('{{ips}} {{ ips }} {{instanceId}}')).toEqual([' ips ', 'instanceId']);
    expect(() => renderQuery('{{instanceId}}', ctx)).toThrow(
      /unknown query placeholder \{\{instanceId\}\}; use/,
    );
    expect(() => renderQuery('{{instanceIds}}', { ...ctx, instanceIds: ['i-a"} or vector(1) #'] })).toThrow(
      /instanceIds value .* is not a valid ID/,
    );
  });
});
