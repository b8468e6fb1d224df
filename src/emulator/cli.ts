import { createWriteStream, type WriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { ramPolicyFor } from '../cloud/ram-actions.js';
import { DEMO_ACCESS_KEY, loadSeedFile, startEmulator, type Emulator } from './index.js';
import type { Seed } from './seed.js';

function intArg(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError('expected a port number 0-65535');
  return n;
}

function msArg(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected milliseconds >= 0');
  return n;
}

function scaleArg(v: string): number {
  const n = Number(v);
  if (!(n > 0)) throw new InvalidArgumentError('expected a positive number');
  return n;
}

/**
 * Opens `path` for appending (a buffered stream, not a synchronous write per line).
 * @throws Error when the file cannot be opened.
 */
async function openRequestLog(path: string): Promise<WriteStream> {
  const stream = createWriteStream(path, { flags: 'a' });
  await new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', reject);
  });
  return stream;
}

/**
 * Reads a `--ram-policy` argument (emulator CLI and scripts/local.ts): `generated` =
 * {@link ramPolicyFor} all kinds, else the path of a JSON file, parsed but not validated.
 * @throws Error when the file cannot be read or is not JSON (the emulator validates the shape).
 */
export async function loadRamPolicy(arg: string): Promise<unknown> {
  if (arg === 'generated') return ramPolicyFor();
  return JSON.parse(await readFile(arg, 'utf8')) as unknown;
}

/**
 * `ecsops emulator --port N --control-port N --seed fleet.yaml --time-scale X [--host H]
 * [--request-log FILE] [--log-bodies FILE] [--ram-policy FILE|generated] [--actiontrail-delay-ms MS]`: starts the emulator, prints the endpoint, the control URL and the demo
 * AccessKey pair, and runs until SIGINT/SIGTERM. With `--request-log`, every API request appends
 * one JSON line to FILE when it is answered (the `EmulatorOptions.logger` fields, incl.
 * `receivedAtMs`, its arrival time in this process); it is flushed and closed on stop. With
 * `--log-bodies`, every request's parameters and response body (tests only; secrets included).
 * `argv` are the arguments after `emulator` (no node/script prefix).
 * With `--help` / `-h`, prints the help to stdout and returns without starting anything.
 * @returns after the emulator stopped on a signal, or at once after `--help`.
 * @throws CommanderError on invalid flags (commander has already printed `error: ...` to stderr;
 *   its `exitCode` is the one to exit with), Error when the seed file cannot be read or the
 *   request log cannot be opened.
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
    .option(
      '--request-log <file>',
      'append one JSON line per API request to <file> (action, status, receivedAtMs = arrival time, durationMs, …)',
    )
    .option(
      '--log-bodies <file>',
      'append one JSON line per API request to <file> with its full parameters and response body (tests only: secrets included)',
    )
    .option(
      '--ram-policy <file>',
      'enforce a RAM policy document (JSON) on API calls and template steps; "generated" = ecsops\'s generated policy for all kinds',
    )
    .option(
      '--actiontrail-delay-ms <ms>',
      'ActionTrail LookupEvents returns an event only this many emulator-clock ms after it (default 0)',
      msArg,
      0,
    )
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
    requestLog?: string;
    logBodies?: string;
    ramPolicy?: string;
    actiontrailDelayMs: number;
  }>();
  const ramPolicy = o.ramPolicy ? await loadRamPolicy(o.ramPolicy) : undefined;
  const seed: Seed | undefined = o.seed ? await loadSeedFile(o.seed) : undefined;
  const requestLog = o.requestLog ? await openRequestLog(o.requestLog) : undefined;
  const bodyLog = o.logBodies ? await openRequestLog(o.logBodies) : undefined;
  let emu: Emulator;
  try {
    emu = await startEmulator({
      host: o.host,
      port: o.port,
      controlPort: o.controlPort,
      seed,
      timeScale: o.timeScale,
      sandbox: o.sandbox,
      actionTrailDelayMs: o.actiontrailDelayMs,
      ...(ramPolicy !== undefined ? { ramPolicy } : {}),
      ...(requestLog ? { logger: (line: object) => void requestLog.write(`${JSON.stringify(line)}\n`) } : {}),
      ...(bodyLog ? { bodyLogger: (e: object) => void bodyLog.write(`${JSON.stringify(e)}\n`) } : {}),
    });
  } catch (err) {
    requestLog?.destroy();
    bodyLog?.destroy();
    throw err;
  }
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
  if (requestLog) await new Promise<void>((resolve) => requestLog.end(resolve));
  if (bodyLog) await new Promise<void>((resolve) => bodyLog.end(resolve));
}
