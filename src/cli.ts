#!/usr/bin/env node
/**
 * `ecsops` command line:
 *   ecsops controller [flags]   run the controller (default command; `--help` lists every flag)
 *   ecsops emulator [flags]     run the OOS/ECS emulator (see docs/emulator.md)
 *   ecsops crds                 print the CustomResourceDefinitions as YAML
 *   ecsops ram-policy [--kinds K,…]  print the minimal RAM policy (JSON) of all or some kinds
 *   ecsops plan -f <manifest>   what the controller would do, from live cloud reads (no writes)
 *   ecsops get <kind> <name>    draw a resource as a tree; -w redraws on every change (also `kubectl ecsops get`)
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { stringify } from 'yaml';
import { buildCrd, definitions } from './api/crds.js';
import { RAM_KINDS, ramPolicyFor, type RamKind } from './cloud/ram-actions.js';
import { addControllerOptions, toConfig } from './config.js';
import { startController, VERSION_STRING } from './main.js';
import { addGetCommand } from './get/cli.js';
import { addPlanCommand } from './plan/cli.js';

async function runController(opts: Record<string, unknown>): Promise<void> {
  const cfg = toConfig(opts);
  const running = await startController(cfg);
  const shutdown = (signal: string): void => {
    running.logger.info({ signal }, 'shutting down');
    running
      .stop()
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        running.logger.error({ err }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

export function buildProgram(): Command {
  const program = new Command('ecsops')
    .description('Kubernetes controller keeping Alibaba Cloud ECS fleets in a declared state')
    .version(VERSION_STRING);
  addControllerOptions(
    program
      .command('controller', { isDefault: true })
      .description('run the controller against the current kubeconfig and Alibaba Cloud credentials'),
  ).action(async (_opts: unknown, cmd: Command) => runController(cmd.opts()));
  program
    .command('emulator')
    .description(
      'run the Alibaba Cloud OOS/ECS emulator (flags: --port, --control-port, --seed, --time-scale, --host, --sandbox, --request-log, --ram-policy)',
    )
    .allowUnknownOption()
    .helpOption(false)
    .argument('[args...]')
    .action(async (args: string[]) => {
      const { runEmulatorCli } = await import('./emulator/cli.js');
      await runEmulatorCli(args);
    });
  program
    .command('crds')
    .description('print the CustomResourceDefinitions (YAML)')
    .action(() => {
      process.stdout.write(definitions.map((d) => stringify(buildCrd(d), { lineWidth: 0 })).join('---\n'));
    });
  program
    .command('ram-policy')
    .description('print the minimal Alibaba Cloud RAM policy (JSON) the controller needs (docs/deploy.md §4)')
    .option(
      '--kinds <kinds>',
      `comma-separated kinds (${RAM_KINDS.join(', ')}); default all`,
      (v: string): RamKind[] =>
        v.split(',').map((k) => {
          const kind = RAM_KINDS.find((x) => x.toLowerCase() === k.trim().toLowerCase());
          if (!kind) throw new InvalidArgumentError(`unknown kind "${k}" (one of ${RAM_KINDS.join(', ')})`);
          return kind;
        }),
    )
    .action((o: { kinds?: RamKind[] }) => {
      process.stdout.write(`${JSON.stringify(ramPolicyFor(o.kinds ?? RAM_KINDS), null, 2)}\n`);
    });
  addPlanCommand(program, VERSION_STRING);
  addGetCommand(program);
  return program;
}

buildProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    // Commander has already printed its own errors (and help); only pass its exit code on.
    if (err instanceof CommanderError) process.exit(err.exitCode);
    process.stderr.write(`ecsops: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
