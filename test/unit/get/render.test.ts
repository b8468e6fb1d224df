/**
 * `ecsops get` rendering: recorded objects in, lines out, compared with golden files.
 *
 * The fixtures are real objects: `kubectl get <kind> <name> -o json` (managedFields removed)
 * taken while `npm run local -- --time-scale 0.5` ran the examples of deploy/examples/ — an
 * AppRelease paused after its canary and one rolling back after a failed validate hook on
 * i-web0003 (batch 1 Failed, rollback invocation running), a PatchPolicy installing in an open
 * inline window and the same policy after the install (snapshots, one failed instance), an
 * EcsExtension retrying failed instances (one execution running, one ended with failures), and
 * the example MaintenanceWindow. The metric-gate fixtures (issue 22) were taken the same way with
 * the run's real Prometheus and demo traffic: the example AppRelease changed to web-1.4.3-bad, its
 * canary's analysis Failed (error rate 0.17) and rolling back; and a PatchPolicy over the 140
 * `env=staging` instances (an inline window open now, `spec.analysis` with an error-rate metric and
 * a metric whose query answers no sample) waiting Inconclusive after its first install execution,
 * then Failed at inconclusiveLimit — its `status.instances` cut to 6 rows so the drawing stays short.
 *
 * `UPDATE_GOLDEN=1 npx vitest run test/unit/get/render.test.ts` rewrites the golden files; read
 * the diff before committing it.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lastOutputLine } from '../../../src/get/common.js';
import { GET_KINDS, resolveKind } from '../../../src/get/kinds.js';
import { renderResource } from '../../../src/get/render.js';
import { clean, humanDuration } from '../../../src/get/style.js';

const DIR = import.meta.dirname;
const fixture = (name: string): Record<string, unknown> =>
  JSON.parse(readFileSync(join(DIR, 'fixtures', `${name}.json`), 'utf8')) as Record<string, unknown>;
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;

/** Fixture name → the time it is drawn at (a little after its last status write). */
const CASES: Array<[string, string]> = [
  ['apprelease-rolling-back', '2026-12-07T11:26:00Z'],
  ['apprelease-canary-paused', '2026-12-07T11:25:30Z'],
  ['patchpolicy-window', '2026-12-07T11:24:30Z'],
  ['patchpolicy-installing', '2026-12-07T11:22:30Z'],
  ['ecsextension-executions', '2026-12-07T11:15:10Z'],
  ['maintenancewindow-closed', '2026-12-07T11:30:00Z'],
  ['apprelease-analysis-failed', '2026-12-07T17:47:05Z'],
  ['patchpolicy-analysis-inconclusive', '2026-12-07T17:48:40Z'],
  ['patchpolicy-analysis-failed', '2026-12-07T17:49:00Z'],
];

function golden(name: string, text: string): string {
  const file = join(DIR, 'golden', `${name}.txt`);
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(file, text);
  if (!existsSync(file)) throw new Error(`${file} is missing; run with UPDATE_GOLDEN=1 to write it`);
  return readFileSync(file, 'utf8');
}

describe('renderResource (golden files)', () => {
  for (const [name, now] of CASES) {
    it(`draws ${name} as in golden/${name}.txt, without colour codes`, () => {
      const text = `${renderResource(fixture(name), { now: new Date(now) }).join('\n')}\n`;
      expect(text).not.toMatch(ANSI);
      expect(text).toBe(golden(name, text));
    });
  }

  it('draws the AppRelease mid-rollout: failed batch, failed instance with step and output, rollback', () => {
    const text = renderResource(fixture('apprelease-rolling-back'), {
      now: new Date('2026-12-07T11:26:00Z'),
    });
    const line = (needle: string) => text.find((l) => l.includes(needle)) ?? '';
    expect(line('# revision 6b441aee7925')).toMatch(/RollingBack .*version 1\.5\.0, current, 1 failed/);
    expect(line('batch 1')).toMatch(/✖ Failed .*3 instance\(s\), 1 failed, t-75a861c2ee144087b1/);
    expect(line('rollback to 36bf3a51729e')).toMatch(/↺ RollingBack .*0\/4 instance\(s\) back/);
    // The failed instance: its revision, the step and exit code, the last line of its output.
    expect(line('□ i-web0003')).toMatch(
      /rev 36bf3a51729e, step validate exit 7: curl: \(7\) Failed to connect to 127\.0\.0\.1 port/,
    );
    expect(line('# revision 36bf3a51729e')).toMatch(/✔ Stable .*version 1\.4\.4, stable/);
  });
});

