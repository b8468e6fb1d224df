/**
 * Runs each kind's Argo CD health script (deploy/argocd/health-*.lua) on the cases of its test file
 * (Argo CD's resource_customizations test format) in fengari, a Lua VM written in JavaScript, so CI
 * checks the health scripts without a Lua interpreter installed. Argo CD itself runs gopher-lua
 * (Lua 5.1); the scripts stick to what 5.1 and 5.3 share (argocd-gopher-lua.test.ts runs the same
 * cases there).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ARGOCD_KINDS, HEALTH_SCRIPTS, HEALTH_TESTS } from '../../tools/gen-argocd-cm.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const ARGOCD_DIR = join(ROOT, 'deploy', 'argocd');
const SCRIPT = readFileSync(join(ARGOCD_DIR, 'health-ecsops.io.lua'), 'utf8');

/** The part of fengari's C-like API this test uses. */
interface LuaState {
  readonly __brand: 'lua_State';
}
interface Fengari {
  to_luastring(s: string): Uint8Array;
  lua: {
    LUA_OK: number;
    lua_newtable(L: LuaState): void;
    lua_pushnil(L: LuaState): void;
    lua_pushboolean(L: LuaState, b: boolean): void;
    lua_pushinteger(L: LuaState, n: number): void;
    lua_pushnumber(L: LuaState, n: number): void;
    lua_pushstring(L: LuaState, s: Uint8Array): void;
    lua_setfield(L: LuaState, index: number, k: Uint8Array): void;
    lua_rawseti(L: LuaState, index: number, i: number): void;
    lua_setglobal(L: LuaState, name: Uint8Array): void;
    lua_getfield(L: LuaState, index: number, k: Uint8Array): number;
    lua_pcall(L: LuaState, nargs: number, nresults: number, msgh: number): number;
    lua_tojsstring(L: LuaState, index: number): string | null;
    lua_type(L: LuaState, index: number): number;
    lua_pop(L: LuaState, n: number): void;
  };
  lauxlib: {
    luaL_newstate(): LuaState;
    luaL_loadstring(L: LuaState, s: Uint8Array): number;
  };
  lualib: { luaL_openlibs(L: LuaState): void };
}

const fengari = createRequire(import.meta.url)('fengari') as Fengari;
const { lua, lauxlib, lualib, to_luastring } = fengari;

/** Pushes a JSON-like value as a Lua value (objects and arrays become tables, arrays 1-based). */
function push(L: LuaState, value: unknown): void {
  if (value === null || value === undefined) lua.lua_pushnil(L);
  else if (typeof value === 'boolean') lua.lua_pushboolean(L, value);
  else if (typeof value === 'number') {
    if (Number.isInteger(value)) lua.lua_pushinteger(L, value);
    else lua.lua_pushnumber(L, value);
  } else if (typeof value === 'string') lua.lua_pushstring(L, to_luastring(value));
  else if (Array.isArray(value)) {
    lua.lua_newtable(L);
    value.forEach((item, i) => {
      push(L, item);
      lua.lua_rawseti(L, -2, i + 1);
    });
  } else if (typeof value === 'object') {
    lua.lua_newtable(L);
    for (const [k, v] of Object.entries(value)) {
      push(L, v);
      lua.lua_setfield(L, -2, to_luastring(k));
    }
  } else throw new Error(`cannot convert ${typeof value} to Lua`);
}

/**
 * Runs the health script the way Argo CD does: the object in the global `obj`, the chunk's
 * return value read as `{status, message}`. @throws Error with Lua's message on a Lua error.
 */
function runHealth(obj: unknown, script = SCRIPT): { status: string | null; message: string | null } {
  const L = lauxlib.luaL_newstate();
  lualib.luaL_openlibs(L);
  push(L, obj);
  lua.lua_setglobal(L, to_luastring('obj'));
  if (lauxlib.luaL_loadstring(L, to_luastring(script)) !== lua.LUA_OK) {
    throw new Error(`Lua syntax error: ${lua.lua_tojsstring(L, -1)}`);
  }
  if (lua.lua_pcall(L, 0, 1, 0) !== lua.LUA_OK) {
    throw new Error(`Lua runtime error: ${lua.lua_tojsstring(L, -1)}`);
  }
  lua.lua_getfield(L, -1, to_luastring('status'));
  const status = lua.lua_tojsstring(L, -1);
  lua.lua_pop(L, 1);
  lua.lua_getfield(L, -1, to_luastring('message'));
  const message = lua.lua_tojsstring(L, -1);
  return { status, message };
}

interface HealthCase {
  healthStatus: { status: string; message: string };
  inputPath: string;
}
const cases = (parse(readFileSync(join(ARGOCD_DIR, 'health_test.yaml'), 'utf8')) as { tests: HealthCase[] })
  .tests;

