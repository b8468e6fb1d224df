/**
 * The fault matrix's scenarios, one per kind, on {@link startFaultStack}: each takes a schedule
 * (one {@link FaultDraw} per acting call of the scenario), runs it against the real reconcilers and
 * the emulator, heals and re-runs without faults, and returns the invariant violations found in
 * the emulator's own records. Shared by test/controller/faults-*.test.ts (the generated matrix)
 * and test/controller/faults/regressions.test.ts (shrunk counterexamples, replayed by name).
 */
import fc from 'fast-check';
import { UninstallSkippedEvent } from '../../src/api/events.js';
import type { EcsExtension } from '../../src/api/ecsextension.js';
import type { PatchPolicy } from '../../src/api/patchpolicy.js';
import {
  checkNoOverlap,
  checkNoSecondStart,
  checkRecorded,
  type DrawTable,
  FAULT_CLASSES,
  injectFault,
  itemWork,
  REGION,
  startFaultStack,
  type FaultDraw,
  type FaultStack,
  type Violation,
} from './fast-faults.js';
import type { ExecutionRecord, Seed } from '../../src/emulator/index.js';
import { NODE_PACKAGE } from './fast.js';

/** A fault draw for one call. */
export const drawArb: fc.Arbitrary<FaultDraw> = fc.record({
  fault: fc.constantFrom('none' as const, ...FAULT_CLASSES),
  extra: fc.nat(2),
  pick: fc.nat(999),
  variant: fc.boolean(),
});

/** No fault at all. */
export const NO_FAULT: FaultDraw = { fault: 'none', extra: 0, pick: 0, variant: false };

const ready = (
  o:
    | {
        status?: { conditions?: Array<{ type: string; status: string; observedGeneration?: number }> };
        metadata: { generation?: number };
      }
    | undefined,
) => {
  const c = o?.status?.conditions?.find((x) => x.type === 'Ready');
  return c?.status === 'True' && c.observedGeneration === o?.metadata.generation;
};

/** The fleet's live (not released) instance IDs tagged `fleet=<prefix>`. */
async function liveTargets(s: FaultStack, prefix: string): Promise<string[]> {
  const all = await s.emu.control.listInstances(REGION);
  return all.filter((i) => i.tags['fleet'] === prefix).map((i) => i.instanceId);
}

/** A seed of `count` running, Cloud Assistant online instances `i-<prefix>NNNN` tagged `fleet=<prefix>`, with `patches` patches each (kernel: reboot). */
function seedOf(prefix: string, count: number, patches = 0): Seed {
  return {
    regions: {
      [REGION]: {
        generate: [
          {
            count,
            idPrefix: `i-${prefix}`,
            tags: [{ key: 'fleet', value: prefix }],
            ...(patches > 0 ? { patches } : {}),
          },
        ],
      },
    },
    packageTemplates: [
      {
        name: NODE_PACKAGE,
        versions: [
          { version: 'v1', parameters: { version: { Type: 'String', Default: '16' } } },
          { version: 'v2', parameters: { version: { Type: 'String', Default: '18' } } },
        ],
      },
    ],
  };
}

// ---------------------------------------------------------------- EcsExtension

/** Prefixes each violation's detail with where it was found. */
const tag = (where: string, v: Violation[]): Violation[] =>
  v.map((x) => ({ ...x, detail: `${where}: ${x.detail}` }));

/** The EcsExtension scenario's acting calls, in order. */
export const EXT_ACTIONS = [
  'StartExecution:install',
  'StartExecution:update',
  'StartExecution:uninstall',
] as const;
export type ExtSchedule = Record<(typeof EXT_ACTIONS)[number], FaultDraw>;
export const extScheduleArb: fc.Arbitrary<ExtSchedule> = fc.record({
  'StartExecution:install': drawArb,
  'StartExecution:update': drawArb,
  'StartExecution:uninstall': drawArb,
});

