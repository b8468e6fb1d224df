/**
 * `ecsops get --watch` against the real kube-apiserver (the CRDs of crds/): an AppRelease is
 * created, its status is replaced twice through the status subresource (recorded statuses: paused
 * after the canary, then rolling back after a failed batch), and it is deleted; each change must
 * show up as a new drawing. Also the `kubectl-ecsops` plugin binary as a process: one drawing,
 * no colour codes off a terminal, exit code 0, and a clear message with exit code 1 for a
 * missing object.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { parse } from 'yaml';
import { APP_RELEASE_PLURAL } from '../../../src/api/apprelease.js';
import { GROUP, VERSION } from '../../../src/api/common.js';
import { runGet } from '../../../src/get/cli.js';
import { createTestNamespace, getTestKubeConfig } from '../../harness/env.js';
import { applyProjectCrds, REPO_ROOT } from '../../harness/stack.js';

const recorded = (name: string): { status: Record<string, unknown> } =>
  JSON.parse(readFileSync(join(REPO_ROOT, 'test/unit/get/fixtures', `${name}.json`), 'utf8')) as {
    status: Record<string, unknown>;
  };

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('ecsops get --watch (real API server)', () => {
  let kc: KubeConfig;
  let api: CustomObjectsApi;
  let namespace: string;
  const plural = APP_RELEASE_PLURAL;
  beforeAll(async () => {
    kc = getTestKubeConfig('admin');
    await applyProjectCrds(kc);
    namespace = await createTestNamespace(kc, 'get');
    api = kc.makeApiClient(CustomObjectsApi);
    const example = parse(readFileSync(join(REPO_ROOT, 'deploy/examples/apprelease.yaml'), 'utf8')) as {
      spec: unknown;
    };
    await api.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural,
      body: {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: 'AppRelease',
        metadata: { name: 'web' },
        spec: example.spec,
      },
    });
  });

  /** Replaces the whole status (PUT on /status with the current resourceVersion), as a controller write. */
  const writeStatus = async (status: Record<string, unknown>) => {
    const ref = { group: GROUP, version: VERSION, namespace, plural, name: 'web' };
    const current = (await api.getNamespacedCustomObject(ref)) as Record<string, unknown>;
    await api.replaceNamespacedCustomObjectStatus({
      ...ref,
      body: { ...current, status: { ...status, observedGeneration: 1 } },
    });
  };

  it('draws the object, then redraws on every status write and on delete', async () => {
    const frames: string[] = [];
    const errors: string[] = [];
    const ac = new AbortController();
    const running = runGet(
      'apprel',
      'web',
      { watch: true, namespace, kubeconfig: inject('kubeconfigPath') },
      {
        stdout: { write: (s: string) => frames.push(s), isTTY: false },
        stderr: { write: (s: string) => errors.push(s) },
        env: {},
        signal: ac.signal,
      },
    );
    try {
      await until('the first drawing', () => frames.length === 1);
      expect(frames[0]).toContain('Observed:    not yet reconciled (generation 1)');
      expect(frames[0]).toMatch(/\nweb +AppRelease +\? Unknown/);

      await writeStatus(recorded('apprelease-canary-paused').status);
      await until('the paused drawing', () => frames.some((f) => f.includes('pause (canary)')));
      const paused = frames.find((f) => f.includes('pause (canary)'))!;
      expect(paused).toContain('Status:      ‖ Paused (RolloutPaused)');
      expect(paused).toMatch(/≡ batch 0 \(canary\) +Batch +✔ Succeeded/);

      await writeStatus(recorded('apprelease-rolling-back').status);
      await until('the rolling-back drawing', () =>
        frames.some((f) => f.includes('rollback to 36bf3a51729e')),
      );
      const rollingBack = frames.find((f) => f.includes('rollback to 36bf3a51729e'))!;
      expect(rollingBack).toContain('Status:      ↺ RollingBack\n');
      expect(rollingBack).toMatch(/≡ batch 1 +Batch +✖ Failed .*1 failed/);
      expect(rollingBack).toMatch(/□ i-web0003 .*step validate exit 7: curl: \(7\)/);

      await api.deleteNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural,
        name: 'web',
      });
      await until('the deleted notice', () => frames.at(-1)?.includes('was deleted') === true);
      expect(frames.at(-1)).toBe(`\nAppRelease ${namespace}/web was deleted; waiting for it to come back\n`);
      expect(frames.join('')).not.toContain('\u001b'); // not a terminal: no colour, no cursor codes
      expect(errors).toEqual([]);
    } finally {
      ac.abort();
      await running;
    }
  });

  it('runs as the kubectl-ecsops plugin: draws and exits, or says what is missing', async () => {
    await api.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: 'maintenancewindows',
      body: {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: 'MaintenanceWindow',
        metadata: { name: 'weekend' },
        spec: { schedule: '0 1 * * SAT', duration: '4h', timeZone: 'Asia/Shanghai' },
      },
    });
    const plugin = (...args: string[]) =>
      spawnSync(
        process.execPath,
        ['--import', 'tsx', join(REPO_ROOT, 'src/get/kubectl-ecsops.ts'), 'get', ...args],
        {
          cwd: REPO_ROOT,
          encoding: 'utf8',
          timeout: 60_000,
          env: { ...process.env, KUBECONFIG: inject('kubeconfigPath') },
        },
      );
    const ok = plugin('mw', 'weekend', '-n', namespace);
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/^Name: +weekend\n/);
    expect(ok.stdout).toMatch(/\n◷ weekend +MaintenanceWindow/);
    expect(ok.stdout).not.toContain('\u001b');

    const missing = plugin('patchpolicies.ecsops.io/nope', '-n', namespace);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toBe(
      `kubectl ecsops: patchpolicies.ecsops.io "nope" not found in namespace "${namespace}"\n`,
    );
  });
});
