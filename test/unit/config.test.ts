import { Command, CommanderError } from 'commander';
import { describe, expect, it, vi } from 'vitest';
import {
  CONTROLLER_NAMES,
  MIN_FULL_RESYNC_MS,
  addControllerOptions,
  controllersWithout,
  parseConfig,
  type Config,
  type ControllerName,
} from '../../src/config.js';
import { leaderElectionTimingsError } from '../../src/runtime/leader-election.js';

/** Runs parseConfig and returns the thrown error's message (commander errors included). */
function errorOf(argv: string[], env: NodeJS.ProcessEnv = {}): string {
  // Commander also prints the error to stderr (the CLI's behaviour); keep the test output clean.
  const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    parseConfig(argv, env);
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  } finally {
    stderr.mockRestore();
  }
  throw new Error(`parseConfig(${JSON.stringify(argv)}) did not throw`);
}

describe('parseConfig', () => {
  it('applies the defaults (durations in milliseconds)', () => {
    const cfg = parseConfig([], {});
    const want: Config = {
      kubeconfig: undefined,
      controllers: [
        'ecsextension',
        'patchpolicy',
        'maintenancewindow',
        'apprelease',
        'instancedisruptionbudget',
      ],
      namespace: undefined,
      metricsBindAddress: ':8080',
      healthProbeBindAddress: ':8081',
      leaderElect: true,
      leaderElectionId: 'ecsops-controller',
      leaderElectionNamespace: 'default',
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      ecsExtensionWorkers: 16,
      appReleaseWorkers: 2,
      patchPolicyWorkers: 2,
      cloudQps: 20,
      cloudConcurrency: 10,
      cloudActionQps: {},
      cloudMaxRetries: 5,
      oosEndpoint: undefined,
      ecsEndpoint: undefined,
      cloudProtocol: 'HTTPS',
      fullResyncPeriodMs: 36_000_000,
      actionTrail: true,
      logLevel: 'info',
      maxInstanceRows: 100,
      executionPollMinMs: 5_000,
      executionPollMaxMs: 60_000,
      retryBaseMs: 30_000,
      retryMaxMs: 1_800_000,
      shutdownTimeoutMs: 30_000,
    };
    expect(cfg).toEqual(want);
  });

  it('reads the environment (not process.env)', () => {
    const cfg = parseConfig([], {
      KUBECONFIG: '/etc/kube/config',
      ECSOPS_NAMESPACE: 'fleet',
      ECSOPS_LEADER_ELECT: 'false',
      ECSOPS_LEASE_DURATION: '1m',
      ECSOPS_RENEW_DEADLINE: '40s',
      ECSOPS_RETRY_PERIOD: '500ms',
      ECSOPS_ECSEXTENSION_WORKERS: '8',
      ECSOPS_CLOUD_MAX_RETRIES: '0',
      ECSOPS_OOS_ENDPOINT: '127.0.0.1:9100',
      ECSOPS_CLOUD_PROTOCOL: 'HTTP',
      LOG_LEVEL: 'debug',
      ECSOPS_EXECUTION_POLL_MAX: '2m',
    });
    expect(cfg).toMatchObject({
      kubeconfig: '/etc/kube/config',
      namespace: 'fleet',
      leaderElect: false,
      leaseDurationMs: 60_000,
      renewDeadlineMs: 40_000,
      retryPeriodMs: 500,
      ecsExtensionWorkers: 8,
      cloudMaxRetries: 0,
      oosEndpoint: '127.0.0.1:9100',
      cloudProtocol: 'HTTP',
      logLevel: 'debug',
      executionPollMaxMs: 120_000,
    });
  });

  it('parses per-action limits from the flag or the environment', () => {
    expect(
      parseConfig(['--cloud-action-qps', 'StartExecution=5, ListInstancePackageStates=0.5'], {})
        .cloudActionQps,
    ).toEqual({ StartExecution: 5, ListInstancePackageStates: 0.5 });
    expect(parseConfig([], { ECSOPS_CLOUD_ACTION_QPS: 'RunCommand=2' }).cloudActionQps).toEqual({
      RunCommand: 2,
    });
  });

  it('reads --full-resync-period (min 10m) and --actiontrail from the flag or the environment', () => {
    expect(parseConfig(['--full-resync-period', '2h', '--actiontrail', 'false'], {})).toMatchObject({
      fullResyncPeriodMs: 7_200_000,
      actionTrail: false,
    });
    expect(parseConfig([], { ECSOPS_FULL_RESYNC_PERIOD: '10m', ECSOPS_ACTIONTRAIL: 'no' })).toMatchObject({
      fullResyncPeriodMs: MIN_FULL_RESYNC_MS,
      actionTrail: false,
    });
    expect(errorOf(['--full-resync-period', '9m59s'])).toContain(
      '--full-resync-period: "9m59s" is shorter than the minimum 10m',
    );
    expect(errorOf([], { ECSOPS_FULL_RESYNC_PERIOD: '5m' })).toContain('--full-resync-period');
    expect(errorOf(['--actiontrail', 'sometimes'])).toContain('--actiontrail');
  });

  it('takes the Lease namespace from POD_NAMESPACE when the flag is unset', () => {
    expect(parseConfig([], { POD_NAMESPACE: 'ecsops-system' }).leaderElectionNamespace).toBe('ecsops-system');
    expect(
      parseConfig(['--leader-election-namespace', 'kube-system'], { POD_NAMESPACE: 'ecsops-system' })
        .leaderElectionNamespace,
    ).toBe('kube-system');
  });

  it('lets flags beat the environment', () => {
    const cfg = parseConfig(
      ['--namespace', 'from-flag', '--lease-duration', '30s', '--leader-elect', 'true', '--cloud-qps=7'],
      {
        ECSOPS_NAMESPACE: 'from-env',
        ECSOPS_LEASE_DURATION: '1m',
        ECSOPS_LEADER_ELECT: 'false',
        ECSOPS_CLOUD_QPS: '99',
      },
    );
    expect(cfg).toMatchObject({
      namespace: 'from-flag',
      leaseDurationMs: 30_000,
      leaderElect: true,
      cloudQps: 7,
    });
  });

  const booleans: Array<[string, boolean]> = [
    ['true', true],
    ['1', true],
    ['yes', true],
    ['FALSE', false],
    ['0', false],
    ['no', false],
  ];
  for (const [text, want] of booleans) {
    it(`parses --leader-elect ${text} as ${want}`, () => {
      expect(parseConfig(['--leader-elect', text], {}).leaderElect).toBe(want);
    });
  }

  const invalid: Array<{ name: string; argv: string[]; env?: NodeJS.ProcessEnv; flag: string }> = [
    { name: 'duration without a number', argv: ['--lease-duration', 'soon'], flag: '--lease-duration' },
    { name: 'zero duration', argv: ['--retry-base', '0s'], flag: '--retry-base' },
    { name: 'negative duration', argv: ['--shutdown-timeout', '-5s'], flag: '--shutdown-timeout' },
    {
      name: 'duration from env',
      argv: [],
      env: { ECSOPS_EXECUTION_POLL_MIN: 'fast' },
      flag: '--execution-poll-min',
    },
    {
      name: 'non-integer worker count',
      argv: ['--ecsextension-workers', '2.5'],
      flag: '--ecsextension-workers',
    },
    { name: 'zero worker count', argv: ['--ecsextension-workers', '0'], flag: '--ecsextension-workers' },
    { name: 'non-numeric qps', argv: ['--cloud-qps', 'many'], flag: '--cloud-qps' },
    { name: 'negative retries', argv: ['--cloud-max-retries', '-1'], flag: '--cloud-max-retries' },
    {
      name: 'action limit without a rate',
      argv: ['--cloud-action-qps', 'StartExecution'],
      flag: '--cloud-action-qps',
    },
    {
      name: 'zero action limit',
      argv: ['--cloud-action-qps', 'StartExecution=0'],
      flag: '--cloud-action-qps',
    },
    {
      name: 'action limit from env',
      argv: [],
      env: { ECSOPS_CLOUD_ACTION_QPS: '=5' },
      flag: '--cloud-action-qps',
    },
    {
      name: 'int from env',
      argv: [],
      env: { ECSOPS_MAX_INSTANCE_ROWS: 'lots' },
      flag: '--max-instance-rows',
    },
    { name: 'boolean', argv: ['--leader-elect', 'maybe'], flag: '--leader-elect' },
    { name: 'boolean from env', argv: [], env: { ECSOPS_LEADER_ELECT: 'perhaps' }, flag: '--leader-elect' },
    { name: 'protocol not in choices', argv: ['--cloud-protocol', 'FTP'], flag: '--cloud-protocol' },
    { name: 'log level not in choices', argv: ['--log-level', 'loud'], flag: '--log-level' },
    { name: 'unknown flag', argv: ['--no-such-flag'], flag: '--no-such-flag' },
  ];
  for (const c of invalid) {
    it(`rejects an invalid ${c.name}, naming ${c.flag}`, () => {
      expect(errorOf(c.argv, c.env)).toContain(c.flag);
    });
  }

  it('throws commander errors (no process exit)', () => {
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(() => parseConfig(['--cloud-qps', 'x'], {})).toThrow(CommanderError);
    } finally {
      stderr.mockRestore();
    }
  });

  const inconsistent: Array<{ name: string; argv: string[]; message: string }> = [
    {
      name: 'renew deadline equal to the lease duration',
      argv: ['--lease-duration', '10s', '--renew-deadline', '10s'],
      message: '--renew-deadline must be shorter than --lease-duration',
    },
    {
      name: 'renew deadline longer than the lease duration',
      argv: ['--renew-deadline', '20s'],
      message: '--renew-deadline must be shorter than --lease-duration',
    },
    {
      name: 'retry period not shorter than the renew deadline',
      argv: ['--retry-period', '10s'],
      message: '--renew-deadline must be longer than 1.2 × --retry-period',
    },
    {
      // Accepted by the old check, refused by the elector at startup: 10s ≤ 1.2 × 9s.
      name: 'retry period shorter than the renew deadline but within the jitter',
      argv: ['--retry-period', '9s'],
      message: '--renew-deadline must be longer than 1.2 × --retry-period',
    },
    {
      name: 'lease duration under one second',
      argv: ['--lease-duration', '900ms', '--renew-deadline', '500ms', '--retry-period', '100ms'],
      message: '--lease-duration must be at least 1s',
    },
    {
      name: 'poll min above poll max',
      argv: ['--execution-poll-min', '2m', '--execution-poll-max', '1m'],
      message: '--execution-poll-min must not exceed --execution-poll-max',
    },
  ];
  for (const c of inconsistent) {
    it(`rejects ${c.name}`, () => {
      expect(errorOf(c.argv)).toBe(c.message);
    });
  }

  it('accepts leader-election durations the elector accepts', () => {
    const cfg = parseConfig(
      ['--lease-duration', '1s', '--renew-deadline', '700ms', '--retry-period', '500ms'],
      {},
    );
    expect(leaderElectionTimingsError(cfg)).toBeUndefined();
  });

  it('rejects exactly the leader-election durations the elector rejects', () => {
    for (const lease of [1, 2, 10, 15]) {
      for (const renew of [1, 2, 5, 10, 12]) {
        for (const retry of [1, 2, 4, 8]) {
          const argv = [
            '--lease-duration',
            `${lease}s`,
            '--renew-deadline',
            `${renew}s`,
            '--retry-period',
            `${retry}s`,
          ];
          const elector = leaderElectionTimingsError({
            leaseDurationMs: lease * 1000,
            renewDeadlineMs: renew * 1000,
            retryPeriodMs: retry * 1000,
          });
          if (elector === undefined) expect(() => parseConfig(argv, {})).not.toThrow();
          else expect(errorOf(argv)).toMatch(/^--(lease-duration|renew-deadline|retry-period) /);
        }
      }
    }
  });

  it('accepts poll min equal to poll max', () => {
    const cfg = parseConfig(['--execution-poll-min', '30s', '--execution-poll-max', '30s'], {});
    expect([cfg.executionPollMinMs, cfg.executionPollMaxMs]).toEqual([30_000, 30_000]);
  });

  it('does not leave the given env in process.env', () => {
    const before = process.env;
    parseConfig([], { ECSOPS_NAMESPACE: 'x' });
    expect(process.env).toBe(before);
    expect(errorOf(['--cloud-qps', 'x'])).toContain('--cloud-qps');
    expect(process.env).toBe(before);
  });
});

