/**
 * A patch reboot in sandbox mode (ACS-ECS-BulkyApplyPatchBaseline install with rebootIfNeed):
 * the instance's processes die when it goes Stopping, and when it is Running again the sandbox
 * runs its boot hook `<sandbox root>/<instance ID>/boot.sh`. With the AppRelease boot hook
 * (appReleaseBootScript) the current revision of the demo app (the wrapper's layout:
 * appDir/current → releases/<rev>, releases/<rev>.ecsops/{env,hooks/start.sh}) serves again, on
 * the instance's own address, and an ALB in front of it routes to the new process.
 */
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  APPLY_PATCH_TEMPLATE,
  DEMO_ACCESS_KEY,
  startEmulator,
  type Emulator,
} from '../../../src/emulator/index.js';
import { appReleaseBootScript } from '../../../src/emulator/sandbox.js';
import { REPO_ROOT } from '../../harness/paths.js';
import { call, sdkClient, waitFor } from './helpers.js';

const REGION = 'cn-hangzhou';
const ID = 'i-boot0001';
const PORT = 18080 + (process.pid % 1000);

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const alive = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
};

describe('emulator sandbox: a patch reboot kills the instance processes and runs the boot hook', () => {
  let emu: Emulator;
  let root: string;
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'ecsops-reboot-'));
    emu = await startEmulator({
      timeScale: 0.01,
      sandbox: { rootDir: root },
      seed: { regions: { [REGION]: { generate: { count: 1, idPrefix: 'i-boot', patches: 2 } } } },
    });
  });
  afterAll(async () => {
    await emu?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('restarts the current AppRelease revision after the reboot', { timeout: 120_000 }, async () => {
    // The AppRelease wrapper's layout on the instance, revision r1 of the demo app current.
    const appDir = join(root, ID, 'web');
    const rel = join(appDir, 'releases');
    mkdirSync(join(rel, 'r1.ecsops', 'hooks'), { recursive: true });
    mkdirSync(join(rel, 'r1'));
    copyFileSync(join(REPO_ROOT, 'deploy/examples/artifacts/web-1.4.2/web.sh'), join(rel, 'r1', 'web.sh'));
    writeFileSync(join(rel, 'r1.ecsops', 'env'), `PORT=${PORT}\n`);
    writeFileSync(join(rel, 'r1.ecsops', 'hooks', 'start.sh'), 'bash web.sh start\n');
    writeFileSync(join(rel, 'r1.ecsops', 'hooks', 'start.timeout'), '60\n');
    symlinkSync('releases/r1', join(appDir, 'current'));
    writeFileSync(join(root, ID, 'boot.sh'), appReleaseBootScript(appDir, 'web'));

    const [inst] = await emu.control.listInstances(REGION);
    const base = `http://${inst!.privateIpAddress}:${PORT}`;
    const client = sdkClient(emu.endpoint, DEMO_ACCESS_KEY);
    // First start, as the wrapper's start step would (the boot hook does the same thing).
    const run = (await call(client, 'ecs', 'RunCommand', {
      RegionId: REGION,
      Type: 'RunShellScript',
      CommandContent: `cd ${root}/${ID} && ECSOPS_INSTANCE_ID=${ID} bash boot.sh`,
      InstanceId: [ID],
      Timeout: 60,
    })) as { InvokeId: string };
    await waitFor(async () => {
      const inv = (await emu.control.listInvocations()).find((i) => i.invokeId === run.InvokeId);
      return inv?.instances[0]?.status === 'Success';
    }, 30_000);
    const pid1 = Number(readFileSync(join(appDir, 'web.pid'), 'utf8'));
    expect(await get(`${base}/healthz`)).toEqual({ status: 200, body: 'ok r1\n' });

    const lb = await emu.control.createLoadBalancer({
      type: 'ALB',
      regionId: REGION,
      backends: [{ instanceId: ID, port: PORT, weight: 100 }],
    });
    await waitFor(async () => (await get(lb.url)).status === 200, 30_000);
    expect((await get(lb.url)).body).toBe(`hello from web r1 on ${ID}\n`);

    const started = (await call(client, 'oos', 'StartExecution', {
      RegionId: REGION,
      TemplateName: APPLY_PATCH_TEMPLATE,
      Parameters: JSON.stringify({
        action: 'install',
        rebootIfNeed: true,
        targets: { Type: 'ResourceIds', RegionId: REGION, ResourceIds: [ID] },
      }),
    })) as { Execution: { ExecutionId: string } };
    const done = await waitFor(async () => {
      const e = await emu.control.getExecution(started.Execution.ExecutionId);
      return e && ['Success', 'Failed'].includes(e.status) ? e : undefined;
    }, 30_000);
    expect(done.status).toBe('Success');
    expect(String(done.items[0]?.outputs['commandOutput'])).toContain('rebooted');

    // the old server died with the reboot; the boot hook started r1 again
    await waitFor(async () => !alive(pid1), 10_000);
    const pid2 = await waitFor(async () => {
      try {
        const p = Number(readFileSync(join(appDir, 'web.pid'), 'utf8'));
        return p !== pid1 && alive(p) ? p : undefined;
      } catch {
        return undefined;
      }
    }, 30_000);
    expect(pid2).not.toBe(pid1);
    await waitFor(
      async () => (await get(`${base}/healthz`).catch(() => ({ status: 0 }))).status === 200,
      30_000,
    );
    await waitFor(async () => {
      try {
        return readFileSync(join(root, ID, 'boot.log'), 'utf8').includes('boot hook exit 0');
      } catch {
        return false;
      }
    }, 30_000);
    await waitFor(async () => (await get(lb.url)).status === 200, 30_000);
    expect((await get(lb.url)).body).toBe(`hello from web r1 on ${ID}\n`);
  });
});