/** Terminal statuses the emulator contradicts: rows `Installed` at a version the instance lacks. */
async function extTerminalLies(s: FaultStack, o: EcsExtension | undefined): Promise<Violation[]> {
  if (!o?.status) return [];
  const out: Violation[] = [];
  const states = await s.emu.control.getPackageStates(REGION);
  const live = new Set((await s.emu.control.listInstances(REGION)).map((i) => i.instanceId));
  const at = new Map(
    states.filter((p) => p.templateName === NODE_PACKAGE).map((p) => [p.instanceId, p.templateVersion]),
  );
  for (const row of o.status.instances ?? []) {
    if (row.state !== 'Installed') continue;
    const v = at.get(row.instanceId);
    if (!live.has(row.instanceId) || v === undefined || (row.version && v !== row.version))
      out.push({
        invariant: 'no terminal status the emulator contradicts',
        detail: `${row.instanceId} Installed ${row.version ?? ''} but emulator has ${v ?? 'nothing'}${live.has(row.instanceId) ? '' : ' (released)'}`,
      });
  }
  const want = o.status.resolvedPackageVersion;
  const installed = o.status.summary?.installed ?? 0;
  const really = [...at].filter(([id, v]) => live.has(id) && (!want || v === want)).length;
  if (installed > really)
    out.push({
      invariant: 'no terminal status the emulator contradicts',
      detail: `summary.installed ${installed} > ${really} instances really at ${want ?? '?'}`,
    });
  return out;
}

/**
 * Runs one EcsExtension schedule over `count` instances: install v1, update to v2, uninstall on
 * deletion; each phase with its drawn fault, then healed and re-run fault-free to convergence.
 */
export async function runExtSchedule(
  sched: ExtSchedule,
  o: { count?: number; table?: DrawTable } = {},
): Promise<Violation[]> {
  const prefix = 'fx';
  const s = await startFaultStack({ seed: seedOf(prefix, o.count ?? 120) });
  const violations: Violation[] = [];
  try {
    const spec = (version: string, param: string) => ({
      targets: { tags: [{ key: 'fleet', value: prefix }] },
      packageVersion: version,
      parameters: { version: param },
      rateControl: { concurrency: '100%', maxErrors: '100%' },
      deletionPolicy: 'Uninstall' as const,
      interval: '1m',
    });
    const created = s.applyExt('ext', spec('v1', '16'));
    const uid = created.metadata.uid ?? '';
    const keys = ['ext/ext'];
    const get = () => s.ext.get('default', 'ext');
    const settled = () => {
      const x = get();
      return (
        x === undefined ||
        ((x.status?.executions ?? []).length === 0 && x.status?.observedGeneration === x.metadata.generation)
      );
    };
    const phase = async (action: (typeof EXT_ACTIONS)[number], act: () => void, converged: () => boolean) => {
      const d = sched[action];
      const f = await injectFault(s, d, 'StartExecution', {
        uid,
        paramAction: action.split(':')[1],
        targets: () => liveTargets(s, prefix),
      });
      act();
      await s.drive(keys, settled, { maxRounds: 60 });
      o.table?.add('EcsExtension', action, d.fault, await f.hit());
      violations.push(...tag(`${action} (faulted)`, await extTerminalLies(s, get())));
      await f.cleanup();
      await f.heal();
      if (!(await s.drive(keys, converged, { maxRounds: 300 })))
        violations.push({
          invariant: 'the fault-free re-run converges',
          detail: `${action} after ${d.fault}: ${JSON.stringify(get()?.status?.conditions)}`,
        });
      violations.push(...tag(`${action} (re-run)`, await extTerminalLies(s, get())));
    };
    await phase(
      'StartExecution:install',
      () => {},
      () => ready(get()),
    );
    await phase(
      'StartExecution:update',
      () => s.applyExt('ext', spec('v2', '18')),
      () => ready(get()),
    );
    await phase(
      'StartExecution:uninstall',
      () => s.ext.delete('default', 'ext'),
      () => get() === undefined,
    );
    // The world after the re-run: nothing of the package left on a live instance, except on those
    // unreachable at deletion time, which are skipped with a Warning Event naming them (documented
    // in src/controllers/ecsextension/delete.ts).
    const skipped = new Set(
      s.events.events
        .filter((e) => e.reason === UninstallSkippedEvent && e.type === 'Warning')
        .flatMap((e) => e.note.match(/i-[a-z0-9]+/g) ?? []),
    );
    const left = (await s.emu.control.getPackageStates(REGION)).filter(
      (p) => p.templateName === NODE_PACKAGE && !skipped.has(p.instanceId),
    );
    if (left.length > 0)
      violations.push({
        invariant: 'the fault-free re-run converges',
        detail: `package still on ${left
          .map((p) => p.instanceId)
          .slice(0, 3)
          .join(',')} after uninstall`,
      });
    const execs = await s.executions(uid);
    violations.push(...checkNoSecondStart(execs, s.requests, s.knownAt));
    violations.push(...checkRecorded(execs, s.recorded.get(uid), [], 'EcsExtension', s.requests));
  } finally {
    await s.stop();
  }
  return violations;
}

