/**
 * The emulator additions the fault matrix needs (src/emulator: a scripted fault's `match.parameter`,
 * the request scope's `parameters`, the wrapper model of scripted invocations), checked directly.
 */
import { describe, expect, it } from 'vitest';
import { parseWrapperOutput, reportedRevision } from '../../../src/controllers/apprelease/wrapper.js';
import { Faults } from '../../../src/emulator/faults.js';
import { wrapperModelOutput } from '../../../src/emulator/invocations.js';
import { requestScope } from '../../../src/emulator/scope.js';

describe('emulator hooks of the fault matrix', () => {
  it('requestScope reads the top-level values of the Parameters JSON', () => {
    const scope = requestScope({
      Parameters: JSON.stringify({
        action: 'install',
        rebootIfNeed: true,
        targets: { ResourceIds: ['i-a1'] },
      }),
    });
    expect(scope.parameters).toEqual({ action: 'install', rebootIfNeed: 'true' });
    expect(scope.instanceIds).toEqual(['i-a1']);
    expect(requestScope({ InstanceId: 'i-b1' }).parameters).toBeUndefined();
  });

  it('a rule with match.parameter hits only requests carrying that value', () => {
    const f = new Faults();
    f.addRule({
      action: 'RunCommand',
      kind: 'reset',
      match: { parameter: { key: 'action', value: 'rollback' } },
    });
    const req = (action?: string) => ({
      instanceIds: [],
      tags: {},
      ...(action ? { parameters: { action } } : {}),
    });
    expect(f.decide('RunCommand', req('deploy')).kind).toBe('none');
    expect(f.decide('RunCommand', req()).kind).toBe('none');
    expect(f.decide('RunCommand', req('rollback')).kind).toBe('reset');
    expect(f.decide('RunCommand', req('rollback')).kind).toBe('none'); // count 1, used up
  });

  it('the wrapper model answers in the wrapper’s own marker format', () => {
    const ok = wrapperModelOutput({ action: 'deploy', revision: 'r-1' }, 0);
    expect(reportedRevision(ok)).toBe('r-1');
    expect(parseWrapperOutput(ok).result).toEqual({ ok: true });
    const bad = wrapperModelOutput({ action: 'deploy', revision: 'r-2' }, 1, 'health');
    expect(reportedRevision(bad)).toBeUndefined();
    expect(parseWrapperOutput(bad)).toMatchObject({
      result: { ok: false, step: 'health', rc: 1 },
      failedStep: 'health',
    });
    const back = wrapperModelOutput({ action: 'rollback', revision: 'r-1' }, 0);
    expect(reportedRevision(back)).toBe('r-1');
  });
});
