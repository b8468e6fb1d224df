/**
 * The README's AppRelease reference stays complete: every AppRelease condition reason, Event reason
 * and metric family the code defines is documented there.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import * as conditions from '../../../src/api/conditions.js';
import * as events from '../../../src/api/events.js';
import { AppReleaseMetrics } from '../../../src/controllers/apprelease/metrics.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const section = readme.slice(readme.indexOf('## AppRelease'), readme.indexOf('## Configuration'));

/** Exported string constants of a module whose JSDoc sits in the "AppRelease" block of the file. */
function appReleaseBlock(file: string, mod: Record<string, unknown>): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const block = text.slice(
    text.indexOf('// AppRelease'),
    text.indexOf('\n\n', text.indexOf('// AppRelease') + 20),
  );
  return Object.entries(mod)
    .filter(([k, v]) => typeof v === 'string' && new RegExp(`export const ${k} =`).test(block))
    .map(([, v]) => v as string);
}

describe('README ## AppRelease', () => {
  it('is there, with the example and the kinds row marked available', () => {
    expect(section.length).toBeGreaterThan(1000);
    expect(section).toContain('kind: AppRelease');
    expect(readme).toMatch(/\| `AppRelease` \|[^\n]*\| \*\*available\*\* \|/);
  });

  it('documents every AppRelease condition reason', () => {
    const reasons = appReleaseBlock('src/api/conditions.ts', conditions);
    expect(reasons).toContain('RolledBack');
    for (const r of reasons) expect(section, r).toContain(`\`${r}\``);
  });

  it('lists every AppRelease Event reason in the Events table', () => {
    const table = readme.slice(readme.indexOf('### Events'), readme.indexOf('## PatchPolicy'));
    const reasons = appReleaseBlock('src/api/events.ts', events).filter((r) => !r.endsWith('Action'));
    expect(reasons).toContain('BatchStarted');
    for (const r of reasons.filter((x) => !['Rollout', 'Promote', 'Rollback'].includes(x)))
      expect(table, r).toContain(`\`${r}\``);
  });

  it('lists every ecsops_apprelease_* metric family in the Metrics table', () => {
    const registry = new Registry();
    new AppReleaseMetrics(registry);
    const names = registry.getMetricsAsArray().map((m) => m.name);
    expect(names.length).toBeGreaterThanOrEqual(3);
    const table = readme.slice(readme.indexOf('## Metrics'));
    for (const n of names) expect(table, n).toContain(`\`${n}\``);
  });
});