// ---------------------------------------------------------------- PatchPolicy

/** The PatchPolicy scenario's acting calls, in order. */
export const PATCH_ACTIONS = [
  'StartExecution:scan',
  'StartExecution:install',
  'CancelExecution:windowClose',
] as const;
export type PatchSchedule = Record<(typeof PATCH_ACTIONS)[number], FaultDraw>;
export const patchScheduleArb: fc.Arbitrary<PatchSchedule> = fc.record({
  'StartExecution:scan': drawArb,
  'StartExecution:install': drawArb,
  'CancelExecution:windowClose': drawArb,
});

/** Window: Saturdays 01:00–05:00 Asia/Shanghai = Fri 17:00Z–21:00Z; the clock starts Mon 2026-06-01 12:00Z. */
const WINDOW_OPEN = '2026-06-05T17:00:00Z';
const WINDOW_CLOSE = Date.parse('2026-06-05T21:00:00Z');
/** The policy's poll delay (the stack's pollMaxMs). */
const POLL_MS = 5_000;

/** Rows `Compliant` whose instance still has missing, failed or pending-reboot patches. */
async function patchTerminalLies(s: FaultStack, o: PatchPolicy | undefined): Promise<Violation[]> {
  const out: Violation[] = [];
  const states = await s.emu.control.getPatchStates(REGION);
  const by = new Map(states.map((p) => [p.instanceId, p]));
  for (const row of o?.status?.instances ?? []) {
    if (row.state !== 'Compliant') continue;
    const p = by.get(row.instanceId);
    const bad = (p?.patches ?? []).filter((x) => x.status !== 'Installed');
    if (!p || bad.length > 0)
      out.push({
        invariant: 'no terminal status the emulator contradicts',
        detail: `${row.instanceId} Compliant but emulator has ${p ? bad.map((b) => b.status).join(',') : 'no patch state'}`,
      });
  }
  return out;
}

/**
 * Invariant: no install execution, install item or reboot STARTS after the window's close plus one
 * poll delay (fake-clock timestamps: createDate, item startDate, the emulator's reboot log line).
 * A reboot logged after its execution's `Execution Cancelled` line is an item already in flight
 * when the cancel landed and is not counted.
 */
