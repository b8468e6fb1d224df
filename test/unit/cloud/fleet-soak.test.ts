/**
 * Fleet view soak (unit tier): `RegionFleet` with fake OOS and ECS clients, 200,000 instance reads
 * (2,000 rounds × 100 instances of instance reads and package-state reads) over a fleet that
 * churns (10 instances replaced per round) and owners that come and go, with the controller-wide
 * abort signal on every read and a fake clock (60 s per round, 33 h in all). What must stay flat:
 * the abort listeners on that signal, and every per-instance and per-owner map.
 */
import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { FLEET_RETAIN_MS, RegionFleet } from '../../../src/cloud/fleet.js';
import type {
  CloudAssistantStatus,
  EcsApi,
  Execution,
  Instance,
  OosApi,
  PackageState,
} from '../../../src/cloud/types.js';

const instance = (instanceId: string): Instance =>
  ({ instanceId, status: 'Running', tags: [], regionId: 'cn-hangzhou' }) as unknown as Instance;

const ROUNDS = Number(process.env.SOAK_ROUNDS ?? 2_000);

describe('RegionFleet soak', () => {
  it('200,000 reads with instance and owner churn: listeners and map sizes stay flat', async () => {
    let now = 0;
    let round = 0;
    const oos = {
      listInstancePackageStates: (id: string): Promise<PackageState[]> =>
        Promise.resolve([{ templateName: 'pkg', templateVersion: 'v1', parameters: { id } }]),
      // The change feed: every listing shows a foreign execution on an instance of this round and
      // one on an instance nobody reads any more (touched, never re-read).
      listAllExecutions: (): Promise<Execution[]> =>
        Promise.resolve(
          [`i-${String(round * 10).padStart(7, '0')}`, `gone-${round}`].map(
            (instanceId) =>
              ({
                executionId: `foreign-${round}-${instanceId}`,
                templateName: 'ACS-ECS-BulkyConfigureOOSPackageWithTemporaryURL',
                status: 'Success',
                parameters: { instanceId },
                tags: {},
                isParent: false,
                endDate: new Date(now).toISOString(),
              }) as unknown as Execution,
          ),
        ),
    } as unknown as OosApi;
    const ecs = {
      describeInstances: (q: { instanceIds?: string[] }): Promise<Instance[]> =>
        Promise.resolve((q.instanceIds ?? []).map(instance)),
      describeCloudAssistantStatus: (ids: string[]): Promise<CloudAssistantStatus[]> =>
        Promise.resolve(ids.map((instanceId) => ({ instanceId, online: true }) as CloudAssistantStatus)),
    } as unknown as EcsApi;
    const fleet = new RegionFleet({ oos: () => oos, ecs: () => ecs, now: () => now });
    const controller = new AbortController(); // the controller-wide signal every read carries
    const { signal } = controller;
    const samples: Array<Record<string, number>> = [];
    let reads = 0;
    for (round = 0; round < ROUNDS; round++) {
      const ids = Array.from({ length: 100 }, (_, i) => `i-${String(round * 10 + i).padStart(7, '0')}`);
      await fleet.instances(ids, { maxAgeMs: 0, signal }); // a full batch: read at once
      await fleet.packageStates(ids, { maxAgeMs: 60_000, signal });
      reads += ids.length;
      const owner = `owner-${round}`; // a resource created, started work, checked, gone
      fleet.noteStarted(owner, `exec-${round}`);
      fleet.noteAdoptionChecked(owner, now + 1);
      fleet.noteStarted(`left-${round}`, `exec-x-${round}`); // never confirmed (deleted mid-start)
      now += 60_000;
      if (round === ROUNDS * 0.8 || round === ROUNDS - 1)
        samples.push({ ...fleet.sizes, listeners: getEventListeners(signal, 'abort').length });
    }
    expect(reads).toBe(200_000);
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
    const [mid, end] = samples;
    // 25 h of 60 s rounds × 10 new instances each = 15,000 (+ the current 100) are retained at most
    const bound = (FLEET_RETAIN_MS / 60_000) * 10 + 100;
    for (const key of ['packages', 'instanceViews', 'asked'] as const) {
      expect(end?.[key], key).toBeLessThanOrEqual(bound + 10);
      expect(Math.abs((end?.[key] ?? 0) - (mid?.[key] ?? 0)), key).toBeLessThanOrEqual(20);
    }
    // Two starts noted per round (one confirmed, one never); one untouched-again instance per round.
    expect(end?.ownExecutions).toBeLessThanOrEqual(2 * (FLEET_RETAIN_MS / 60_000) + 4);
    expect(Math.abs((end?.ownExecutions ?? 0) - (mid?.ownExecutions ?? 0))).toBeLessThanOrEqual(4);
    for (const key of ['adoptionChecked', 'unconfirmed', 'touched'] as const) {
      expect(end?.[key], key).toBeLessThanOrEqual(FLEET_RETAIN_MS / 60_000 + 2);
      expect(Math.abs((end?.[key] ?? 0) - (mid?.[key] ?? 0)), key).toBeLessThanOrEqual(2);
    }
    expect(end?.listeners).toBe(0);
  });
});
