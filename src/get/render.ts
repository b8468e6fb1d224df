/**
 * `renderResource`: an ecsops object in, lines of text out — the pure core of `ecsops get`.
 * Each kind has a view function (./apprelease.ts, ./patchpolicy.ts, ./ecsextension.ts,
 * ./maintenancewindow.ts) that builds a header and a tree; ./tree.ts draws them.
 */
import type { AppRelease } from '../api/apprelease.js';
import type { EcsExtension } from '../api/ecsextension.js';
import type { MaintenanceWindow } from '../api/maintenancewindow.js';
import type { PatchPolicy } from '../api/patchpolicy.js';
import { appReleaseView } from './apprelease.js';
import { ecsExtensionView } from './ecsextension.js';
import { maintenanceWindowView } from './maintenancewindow.js';
import { patchPolicyView } from './patchpolicy.js';
import { painter } from './style.js';
import { drawView, type View } from './tree.js';

/** Options of {@link renderResource}. */
export interface RenderOptions {
  /** The time AGE columns and "in 4d" distances are computed at. */
  now: Date;
  /** ANSI colours (only for a terminal). Default false. */
  color?: boolean;
  /** Terminal width in columns: INFO is cut and header values wrapped to fit. Default: no limit. */
  width?: number;
}

const VIEWS: Record<string, (obj: never, now: Date) => View> = {
  AppRelease: (obj: AppRelease, now) => appReleaseView(obj, now),
  PatchPolicy: (obj: PatchPolicy, now) => patchPolicyView(obj, now),
  EcsExtension: (obj: EcsExtension, now) => ecsExtensionView(obj, now),
  MaintenanceWindow: (obj: MaintenanceWindow, now) => maintenanceWindowView(obj, now),
};

/**
 * Draws an ecsops object (raw JSON as the API server returns it; `kind` decides the view) as a
 * header and a tree, one string per line, without trailing newlines. Text from the object is
 * cleaned of control characters, so status written by a host cannot drive the terminal.
 * @throws Error when `obj.kind` is not an ecsops kind.
 */
export function renderResource(obj: { kind?: string }, opts: RenderOptions): string[] {
  const view = VIEWS[obj.kind ?? ''];
  if (!view) throw new Error(`no tree view for kind ${JSON.stringify(obj.kind)}`);
  return drawView(view(obj as never, opts.now), {
    now: opts.now,
    paint: painter(opts.color ?? false),
    width: opts.width,
  });
}