function checkWindowClose(execs: ExecutionRecord[]): Violation[] {
  const week = 7 * 24 * 3600_000;
  const open = Date.parse(WINDOW_OPEN);
  const length = WINDOW_CLOSE - open;
  const out: Violation[] = [];
  // late: not inside any weekly occurrence [open, close + one poll delay]
  const late = (iso: string) =>
    iso !== '' && (((Date.parse(iso) - open) % week) + week) % week > length + POLL_MS;
  for (const e of execs.filter((x) => x.parameters['action'] === 'install')) {
    if (late(e.createDate))
      out.push({
        invariant: 'nothing starts after the window',
        detail: `${e.executionId} created ${e.createDate}`,
      });
    for (const i of e.items)
      if (late(i.startDate))
        out.push({
          invariant: 'nothing starts after the window',
          detail: `${e.executionId} item ${i.instanceId} started ${i.startDate}`,
        });
    const cancelAt = e.logs.find((l) => l.message === 'Execution Cancelled')?.timestamp;
    for (const l of e.logs)
      if (/^Reboot .* started$/.test(l.message) && late(l.timestamp) && (!cancelAt || l.timestamp < cancelAt))
        out.push({
          invariant: 'nothing starts after the window',
          detail: `${e.executionId}: ${l.message} at ${l.timestamp}`,
        });
  }
  return out;
}

/**
 * Runs one PatchPolicy schedule over `count` instances with 3 patches each (one needs a reboot):
 * a scan, then an install (snapshots, reboots) inside the window, the clock moved to just before
 * the window closes while the install runs (so the close cancels it), each call with its drawn
 * fault; then healed and re-run fault-free: the next window's install makes the fleet compliant.
 * An EcsExtension install on half the fleet is applied when the window opens, so both kinds
 * contend for the same instances through the one lock.
 */
