import { describe, expect, it } from 'vitest';
import { toTrailEvent } from '../../../src/cloud/actiontrail.js';

// The event mapping of the ActionTrail client over answer shapes the emulator does not send (the
// contract test, test/contract/actiontrail.contract.test.ts, covers the emulator's own).
describe('toTrailEvent', () => {
  it('splits resourceName into names and turns every request parameter into a string', () => {
    expect(
      toTrailEvent({
        eventId: 'E-1',
        eventName: 'UpdateInstancePackageState',
        eventTime: '2026-12-07T14:52:13Z',
        resourceName: 'i-a, i-b;i-c,,',
        requestParameters: {
          InstanceId: 'i-a',
          MaxResults: 50,
          DryRun: false,
          Parameters: { port: 8080 },
          InstanceIds: ['i-a', 'i-b'],
          Empty: null,
        },
        userIdentity: { accessKeyId: 'LTAI' + 'FAKE'.repeat(4) },
      }),
    ).toEqual({
      eventId: 'E-1',
      eventName: 'UpdateInstancePackageState',
      eventTime: '2026-12-07T14:52:13Z',
      resourceNames: ['i-a', 'i-b', 'i-c'],
      requestParameters: {
        InstanceId: 'i-a',
        MaxResults: '50',
        DryRun: 'false',
        Parameters: '{"port":8080}',
        InstanceIds: '["i-a","i-b"]',
      },
    });
  });

  it('reads an event, or its requestParameters, sent as a JSON string; absent fields become empty', () => {
    const e = toTrailEvent(
      JSON.stringify({ eventName: 'X', requestParameters: JSON.stringify({ InstanceId: 'i-z' }) }),
    );
    expect(e).toEqual({
      eventId: '',
      eventName: 'X',
      eventTime: '',
      resourceNames: [],
      requestParameters: { InstanceId: 'i-z' },
    });
    expect(toTrailEvent(null)).toEqual({
      eventId: '',
      eventName: '',
      eventTime: '',
      resourceNames: [],
      requestParameters: {},
    });
  });
});
