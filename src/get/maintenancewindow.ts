/**
 * The `ecsops get maintenancewindow` view: the window and its next occurrence (a MaintenanceWindow
 * runs nothing itself; the PatchPolicies that reference it show their installs under it).
 */
import type { MaintenanceWindow } from '../api/maintenancewindow.js';
import { identityFields, readinessWord, statusFields } from './common.js';
import { statusOf, when } from './style.js';
import type { HeaderField, TreeNode, View } from './tree.js';

/**
 * The view of a MaintenanceWindow: header (status, schedule, blackout dates) and a one-node
 * tree saying whether it is open and when it next opens and closes.
 * @param obj the object as read from the API server (status may be absent).
 * @param now the time the "in 4d" distances are computed at.
 */
export function maintenanceWindowView(obj: MaintenanceWindow, now: Date): View {
  const st = obj.status ?? {};
  const spec = obj.spec ?? ({} as MaintenanceWindow['spec']);
  const header: HeaderField[] = [
    ...identityFields(obj, 'MaintenanceWindow', now),
    ...statusFields(obj, readinessWord(obj)),
    {
      label: 'Schedule',
      value: `${spec.schedule ?? ''} for ${spec.duration ?? ''}, ${spec.timeZone ?? 'UTC'}`,
    },
  ];
  if (spec.blackoutDates?.length) header.push({ label: 'Blackout', value: spec.blackoutDates.join(', ') });
  const info: string[] = [];
  if (st.open && st.nextClose) info.push(`closes ${when(st.nextClose, now)}`);
  if (!st.open && st.nextOpen) info.push(`opens ${when(st.nextOpen, now)}`);
  if (!st.open && st.nextClose) info.push(`until ${st.nextClose}`);
  const tree: TreeNode = {
    icon: '◷',
    name: obj.metadata?.name ?? '',
    kind: 'MaintenanceWindow',
    status: statusOf(st.open === undefined ? 'Unknown' : st.open ? 'Open' : 'Closed'),
    time: st.open ? st.opensAt : undefined,
    info,
  };
  return { header, tree };
}
