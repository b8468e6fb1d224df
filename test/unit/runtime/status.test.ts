import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { generationChangedPredicate } from '../../../src/runtime/manager.js';
import {
  isNewerResourceVersion,
  jsonEqual,
  StatusPatcher,
  statusMergePatch,
  type ObjectWithStatus,
} from '../../../src/runtime/status.js';

describe('jsonEqual', () => {
  it.each([
    ['key order', { a: 1, b: { c: [1, 2], d: 'x' } }, { b: { d: 'x', c: [1, 2] }, a: 1 }, true],
    ['undefined keys count as absent', { a: 1, b: undefined }, { a: 1 }, true],
    ['array order matters', { a: [1, 2] }, { a: [2, 1] }, false],
    ['nested difference', { a: { b: 1 } }, { a: { b: 2 } }, false],
    ['undefined vs empty object', undefined, {}, false],
  ])('%s', (_name, a, b, want) => {
    expect(jsonEqual(a, b)).toBe(want);
  });
});

describe('statusMergePatch', () => {
  it.each([
    ['no previous status', undefined, { a: 1 }, { a: 1 }],
    ['changed scalar', { a: 1, b: 2 }, { a: 1, b: 3 }, { b: 3 }],
    ['removed key becomes null', { a: 1, b: 2 }, { a: 1 }, { b: null }],
    ['undefined key becomes null', { a: 1, b: 2 }, { a: 1, b: undefined }, { b: null }],
    [
      'nested objects diff recursively',
      { s: { x: 1, y: 2 } },
      { s: { x: 1, z: 3 } },
      { s: { y: null, z: 3 } },
    ],
    [
      'arrays are sent whole',
      { c: [{ type: 'Ready' }, { type: 'Stalled' }] },
      { c: [{ type: 'Ready' }] },
      { c: [{ type: 'Ready' }] },
    ],
    ['object replaced by scalar', { a: { b: 1 } }, { a: 'x' }, { a: 'x' }],
    ['nothing changed', { a: 1 }, { a: 1 }, {}],
  ])('%s', (_name, from, to, want) => {
    expect(statusMergePatch(from, to)).toEqual(want);
  });
});

describe('generationChangedPredicate', () => {
  const base = {
    metadata: { name: 'a', generation: 1, annotations: { 'x/requested-at': '1' }, finalizers: ['f'] },
  };
  const pred = generationChangedPredicate(['x/requested-at']);
  it.each([
    ['first sight', undefined, base, true],
    ['status-only change', base, { ...base, metadata: { ...base.metadata, resourceVersion: '9' } }, false],
    ['generation bump', base, { ...base, metadata: { ...base.metadata, generation: 2 } }, true],
    [
      'requested-at annotation',
      base,
      { ...base, metadata: { ...base.metadata, annotations: { 'x/requested-at': '2' } } },
      true,
    ],
    [
      'other annotation',
      base,
      { ...base, metadata: { ...base.metadata, annotations: { 'x/requested-at': '1', o: 'x' } } },
      false,
    ],
    ['finalizers changed', base, { ...base, metadata: { ...base.metadata, finalizers: [] } }, true],
    [
      'finalizer added (no extra reconcile after our own finalizer write)',
      base,
      { ...base, metadata: { ...base.metadata, finalizers: ['f', 'ecsops.io/cleanup'] } },
      false,
    ],
    [
      'deletion started',
      base,
      { ...base, metadata: { ...base.metadata, deletionTimestamp: new Date(0) } },
      true,
    ],
  ])('%s', (_name, prev, next, want) => {
    expect(pred(prev, next)).toBe(want);
  });
});

describe('isNewerResourceVersion', () => {
  it.each([
    ['larger integer', '11', '9', true],
    ['smaller integer', '9', '11', false],
    ['equal', '42', '42', false],
    ['beyond 2^53', '9007199254740993', '9007199254740992', true],
    ['leading zeros compare by value', '010', '9', true],
    ['not decimal (a)', 'abc', '9', undefined],
    ['not decimal (b)', '9', 'v2', undefined],
    ['negative is not a revision', '-1', '9', undefined],
    ['empty', '', '9', undefined],
    ['missing', undefined, '9', undefined],
    ['both missing', undefined, undefined, undefined],
  ])('%s: %s vs %s → %s', (_name, a, b, want) => {
    expect(isNewerResourceVersion(a, b)).toBe(want);
  });
});

type Obj = ObjectWithStatus<{ phase?: string }>;

function obj(uid: string, resourceVersion: string | undefined, phase?: string): Obj {
  return {
    apiVersion: 'ecsops.io/v1alpha1',
    kind: 'EcsExtension',
    metadata: { uid, name: `n-${uid}`, namespace: 'ns', ...(resourceVersion ? { resourceVersion } : {}) },
    ...(phase ? { status: { phase } } : {}),
  };
}

