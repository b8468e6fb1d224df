/**
 * `ecsops get <kind> <name> [-n ns] [--kubeconfig f] [--context c] [-w] [--no-color]` (also
 * `kubectl ecsops get ...` through the `kubectl-ecsops` plugin binary): draws the object as a
 * tree (./render.ts). With `--watch` it follows the object (./watch.ts) and redraws on every
 * change: on a terminal in place (and every few seconds, so ages move), elsewhere as a new block
 * per change. Colours only on a terminal, never with `--no-color` or `NO_COLOR`.
 */
import { KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import type { Command } from 'commander';
import { resolveKind } from './kinds.js';
import { renderResource } from './render.js';
import { painter } from './style.js';
import { errorSummary, httpStatusOf } from '../runtime/sanitize.js';
import { followObject, kubeObjectSource, type ObjectSource } from './watch.js';

/** Flags of `ecsops get`. */
export interface GetOptions {
  namespace?: string;
  kubeconfig?: string;
  context?: string;
  watch?: boolean;
  /** false with `--no-color`. */
  color?: boolean;
}

/** Where `ecsops get` writes (process.stdout in the CLI; a buffer in tests). */
export interface Output {
  write(text: string): unknown;
  isTTY?: boolean;
  /** Terminal width in columns (TTY only). */
  columns?: number;
}

/** What {@link runGet} needs from its surroundings; the CLI passes the process's. */
export interface GetDeps {
  stdout: Output;
  stderr: { write(text: string): unknown };
  env: Record<string, string | undefined>;
  /** Aborting it ends `--watch` (the CLI aborts on SIGINT / SIGTERM). */
  signal: AbortSignal;
  now?: () => Date;
  /** Used instead of loading one from `--kubeconfig` / the default locations. */
  kubeConfig?: KubeConfig;
  /** Used instead of the API server (tests). */
  source?: ObjectSource<KubernetesObject>;
  /** Redraw period on a terminal while watching, milliseconds (ages move); default 5000, 0 = off. */
  tickMs?: number;
  /** First retry delay of the watch after an error, milliseconds (default 1000). */
  retryMs?: number;
}

/**
 * Loads the kubeconfig: `path`, else $KUBECONFIG / ~/.kube/config / in-cluster; then `context`.
 * @throws Error when the file cannot be read or the context does not exist.
 */
export function loadGetKubeConfig(path: string | undefined, context: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  if (context) {
    if (!kc.getContextObject(context)) throw new Error(`context "${context}" not found in the kubeconfig`);
    kc.setCurrentContext(context);
  }
  return kc;
}

/**
 * A one-line description of an API error: for 404, that the kind is not served (CRDs missing);
 * otherwise the sanitized {@link errorSummary} (the Kubernetes Status message or the network cause).
 */
export function describeError(err: unknown, resource: string): string {
  if (httpStatusOf(err) === 404) return `the server has no ${resource} (are the ecsops CRDs installed?)`;
  return errorSummary(err);
}

function clock(d: Date): string {
  return d.toISOString().slice(11, 19);
}

/**
 * Runs `ecsops get`: draws the object once, or with `opts.watch` follows it until `deps.signal`
 * aborts.
 * @throws Error (message ready for the user) for an unknown kind, a missing object, or an API
 *   error before anything was drawn.
 */
export async function runGet(
  kindArg: string,
  nameArg: string | undefined,
  opts: GetOptions,
  deps: GetDeps,
): Promise<void> {
  let kindText = kindArg;
  let name = nameArg;
  if (kindArg.includes('/') && name === undefined) [kindText = '', name] = kindArg.split('/', 2);
  if (!name) throw new Error('a resource name is required: ecsops get <kind> <name>');
  const kind = resolveKind(kindText);
  const kc = deps.kubeConfig ?? (deps.source ? undefined : loadGetKubeConfig(opts.kubeconfig, opts.context));
  const namespace =
    opts.namespace ?? (kc ? kc.getContextObject(kc.getCurrentContext())?.namespace : undefined) ?? 'default';
  const resource = `${kind.plural}.${kind.group}`;
  const source =
    deps.source ??
    kubeObjectSource(kc!, { group: kind.group, version: kind.version, plural: kind.plural, namespace, name });
  const now = deps.now ?? (() => new Date());
  const tty = deps.stdout.isTTY === true;
  const color = tty && opts.color !== false && !deps.env.NO_COLOR && deps.env.TERM !== 'dumb';
  const paint = painter(color);
  const notFound = `${resource} "${name}" not found in namespace "${namespace}"`;
  const frame = (obj: KubernetesObject | undefined): string[] =>
    obj
      ? renderResource(obj, { now: now(), color, width: tty ? deps.stdout.columns : undefined })
      : [`${kind.kind} ${namespace}/${name} was deleted; waiting for it to come back`];

  if (!opts.watch) {
    let listed;
    try {
      listed = await source.list();
    } catch (err) {
      throw new Error(describeError(err, resource), { cause: err });
    }
    if (!listed.object) throw new Error(notFound);
    deps.stdout.write(`${frame(listed.object).join('\n')}\n`);
    return;
  }

  let last: KubernetesObject | undefined;
  let seen = false;
  let lastText = '';
  let footer = '';
  const draw = (): void => {
    const lines = frame(last);
    if (tty) {
      // Home, clear screen, the frame, then a status line.
      deps.stdout.write(`\u001b[H\u001b[2J${lines.join('\n')}\n\n${paint(footer, 'dim')}\n`);
      return;
    }
    const text = lines.join('\n');
    if (text === lastText) return;
    deps.stdout.write(`${lastText ? '\n' : ''}${text}\n`);
    lastText = text;
  };
  const target = `${kind.plural}/${name} in ${namespace}`;
  const ticker =
    tty && (deps.tickMs ?? 5000) > 0 ? setInterval(() => seen && draw(), deps.tickMs ?? 5000) : undefined;
  ticker?.unref();
  const stop = new AbortController();
  const onAbort = (): void => stop.abort();
  deps.signal.addEventListener('abort', onAbort, { once: true });
  if (deps.signal.aborted) stop.abort();
  try {
    await followObject(
      source,
      {
        onObject: (obj) => {
          if (!seen && !obj) {
            stop.abort(new Error(notFound));
            return;
          }
          seen = true;
          last = obj;
          footer = `watching ${target}; last change ${clock(now())}; Ctrl-C to stop`;
          draw();
        },
        onError: (err, retryInMs) => {
          const text = `${describeError(err, resource)}; retrying in ${Math.round(retryInMs / 1000)}s`;
          if (tty) {
            footer = `watching ${target}: ${text}`;
            draw();
          } else deps.stderr.write(`ecsops get: ${text}\n`);
        },
      },
      stop.signal,
      { minBackoffMs: deps.retryMs },
    );
  } catch (err) {
    throw new Error(describeError(err, resource), { cause: err });
  } finally {
    if (ticker) clearInterval(ticker);
    deps.signal.removeEventListener('abort', onAbort);
  }
  if (stop.signal.reason instanceof Error && !deps.signal.aborted) throw stop.signal.reason;
}

/** Adds the `get` subcommand to `program` (the ecsops CLI and the kubectl plugin). */
export function addGetCommand(program: Command): Command {
  return program
    .command('get')
    .description(
      'draw an AppRelease, PatchPolicy, EcsExtension or MaintenanceWindow as a tree; --watch redraws on every change',
    )
    .argument(
      '<kind>',
      'kind, singular, plural or short name (apprelease, appreleases, apprel, ...), or kind/name',
    )
    .argument('[name]', 'object name')
    .option('-n, --namespace <namespace>', "namespace (default: the kubeconfig context's, else default)")
    .option('--kubeconfig <path>', 'kubeconfig file; default: $KUBECONFIG, ~/.kube/config, then in-cluster')
    .option('--context <name>', 'kubeconfig context (default: the current one)')
    .option('-w, --watch', 'follow the object and redraw on every change (Ctrl-C stops)')
    .option('--no-color', 'no colours, even on a terminal (NO_COLOR does the same)')
    .action(async (kind: string, name: string | undefined, opts: GetOptions) => {
      const controller = new AbortController();
      const stop = (): void => controller.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        await runGet(kind, name, opts, {
          stdout: process.stdout,
          stderr: process.stderr,
          env: process.env,
          signal: controller.signal,
        });
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    });
}