describe('renderResource: traffic control', () => {
  it('draws a Traffic line with the groups, the drain settings and the backends out of rotation', () => {
    const obj = fixture('apprelease-canary-paused') as {
      kind: string;
      spec: Record<string, unknown>;
      status: Record<string, unknown>;
    };
    obj.spec.trafficControl = {
      serverGroups: [{ type: 'ALB', serverGroupId: 'sgp-ecsopsdemoweb' }],
      drainSeconds: 3,
    };
    obj.status.trafficControl = {
      backends: [
        {
          type: 'ALB',
          serverGroupId: 'sgp-ecsopsdemoweb',
          instanceId: 'i-web0002',
          port: 8080,
          weight: 100,
          mode: 'Weight',
          since: '2026-12-07T11:25:00Z',
        },
      ],
    };
    const text = renderResource(obj, { now: new Date('2026-12-07T11:25:30Z') }).map(clean);
    expect(text.find((l) => l.includes('Traffic'))).toMatch(
      /ALB sgp-ecsopsdemoweb; drain 3s, maxDrained 25%; 1 backend\(s\) out of rotation: sgp-ecsopsdemoweb i-web0002:8080 weight 100/,
    );
    delete obj.spec.trafficControl;
    delete obj.status.trafficControl;
    expect(
      renderResource(obj, { now: new Date('2026-12-07T11:25:30Z') }).some((l) => l.includes('Traffic')),
    ).toBe(false);
  });
});

describe('renderResource colours', () => {
  it('colours statuses, tree guides and the heading on request, and only the styling differs', () => {
    const obj = fixture('apprelease-rolling-back');
    const now = new Date('2026-12-07T11:26:00Z');
    const plain = renderResource(obj, { now });
    const colored = renderResource(obj, { now, color: true });
    expect(colored.map((l) => l.replace(ANSI, ''))).toEqual(plain);
    const text = colored.join('\n');
    expect(text).toContain('\u001b[31m✖ Failed\u001b[0m'); // red
    expect(text).toContain('\u001b[32m✔ Succeeded\u001b[0m'); // green
    expect(text).toContain('\u001b[36m◌ InProgress\u001b[0m'); // cyan
    expect(text).toContain('\u001b[33m⚠ Unreachable\u001b[0m'); // yellow
    expect(text).toContain('\u001b[2m├──\u001b[0m'); // dim guides
    expect(text).toContain('\u001b[1mNAME'); // bold heading
  });
});

describe('renderResource safety and layout', () => {
  it('never passes control characters from status to the terminal', () => {
    const obj = fixture('apprelease-rolling-back');
    const { instances } = obj.status as { instances: Array<Record<string, unknown>> };
    const row = instances.find((r) => r.instanceId === 'i-web0003')!;
    row.output = 'ok\n\u001b[2J\u001b]0;pwned\u0007evil \u202eline\r\n';
    row.message = 'bad\u001b[31m';
    const text = renderResource(obj, { now: new Date('2026-12-07T11:26:00Z') }).join('\n');
    // eslint-disable-next-line no-control-regex
    expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/);
    expect(text).toContain('[2J ]0;pwned evil line');
  });

  it('cuts INFO to the terminal width and wraps long header values', () => {
    const lines = renderResource(fixture('apprelease-rolling-back'), {
      now: new Date('2026-12-07T11:26:00Z'),
      width: 100,
    });
    for (const l of lines) expect([...l].length).toBeLessThanOrEqual(100);
    expect(lines.find((l) => l.includes('□ i-web0003'))).toMatch(/…$/);
    expect(lines.filter((l) => l.startsWith('             ')).length).toBeGreaterThan(0); // wrapped Message
  });

  it('draws an object without status (just created) without failing', () => {
    const obj = fixture('ecsextension-executions');
    delete obj.status;
    const text = renderResource(obj, { now: new Date('2026-12-07T11:15:10Z') }).join('\n');
    expect(text).toContain('Status:    ? Unknown');
    expect(text).toContain('Observed:  not yet reconciled (generation 2)');
  });

  it('refuses kinds it has no view for', () => {
    expect(() => renderResource({ kind: 'Pod' }, { now: new Date() })).toThrow(/no tree view for kind "Pod"/);
  });
});