function kubeConfigFor(server: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server, skipTLSVerify: true }],
    users: [{ name: 'u', token: 'test-token' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

/** Exposes the write-recording hook, so freshest() is tested without an API server. */
class RecordingPatcher extends StatusPatcher {
  constructor() {
    super({
      kubeConfig: kubeConfigFor('http://127.0.0.1:1'),
      group: 'ecsops.io',
      version: 'v1alpha1',
      plural: 'x',
    });
  }
  wrote(basedOn: KubernetesObject, written: KubernetesObject): void {
    this.recordWrite(basedOn, written);
  }
}

describe('StatusPatcher.freshest', () => {
  it('returns the cached object when nothing was written', () => {
    const p = new RecordingPatcher();
    const cached = obj('u1', '5', 'Old');
    expect(p.freshest(cached)).toBe(cached);
  });

  it('prefers the written object while the informer lags, then forgets it once caught up', () => {
    const p = new RecordingPatcher();
    const written = obj('u1', '7', 'Mine');
    p.wrote(obj('u1', '5', 'Old'), written);
    expect(p.freshest(obj('u1', '5', 'Old'))).toBe(written); // informer still shows the base
    expect(p.freshest(obj('u1', '6', 'Old'))).toBe(written); // an older intermediate version
    const caughtUp = obj('u1', '7', 'Mine');
    expect(p.freshest(caughtUp)).toBe(caughtUp);
    expect(p.rememberedWrites).toBe(0);
    expect(p.freshest(obj('u1', '5', 'Old')).status?.phase).toBe('Old'); // forgotten for good
  });

  it("lets a later write by someone else (an admin's status repair) win and forgets ours", () => {
    const p = new RecordingPatcher();
    p.wrote(obj('u1', '5'), obj('u1', '7', 'Mine'));
    const repaired = obj('u1', '9', 'Repaired');
    expect(p.freshest(repaired)).toBe(repaired);
    expect(p.rememberedWrites).toBe(0);
  });

  it('keys by UID, so a recreated object with the same name is not shadowed', () => {
    const p = new RecordingPatcher();
    p.wrote(obj('old-uid', '5'), obj('old-uid', '7', 'Mine'));
    const recreated = obj('new-uid', '3');
    expect(p.freshest(recreated)).toBe(recreated);
    expect(p.rememberedWrites).toBe(1);
    p.forget('old-uid');
    expect(p.rememberedWrites).toBe(0);
    p.forget('never-seen'); // ignored
  });

  it('with opaque resourceVersions, prefers the write only while the cache shows a version it was based on', () => {
    const p = new RecordingPatcher();
    const first = obj('u1', 'rv-b', 'First');
    p.wrote(obj('u1', 'rv-a'), first);
    expect(p.freshest(obj('u1', 'rv-a'))).toBe(first);
    // A second write based on the remembered object also supersedes what the first one did.
    const second = obj('u1', 'rv-c', 'Second');
    p.wrote(first, second);
    expect(p.freshest(obj('u1', 'rv-a'))).toBe(second);
    expect(p.freshest(obj('u1', 'rv-b'))).toBe(second);
    const other = obj('u1', 'rv-z', 'SomeoneElse');
    expect(p.freshest(other)).toBe(other);
    expect(p.rememberedWrites).toBe(0);
  });

  it('ignores objects without a UID', () => {
    const p = new RecordingPatcher();
    const noUid: Obj = { metadata: { name: 'a', resourceVersion: '1' } };
    p.wrote(noUid, { metadata: { name: 'a', resourceVersion: '2' } });
    expect(p.freshest(noUid)).toBe(noUid);
    expect(p.rememberedWrites).toBe(0);
  });
});

describe('StatusPatcher records its writes (fake API server)', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = undefined;
  });

  /** Answers PATCHes with the stored object at resourceVersion + 1; `gone` answers 404. */
  async function fakeApi(stored: Obj, gone = () => false): Promise<string> {
    let current = structuredClone(stored);
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        if (gone()) {
          res.writeHead(404, { 'Content-Type': 'application/json' });
          res.end(JSON.stringify({ kind: 'Status', code: 404, reason: 'NotFound', message: 'gone' }));
          return;
        }
        const patch = JSON.parse(body) as unknown;
        const rv = String(Number(current.metadata?.resourceVersion ?? '0') + 1);
        if (Array.isArray(patch)) {
          const replace = patch.find((op: { op: string }) => op.op === 'replace') as { value: string[] };
          current = { ...current, metadata: { ...current.metadata, finalizers: replace.value } };
        } else {
          const merge = patch as { status?: Obj['status']; metadata?: { finalizers?: string[] } };
          if (merge.status) current = { ...current, status: { ...current.status, ...merge.status } };
          const finalizers = merge.metadata?.finalizers;
          if (finalizers) current = { ...current, metadata: { ...current.metadata, finalizers } };
        }
        current = { ...current, metadata: { ...current.metadata, resourceVersion: rv } };
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(current));
      });
    });
    await new Promise<void>((r) => server?.listen(0, '127.0.0.1', () => r()));
    return `http://127.0.0.1:${(server?.address() as AddressInfo).port}`;
  }

  it('patchStatus and addFinalizer results are what freshest() returns until the cache catches up', async () => {
    const cached = obj('u1', '10', 'Old');
    let deleted = false;
    const url = await fakeApi(cached, () => deleted);
    const p = new StatusPatcher({
      kubeConfig: kubeConfigFor(url),
      group: 'ecsops.io',
      version: 'v1alpha1',
      plural: 'ecsextensions',
    });

    const withFinalizer = await p.addFinalizer(cached, 'ecsops.io/cleanup');
    expect(withFinalizer.metadata?.resourceVersion).toBe('11');
    expect(p.freshest(cached)).toEqual(withFinalizer);

    const base = p.freshest(cached);
    const { object } = await p.patchStatus(base, { phase: 'Mine' });
    expect(object?.metadata?.resourceVersion).toBe('12');
    const lagging = p.freshest(cached);
    expect(lagging.status).toEqual({ phase: 'Mine' });
    expect(lagging.metadata?.finalizers).toEqual(['ecsops.io/cleanup']);

    // Unchanged status: no write, nothing new remembered.
    await p.patchStatus(lagging, { phase: 'Mine' });
    expect(p.freshest(cached).metadata?.resourceVersion).toBe('12');

    // The object disappears: a 404 forgets it.
    deleted = true;
    await expect(p.patchStatus(lagging, { phase: 'Other' })).resolves.toEqual({
      changed: false,
      object: undefined,
    });
    expect(p.rememberedWrites).toBe(0);
    expect(p.freshest(cached)).toBe(cached);
  });
});
