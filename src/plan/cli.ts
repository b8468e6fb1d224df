/**
 * `ecsops plan -f <manifest> [-o table|json] [--detailed-exitcode] [--kubeconfig F]`: prints what
 * the controller would do for each ecsops.io document of a manifest, from live cloud state,
 * writing nothing (see ./index.ts); with `--kubeconfig`, each document's stored status is read
 * (GET) so requests the controller already handled are not predicted again.
 * Cloud credentials come from the same default chain as the controller (environment AccessKey,
 * RRSA, profile, ECS RAM role); `--oos-endpoint` / `--ecs-endpoint` point it at the emulator.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { Option } from 'commander';
import pino from 'pino';
import { parseAllDocuments } from 'yaml';
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { GROUP, VERSION } from '../api/common.js';
import { definitions } from '../api/crds.js';
import { createCloudClients } from '../cloud/index.js';
import { createRegistry } from '../metrics/index.js';
import { createLogger } from '../runtime/logger.js';
import { formatPlans, planExitCode, planManifest, type ManifestObject } from './index.js';

interface PlanOptions {
  filename: string;
  output: 'table' | 'json';
  oosEndpoint?: string;
  ecsEndpoint?: string;
  cloudProtocol: 'HTTPS' | 'HTTP';
  detailedExitcode?: boolean;
  kubeconfig?: string;
}

/**
 * Adds the stored object's `status` and `metadata.creationTimestamp` to each ecsops.io document
 * that carries no status, read with one GET per document (the `get` verb only) through the
 * kubeconfig at `file`. The namespace is the document's, else `default`. A document the cluster
 * does not have is left as it is (planned as a new object).
 * @throws the client's error for anything but 404 (unreachable API server, forbidden).
 */
export async function withStoredStatus(docs: ManifestObject[], file: string): Promise<ManifestObject[]> {
  const kc = new KubeConfig();
  kc.loadFromFile(file);
  const api = kc.makeApiClient(CustomObjectsApi);
  const out: ManifestObject[] = [];
  for (const doc of docs) {
    const def = definitions.find((d) => d.kind === doc.kind);
    const name = doc.metadata?.name;
    if (!def || !name || !doc.apiVersion?.startsWith(`${GROUP}/`) || doc.status !== undefined) {
      out.push(doc);
      continue;
    }
    try {
      const ref = { group: GROUP, version: VERSION, plural: def.plural, name };
      const live = (await (def.scope === 'Cluster'
        ? api.getClusterCustomObject(ref) // InstanceDisruptionBudget
        : api.getNamespacedCustomObject({
            ...ref,
            namespace: doc.metadata?.namespace ?? 'default',
          }))) as ManifestObject;
      out.push({
        ...doc,
        metadata: { ...doc.metadata, creationTimestamp: String(live.metadata?.creationTimestamp ?? '') },
        status: live.status ?? {},
      });
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
      out.push(doc);
    }
  }
  return out;
}

/** Reads the YAML documents of `file` (`-` = stdin). @throws Error on a YAML syntax error. */
export function readManifest(file: string): ManifestObject[] {
  const text = readFileSync(file === '-' ? 0 : file, 'utf8');
  const out: ManifestObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]?.message}`);
    const obj = doc.toJS() as ManifestObject | null;
    if (obj?.kind) out.push(obj);
  }
  return out;
}

/**
 * Runs the plan and writes it to stdout; cloud logs (warnings only) go to stderr. Sets
 * `process.exitCode`: 1 when a document has a spec problem (`Stalled`); with
 * `--detailed-exitcode` also 2 when work would start at the next reconcile (see
 * {@link planExitCode}); 0 otherwise. A cloud failure throws (commander exits 1).
 */
export async function runPlan(opts: PlanOptions, version: string): Promise<void> {
  const read = readManifest(opts.filename);
  const docs = opts.kubeconfig ? await withStoredStatus(read, opts.kubeconfig) : read;
  const logger = createLogger({ level: 'warn', destination: pino.destination({ dest: 2, sync: true }) });
  const cloud = createCloudClients(
    {
      endpointOverride: { oos: opts.oosEndpoint, ecs: opts.ecsEndpoint },
      protocol: opts.cloudProtocol,
      userAgent: `ecsops-plan/${version}`,
    },
    { registry: createRegistry(), logger },
  );
  const plans = await planManifest(docs, cloud);
  process.stdout.write(opts.output === 'json' ? `${JSON.stringify(plans, null, 2)}\n` : formatPlans(plans));
  const code = planExitCode(plans);
  process.exitCode = code === 2 && !opts.detailedExitcode ? 0 : code;
}

/** Adds the `plan` subcommand to `program`. */
export function addPlanCommand(program: Command, version: string): void {
  program
    .command('plan')
    .description('show what the controller would do for a manifest (live cloud reads, never a write)')
    .requiredOption('-f, --filename <file>', 'manifest (YAML, several documents allowed; - for stdin)')
    .addOption(
      new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'),
    )
    .option(
      '--kubeconfig <file>',
      "read each document's stored status from this cluster (GET only), so handled requests count as handled",
    )
    .option(
      '--detailed-exitcode',
      'exit 0 when nothing would start, 2 when work would start at the next reconcile, 1 on errors or Stalled specs (Terraform convention)',
    )
    .addOption(
      new Option('--oos-endpoint <host:port>', 'override the OOS endpoint (emulator)').env(
        'ECSOPS_OOS_ENDPOINT',
      ),
    )
    .addOption(
      new Option('--ecs-endpoint <host:port>', 'override the ECS endpoint (emulator)').env(
        'ECSOPS_ECS_ENDPOINT',
      ),
    )
    .addOption(
      new Option('--cloud-protocol <protocol>', 'HTTPS or HTTP (emulator)')
        .choices(['HTTPS', 'HTTP'])
        .default('HTTPS')
        .env('ECSOPS_CLOUD_PROTOCOL'),
    )
    .action(async (opts: PlanOptions) => runPlan(opts, version));
}
