/**
 * The traffic-control rules shared by the CLB and ALB clients (src/cloud/lb-common.ts) and the
 * classification of the load balancers' state-conflict codes (src/cloud/errors.ts).
 */
import { describe, expect, it } from 'vitest';
import { albHealthState } from '../../../src/cloud/alb.js';
import { classifyCode } from '../../../src/cloud/errors.js';
import { weakestScheduler, weightZeroDrains, worseHealth } from '../../../src/cloud/lb-common.js';
import { clbHealthState } from '../../../src/cloud/slb.js';

describe('weightZeroDrains', () => {
  it.each([
    ['CLB', 'wrr', true],
    ['CLB', 'WLC', true],
    ['CLB', 'rr', false],
    ['CLB', 'sch', false],
    ['CLB', 'tch', false],
    ['CLB', 'qch', false],
    ['ALB', 'Wrr', true],
    ['ALB', 'Wlc', true],
    ['ALB', 'Sch', false],
    ['ALB', 'Uch', false],
    ['ALB', '', false],
  ] as const)('%s %s → %s', (type, scheduler, drains) => {
    expect(weightZeroDrains(type, scheduler)).toBe(drains);
  });

  it('a group under several CLB listeners reports the one that ignores weights', () => {
    expect(weakestScheduler('CLB', ['wrr', 'sch', 'wlc'])).toBe('sch');
    expect(weakestScheduler('CLB', ['WLC', 'wrr'])).toBe('wlc');
    expect(weakestScheduler('CLB', [])).toBe('');
  });
});

describe('health mapping', () => {
  it('CLB ServerHealthStatus and ALB NonNormalServers Status', () => {
    expect(['normal', 'abnormal', 'unavailable', undefined].map(clbHealthState)).toEqual([
      'Healthy',
      'Unhealthy',
      'Unknown',
      'Unknown',
    ]);
    expect(['Unhealthy', 'Initial', 'Unused', 'Unavailable'].map(albHealthState)).toEqual([
      'Unhealthy',
      'Unknown',
      'Unknown',
      'Unknown',
    ]);
  });

  it('the worse report wins: Unhealthy > Unknown > Healthy', () => {
    expect(worseHealth(undefined, 'Healthy')).toBe('Healthy');
    expect(worseHealth('Healthy', 'Unknown')).toBe('Unknown');
    expect(worseHealth('Unhealthy', 'Healthy')).toBe('Unhealthy');
    expect(worseHealth('Unknown', 'Unhealthy')).toBe('Unhealthy');
  });
});

describe('classifyCode of load balancer codes', () => {
  it.each([
    ['IncorrectStatus.ServerGroup', 400, 'transient', 'other'],
    ['IncorrectStatus.serverGroup', 400, 'transient', 'other'],
    ['Conflict.Lock', 400, 'transient', 'other'],
    ['BackendServer.configuring', 400, 'transient', 'other'],
    ['ServiceIsConfiguring', 400, 'transient', 'other'],
    ['SystemBusy', 400, 'transient', 'other'],
    ['ResourceNotFound.ServerGroup', 404, 'permanent', 'notFound'],
    ['ResourceNotFound.BackendServer', 404, 'permanent', 'notFound'],
    ['IllegalParam.Servers', 400, 'permanent', 'other'],
  ] as const)('%s (%d) → %s %s', (code, status, kind, category) => {
    expect(classifyCode(code, status)).toEqual({ kind, category });
  });
});
