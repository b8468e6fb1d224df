import { defineConfig } from 'vitest/config';

// Two projects:
//  - unit: pure logic, cloud-layer contract tests against the in-process emulator (no Kubernetes).
//  - controller: the fast controller tier (test/harness/fast.ts), no API server.
//  - integration: tests against a real kube-apiserver + etcd started once per run by globalSetup.
// `npm test` runs both; `npx vitest run --project unit` runs only the fast ones.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts', 'test/contract/**/*.test.ts'],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          // The fast controller tier: real reconcilers + cloud layer + emulator, in-memory objects.
          name: 'controller',
          include: ['test/controller/**/*.test.ts'],
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/harness/global-setup.ts'],
          testTimeout: 180_000,
          hookTimeout: 180_000,
          // Integration files share one control plane; run them one file at a time so a
          // 2-core machine is not oversubscribed by concurrent controllers.
          fileParallelism: false,
        },
      },
    ],
  },
});
