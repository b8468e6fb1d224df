/**
 * Runs every Argo CD health check (one per ecsops.io kind, on its own `*_test.yaml`) and the
 * resource actions in gopher-lua — the Lua 5.1 VM Argo CD embeds — through test/tools/luacheck,
 * with Argo CD's sandbox: only the base, table and package libraries, `os` (time, date) only
 * through require("os"), a 1 s deadline, the result converted to JSON by gopher-json.
 * argocd-health.test.ts runs the health cases in fengari (Lua 5.3) as well; this file is the one
 * that catches 5.3-only syntax and library use. The test files use Argo CD's format exactly
 * (luacheck rejects unknown fields), so Argo CD's own runner could read them too.
 *
 * Needs luacheck (`bash test/tools/build.sh luacheck`, ~20 s): skipped with a message when it is
 * missing, except in CI, where a missing tool fails.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { RECONCILE_REQUESTED_ANNOTATION } from '../../../src/api/common.js';
import { ARGOCD_KINDS, HEALTH_SCRIPTS, HEALTH_TESTS } from '../../tools/gen-argocd-cm.js';
import { findTool, toolPath, toolTitle } from '../../tools/tools.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const ARGOCD = join(ROOT, 'deploy', 'argocd');
const ACTIONS = join(ARGOCD, 'actions');
const NOW = '2026-01-02T03:04:05Z';

interface HealthCase {
  healthStatus: { status: string; message: string };
  inputPath: string;
}

/** The ecsops.io kinds of crds/, and whether each has spec.suspend (then its health can be Suspended). */
const CRD_KINDS = new Map(
  readdirSync(join(ROOT, 'crds'))
    .filter((f) => f.startsWith('ecsops.io_'))
    .map((f) => {
      const crd = parse(readFileSync(join(ROOT, 'crds', f), 'utf8')) as {
        spec: {
          names: { kind: string };
          versions: Array<{ schema: { openAPIV3Schema: { properties: { spec: { properties: object } } } } }>;
        };
      };
      const spec = crd.spec.versions[0]!.schema.openAPIV3Schema.properties.spec.properties;
      return [crd.spec.names.kind, 'suspend' in spec] as const;
    }),
);
const SUSPENDABLE = new Set([...CRD_KINDS].filter(([, suspend]) => suspend).map(([kind]) => kind));