describe('resolveKind', () => {
  it('accepts the kind, singular, plural and short names the CRDs declare, with or without the group', () => {
    const cases: Array<[string, string]> = [
      ['AppRelease', 'appreleases'],
      ['apprelease', 'appreleases'],
      ['appreleases', 'appreleases'],
      ['apprel', 'appreleases'],
      ['appreleases.ecsops.io', 'appreleases'],
      ['apprelease.v1alpha1.ecsops.io', 'appreleases'],
      ['PatchPolicy', 'patchpolicies'],
      ['patchpol', 'patchpolicies'],
      ['ecsext', 'ecsextensions'],
      ['EcsExtensions', 'ecsextensions'],
      ['mw', 'maintenancewindows'],
    ];
    for (const [arg, plural] of cases) expect(resolveKind(arg).plural, arg).toBe(plural);
    expect(GET_KINDS.map((k) => k.kind).sort()).toEqual([
      'AppRelease',
      'EcsExtension',
      'MaintenanceWindow',
      'PatchPolicy',
    ]);
  });

  it('names the accepted forms when the kind is unknown', () => {
    expect(() => resolveKind('pods')).toThrow(
      /unknown kind "pods"; one of: .*apprelease\|appreleases\|apprel/,
    );
  });
});

describe('helpers', () => {
  it('humanDuration follows kubectl', () => {
    const cases: Array<[number, string]> = [
      [0, '0s'],
      [45_000, '45s'],
      [119_000, '119s'],
      [190_000, '3m10s'],
      [25 * 60_000, '25m'],
      [(4 * 60 + 12) * 60_000, '4h12m'],
      [20 * 3_600_000, '20h'],
      [(3 * 24 + 4) * 3_600_000, '3d4h'],
      [41 * 86_400_000, '41d'],
      [-5000, '0s'],
    ];
    for (const [ms, text] of cases) expect(humanDuration(ms), String(ms)).toBe(text);
  });

  it('lastOutputLine skips the wrapper markers and log headers', () => {
    const out =
      'ecsops-step validate rc=7 ms=45\n--- last lines of /x.log ---\n=== validate (abc) ===\nport closed\necsops-result action=deploy revision=abc result=failed step=validate rc=7\n';
    expect(lastOutputLine(out)).toBe('port closed');
    expect(lastOutputLine('ecsops-step a rc=0 ms=1\n')).toBeUndefined();
    expect(clean(' a\tb\u001b[0m  c ')).toBe('a b [0m c');
  });
});

describe('renderResource drift detection line', () => {
  it('shows spec.driftDetection and, for that mode, since when every target was re-read one by one', () => {
    const now = new Date('2026-12-07T11:15:10Z');
    for (const name of ['ecsextension-executions', 'patchpolicy-window']) {
      const obj = fixture(name) as {
        kind?: string;
        spec: Record<string, unknown>;
        status: Record<string, unknown>;
      };
      const drift = () => renderResource(obj, { now }).find((l) => l.startsWith('Drift:'));
      expect(drift()).toBeUndefined(); // recorded before the field existed
      obj.spec.driftDetection = 'ChangeFeed';
      obj.status.stateFreshness = {
        driftDetection: 'ChangeFeed',
        lastFullResyncTime: '2026-12-07T08:15:10Z',
      };
      expect(drift()).toMatch(
        /^Drift: +ChangeFeed; every target re-read one by one since 2026-12-07T08:15:10Z \(3h ago\)$/,
      );
      // Just switched: the recorded time belongs to the other mode and is not shown.
      obj.spec.driftDetection = 'PerInstance';
      expect(drift()).toMatch(/^Drift: +PerInstance$/);
    }
  });
});

