/**
 * `ecsops plan` as a process (src/cli.ts through tsx) against the emulator seeded with the demo
 * fleet (deploy/emulator/fleet.yaml), on the demo's own manifests: it prints the targets, the gap
 * and the executions it would start — and the emulator's request counters show it made only read
 * calls (no StartExecution, RunCommand, CancelExecution, TagResources, ...).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { CONFIGURE_PACKAGE_TEMPLATE } from '../../../src/api/ecsextension.js';
import { createCloudClients } from '../../../src/cloud/index.js';
import { DEMO_ACCESS_KEY, loadSeedFile, startEmulator, type Emulator } from '../../../src/emulator/index.js';
import type { Plan } from '../../../src/plan/index.js';
import { REPO_ROOT } from '../../harness/paths.js';
import { emulatorEnv } from '../../harness/stack.js';

const run = promisify(execFile);
/** Every API action the plan may call: reads only. */
const READS = new Set([
  'DescribeInstances',
  'DescribeCloudAssistantStatus',
  'GetTemplate',
  'ListInstancePackageStates',
  'ListInstancePatchStates',
]);
/** Writes the emulator serves; none may be called. */
const WRITES = [
  'StartExecution',
  'CancelExecution',
  'RunCommand',
  'StopInvocation',
  'TagResources',
  'UntagResources',
  'CreateSnapshot',
  'RebootInstance',
  'UpdateInstancePackageState',
];

