// ESLint flat config: typescript-eslint recommended rules over src/ and test/, plus the
// layering rules of DESIGN §2 (which src/ folder may import which).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Layering (DESIGN §2). Imports inside src/ are relative (`../../emulator/index.js`), so each
// forbidden folder is matched as `../**/<folder>` at any depth. Patterns only match paths that
// climb out with `../`, so a folder's own files (`./errors.js`) and npm packages never match.
const up = (folder) => [`../**/${folder}`, `../**/${folder}/**`];
const forbid = (folders, message) => ({ group: folders.flatMap(up), message });

const noEmulator = forbid(['emulator'], 'controllers must not import the emulator (DESIGN §2).');
const noKindFolders = forbid(
  ['ecsextension', 'patchpolicy', 'apprelease'],
  "controllers/shared must not import a kind's folder (ecsextension, patchpolicy, apprelease); move the shared piece into shared/ (DESIGN §2).",
);
const noKubernetesInCloud = {
  group: ['@kubernetes/client-node', '@kubernetes/client-node/**'],
  message: 'cloud/ must not import Kubernetes (@kubernetes/client-node) (DESIGN §2).',
};
const noKubeLayersInCloud = forbid(
  ['runtime', 'api', 'controllers'],
  'cloud/ must not import runtime/, api/ or controllers/: it knows nothing about Kubernetes (DESIGN §2).',
);
const noCloudInRuntime = forbid(
  ['cloud', 'controllers'],
  'runtime/ must not import cloud/ or controllers/: it knows nothing about Alibaba Cloud or the kinds (DESIGN §2).',
);
const noAlicloudInRuntime = {
  group: ['@alicloud/*'],
  message: 'runtime/ must not import Alibaba Cloud SDKs (@alicloud/*) (DESIGN §2).',
};
const noOperatorInEmulator = forbid(
  ['controllers', 'runtime'],
  'emulator/ must not import controllers/ or runtime/: it stands in for Alibaba Cloud, not the operator (DESIGN §2).',
);

const restrict = (...patterns) => ({
  '@typescript-eslint/no-restricted-imports': ['error', { patterns }],
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  // Layering. A later block replaces an earlier block's options for the same rule, so the
  // controllers/shared block repeats the controllers pattern.
  { files: ['src/controllers/**/*.ts'], rules: restrict(noEmulator) },
  { files: ['src/controllers/shared/**/*.ts'], rules: restrict(noEmulator, noKindFolders) },
  { files: ['src/cloud/**/*.ts'], rules: restrict(noKubernetesInCloud, noKubeLayersInCloud) },
  { files: ['src/runtime/**/*.ts'], rules: restrict(noCloudInRuntime, noAlicloudInRuntime) },
  { files: ['src/emulator/**/*.ts'], rules: restrict(noOperatorInEmulator) },
);