describe('renderResource metric gate (status.analysis)', () => {
  const draw = (name: string, now: string): string[] => renderResource(fixture(name), { now: new Date(now) });
  const line = (lines: string[], needle: string): string => lines.find((l) => l.includes(needle)) ?? '';

  it('AppRelease: the failed gate of the canary, its metric counts and value, and the failure message', () => {
    const lines = draw('apprelease-analysis-failed', '2026-12-07T17:47:05Z');
    expect(line(lines, 'Analysis:')).toMatch(
      /^Analysis: +✖ Failed after batch 0 of revision 8d0c837a167a: analysis metric error-rate failed: \(sum\(rate\(web_request_errors_total\{instance_id=~"i-web0001"\}\[10s\]\)\) .* = 0\.169657; successCondition isNaN\(result\) \|\| result < 0\.05 not met/,
    );
    // Right after the batch it gates, before the rollback.
    const at = (needle: string) => lines.findIndex((l) => l.includes(needle));
    expect(at('≡ batch 0 (canary)')).toBeLessThan(at('α analysis of batch 0'));
    expect(at('α analysis of batch 0')).toBeLessThan(at('↺ rollback to'));
    expect(line(lines, 'α analysis of batch 0')).toMatch(
      /Analysis +✖ Failed .*took 0s, error-rate: successCondition/,
    );
    expect(line(lines, '∿ error-rate')).toMatch(
      /Metric +✖ Failed +1 measurement\(s\) \(0 successful, 1 failed, 0 inconclusive; count 2, inconclusiveLimit 3\), last 0\.169657$/,
    );
  });

  it('PatchPolicy: a gate waiting Inconclusive between install executions, per metric', () => {
    const lines = draw('patchpolicy-analysis-inconclusive', '2026-12-07T17:48:40Z');
    expect(line(lines, 'Analysis:')).toMatch(
      /^Analysis: +⚠ Inconclusive after install execution 1 of the window opened at 2026-12-07T17:00:00Z: error-rate 2 measured/,
    );
    // Under the install of that window occurrence, after its execution.
    const at = (needle: string) => lines.findIndex((l) => l.includes(needle));
    expect(at('◆ install')).toBeLessThan(at('α analysis of execution 1'));
    expect(at('α analysis of execution 1')).toBeLessThan(at('◆ scan'));
    expect(line(lines, '∿ error-rate')).toMatch(
      /◌ Running +2 measurement\(s\) \(2 successful, 0 failed, 0 inconclusive; count 3\), last 0, next in 2s$/,
    );
    expect(line(lines, '∿ canary-up')).toMatch(
      /⚠ Inconclusive +2 measurement\(s\) \(0 successful, 0 failed, 2 inconclusive; count 2, inconclusiveLimit 4\), last inconclusive: the query returned no sample/,
    );
  });

  it('PatchPolicy: the failed gate names the metric and the exceeded limit; the passed metric reads Successful', () => {
    const lines = draw('patchpolicy-analysis-failed', '2026-12-07T17:49:00Z');
    expect(line(lines, 'Analysis:')).toMatch(
      /^Analysis: +✖ Failed after install execution 1 .*: analysis metric canary-up failed: min\(up\{job="canary", .* inconclusiveLimit 4 exceeded \(5 inconclusive measurement\(s\)\)$/,
    );
    expect(line(lines, 'α analysis of execution 1')).toMatch(
      /✖ Failed .*took 22s, canary-up: inconclusiveLimit 4 exceeded/,
    );
    expect(line(lines, '∿ error-rate')).toMatch(
      /✔ Successful +3 measurement\(s\) \(3 successful, 0 failed, 0 inconclusive; count 3\), last 0$/,
    );
    expect(line(lines, '∿ canary-up')).toMatch(
      /✖ Failed +5 measurement\(s\) .*inconclusive: the query returned no sample/,
    );
    expect(line(lines, '∿ canary-up')).not.toMatch(/next/); // the run ended
  });

  it('shows no analysis line or node without status.analysis', () => {
    for (const [name, now] of [
      ['apprelease-analysis-failed', '2026-12-07T17:47:05Z'],
      ['patchpolicy-analysis-failed', '2026-12-07T17:49:00Z'],
    ] as const) {
      const obj = fixture(name);
      delete (obj.status as Record<string, unknown>).analysis;
      const text = renderResource(obj, { now: new Date(now) }).join('\n');
      expect(text).not.toMatch(/Analysis:|α analysis|∿ /);
    }
  });
});
