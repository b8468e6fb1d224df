import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { DEMO_ACCESS_KEY, loadSeedFile, startEmulator } from './index.js';
import type { Seed } from './seed.js';

function intArg(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError('expected a port number 0-65535');
  return n;
}

function scaleArg(v: string): number {
  const n = Number(v);
  if (!(n > 0)) throw new InvalidArgumentError('expected a positive number');
  return n;
}

/**
 * `ecsops emulator --port N --control-port N --seed fleet.yaml --time-scale X [--host H]`:
 * starts the emulator, prints the endpoint, the control URL and the demo AccessKey pair, and runs
 * until SIGINT/SIGTERM. `argv` are the arguments after `emulator` (no node/script prefix).
 * With `--help` / `-h`, prints the help to stdout and returns without starting anything.
 * @returns after the emulator stopped on a signal, or at once after `--help`.
 * @throws CommanderError on invalid flags (commander has already printed `error: ...` to stderr;
 *   its `exitCode` is the one to exit with), Error when the seed file cannot be read.
 */
export async function runEmulatorCli(argv: string[]): Promise<void> {
  const program = new Command('emulator')
    .description('Run the Alibaba Cloud OOS + ECS emulator')
    .option('--host <host>', 'listen address', '127.0.0.1')
    .option('--port <port>', 'API port (0 = ephemeral)', intArg, 8090)
    .option('--control-port <port>', 'control API port (0 = ephemeral)', intArg, 8091)
    .option('--seed <file>', 'seed YAML file (instances, package templates)')
    .option('--time-scale <x>', 'multiplier of modelled durations', scaleArg, 1)
    .option('--sandbox', 'really run RunShellScript commands with bash on this machine (opt-in)', false)
    .exitOverride();
  try {
    program.parse(argv, { from: 'user' });
  } catch (err) {
    // `--help` (already printed by commander) is a request, not a failure.
    if (err instanceof CommanderError && err.code === 'commander.helpDisplayed') return;
    throw err;
  }
  const o = program.opts<{
    host: string;
    port: number;
    controlPort: number;
    seed?: string;
    timeScale: number;
    sandbox: boolean;
  }>();
  const seed: Seed | undefined = o.seed ? await loadSeedFile(o.seed) : undefined;
  const emu = await startEmulator({
    host: o.host,
    port: o.port,
    controlPort: o.controlPort,
    seed,
    timeScale: o.timeScale,
    sandbox: o.sandbox,
  });
  const out = (s: string) => process.stdout.write(`${s}\n`);
  out(`emulator endpoint:  ${emu.endpoint}   (SDK Config: protocol 'HTTP', endpoint '${emu.endpoint}')`);
  out(`control API:        ${emu.controlUrl}`);
  out(`demo AccessKey ID:  ${DEMO_ACCESS_KEY.id}`);
  out(`demo AccessKey secret (public, fake): ${DEMO_ACCESS_KEY.secret}`);
  await new Promise<void>((resolve) => {
    const onSignal = () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  await emu.stop();
}
