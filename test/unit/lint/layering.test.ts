// The layering rules of DESIGN §2, as written in eslint.config.js: each layer's forbidden
// imports are reported and its allowed ones are not. Code is linted in memory under paths
// inside src/, so the config's `files:` scoping applies; nothing is written to disk.
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { ESLint } from 'eslint';
import { beforeAll, describe, expect, it } from 'vitest';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const RULE = '@typescript-eslint/no-restricted-imports';

let eslint: ESLint;
beforeAll(() => {
  eslint = new ESLint({ cwd: repoRoot, overrideConfigFile: 'eslint.config.js' });
});

/** Lints one import of `spec` (as `form`) in a file at `file` (relative to the repo); returns the layering messages. */
async function layeringErrors(
  file: string,
  spec: string,
  form: 'import' | 'import type' | 'export from' = 'import',
): Promise<string[]> {
  const code =
    form === 'export from'
      ? `export * from '${spec}';\n`
      : form === 'import type'
        ? `import type { T } from '${spec}';\nexport type U = T;\n`
        : `import { a } from '${spec}';\nexport const b = a;\n`;
  const [result] = await eslint.lintText(code, { filePath: path.join(repoRoot, file) });
  const fatal = result!.messages.filter((m) => m.fatal);
  expect(fatal, `${file} should parse`).toEqual([]);
  return result!.messages.filter((m) => m.ruleId === RULE).map((m) => m.message);
}

type Case = [file: string, spec: string, message: RegExp];

const forbidden: Case[] = [
  // controllers never import the emulator
  [
    'src/controllers/ecsextension/phases.ts',
    '../../emulator/index.js',
    /controllers must not import the emulator/,
  ],
  ['src/controllers/x.ts', '../emulator/core.js', /controllers must not import the emulator/],
  [
    'src/controllers/shared/execution.ts',
    '../../emulator/index.js',
    /controllers must not import the emulator/,
  ],
  // controllers/shared never imports a kind's folder
  [
    'src/controllers/shared/metrics.ts',
    '../ecsextension/reconciler.js',
    /controllers\/shared must not import a kind's folder/,
  ],
  [
    'src/controllers/shared/a/b.ts',
    '../../patchpolicy/status.js',
    /controllers\/shared must not import a kind's folder/,
  ],
  [
    'src/controllers/shared/driver.ts',
    '../apprelease/phases.js',
    /controllers\/shared must not import a kind's folder/,
  ],
  // cloud never imports Kubernetes, runtime, api or controllers
  ['src/cloud/oos.ts', '@kubernetes/client-node', /cloud\/ must not import Kubernetes/],
  [
    'src/cloud/oos.ts',
    '@kubernetes/client-node/dist/gen/models/V1Pod.js',
    /cloud\/ must not import Kubernetes/,
  ],
  [
    'src/cloud/errors.ts',
    '../runtime/errors.js',
    /cloud\/ must not import runtime\/, api\/ or controllers\//,
  ],
  ['src/cloud/fleet/view.ts', '../../runtime/errors.js', /cloud\/ must not import runtime\//],
  ['src/cloud/types.ts', '../api/common.js', /cloud\/ must not import runtime\/, api\/ or controllers\//],
  [
    'src/cloud/ecs.ts',
    '../controllers/shared/targets.js',
    /cloud\/ must not import runtime\/, api\/ or controllers\//,
  ],
  // runtime knows nothing about Alibaba Cloud or the kinds
  ['src/runtime/errors.ts', '../cloud/errors.js', /runtime\/ must not import cloud\/ or controllers\//],
  [
    'src/runtime/sub/x.ts',
    '../../controllers/shared/execution.js',
    /runtime\/ must not import cloud\/ or controllers\//,
  ],
  ['src/runtime/manager.ts', '@alicloud/openapi-core', /runtime\/ must not import Alibaba Cloud SDKs/],
  ['src/runtime/manager.ts', '@alicloud/ecs20140526', /runtime\/ must not import Alibaba Cloud SDKs/],
  // the emulator stands in for Alibaba Cloud, not the operator
  [
    'src/emulator/oos.ts',
    '../controllers/shared/execution.js',
    /emulator\/ must not import controllers\/ or runtime\//,
  ],
  ['src/emulator/ecs.ts', '../runtime/errors.js', /emulator\/ must not import controllers\/ or runtime\//],
];

const allowed: [file: string, spec: string][] = [
  ['src/controllers/ecsextension/phases.ts', '../../runtime/errors.js'],
  ['src/controllers/ecsextension/phases.ts', '../../cloud/types.js'],
  ['src/controllers/ecsextension/phases.ts', '../shared/execution.js'],
  ['src/controllers/ecsextension/reconciler.ts', './phases.js'],
  ['src/controllers/shared/metrics.ts', './execution.js'],
  ['src/controllers/shared/metrics.ts', '../../api/ecsextension.js'],
  ['src/cloud/oos.ts', './errors.js'],
  ['src/cloud/oos.ts', '@alicloud/openapi-core'],
  ['src/cloud/oos.ts', '../util/chunks.js'],
  ['src/runtime/manager.ts', './errors.js'],
  ['src/runtime/manager.ts', '@kubernetes/client-node'],
  ['src/runtime/conditions.ts', '../api/conditions.js'],
  ['src/emulator/server.ts', './state.js'],
  ['src/emulator/server.ts', 'node:http'],
  // outside the restricted layers (wiring) anything goes
  ['src/main.ts', './emulator/index.js'],
  ['src/main.ts', './controllers/ecsextension/reconciler.js'],
];

describe('layering rules (DESIGN §2)', () => {
  it.each(forbidden)('%s importing %s is reported', async (file, spec, message) => {
    const errors = await layeringErrors(file, spec);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(message);
    expect(errors[0]).toContain('(DESIGN §2)');
  });

  it.each(allowed)('%s importing %s is allowed', async (file, spec) => {
    expect(await layeringErrors(file, spec)).toEqual([]);
  });

  it('type-only imports and re-exports are reported too', async () => {
    expect(
      await layeringErrors(
        'src/controllers/shared/metrics.ts',
        '../ecsextension/reconciler.js',
        'import type',
      ),
    ).toHaveLength(1);
    expect(await layeringErrors('src/controllers/x.ts', '../emulator/index.js', 'export from')).toHaveLength(
      1,
    );
    expect(await layeringErrors('src/cloud/index.ts', '../runtime/index.js', 'export from')).toHaveLength(1);
  });
});
