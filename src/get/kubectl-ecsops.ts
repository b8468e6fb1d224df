#!/usr/bin/env node
/**
 * The `kubectl-ecsops` binary: installed on the PATH (npm `bin`), kubectl finds it as the plugin
 * `kubectl ecsops`. It carries only the read-only `get` command — never the controller, which is
 * the default command of `ecsops` — so `kubectl ecsops` alone prints help:
 *
 *   kubectl ecsops get apprelease web --watch
 */
import { Command, CommanderError } from 'commander';
import { addGetCommand } from './cli.js';

const program = new Command('kubectl ecsops').description(
  'ecsops views for kubectl: draw AppRelease, PatchPolicy, EcsExtension and MaintenanceWindow objects as trees',
);
addGetCommand(program);
program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  process.stderr.write(`kubectl ecsops: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
