/**
 * Emulator throughput benchmark: `npx tsx test/bench/emulator.bench.ts`.
 *
 * Seeds 10,000 instances and measures, through the real openapi-core SDK (ACS3 signatures):
 *  - DescribeInstances pages (MaxResults 100) over the whole fleet,
 *  - StartExecution calls (BulkyRunCommand on 10 instances each),
 * against two baselines measured in the same run: a raw HTTP round-trip (GET /healthz on the
 * control port) and a cheap signed action (ListPatchBaselines). Loops are bounded in count; all
 * traffic goes to 127.0.0.1. Results: bench/results/emulator.md and .json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import OpenApiModule, { $OpenApiUtil, OpenApiUtil } from '@alicloud/openapi-core';
import * as $dara from '@darabonba/typescript';
import { rpcParams } from '../../src/cloud/sdk.js';
import { DEMO_ACCESS_KEY, RUN_COMMAND_TEMPLATE, startEmulator } from '../../src/emulator/index.js';

type OpenApiClass = typeof OpenApiModule.default;
const OpenApi: OpenApiClass =
  typeof (OpenApiModule as { default?: unknown }).default === 'function'
    ? OpenApiModule.default
    : (OpenApiModule as unknown as OpenApiClass);

const REGION = 'cn-hangzhou';
const FLEET = 10_000;

interface Result {
  name: string;
  ops: number;
  totalMs: number;
  opsPerSec: number;
  meanMs: number;
}

async function measure(name: string, ops: number, fn: (i: number) => Promise<void>): Promise<Result> {
  for (let i = 0; i < Math.min(20, ops); i++) await fn(i); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < ops; i++) await fn(i);
  const totalMs = performance.now() - t0;
  return { name, ops, totalMs, opsPerSec: (ops * 1000) / totalMs, meanMs: totalMs / ops };
}

const emu = await startEmulator({
  timeScale: 1,
  seed: { regions: { [REGION]: { generate: { count: FLEET, idPrefix: 'i-bench' } } } },
});
try {
  const client = new OpenApi(
    new $OpenApiUtil.Config({
      accessKeyId: DEMO_ACCESS_KEY.id,
      accessKeySecret: DEMO_ACCESS_KEY.secret,
      endpoint: emu.endpoint,
      protocol: 'HTTP',
      regionId: REGION,
    }),
  );
  const rpc = (action: string, version: string, query: Record<string, unknown>) =>
    client.callApi(
      rpcParams(action, version),
      new $OpenApiUtil.OpenApiRequest({ query: OpenApiUtil.query(query) }),
      new $dara.RuntimeOptions({}),
    ) as Promise<{ body: Record<string, unknown> }>;

  const raw = await measure('raw HTTP round-trip (control GET /healthz)', 1000, async () => {
    const r = await fetch(`${emu.controlUrl}/healthz`);
    await r.arrayBuffer();
  });
  const noop = await measure('signed ListPatchBaselines (SDK, ACS3)', 1000, async () => {
    await rpc('ListPatchBaselines', '2019-06-01', { RegionId: REGION });
  });
  let token = '';
  let pages = 0;
  const describe = await measure(
    `DescribeInstances page (MaxResults 100, ${FLEET} instances)`,
    1000,
    async () => {
      const r = await rpc('DescribeInstances', '2014-05-26', {
        RegionId: REGION,
        MaxResults: 100,
        ...(token ? { NextToken: token } : {}),
      });
      token = String(r.body['NextToken'] ?? '');
      pages++;
    },
  );
  const startExec = await measure('StartExecution (BulkyRunCommand, 10 targets)', 500, async (i) => {
    const ids = Array.from(
      { length: 10 },
      (_, k) => `i-bench${String(((i * 10 + k) % FLEET) + 1).padStart(5, '0')}`,
    );
    await rpc('StartExecution', '2019-06-01', {
      RegionId: REGION,
      TemplateName: RUN_COMMAND_TEMPLATE,
      Parameters: JSON.stringify({
        commandContent: 'true',
        targets: { Type: 'ResourceIds', RegionId: REGION, ResourceIds: ids },
      }),
    });
  });
  const results = [raw, noop, describe, startExec];
  const rows = results.map((r) => ({
    ...r,
    vsRaw: r.meanMs / raw.meanMs,
    vsSignedNoop: r.meanMs / noop.meanMs,
  }));
  const md = [
    '# Emulator benchmark',
    '',
    `Run: ${new Date().toISOString()} · Node ${process.version} · fleet ${FLEET} instances · sequential requests (one in flight) through @alicloud/openapi-core 1.0.8 over HTTP on 127.0.0.1.`,
    `DescribeInstances pages walked: ${pages} (wrapping around the fleet).`,
    '',
    '| operation | ops | mean ms | ops/s | × raw HTTP | × signed no-op |',
    '|---|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.name} | ${r.ops} | ${r.meanMs.toFixed(3)} | ${r.opsPerSec.toFixed(0)} | ${r.vsRaw.toFixed(2)} | ${r.vsSignedNoop.toFixed(2)} |`,
    ),
    '',
    'Ratios compare mean latency with the baselines measured in the same run, so they hold across machines better than absolute numbers.',
    '',
  ].join('\n');
  const dir = fileURLToPath(new URL('../../bench/results/', import.meta.url));
  await mkdir(dir, { recursive: true });
  await writeFile(`${dir}emulator.md`, md);
  await writeFile(
    `${dir}emulator.json`,
    `${JSON.stringify({ date: new Date().toISOString(), node: process.version, fleet: FLEET, results: rows }, null, 2)}\n`,
  );
  process.stdout.write(md);
} finally {
  await emu.stop();
}
