/**
 * Vitest globalSetup for the `integration` project: one control plane per test run.
 * Provides `kubeconfigPath`, `kubectlPath` and `apiServer` to tests via `inject()`,
 * and on teardown verifies that no control-plane process or temp dir survived.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { isAlive, startControlPlane, type ControlPlane } from './controlplane.js';

declare module 'vitest' {
  export interface ProvidedContext {
    kubeconfigPath: string;
    kubectlPath: string;
    apiServer: string;
  }
}

let cp: ControlPlane | undefined;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  cp = await startControlPlane({ users: ['alice'] });
  process.stderr.write(`[controlplane] ready at ${cp.server} in ${Date.now() - started} ms\n`);
  project.provide('kubeconfigPath', cp.kubeconfigPath);
  project.provide('kubectlPath', join(cp.binDir, 'kubectl'));
  project.provide('apiServer', cp.server);
  return async () => {
    if (!cp) return;
    const { pids, dir } = cp;
    await cp.stop();
    const alive = pids.filter(isAlive);
    if (alive.length > 0 || existsSync(dir)) {
      throw new Error(`control plane leaked: live pids [${alive.join(', ')}], dir exists=${existsSync(dir)}`);
    }
  };
}
