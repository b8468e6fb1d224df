/**
 * InstanceDisruptionBudget on the real API server and the real controller (in-process) against the
 * emulator: admission (the CRD's CEL rule on maxUnavailable, cluster scope, the selector's
 * exactly-one-of rule), and the budget's status and printer columns (`kubectl get idb`: Selected,
 * Allowed, Unavailable, Age) as the API server's Table rendering returns them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { GROUP, VERSION } from '../../../src/api/common.js';
import {
  INSTANCE_DISRUPTION_BUDGET_PLURAL,
  type InstanceDisruptionBudget,
} from '../../../src/api/instancedisruptionbudget.js';
import * as https from 'node:https';
import { REGION, REPO_ROOT, startStack, waitFor, type Stack } from '../../harness/stack.js';

/** A tag no other test's fleet carries: budgets are cluster-scoped, every test's controller sees them. */
const RUN = `r${Date.now().toString(36)}`;
const TAG = { key: 'idbtest', value: RUN };

/** GET `path` as the API server's Table rendering (what `kubectl get` prints). */
async function tableOf(s: Stack, path: string): Promise<unknown> {
  const opts: https.RequestOptions = {
    method: 'GET',
    headers: { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' },
  };
  await s.kc.applyToHTTPSOptions(opts);
  const url = new URL(path, s.kc.getCurrentCluster()?.server);
  return new Promise((resolve, reject) => {
    https
      .request(url, opts, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString('utf8'))));
      })
      .on('error', reject)
      .end();
  });
}

describe('InstanceDisruptionBudget (real API server and controller)', () => {
  let s: Stack;
  const names: string[] = [];
  beforeAll(async () => {
    s = await startStack({
      prefix: 'idb',
      seed: {
        regions: {
          [REGION]: {
            generate: [
              {
                count: 9,
                idPrefix: 'i-idb',
                zones: [`${REGION}-h`, `${REGION}-i`, `${REGION}-j`],
                tags: [TAG],
              },
            ],
          },
        },
      },
      controllerArgs: ['--controllers', 'instancedisruptionbudget'],
    });
  });
  afterAll(async () => {
    for (const name of names) {
      await s.api
        .deleteClusterCustomObject({
          group: GROUP,
          version: VERSION,
          plural: INSTANCE_DISRUPTION_BUDGET_PLURAL,
          name,
        })
        .catch(() => undefined);
    }
    await s?.stop();
  });

  const create = async (name: string, spec: unknown) => {
    const created = (await s.api.createClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: INSTANCE_DISRUPTION_BUDGET_PLURAL,
      body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'InstanceDisruptionBudget', metadata: { name }, spec },
    })) as InstanceDisruptionBudget;
    names.push(name);
    return created;
  };
  const rejection = async (name: string, spec: unknown): Promise<string> => {
    try {
      await create(name, spec);
    } catch (err) {
      const body = (err as { body?: string }).body;
      return body ? (JSON.parse(body) as { message: string }).message : String(err);
    }
    throw new Error(`${name} was accepted`);
  };
  const spec = (maxUnavailable: unknown, extra: Record<string, unknown> = {}) => ({
    regionId: REGION,
    selector: { tags: [TAG] },
    maxUnavailable,
    ...extra,
  });

  it('admission: rejects a maxUnavailable that is neither an integer >= 0 nor 0%..100%, with a readable message', async () => {
    for (const bad of [-1, '101%', 'ten', '5 %']) {
      expect(await rejection(`bad-${RUN}-${String(bad).replace(/[^a-z0-9]/g, 'x')}`, spec(bad))).toContain(
        'maxUnavailable must be an integer >= 0 or a percentage string between 0% and 100%',
      );
    }
    expect(
      await rejection(`both-${RUN}`, spec(1, { selector: { tags: [TAG], instanceIds: ['i-1'] } })),
    ).toContain('exactly one of');
  });

  it('accepts deploy/examples/instancedisruptionbudget.yaml (cluster-scoped: no namespace)', async () => {
    const example = parse(
      readFileSync(join(REPO_ROOT, 'deploy/examples/instancedisruptionbudget.yaml'), 'utf8'),
    ) as { spec: unknown };
    const created = await create(`example-${RUN}`, example.spec);
    expect(created.metadata.namespace).toBeUndefined();
    // Its selector (env=staging) would cap every other test's demo fleet: deleted at once.
    await s.api.deleteClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: INSTANCE_DISRUPTION_BUDGET_PLURAL,
      name: `example-${RUN}`,
    });
  });

  it('writes selected, allowed and per-zone usage; kubectl get shows Selected, Allowed, Unavailable, Age', async () => {
    const name = `zones-${RUN}`;
    await create(name, spec('34%', { perZone: true }));
    const got = await waitFor(
      'budget status',
      async () => {
        const b = (await s.api.getClusterCustomObject({
          group: GROUP,
          version: VERSION,
          plural: INSTANCE_DISRUPTION_BUDGET_PLURAL,
          name,
        })) as InstanceDisruptionBudget;
        return b.status?.observedGeneration === 1 && b.status.selected !== undefined ? b : undefined;
      },
      30_000,
    );
    // 3 instances per zone; 34 % of 3 = 1.02, rounded up to 2 per zone (PodDisruptionBudget rounding).
    expect(got.status).toMatchObject({
      selected: 9,
      allowed: 6,
      unavailable: 0,
      zones: [
        { zoneId: `${REGION}-h`, selected: 3, unavailable: 0, allowed: 2 },
        { zoneId: `${REGION}-i`, selected: 3, unavailable: 0, allowed: 2 },
        { zoneId: `${REGION}-j`, selected: 3, unavailable: 0, allowed: 2 },
      ],
      holders: [],
    });
    const ready = got.status?.conditions?.find((c) => c.type === 'Ready');
    expect(ready).toMatchObject({ status: 'True', reason: 'BudgetResolved' });
    expect(ready?.message).toBe(
      `9 instance(s) selected; 0/2 unavailable in ${REGION}-h, 0/2 unavailable in ${REGION}-i, 0/2 unavailable in ${REGION}-j`,
    );

    const table = (await tableOf(
      s,
      `/apis/${GROUP}/${VERSION}/${INSTANCE_DISRUPTION_BUDGET_PLURAL}/${name}`,
    )) as {
      columnDefinitions: Array<{ name: string; priority: number }>;
      rows: Array<{ cells: unknown[] }>;
    };
    const shown = table.columnDefinitions.filter((c) => c.priority === 0).map((c) => c.name);
    expect(shown).toEqual(['Name', 'Selected', 'Allowed', 'Unavailable', 'Age']);
    const cells = table.rows[0]?.cells ?? [];
    const col = (n: string) => cells[table.columnDefinitions.findIndex((c) => c.name === n)];
    expect([col('Selected'), col('Allowed'), col('Unavailable')]).toEqual([9, 6, 0]);
  });
});
