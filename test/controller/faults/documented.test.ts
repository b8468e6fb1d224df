/**
 * Behaviour the fault matrix found and that is documented, not a defect: pinned here so the
 * matrix's allowance for it stays tied to the documented contract.
 */
import { describe, expect, it } from 'vitest';
import { NO_FAULT, runExtSchedule } from '../../harness/faults-scenarios.js';

describe('fault matrix finding: an instance unreachable at deletion keeps the package (documented)', () => {
  // Shrunk by the matrix (seed 20261207): uninstall with Cloud Assistant offline on i-fx0001. The
  // EcsExtension deletion path skips unreachable instances with an UninstallSkipped Warning Event
  // naming them (src/controllers/ecsextension/delete.ts) and removes the finalizer, so the healed
  // instance keeps the package. The matrix accepts exactly the instances named in that Event.
  it('the shrunk schedule holds every invariant, the skip named in a Warning Event', async () => {
    const v = await runExtSchedule(
      {
        'StartExecution:install': NO_FAULT,
        'StartExecution:update': NO_FAULT,
        'StartExecution:uninstall': { fault: 'agentOffline', extra: 0, pick: 0, variant: false },
      },
      { count: 60 },
    );
    expect(v).toEqual([]);
  });
});