describe('--controllers', () => {
  const all = [...CONTROLLER_NAMES];
  const valid: Array<{ value: string; want: string[] }> = [
    { value: '*', want: all },
    { value: 'ecsextension', want: ['ecsextension'] },
    {
      value: '*,-apprelease',
      want: ['ecsextension', 'patchpolicy', 'maintenancewindow', 'instancedisruptionbudget'],
    },
    {
      value: '-apprelease,*',
      want: ['ecsextension', 'patchpolicy', 'maintenancewindow', 'instancedisruptionbudget'],
    },
    { value: 'apprelease, ecsextension', want: ['ecsextension', 'apprelease'] },
    { value: 'patchpolicy,maintenancewindow', want: ['patchpolicy', 'maintenancewindow'] },
    { value: 'maintenancewindow', want: ['maintenancewindow'] },
    {
      value: '*,-patchpolicy,-maintenancewindow',
      want: ['ecsextension', 'apprelease', 'instancedisruptionbudget'],
    },
    {
      value: '*,-instancedisruptionbudget',
      want: ['ecsextension', 'patchpolicy', 'maintenancewindow', 'apprelease'],
    },
    { value: '*,ecsextension', want: all },
  ];
  for (const c of valid) {
    it(`"${c.value}" runs ${c.want.join(', ')}`, () => {
      expect(parseConfig(['--controllers', c.value], {}).controllers).toEqual(c.want);
    });
  }

  it('reads ECSOPS_CONTROLLERS', () => {
    expect(parseConfig([], { ECSOPS_CONTROLLERS: '*,-apprelease' }).controllers).toEqual([
      'ecsextension',
      'patchpolicy',
      'maintenancewindow',
      'instancedisruptionbudget',
    ]);
  });

  const invalid: Array<{ value: string; message: string }> = [
    {
      value: 'ecsextension,foo',
      message:
        '--controllers: unknown controller "foo" (known: ecsextension, patchpolicy, maintenancewindow, apprelease, instancedisruptionbudget, or * for all)',
    },
    { value: 'EcsExtension', message: '--controllers: unknown controller "EcsExtension"' },
    { value: '*,-appreleases', message: '--controllers: unknown controller "appreleases"' },
    { value: 'apprelease,-apprelease', message: '--controllers: "apprelease" is both enabled and disabled' },
    { value: '-apprelease', message: '--controllers: "-apprelease" enables no controller' },
    { value: ',', message: '--controllers: "," enables no controller' },
    {
      value: 'patchpolicy',
      message:
        '--controllers: patchpolicy needs maintenancewindow in the same process (it reads those objects from that cache): enable maintenancewindow too, or disable patchpolicy',
    },
    { value: '*,-maintenancewindow', message: '--controllers: patchpolicy needs maintenancewindow' },
  ];
  for (const c of invalid) {
    it(`rejects "${c.value}" at start-up with a clear error`, () => {
      expect(errorOf(['--controllers', c.value])).toContain(c.message);
    });
  }

  it('rejects an unknown name from ECSOPS_CONTROLLERS too', () => {
    expect(errorOf([], { ECSOPS_CONTROLLERS: 'nope' })).toContain('--controllers: unknown controller "nope"');
  });

  const without: Array<{ enabled: ControllerName[]; name: string; want: string | undefined }> = [
    { enabled: all, name: 'apprelease', want: '*,-apprelease' },
    { enabled: all, name: 'patchpolicy', want: '*,-patchpolicy' },
    { enabled: all, name: 'maintenancewindow', want: '*,-patchpolicy,-maintenancewindow' },
    { enabled: ['ecsextension', 'apprelease'], name: 'apprelease', want: 'ecsextension' },
    { enabled: ['ecsextension'], name: 'ecsextension', want: undefined },
  ];
  for (const c of without) {
    it(`controllersWithout(${c.enabled.join(',')}, ${c.name}) = ${c.want} (a value the flag accepts)`, () => {
      const got = controllersWithout(c.enabled, c.name);
      expect(got).toBe(c.want);
      if (got) expect(parseConfig(['--controllers', got], {}).controllers).not.toContain(c.name);
    });
  }
});

