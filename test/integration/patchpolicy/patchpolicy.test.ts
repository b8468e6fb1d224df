/**
 * PatchPolicy and MaintenanceWindow on the real API server with the in-process controller and the
 * emulator: CEL admission messages, printer columns, `kubectl wait`, a missing window as Stalled
 * with its name (recovering when created), compliance after an install, and the metrics.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { GROUP, VERSION } from '../../../src/api/common.js';
import { MAINTENANCE_WINDOW_PLURAL } from '../../../src/api/maintenancewindow.js';
import {
  PATCH_POLICY_PLURAL,
  SCAN_REQUESTED_ANNOTATION,
  type PatchPolicy,
} from '../../../src/api/patchpolicy.js';
import { patchSeed } from '../../harness/fast-patchpolicy.js';
import { REGION, startStack, waitFor, type Stack } from '../../harness/stack.js';

const execFileAsync = promisify(execFile);

describe('PatchPolicy on the real API server', () => {
  let stack: Stack;
  beforeAll(async () => {
    const seed = patchSeed('ipp', 10, 10);
    // Two ACK worker nodes in the same fleet, missing patches: excluded from the policy (issue 21).
    const ack = {
      'ack.aliyun.com': 'c50e414cb83a84760a3a36be7ea4884c2',
      'ack.alibabacloud.com/nodepool-id': 'np1',
    };
    seed.regions = {
      [REGION]: {
        generate: [
          ...[seed.regions?.[REGION]?.generate ?? []].flat(),
          { count: 2, idPrefix: 'i-ipp', startIndex: 21, tags: { fleet: 'ipp', ...ack }, patches: 3 },
        ],
      },
    };
    stack = await startStack({ seed, prefix: 'pp', timeScale: 0.005 });
  });
  afterAll(() => stack?.stop());

  const create = (
    plural: string,
    kind: string,
    name: string,
    spec: Record<string, unknown>,
    annotations?: Record<string, string>,
  ) =>
    stack.api.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: stack.namespace,
      plural,
      body: {
        apiVersion: `${GROUP}/${VERSION}`,
        kind,
        metadata: { name, ...(annotations ? { annotations } : {}) },
        spec,
      },
    });
  const get = async (plural: string, name: string) =>
    (await stack.api.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: stack.namespace,
      plural,
      name,
    })) as PatchPolicy;
  const cond = (
    o:
      | { status?: { conditions?: Array<{ type: string; status: string; reason: string; message: string }> } }
      | undefined,
    t: string,
  ) => o?.status?.conditions?.find((c) => c.type === t);
  const kubectl = (...args: string[]) =>
    execFileAsync(inject('kubectlPath'), [
      '--kubeconfig',
      inject('kubeconfigPath'),
      '-n',
      stack.namespace,
      ...args,
    ]);
  const targets = { instanceIds: ['i-ipp0001'] };

  it('rejects bad cron, unknown time zone, duration 0 and other invalid specs with readable messages', async () => {
    const window = { schedule: '0 1 * * SAT', duration: '4h' };
    const cases: Array<[string, string, Record<string, unknown>, RegExp]> = [
      [
        'bad-cron',
        PATCH_POLICY_PLURAL,
        { regionId: REGION, targets, scan: { schedule: '61 * * * *' } },
        /scan.schedule must be a 5-field cron expression/,
      ],
      [
        'four-fields',
        PATCH_POLICY_PLURAL,
        { regionId: REGION, targets, scan: { schedule: '0 3 * *' } },
        /scan.schedule must be a 5-field cron expression/,
      ],
      [
        'bad-tz',
        PATCH_POLICY_PLURAL,
        { regionId: REGION, targets, scan: { schedule: '0 3 * * *', timeZone: 'Mars/Olympus' } },
        /unknown time zone Mars\/Olympus.*scan.timeZone must be an IANA time zone name/,
      ],
      [
        'zero-duration',
        PATCH_POLICY_PLURAL,
        { regionId: REGION, targets, install: { maintenanceWindow: { ...window, duration: '0s' } } },
        /duration must be greater than 0 and at most 168h/,
      ],
      [
        'long-duration',
        PATCH_POLICY_PLURAL,
        { regionId: REGION, targets, install: { maintenanceWindow: { ...window, duration: '200h' } } },
        /duration must be greater than 0 and at most 168h/,
      ],
      [
        'retention',
        PATCH_POLICY_PLURAL,
        {
          regionId: REGION,
          targets,
          install: { maintenanceWindow: window, snapshot: { enabled: true, retentionDays: 0 } },
        },
        /retentionDays.*should be greater than or equal to 1/,
      ],
      [
        'both-windows',
        PATCH_POLICY_PLURAL,
        {
          regionId: REGION,
          targets,
          install: { maintenanceWindow: window, maintenanceWindowRef: { name: 'w' } },
        },
        /install must set exactly one of maintenanceWindow or maintenanceWindowRef/,
      ],
      [
        'no-window',
        PATCH_POLICY_PLURAL,
        { regionId: REGION, targets, install: { rebootIfNeeded: true } },
        /install must set exactly one of maintenanceWindow or maintenanceWindowRef/,
      ],
      [
        'min-remaining',
        PATCH_POLICY_PLURAL,
        { regionId: REGION, targets, install: { maintenanceWindow: { ...window, duration: '20m' } } },
        /install.minRemaining \(default 30m\) must be shorter than install.maintenanceWindow.duration/,
      ],
      ['mw-zero', MAINTENANCE_WINDOW_PLURAL, { ...window, duration: '0' }, /duration must be greater than 0/],
      [
        'mw-blackout',
        MAINTENANCE_WINDOW_PLURAL,
        { ...window, blackoutDates: ['2026-02-30'] },
        /blackoutDates entries must be calendar dates/,
      ],
      [
        'mw-range',
        MAINTENANCE_WINDOW_PLURAL,
        { ...window, blackoutDates: ['2026-12-31/2026-12-24'] },
        /must not end before it starts/,
      ],
    ];
    for (const [name, plural, spec, message] of cases) {
      const kind = plural === PATCH_POLICY_PLURAL ? 'PatchPolicy' : 'MaintenanceWindow';
      const err = await create(plural, kind, name, spec).then(
        () => undefined,
        (e: unknown) => e as { code?: number; body?: string },
      );
      expect(err?.code, name).toBe(422);
      const status = JSON.parse(err?.body ?? '{}') as { message?: string };
      expect(status.message, name).toMatch(message);
    }
    // Valid forms pass: macro, time zone alias, ranges.
    await create(PATCH_POLICY_PLURAL, 'PatchPolicy', 'valid', {
      regionId: REGION,
      targets,
      suspend: true,
      scan: { schedule: '@daily', timeZone: 'America/New_York' },
    });
    await create(MAINTENANCE_WINDOW_PLURAL, 'MaintenanceWindow', 'valid', {
      ...window,
      timeZone: 'Asia/Shanghai',
      blackoutDates: ['2026-12-24/2026-12-26', '2027-01-01'],
    });
  });

  it('stalls on a missing MaintenanceWindow with its name, then installs inside it once created; kubectl wait and columns work', async () => {
    await create(
      PATCH_POLICY_PLURAL,
      'PatchPolicy',
      'fleet',
      {
        regionId: REGION,
        targets: { tags: [{ key: 'fleet', value: 'ipp' }] },
        install: {
          maintenanceWindowRef: { name: 'always' },
          rebootIfNeeded: true,
          snapshot: { enabled: true },
        },
      },
      { [SCAN_REQUESTED_ANNOTATION]: 'first' },
    );
    const stalled = await waitFor('fleet Stalled', async () => {
      const o = await get(PATCH_POLICY_PLURAL, 'fleet');
      return cond(o, 'Stalled')?.status === 'True' ? o : undefined;
    });
    expect(cond(stalled, 'Stalled')).toMatchObject({ reason: 'MaintenanceWindowNotFound' });
    expect(cond(stalled, 'Stalled')?.message).toContain(`MaintenanceWindow ${stack.namespace}/always`);

    // A window open right now (every minute, for an hour): the policy re-plans without an edit.
    await create(MAINTENANCE_WINDOW_PLURAL, 'MaintenanceWindow', 'always', {
      schedule: '* * * * *',
      duration: '1h',
    });
    const waited = await kubectl('wait', '--for=condition=Compliant', 'patchpolicy/fleet', '--timeout=120s');
    expect(waited.stdout).toContain('condition met');
    await kubectl('wait', '--for=condition=Ready', 'patchpolicy/fleet', '--timeout=60s');
    const obj = await get(PATCH_POLICY_PLURAL, 'fleet');
    expect(obj.metadata.generation).toBe(1);
    expect(obj.status?.summary).toMatchObject({ targeted: 20, compliant: 20 });
    expect(obj.status?.lastInstall).toMatchObject({ result: 'Succeeded', succeeded: 10 });
    // The two ACK worker nodes were neither patched nor rebooted, and the status (as stored by the
    // API server, so the CRD schema keeps the field) names them.
    expect(obj.status?.excluded).toEqual([
      expect.objectContaining({
        reason: 'KubernetesNode',
        count: 2,
        instanceIds: ['i-ipp0021', 'i-ipp0022'],
      }),
    ]);
    const nodeStates = await stack.emu.control.getPatchStates(REGION);
    expect(
      nodeStates
        .filter((p) => p.instanceId === 'i-ipp0021' || p.instanceId === 'i-ipp0022')
        .flatMap((p) => p.patches.filter((x) => x.status === 'Installed')),
    ).toEqual([]);
    expect(
      obj.status?.instances?.find((r) => r.instanceId === 'i-ipp0001')?.snapshots?.[0]?.snapshotId,
    ).toMatch(/^s-/);

    const table = (await kubectl('get', 'patchpolicies')).stdout.trim().split('\n');
    expect(table[0]?.split(/\s{2,}/)).toEqual([
      'NAME',
      'READY',
      'COMPLIANT',
      'NONCOMPLIANT',
      'TARGETED',
      'NEXT WINDOW',
      'AGE',
    ]);
    expect(
      table
        .find((r) => r.startsWith('fleet '))
        ?.split(/\s+/)
        .slice(0, 5),
    ).toEqual(['fleet', 'True', 'True', '0', '20']);
    const mw = (await kubectl('get', 'mw', 'always')).stdout.trim().split('\n');
    expect(mw[0]?.split(/\s{2,}/)).toEqual(['NAME', 'READY', 'OPEN', 'NEXT OPEN', 'NEXT CLOSE', 'AGE']);
    expect(mw[1]?.split(/\s+/).slice(0, 3)).toEqual(['always', 'True', 'true']);

    const port = stack.controller?.probes.metricsPort;
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(text).toContain(
      `ecsops_patch_instances{namespace="${stack.namespace}",name="fleet",state="compliant"} 20`,
    );
    expect(text).toContain(`ecsops_patch_window_open{namespace="${stack.namespace}",name="fleet"} 1`);
    expect(text).toContain('ecsops_patch_oldest_missing_patch_age_seconds');
    expect(text).toMatch(
      /ecsops_executions_started_total\{template="ACS-ECS-BulkyApplyPatchBaseline",action="install"\} [1-9]/,
    );
    expect(text).not.toMatch(/ecsops_patch_[a-z_]+\{[^}]*i-ipp/);
  });
});
