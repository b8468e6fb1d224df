/**
 * `ecsops plan -f <manifest> [-o table|json]`: prints what the controller would do for each
 * ecsops.io document of a manifest, from live cloud state, writing nothing (see ./index.ts).
 * Cloud credentials come from the same default chain as the controller (environment AccessKey,
 * RRSA, profile, ECS RAM role); `--oos-endpoint` / `--ecs-endpoint` point it at the emulator.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { Option } from 'commander';
import pino from 'pino';
import { parseAllDocuments } from 'yaml';
import { createCloudClients } from '../cloud/index.js';
import { createRegistry } from '../metrics/index.js';
import { createLogger } from '../runtime/logger.js';
import { formatPlans, planManifest, type ManifestObject } from './index.js';

interface PlanOptions {
  filename: string;
  output: 'table' | 'json';
  oosEndpoint?: string;
  ecsEndpoint?: string;
  cloudProtocol: 'HTTPS' | 'HTTP';
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

/** Runs the plan and writes it to stdout; cloud logs (warnings only) go to stderr. */
export async function runPlan(opts: PlanOptions, version: string): Promise<void> {
  const docs = readManifest(opts.filename);
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