describe('controller --help', () => {
  const cmd = addControllerOptions(new Command('controller'));
  // Commander wraps descriptions at the terminal width; compare on collapsed whitespace.
  const help = cmd.helpInformation().replace(/\s+/g, ' ');

  it('lists every option with its environment variable', () => {
    expect(cmd.options.length).toBeGreaterThanOrEqual(24);
    for (const o of cmd.options) {
      expect(help).toContain(o.long);
      expect(o.envVar, `${o.long} has no environment variable`).toBeTruthy();
      expect(help).toContain(`env: ${o.envVar}`);
    }
  });

  it('shows human defaults for durations', () => {
    expect(help).toMatch(/--lease-duration <duration> Lease duration \(default: 15s,/);
    expect(help).toMatch(/--full-resync-period <duration> .*\(default: 10h,/);
    expect(help).not.toContain('default: 15000');
  });
});

describe('leaderElectionTimingsError', () => {
  it.each([
    ['defaults', 15_000, 10_000, 2_000, undefined],
    ['renew equal to lease', 10_000, 10_000, 2_000, 'renewDeadlineMs must be shorter than leaseDurationMs'],
    ['lease under 1s', 900, 500, 100, 'leaseDurationMs must be at least 1s'],
    [
      'renew within 1.2 × retry',
      15_000,
      10_000,
      9_000,
      'renewDeadlineMs must be longer than 1.2 × retryPeriodMs',
    ],
    [
      'renew exactly 1.2 × retry',
      15_000,
      12_000,
      10_000,
      'renewDeadlineMs must be longer than 1.2 × retryPeriodMs',
    ],
    ['zero retry', 15_000, 10_000, 0, 'retryPeriodMs must be greater than 0'],
    ['NaN retry', 15_000, 10_000, Number.NaN, 'retryPeriodMs must be greater than 0'],
  ])('%s', (_name, leaseDurationMs, renewDeadlineMs, retryPeriodMs, want) => {
    expect(leaderElectionTimingsError({ leaseDurationMs, renewDeadlineMs, retryPeriodMs })).toBe(want);
  });
});