const luacheck = findTool('luacheck');
const tmp = mkdtempSync(join(tmpdir(), 'ecsops-luacheck-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Run {
  status: number | null;
  stdout: string;
  lines: Array<{ verdict: string; name: string; why?: string }>;
}

function run(...args: string[]): Run {
  const res = spawnSync(toolPath(luacheck), args, { encoding: 'utf8', timeout: 30_000 });
  const lines = res.stdout
    .split('\n')
    .filter((l) => /^(PASS|FAIL)\t/.test(l))
    .map((l) => {
      const [verdict, name, why] = l.split('\t');
      return { verdict: verdict!, name: name!, why };
    });
  return { status: res.status, stdout: res.stdout + res.stderr, lines };
}

/** Runs one script on one object: the returned table as JSON, or the Lua error. */
function evalLua(
  script: string,
  obj: unknown,
  flags: string[] = [],
): { ok: true; result: unknown } | { ok: false; error: string } {
  const scriptPath = join(tmp, `s-${Math.random().toString(36).slice(2)}.lua`);
  const objPath = join(tmp, `o-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(scriptPath, script);
  writeFileSync(objPath, JSON.stringify(obj));
  const res = spawnSync(toolPath(luacheck), [...flags, 'run', scriptPath, objPath], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return JSON.parse(res.stdout) as { ok: true; result: unknown } | { ok: false; error: string };
}

describe.skipIf(luacheck.skip)(`Argo CD Lua scripts in gopher-lua ${toolTitle(luacheck)}`, () => {
  it.each(ARGOCD_KINDS.map((k) => [k, HEALTH_SCRIPTS[k], HEALTH_TESTS[k]] as const))(
    '%s: %s passes every case of %s in the default sandbox',
    (kind, script, testFile) => {
      const r = run('health', join(ARGOCD, script), join(ARGOCD, testFile));
      const cases = (parse(readFileSync(join(ARGOCD, testFile), 'utf8')) as { tests: HealthCase[] }).tests;
      expect(
        r.lines.filter((l) => l.verdict === 'FAIL'),
        r.stdout,
      ).toEqual([]);
      expect(r.lines.length, r.stdout).toBe(cases.length);
      expect(r.status, r.stdout).toBe(0);
      // Healthy, Progressing and Degraded for every kind; Suspended where the kind has spec.suspend.
      const want = ['Degraded', 'Healthy', 'Progressing', ...(SUSPENDABLE.has(kind) ? ['Suspended'] : [])];
      expect([...new Set(cases.map((c) => c.healthStatus.status))].sort(), testFile).toEqual(want.sort());
    },
  );

  it('every health script and every health test file in deploy/argocd is run above, for every CRD kind', () => {
    expect([...ARGOCD_KINDS].sort()).toEqual([...CRD_KINDS.keys()].sort());
    const files = readdirSync(ARGOCD);
    expect(files.filter((f) => /^health.*\.lua$/.test(f)).sort()).toEqual(
      [...new Set(Object.values(HEALTH_SCRIPTS))].sort(),
    );
    expect(files.filter((f) => /_test\.yaml$/.test(f)).sort()).toEqual(Object.values(HEALTH_TESTS).sort());
  });

  it('every action and the discovery pass the cases of actions/action_test.yaml', () => {
    const r = run('-now', NOW, 'actions', ACTIONS);
    const spec = parse(readFileSync(join(ACTIONS, 'action_test.yaml'), 'utf8')) as {
      discoveryTests: unknown[];
      actionTests: Array<{ action: string }>;
    };
    expect(
      r.lines.filter((l) => l.verdict === 'FAIL'),
      r.stdout,
    ).toEqual([]);
    expect(r.lines.length).toBe(spec.discoveryTests.length + spec.actionTests.length);
    // Every action offered by discovery has at least one case.
    expect([...new Set(spec.actionTests.map((t) => t.action))].sort()).toEqual([
      'pause',
      'promote',
      'reconcile',
      'resume',
      'scan-now',
      'suspend',
    ]);
    expect(r.status, r.stdout).toBe(0);
  });

  it('reconcile stamps the real current time in UTC, RFC 3339, under the controller annotation', () => {
    const before = Math.floor(Date.now() / 1000);
    const out = evalLua(readFileSync(join(ACTIONS, 'reconcile', 'action.lua'), 'utf8'), {
      apiVersion: 'ecsops.io/v1alpha1',
      kind: 'EcsExtension',
      metadata: { name: 'x', namespace: 'default' },
      spec: {},
    });
    expect(out.ok, JSON.stringify(out)).toBe(true);
    const stamp = (out as { result: { metadata: { annotations: Record<string, string> } } }).result.metadata
      .annotations[RECONCILE_REQUESTED_ANNOTATION]!;
    expect(stamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const t = Date.parse(stamp) / 1000;
    expect(t).toBeGreaterThanOrEqual(before - 1);
    expect(t).toBeLessThanOrEqual(Date.now() / 1000 + 1);
  });

  it('a wrong expectation fails the run (the checker is not vacuous)', () => {
    const bad = join(tmp, 'bad_test.yaml');
    const cases = readFileSync(join(ARGOCD, 'health_test.yaml'), 'utf8').replace(
      'status: Healthy',
      'status: Degraded',
    );
    writeFileSync(bad, cases.replaceAll('inputPath: testdata/', `inputPath: ${join(ARGOCD, 'testdata')}/`));
    const r = run('health', join(ARGOCD, 'health-ecsops.io.lua'), bad);
    expect(r.status).toBe(1);
    expect(r.lines.filter((l) => l.verdict === 'FAIL')).toHaveLength(1);
  });

  describe('Lua 5.3-only code fails in gopher-lua (but runs in fengari, Lua 5.3)', () => {
    const fengari = createRequire(import.meta.url)('fengari') as {
      to_luastring(s: string): Uint8Array;
      lua: { LUA_OK: number; lua_pcall(L: unknown, a: number, b: number, c: number): number };
      lauxlib: { luaL_newstate(): unknown; luaL_loadstring(L: unknown, s: Uint8Array): number };
      lualib: { luaL_openlibs(L: unknown): void };
    };
    const runsInFengari = (script: string): boolean => {
      const L = fengari.lauxlib.luaL_newstate();
      fengari.lualib.luaL_openlibs(L);
      return (
        fengari.lauxlib.luaL_loadstring(L, fengari.to_luastring(script)) === fengari.lua.LUA_OK &&
        fengari.lua.lua_pcall(L, 0, 1, 0) === fengari.lua.LUA_OK
      );
    };
    const obj = { metadata: { name: 'x', generation: 7 } };
    it.each([
      ['integer division //', 'local g = 7 return { n = g // 2 }'],
      ['bitwise operators', 'local g = 7 return { n = g & 1 }'],
      ['the utf8 library', 'return { s = utf8.char(72) }'],
      ['math.type', 'return { t = math.type(7) }'],
      ['table.unpack', 'local a = table.unpack({ "x" }) return { a = a }'],
    ])('%s', (_what, script) => {
      expect(runsInFengari(script), 'fengari should accept it').toBe(true);
      for (const flags of [[], ['-open-libs']]) {
        const out = evalLua(script, obj, flags);
        expect(out.ok, `${flags.join(' ')}: ${JSON.stringify(out)}`).toBe(false);
      }
    });
  });

  describe("Argo CD's sandbox", () => {
    const obj = { metadata: { name: 'web' } };

    it('has no string library or string methods unless useOpenLibs (-open-libs)', () => {
      for (const script of [
        'return { s = string.upper(obj.metadata.name) }',
        'return { s = obj.metadata.name:upper() }',
      ]) {
        expect(evalLua(script, obj).ok, script).toBe(false);
        expect(evalLua(script, obj, ['-open-libs']), script).toEqual({ ok: true, result: { s: 'WEB' } });
      }
    });

    it('offers os only through require("os"), with time and date', () => {
      expect(evalLua('return { d = os.date("!%Y") }', obj).ok).toBe(false);
      expect(
        evalLua('local os = require("os") return { d = os.date("!%Y", 0), t = os.time() > 0 }', obj),
      ).toEqual({
        ok: true,
        result: { d: '1970', t: true },
      });
      expect(
        evalLua('local os = require("os") return { e = os.execute == nil, x = os.exit == nil }', obj),
      ).toEqual({
        ok: true,
        result: { e: true, x: true },
      });
    });

    it('keeps length, concatenation and tostring, which need no library', () => {
      expect(
        evalLua('return { n = #obj.metadata.name, s = obj.metadata.name .. "-" .. tostring(1) }', obj),
      ).toEqual({
        ok: true,
        result: { n: 3, s: 'web-1' },
      });
    });

    it('stops a script after the deadline', () => {
      expect(evalLua('while true do end', obj, ['-timeout', '200ms'])).toMatchObject({ ok: false });
    });

    it('requires a table result', () => {
      expect(evalLua('return "Healthy"', obj)).toMatchObject({
        ok: false,
        error: expect.stringContaining('table'),
      });
    });
  });

  it('the binary reports its usage on bad arguments', () => {
    const bin = toolPath(luacheck);
    const res = spawnSync(bin, ['bogus'], { encoding: 'utf8' });
    expect(res.status).toBe(2);
    expect(res.stderr).toContain('usage:');
  });
});
