import { describe, expect, it } from 'vitest';
import { SpecAnnouncer } from '../../../src/controllers/shared/announce.js';
import type { Resource } from '../../../src/controllers/shared/deps.js';

const obj = (uid: string, generation: number): Resource =>
  ({
    kind: 'MaintenanceWindow',
    metadata: { uid, generation, namespace: 'ns', name: `n-${uid}` },
  }) as Resource;

describe('SpecAnnouncer', () => {
  it('announces each generation once, and a forgotten object once', () => {
    const calls: string[] = [];
    const a = new SpecAnnouncer((ns, name) => calls.push(`${ns}/${name}`));
    a.announce(obj('u1', 1));
    a.announce(obj('u1', 1));
    expect(calls).toEqual(['ns/n-u1']);
    a.announce(obj('u1', 2));
    a.announce(obj('u2', 1));
    expect(calls).toEqual(['ns/n-u1', 'ns/n-u1', 'ns/n-u2']);
    a.forget('u1');
    a.forget('u1');
    a.forget('never-seen');
    expect(calls).toEqual(['ns/n-u1', 'ns/n-u1', 'ns/n-u2', 'ns/n-u1']);
    // announced again after being forgotten (the object came back into the cache)
    a.announce(obj('u1', 2));
    expect(calls).toHaveLength(5);
  });
});
