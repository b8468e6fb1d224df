/**
 * Changes made by "another tool" (issue 25): public API calls through the real SDK with the demo
 * key and no ecsops tags, exactly what the change feed must notice — an OOS execution of the
 * package template, or a direct `UpdateInstancePackageState` (no execution; ActionTrail only).
 */
import { CONFIGURE_PACKAGE_TEMPLATE } from '../../src/api/ecsextension.js';
import { DEMO_ACCESS_KEY, type Emulator } from '../../src/emulator/index.js';
import { call, sdkClient, waitFor } from '../unit/emulator/helpers.js';

/** A foreign OOS execution of the package template on `ids`; resolves once it finished. @returns its ID. */
export async function foreignExecution(
  emu: Pick<Emulator, 'endpoint' | 'control'>,
  regionId: string,
  packageName: string,
  action: 'install' | 'uninstall',
  ids: string[],
): Promise<string> {
  const r = (await call(sdkClient(emu.endpoint, DEMO_ACCESS_KEY), 'oos', 'StartExecution', {
    RegionId: regionId,
    TemplateName: CONFIGURE_PACKAGE_TEMPLATE,
    Parameters: JSON.stringify({
      action,
      packageName,
      targets: { Type: 'ResourceIds', RegionId: regionId, ResourceIds: ids },
      rateControl: { Mode: 'Concurrency', MaxErrors: 0, Concurrency: 10 },
    }),
  })) as { Execution: { ExecutionId: string } };
  const id = r.Execution.ExecutionId;
  await waitFor(async () => {
    const e = await emu.control.getExecution(id);
    return e && ['Success', 'Failed', 'Cancelled'].includes(e.status);
  });
  return id;
}

/** A direct OOS `UpdateInstancePackageState` (`ConfigureAction`) on one instance by another tool. */
export async function directPackageWrite(
  endpoint: string,
  regionId: string,
  instanceId: string,
  packageName: string,
  action: 'install' | 'uninstall' = 'uninstall',
): Promise<void> {
  await call(sdkClient(endpoint, DEMO_ACCESS_KEY), 'oos', 'UpdateInstancePackageState', {
    RegionId: regionId,
    InstanceId: instanceId,
    TemplateName: packageName,
    ConfigureAction: action,
  });
}