export async function runPatchSchedule(
  sched: PatchSchedule,
  o: { count?: number; table?: DrawTable; stats?: Record<string, unknown> } = {},
): Promise<Violation[]> {
  const prefix = 'px';
  const count = o.count ?? 120;
  const s = await startFaultStack({ seed: seedOf(prefix, count, 3) });
  const violations: Violation[] = [];
  try {
    const created = s.applyPatch('pp', {
      targets: { tags: [{ key: 'fleet', value: prefix }] },
      interval: '1h',
      // 5 at a time per execution: the install still runs when the clock reaches the close
      rateControl: { concurrency: 5, maxErrors: '100%' },
      scan: { schedule: '30 0 * * *', timeZone: 'Asia/Shanghai' },
      install: {
        maintenanceWindow: { schedule: '0 1 * * SAT', duration: '4h', timeZone: 'Asia/Shanghai' },
        rebootIfNeeded: true,
        cancelAtWindowEnd: true,
        snapshot: { enabled: true, retentionDays: 7 },
        parallelBatches: 3,
      },
    });
    const uid = created.metadata.uid ?? '';
    const keys = ['patch/pp', 'ext/side'];
    const get = () => s.patch.get('default', 'pp');
    const tracked = () => get()?.status?.executions ?? [];
    const targets = () => liveTargets(s, prefix);

    // 1. the scan (the first scheduled scan: 2026-06-01 16:30Z)
    await s.round(keys);
    let d = sched['StartExecution:scan'];
    let f = await injectFault(s, d, 'StartExecution', { uid, paramAction: 'scan', targets });
    s.advanceTo('2026-06-01T16:30:00.500Z');
    await s.drive(keys, () => tracked().length === 0 && (get()?.status?.lastScan?.endTime ?? '') !== '', {
      maxRounds: 60,
      maxStepMs: 60_000,
    });
    o.table?.add('PatchPolicy', 'StartExecution:scan', d.fault, await f.hit());
    await f.cleanup();
    await f.heal();
    // the fault-free rescan (before the window opens: that day's scan at 16:30Z on 06-05)
    s.advanceTo('2026-06-05T16:30:00.500Z');
    await s.drive(keys, () => tracked().length === 0, { maxRounds: 60, maxStepMs: 60_000 });

    // 2. the install inside the window; an EcsExtension wants half the fleet at the same time
    d = sched['StartExecution:install'];
    f = await injectFault(s, d, 'StartExecution', { uid, paramAction: 'install', targets });
    s.advanceTo('2026-06-05T17:01:00Z');
    const half = (await targets()).sort().slice(0, Math.ceil(count / 2));
    s.applyExt('side', {
      targets: { instanceIds: half },
      packageVersion: 'v1',
      parameters: { version: '16' },
      rateControl: { concurrency: '100%', maxErrors: '100%' },
    });
    const installing = () =>
      tracked().some((e) => e.action === 'install' && !e.pending && e.executionId !== '');
    await s.drive(keys, installing, { maxRounds: 40, maxStepMs: 5_000 });
    o.table?.add('PatchPolicy', 'StartExecution:install', d.fault, await f.hit());
    await f.cleanup();
    await f.heal();
    await s.drive(keys, installing, { maxRounds: 40, maxStepMs: 5_000 });

    // 3. the window closes while the install runs: cancelled at the close
    d = sched['CancelExecution:windowClose'];
    f = await injectFault(s, d, 'CancelExecution', { uid, anyOwner: true, targets });
    s.advanceTo(new Date(WINDOW_CLOSE - 2_000));
    const closedOut = () => tracked().every((e) => e.action !== 'install');
    await s.drive(keys, () => s.clock.now().getTime() > WINDOW_CLOSE + 60_000 && closedOut(), {
      maxRounds: 80,
      maxStepMs: 1_000,
    });
    const cancels = s.requests.filter((r) => r.action === 'CancelExecution').length;
    o.table?.add('PatchPolicy', 'CancelExecution:windowClose', d.fault, cancels > 0 && (await f.hit()));
    await f.cleanup();
    await f.heal();
    violations.push(...(await patchTerminalLies(s, get())));

    // 4. fault-free re-run: the next Saturday's window installs the rest; every instance compliant
    s.advanceTo('2026-06-12T16:30:00.500Z');
    await s.drive(keys, () => tracked().length === 0, { maxRounds: 60, maxStepMs: 60_000 });
    s.advanceTo('2026-06-12T17:01:00Z');
    const compliant = () => {
      const x = get();
      const sum = x?.status?.summary as { targeted?: number; compliant?: number } | undefined;
      return (
        tracked().length === 0 &&
        sum !== undefined &&
        sum.targeted === sum.compliant &&
        (sum.targeted ?? 0) > 0
      );
    };
    if (!(await s.drive(keys, compliant, { maxRounds: 300, maxStepMs: 5_000 })))
      violations.push({
        invariant: 'the fault-free re-run converges',
        detail: `summary ${JSON.stringify(get()?.status?.summary)} executions ${JSON.stringify(tracked())}`,
      });
    await s.drive(keys, () => (s.ext.get('default', 'side')?.status?.executions ?? []).length === 0, {
      maxRounds: 100,
      maxStepMs: 5_000,
    });
    violations.push(...(await patchTerminalLies(s, get())));

    const execs = await s.executions(uid);
    const side = await s.executions(s.ext.get('default', 'side')?.metadata.uid ?? '');
    violations.push(...checkNoSecondStart(execs, s.requests, s.knownAt));
    violations.push(...checkNoSecondStart(side, s.requests, s.knownAt));
    violations.push(...checkWindowClose(execs));
    violations.push(
      ...checkNoOverlap([...itemWork(execs, `PatchPolicy/${uid}`), ...itemWork(side, 'EcsExtension/side')]),
    );
    violations.push(...checkRecorded(execs, s.recorded.get(uid), tracked(), 'PatchPolicy', s.requests));
    if (o.stats) {
      const installs = execs.filter((e) => e.parameters['action'] === 'install');
      Object.assign(o.stats, {
        scans: execs.length - installs.length,
        installs: installs.map((e) => `${e.status}:${e.items.length}`),
        cancels: s.requests.filter((r) => r.action === 'CancelExecution').map((r) => r.status),
        reboots: installs.flatMap((e) => e.logs).filter((l) => l.message.startsWith('Reboot')).length,
        snapshots: (await s.emu.control.listSnapshots(REGION)).length,
        side: side.map((e) => `${e.status}:${e.items.length}`),
        overlapPairs: itemWork(side, 'x').length,
      });
    }
  } finally {
    await s.stop();
  }
  return violations;
}