describe('ecsops plan (emulator, demo fleet)', () => {
  let emu: Emulator;
  let dir: string;
  beforeAll(async () => {
    emu = await startEmulator({
      seed: await loadSeedFile(join(REPO_ROOT, 'deploy/emulator/fleet.yaml')),
      timeScale: 0.005,
    });
    dir = mkdtempSync(join(tmpdir(), 'ecsops-plan-'));
  });
  afterAll(async () => {
    await emu?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function plan(file: string, output: 'json' | 'table' = 'json'): Promise<string> {
    await emu.control.resetRequestCounts();
    const { stdout } = await run(
      process.execPath,
      [
        '--import',
        'tsx',
        join(REPO_ROOT, 'src/cli.ts'),
        'plan',
        '-f',
        file,
        '-o',
        output,
        '--oos-endpoint',
        emu.endpoint,
        '--ecs-endpoint',
        emu.endpoint,
        '--cloud-protocol',
        'HTTP',
      ],
      {
        cwd: REPO_ROOT,
        env: emulatorEnv(),
      },
    );
    return stdout;
  }

  async function expectReadsOnly(): Promise<Record<string, number>> {
    const counts = await emu.control.requestCounts();
    expect(Object.keys(counts).length).toBeGreaterThan(0); // the counters do count
    for (const w of WRITES) expect(counts[w] ?? 0, w).toBe(0);
    expect(Object.keys(counts).filter((a) => !READS.has(a))).toEqual([]);
    return counts;
  }

  it('EcsExtension example: targets, unreachable instances, and the install execution it would start', async () => {
    const [p] = JSON.parse(await plan(join(REPO_ROOT, 'deploy/examples/ecsextension.yaml'))) as Plan[];
    expect(p!.kind).toBe('EcsExtension');
    expect(p!.problems).toEqual([]);
    const by = (state: string) => p!.instances.filter((i) => i.state === state).map((i) => i.instanceId);
    expect(by('unreachable')).toEqual(['i-offline0001', 'i-stopped0001']);
    expect(by('change')).toEqual(['i-web0001', 'i-web0002', 'i-web0003', 'i-web0004']);
    expect(p!.summary).toEqual({ targeted: 6, unreachable: 2, compliant: 0, change: 4 });
    expect(p!.work).toEqual([
      {
        template: CONFIGURE_PACKAGE_TEMPLATE,
        action: 'install',
        instanceIds: ['i-web0001', 'i-web0002', 'i-web0003', 'i-web0004'],
        batches: [4],
        immediate: true,
        details: {
          packageName: 'ACS-Extension-node-1853370294850618',
          packageVersion: 'v3',
          parameters: { version: '20' },
          rateControl: { Mode: 'Concurrency', Concurrency: '25%', MaxErrors: 0 },
        },
      },
    ]);
    const counts = await expectReadsOnly();
    expect(counts.DescribeInstances).toBeGreaterThan(0);
    expect(counts.ListInstancePackageStates).toBe(4); // one per reachable target
  });

  it('already compliant instances need nothing; the table names the gap', async () => {
    // Install the package on i-web0001 for real (the emulator's OOS), as the controller would.
    const cloud = createCloudClients(
      {
        endpointOverride: { oos: emu.endpoint, ecs: emu.endpoint },
        protocol: 'HTTP',
        credential: { accessKeyId: DEMO_ACCESS_KEY.id, accessKeySecret: DEMO_ACCESS_KEY.secret },
      },
      { registry: new Registry() },
    );
    const oos = cloud.oos('cn-hangzhou');
    const exec = await oos.startExecution({
      templateName: CONFIGURE_PACKAGE_TEMPLATE,
      clientToken: 'plan-test-install-web0001',
      parameters: {
        action: 'install',
        packageName: 'ACS-Extension-node-1853370294850618',
        packageVersion: 'v3',
        targets: { Type: 'ResourceIds', RegionId: 'cn-hangzhou', ResourceIds: ['i-web0001'] },
        rateControl: { Mode: 'Concurrency', Concurrency: 1, MaxErrors: 0 },
        parameters: { version: '20' },
      },
    });
    for (let i = 0; i < 200; i++) {
      const e = await oos.getExecution(exec.executionId);
      if (e?.status === 'Success') break;
      expect(['Failed', 'Cancelled']).not.toContain(e?.status);
      await new Promise((r) => setTimeout(r, 100));
    }
    const table = await plan(join(REPO_ROOT, 'deploy/examples/ecsextension.yaml'), 'table');
    expect(table).toMatch(/targets: 6 \(compliant 1, to change 3, unreachable 2\)/);
    expect(table).toMatch(/i-web0001\s+compliant\s+v3 installed/);
    expect(table).toMatch(/i-stopped0001\s+unreachable\s+instance is Stopped/);
    expect(table).toMatch(/i-offline0001\s+unreachable\s+Cloud Assistant agent is offline/);
    expect(table).toMatch(
      new RegExp(
        `would start: ${CONFIGURE_PACKAGE_TEMPLATE} action=install on 3 instance\\(s\\) in 1 batch\\(es\\) \\[3\\]`,
      ),
    );
    await expectReadsOnly();
  });

  it('reports spec problems the controller would report as Stalled, and starts nothing', async () => {
    const ext = parse(readFileSync(join(REPO_ROOT, 'deploy/examples/ecsextension.yaml'), 'utf8')) as {
      metadata: { name: string };
      spec: Record<string, unknown>;
    };
    const docs = [
      { ...ext, metadata: { name: 'no-such-version' }, spec: { ...ext.spec, packageVersion: 'v9' } },
      { ...ext, metadata: { name: 'bad-parameter' }, spec: { ...ext.spec, parameters: { version: '99' } } },
      {
        ...ext,
        metadata: { name: 'missing-instance' },
        spec: { ...ext.spec, targets: { instanceIds: ['i-web0001', 'i-gone0001'] } },
      },
    ];
    const file = join(dir, 'broken.yaml');
    writeFileSync(file, docs.map((d) => stringify(d)).join('---\n'));
    // A Stalled spec is an error: exit 1 (Terraform's convention), with the plan still printed.
    const failed = (await plan(file).then(
      () => ({ code: 0, stdout: '' }),
      (err: { code: number; stdout: string }) => err,
    )) as { code: number; stdout: string };
    expect(failed.code).toBe(1);
    const plans = JSON.parse(failed.stdout) as Plan[];
    expect(plans.map((p) => [p.name, p.problems.map((x) => x.reason), p.work.length])).toEqual([
      ['no-such-version', ['TemplateNotFound'], 0],
      ['bad-parameter', [expect.stringMatching(/Parameter/)], 0],
      ['missing-instance', ['InstanceNotFound'], 0],
    ]);
    expect(plans[1]!.problems[0]!.message).toMatch(/parameter version .* must be one of "18", "20", "22"/);
    await expectReadsOnly();
  });

  it('PatchPolicy and AppRelease examples: targets and what would run', async () => {
    const windows = JSON.parse(
      await plan(join(REPO_ROOT, 'deploy/examples/maintenancewindow.yaml')),
    ) as Plan[];
    const mw = windows.find((p) => p.kind === 'MaintenanceWindow')!;
    const plans = JSON.parse(await plan(join(REPO_ROOT, 'deploy/examples/patchpolicy.yaml'))) as Plan[];
    expect(mw.notes).toEqual(['a schedule: nothing to plan']);
    const pp = plans.find((p) => p.kind === 'PatchPolicy')!;
    expect(pp.summary.targeted).toBe(6);
    expect(pp.summary.unreachable).toBe(2);
    // The scan-requested annotation of the example (no status in the document: not handled yet).
    expect(
      pp.work.map((w) => [w.action, w.instanceIds.length, w.batches, w.details.when, w.immediate]),
    ).toEqual([['scan', 4, [4], 'at once', true]]);

    const app = {
      apiVersion: 'ecsops.io/v1alpha1',
      kind: 'AppRelease',
      metadata: { name: 'web', namespace: 'default' },
      spec: {
        regionId: 'cn-hangzhou',
        targets: { tags: [{ key: 'env', value: 'prod' }] },
        application: 'web',
        version: '1.0.0',
        artifact: { url: 'https://releases.example.com/web-1.0.0.tar.gz', sha256: 'a'.repeat(64) },
        install: { appDir: '/opt/web' },
        hooks: { start: { script: 'systemctl restart web' } },
        strategy: { batchSize: '50%', canary: { instances: 1, pause: true } },
      },
    };
    const file = join(dir, 'app.yaml');
    writeFileSync(file, stringify(app));
    const [ar] = JSON.parse(await plan(file)) as Plan[];
    expect(ar!.problems).toEqual([]);
    // env=prod: 4 web + 1 api + 1 windows reachable, 1 stopped + 1 offline unreachable.
    expect(ar!.summary).toEqual({ targeted: 8, unreachable: 2, compliant: 0, change: 6 });
    expect(ar!.work).toHaveLength(1);
    expect(ar!.work[0]!.batches).toEqual([1, 3, 2]); // the canary, then 50% of 6 = 3 at a time
    await expectReadsOnly();
  });
});
