/**
 * deploy/examples/apprelease.yaml works in `npm run local` (scripts/local.ts): its artifact is a
 * file of deploy/examples/artifacts/ served on 127.0.0.1 (default port 8090; the run sets the
 * URL's port to its artifact server's) whose sha256 it states, its appDir lies under the sandbox
 * prefix the run replaces with its own sandbox dir, its hooks call the file it installs, and its
 * metric gate queries a Prometheus on 127.0.0.1 that the run replaces with its own (or drops).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { AppRelease } from '../../../src/api/apprelease.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const example = parse(readFileSync(join(ROOT, 'deploy/examples/apprelease.yaml'), 'utf8')) as AppRelease;
const local = readFileSync(join(ROOT, 'scripts/local.ts'), 'utf8');

describe('deploy/examples/apprelease.yaml', () => {
  const url = new URL(example.spec.artifact.url);

  it('downloads a file of deploy/examples/artifacts/ from the port scripts/local.ts serves', () => {
    expect(url.hostname).toBe('127.0.0.1');
    expect(local).toContain(`'--artifact-port <n>'`);
    expect(local).toMatch(new RegExp(`'--artifact-port <n>',[^\\n]*'${url.port}'`));
    const file = join(ROOT, 'deploy/examples/artifacts', decodeURIComponent(url.pathname));
    expect(existsSync(file), file).toBe(true);
    expect(createHash('sha256').update(readFileSync(file)).digest('hex')).toBe(example.spec.artifact.sha256);
  });

  it('installs under the sandbox prefix that scripts/local.ts replaces with its own dir, per instance', () => {
    const dir = /const EXAMPLE_SANDBOX_DIR = '([^']+)'/.exec(local)?.[1];
    expect(dir).toBeDefined();
    expect(example.spec.install?.appDir).toMatch(new RegExp(`^${dir}/\\{\\{ACS::InstanceId\\}\\}/`));
  });

  it('hooks and health check call the file the artifact installs (format: file)', () => {
    expect(example.spec.artifact.format).toBe('file');
    const name = url.pathname.split('/').pop() as string;
    expect(example.spec.hooks.start.script).toContain(name);
    // The health check is the app's own /healthz (http), on the port the app listens on.
    expect(example.spec.healthCheck?.http).toMatchObject({
      port: Number(example.spec.install?.env?.PORT),
      path: '/healthz',
    });
  });

  it('is metric-gated on a Prometheus on 127.0.0.1, which scripts/local.ts points at its own (or drops)', () => {
    const analysis = example.spec.analysis;
    expect(analysis).toBeDefined();
    expect(new URL(analysis!.prometheus.url).hostname).toBe('127.0.0.1');
    for (const m of analysis!.metrics) {
      expect(m.query, m.name).toContain('{{instanceIdsRegex}}'); // the batch's instances only
      expect(m.query, m.name).toMatch(/or vector\(0\)\s*$/); // no traffic is 0, not inconclusive
    }
    expect(local).toContain('if (run.prometheusUrl) prometheus.url = run.prometheusUrl;');
    expect(local).toContain('else delete d.spec.analysis;');
  });
});