describe('Argo CD health check for ecsops.io kinds', () => {
  it('has a case for every Argo CD health status the script can return', () => {
    const statuses = new Set(cases.map((c) => c.healthStatus.status));
    expect([...statuses].sort()).toEqual(['Degraded', 'Healthy', 'Progressing', 'Suspended']);
  });

  it.each(cases.map((c) => [c.inputPath, c] as const))('%s', (_name, c) => {
    const obj = parse(readFileSync(join(ARGOCD_DIR, c.inputPath), 'utf8')) as unknown;
    expect(runHealth(obj)).toEqual(c.healthStatus);
  });

  it('treats a Ready condition from an older generation as Progressing, not Healthy', () => {
    const obj = {
      apiVersion: 'ecsops.io/v1alpha1',
      kind: 'AppRelease',
      metadata: { name: 'web', generation: 7 },
      spec: {},
      status: {
        observedGeneration: 6,
        conditions: [{ type: 'Ready', status: 'True', reason: 'Released', message: 'v41 on 10/10' }],
      },
    };
    expect(runHealth(obj).status).toBe('Progressing');
    obj.status.observedGeneration = 7;
    expect(runHealth(obj)).toEqual({ status: 'Healthy', message: 'Released: v41 on 10/10' });
  });

  it('survives an object without spec, metadata.generation or conditions', () => {
    expect(
      runHealth({ apiVersion: 'ecsops.io/v1alpha1', kind: 'PatchPolicy', metadata: { name: 'p' } }),
    ).toEqual({ status: 'Progressing', message: 'Waiting for the ecsops controller to reconcile' });
    expect(
      runHealth({ metadata: { name: 'p', generation: 1 }, status: { observedGeneration: 1 } }).status,
    ).toBe('Progressing');
  });

  it('the README names the argocd-cm key for EcsExtension', () => {
    const readme = readFileSync(join(ARGOCD_DIR, 'README.md'), 'utf8');
    expect(readme).toContain('resource.customizations.health.ecsops.io_EcsExtension');
  });
});

// The other kinds (PatchPolicy, MaintenanceWindow, and any kind added to ARGOCD_KINDS): each
// script on the cases of its own test file (the two kinds above have their own describe blocks).
const otherKinds = ARGOCD_KINDS.filter((k) => k !== 'EcsExtension' && k !== 'AppRelease');
describe.each(otherKinds.map((k) => [k, HEALTH_SCRIPTS[k], HEALTH_TESTS[k]] as const))(
  'Argo CD health check for %s (%s on %s)',
  (_kind, script, testFile) => {
    const source = readFileSync(join(ARGOCD_DIR, script), 'utf8');
    const kindCases = (parse(readFileSync(join(ARGOCD_DIR, testFile), 'utf8')) as { tests: HealthCase[] })
      .tests;
    it.each(kindCases.map((c) => [c.inputPath, c] as const))('%s', (_name, c) => {
      const obj = parse(readFileSync(join(ARGOCD_DIR, c.inputPath), 'utf8')) as unknown;
      expect(runHealth(obj, source)).toEqual(c.healthStatus);
    });
  },
);

// AppRelease: its own script (Paused → Suspended, RolledBack / Failed → Degraded).
const appCases = (
  parse(readFileSync(join(ARGOCD_DIR, 'health-apprelease_test.yaml'), 'utf8')) as { tests: HealthCase[] }
).tests;
const APP_SCRIPT = readFileSync(join(ARGOCD_DIR, 'health-apprelease.lua'), 'utf8');
describe('Argo CD health check for AppRelease', () => {
  it('has a case for every Argo CD health status and every phase', () => {
    expect([...new Set(appCases.map((c) => c.healthStatus.status))].sort()).toEqual([
      'Degraded',
      'Healthy',
      'Progressing',
      'Suspended',
    ]);
    const phases = appCases.map(
      (c) =>
        (parse(readFileSync(join(ARGOCD_DIR, c.inputPath), 'utf8')) as { status?: { phase?: string } }).status
          ?.phase,
    );
    for (const p of ['Progressing', 'Paused', 'Succeeded', 'Failed', 'RollingBack', 'RolledBack'])
      expect(phases, p).toContain(p);
  });

  it.each(appCases.map((c) => [c.inputPath, c] as const))('%s', (_name, c) => {
    const obj = parse(readFileSync(join(ARGOCD_DIR, c.inputPath), 'utf8')) as unknown;
    expect(runHealth(obj, APP_SCRIPT)).toEqual(c.healthStatus);
  });

  it('maps the phases as documented whatever the message', () => {
    const obj = (phase: string, ready: string, reason: string) => ({
      kind: 'AppRelease',
      metadata: { name: 'a', generation: 2 },
      spec: {},
      status: { observedGeneration: 2, phase, conditions: [{ type: 'Ready', status: ready, reason }] },
    });
    expect(runHealth(obj('Paused', 'False', 'RolloutPaused')).status).toBe('Progressing'); // the generic script
    expect(runHealth(obj('Paused', 'False', 'RolloutPaused'), APP_SCRIPT)).toEqual({
      status: 'Suspended',
      message: 'RolloutPaused',
    });
    expect(runHealth(obj('RolledBack', 'False', 'RolledBack'), APP_SCRIPT).status).toBe('Degraded');
    expect(runHealth(obj('Failed', 'False', 'RolloutFailed'), APP_SCRIPT).status).toBe('Degraded');
    expect(runHealth(obj('Progressing', 'False', 'RolloutInProgress'), APP_SCRIPT).status).toBe(
      'Progressing',
    );
    expect(runHealth(obj('Succeeded', 'True', 'RolloutSucceeded'), APP_SCRIPT).status).toBe('Healthy');
  });
});
