/**
 * Locates the test tools built by test/tools/build.sh (helm, promtool, prometheus, luacheck, shellcheck) in the cache
 * outside the work tree, without building anything: `build.sh --check` prints the path of a warm
 * tool and fails for a missing or stale one.
 *
 * Tests that need a tool skip with a message when it is missing on a developer machine, but
 * fail in CI (env CI set), where .ci/run builds the tools first.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export type ToolName =
  'helm' | 'promtool' | 'prometheus' | 'luacheck' | 'prometheus-operator-crds' | 'shellcheck';

export interface ToolLookup {
  name: ToolName;
  /** Absolute path of the binary, when it is built and matches its go.mod / go.sum. */
  path?: string;
  /** Why it is not available (with the command that builds it). */
  reason?: string;
  /** True when the calling test should skip: tool missing and not in CI. */
  skip: boolean;
}

/** Finds one tool; never throws. `quiet`: no warning when it is missing (optional uses). */
export function findTool(name: ToolName, opts: { quiet?: boolean } = {}): ToolLookup {
  const res = spawnSync('bash', [join(REPO_ROOT, 'test/tools/build.sh'), '--check', name], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  const path = res.stdout?.trim().split('\n').pop() ?? '';
  if (res.status === 0 && path && existsSync(path)) return { name, path, skip: false };
  const reason =
    `${name} is not built (or is stale): run \`bash test/tools/build.sh ${name}\` ` +
    `(or \`npm run tools:build\`)${res.stderr ? ` — ${res.stderr.trim()}` : ''}`;
  const skip = !process.env.CI;
  if (skip && !opts.quiet) console.warn(`[tools] SKIPPING the tests that need ${name}: ${reason}`);
  return { name, reason, skip };
}

/**
 * The title suffix for a describe block that needs `tool`: says it was skipped and why, so a
 * skipped run is visible in the reporter output.
 */
export function toolTitle(tool: ToolLookup): string {
  if (tool.path) return `(${tool.name}: ${tool.path})`;
  return tool.skip ? `(SKIPPED: ${tool.reason})` : `(${tool.name} MISSING IN CI: ${tool.reason})`;
}

/**
 * The binary path, or throws (used inside tests; in CI a missing tool fails the test instead
 * of skipping it).
 */
export function toolPath(tool: ToolLookup): string {
  if (!tool.path) throw new Error(tool.reason);
  return tool.path;
}
