/**
 * The shared trackers against the emulator through the real cloud layer: the same interface over
 * OOS executions and Cloud Assistant invocations (start in batches with deterministic
 * ClientTokens and owner tags, adopt after a crash, poll into per-instance outcomes).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EcsExtension } from '../../src/api/ecsextension.js';
import { DomainMetrics } from '../../src/controllers/shared/metrics.js';
import { InvocationTracker } from '../../src/controllers/shared/invocation-tracker.js';
import { WorkKit, type WorkScope } from '../../src/controllers/shared/start.js';
import type { StartRequest, WorkItem, WorkTracker } from '../../src/controllers/shared/work.js';
import { createLogger } from '../../src/runtime/logger.js';
import { createRegistry } from '../../src/metrics/index.js';
import {
  fleetIds,
  fleetSeed,
  RecordingEvents,
  REGION,
  startFastStack,
  type FastStack,
} from '../harness/fast.js';

const owner: EcsExtension = {
  apiVersion: 'ecsops.io/v1alpha1',
  kind: 'AppRelease',
  metadata: { name: 'shop', namespace: 'team-a', uid: '6f1c2a8e-1111-4d2a-9c1f-000000000001', generation: 3 },
  spec: { regionId: REGION, targets: { instanceIds: ['i-x'] }, packageName: 'unused' },
};

/** Starts `req` through the kit's start path (no lock, no status) and returns what is in flight. */
async function startVia(tracker: WorkTracker, req: StartRequest): Promise<WorkItem[]> {
  const scope: WorkScope = {
    obj: owner,
    ctx: { log: createLogger({ level: 'silent' }), reconcileID: 't', signal: new AbortController().signal },
    now: new Date(),
    writesAllowed: true,
    tracker,
    inFlight: [],
  };
  await new WorkKit().start(scope, req);
  return scope.inFlight;
}

async function pollUntilDone(t: WorkTracker, items: WorkItem[]) {
  let running = items;
  const finished = [];
  for (let i = 0; i < 300 && running.length > 0; i++) {
    const r = await t.poll(owner, running);
    finished.push(...r.finished);
    running = r.running;
    if (running.length > 0) await sleep(10);
  }
  expect(running).toHaveLength(0);
  return finished;
}

describe('InvocationTracker (Cloud Assistant)', () => {
  let s: FastStack;
  let tracker: InvocationTracker;
  const events = new RecordingEvents();
  beforeAll(async () => {
    s = await startFastStack({ seed: fleetSeed('ca', 150) });
    await s.emu.control.scriptInvocation({
      instanceId: 'i-ca0007',
      exitCode: 3,
      output: 'start hook failed\n',
    });
    tracker = new InvocationTracker({
      ecs: s.cloud.ecs(REGION),
      metricLabel: 'RunCommand',
      events,
      metrics: new DomainMetrics(createRegistry({ defaultMetrics: false })),
      command: (batch, action) => ({
        type: 'RunShellScript',
        commandContent: `echo ${action} ${batch.length}`,
        timeoutSeconds: 60,
      }),
    });
  });
  afterAll(() => s.stop());

  it('runs 150 instances in 2 RunCommand batches and folds per-instance outcomes', async () => {
    const sink = await startVia(tracker, {
      round: 1,
      action: 'deploy',
      instanceIds: fleetIds('ca', 1, 150),
      describe: 'deploy 1.4.2',
    });
    expect(sink.map((w) => w.instanceIds.length)).toEqual([100, 50]);
    const finished = await pollUntilDone(tracker, sink);
    const outcomes = finished.flatMap((f) => f.outcomes);
    expect(outcomes).toHaveLength(150);
    const bad = outcomes.filter((o) => !o.ok);
    expect(bad).toEqual([
      {
        instanceId: 'i-ca0007',
        ok: false,
        exitCode: 3,
        output: 'start hook failed\n',
        message: 'the process exited with code 3',
      },
    ]);
    expect(events.events.filter((e) => e.reason === 'ExecutionStarted')).toHaveLength(2);
    expect(events.events.some((e) => e.reason === 'ExecutionFailed' && e.note.includes('i-ca0007'))).toBe(
      true,
    );
  });

  it('starts nothing twice for the same batch (ClientToken) and adopts running work by owner tag', async () => {
    await s.emu.control.scriptInvocation({ contains: 'slow', delayMs: 600_000 });
    const slow = new InvocationTracker({
      ecs: s.cloud.ecs(REGION),
      metricLabel: 'RunCommand',
      events,
      metrics: new DomainMetrics(createRegistry({ defaultMetrics: false })),
      command: () => ({ type: 'RunShellScript', commandContent: 'echo slow', timeoutSeconds: 3600 }),
    });
    const req = { round: 2, action: 'deploy', instanceIds: fleetIds('ca', 1, 10), describe: 'x' };
    const a = await startVia(slow, req);
    const b = await startVia(slow, req); // a crash before the status write, then a retry
    expect(b[0]?.executionId).toBe(a[0]?.executionId);
    const adopted = await slow.adopt(owner, new Set(), new Date());
    expect(adopted.map((w) => w.executionId)).toEqual([a[0]?.executionId]);
    expect(adopted[0]?.instanceIds).toHaveLength(10);
    expect(await slow.adopt(owner, new Set([a[0]?.executionId ?? '']), new Date())).toEqual([]);
  });
});
