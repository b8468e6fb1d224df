/**
 * The `ecsops get --watch` loop against a scripted source (the real API server is exercised by
 * test/integration/get/watch.test.ts): redraws per event, reconnects from the last
 * resourceVersion, re-lists on 410 Gone and after errors (with backoff), fails fast before
 * anything was shown; and `runGet`'s output on a terminal and elsewhere.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KubernetesObject } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { runGet, type GetDeps } from '../../../src/get/cli.js';
import {
  followObject,
  retryAfterMs,
  withTooManyRequestsRetries,
  type ObjectSource,
  type WatchEventHandler,
} from '../../../src/get/watch.js';

type Obj = KubernetesObject & { status?: Record<string, unknown> };
const fixture = (name: string): Obj =>
  JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', `${name}.json`), 'utf8')) as Obj;
const withRv = (obj: Obj, rv: string, phase?: string): Obj => ({
  ...obj,
  metadata: { ...obj.metadata, resourceVersion: rv },
  ...(phase ? { status: { ...obj.status, phase } } : {}),
});
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/;

/** One watch request made by the loop: the test pushes events into it and ends it. */
interface OpenWatch {
  resourceVersion: string;
  emit: WatchEventHandler<Obj>;
  end(err: Error | null): void;
  stopped: boolean;
}

/** A scripted source: `lists` answer LIST calls in order; every WATCH is recorded in `watches`. */
class FakeSource implements ObjectSource<Obj> {
  readonly watches: OpenWatch[] = [];
  listCalls = 0;
  private waiters: Array<() => void> = [];
  constructor(private readonly lists: Array<() => { object: Obj | undefined; resourceVersion: string }>) {}
  async list() {
    const answer = this.lists[Math.min(this.listCalls, this.lists.length - 1)]!;
    this.listCalls++;
    return answer();
  }
  async watch(resourceVersion: string, onEvent: WatchEventHandler<Obj>) {
    let settle: (err: Error | null) => void = () => undefined;
    const done = new Promise<Error | null>((resolve) => (settle = resolve));
    const w: OpenWatch = { resourceVersion, emit: onEvent, end: (err) => settle(err), stopped: false };
    this.watches.push(w);
    for (const wake of this.waiters.splice(0)) wake();
    return {
      done,
      stop: () => {
        w.stopped = true;
        settle(Object.assign(new Error('aborted'), { name: 'AbortError' }));
      },
    };
  }
  /** Waits until the loop has opened `n` watches. */
  async watchCount(n: number): Promise<OpenWatch> {
    while (this.watches.length < n) await new Promise<void>((r) => this.waiters.push(r));
    return this.watches[n - 1]!;
  }
}

const web = fixture('apprelease-canary-paused');

describe('followObject', () => {
  it('reports the listed object, then every watched version; a delete reports undefined', async () => {
    const src = new FakeSource([() => ({ object: withRv(web, '10'), resourceVersion: '12' })]);
    const seen: Array<string | undefined> = [];
    const ac = new AbortController();
    const running = followObject(
      src,
      { onObject: (o) => seen.push(o?.metadata?.resourceVersion) },
      ac.signal,
    );
    const w = await src.watchCount(1);
    expect(w.resourceVersion).toBe('12'); // the collection's resourceVersion, not the object's
    w.emit('MODIFIED', withRv(web, '13'));
    w.emit('BOOKMARK', { metadata: { resourceVersion: '15' } } as Obj);
    w.emit('DELETED', withRv(web, '16'));
    w.emit('ADDED', withRv(web, '17'));
    ac.abort();
    await running;
    expect(seen).toEqual(['10', '13', undefined, '17']);
    expect(w.stopped).toBe(true);
  });

  it('reconnects from the last resourceVersion when a watch ends quietly, without listing again', async () => {
    const src = new FakeSource([() => ({ object: withRv(web, '10'), resourceVersion: '10' })]);
    const ac = new AbortController();
    const running = followObject(src, { onObject: () => undefined }, ac.signal, { minBackoffMs: 1 });
    const first = await src.watchCount(1);
    first.emit('MODIFIED', withRv(web, '20'));
    first.end(Object.assign(new Error('The operation was aborted due to timeout'), { name: 'TimeoutError' }));
    const second = await src.watchCount(2);
    expect(second.resourceVersion).toBe('20');
    second.emit('BOOKMARK', { metadata: { resourceVersion: '25' } } as Obj);
    second.end(null);
    expect((await src.watchCount(3)).resourceVersion).toBe('25');
    expect(src.listCalls).toBe(1);
    ac.abort();
    await running;
  });

  it('lists again at once on 410 Gone (in the stream or as the HTTP status)', async () => {
    let rv = 10;
    const src = new FakeSource([() => ({ object: withRv(web, String(rv)), resourceVersion: String(rv++) })]);
    const seen: string[] = [];
    const errors: Error[] = [];
    const ac = new AbortController();
    const running = followObject(
      src,
      { onObject: (o) => seen.push(o!.metadata!.resourceVersion!), onError: (e) => errors.push(e) },
      ac.signal,
      { minBackoffMs: 1 },
    );
    (await src.watchCount(1)).emit('ERROR', {
      code: 410,
      message: 'too old resource version',
    } as unknown as Obj);
    src.watches[0]!.end(null);
    (await src.watchCount(2)).end(Object.assign(new Error('Gone'), { statusCode: 410 }));
    await src.watchCount(3);
    expect(src.listCalls).toBe(3);
    expect(src.watches.map((w) => w.resourceVersion)).toEqual(['10', '11', '12']);
    expect(seen).toEqual(['10', '11', '12']); // each re-list redraws
    expect(errors).toEqual([]);
    ac.abort();
    await running;
  });

  it('after other errors reports them, backs off (doubling, reset by an event) and lists again', async () => {
    const src = new FakeSource([
      () => ({ object: withRv(web, '10'), resourceVersion: '10' }),
      () => {
        throw Object.assign(new Error('connect ECONNREFUSED'), { name: 'TypeError' });
      },
      () => ({ object: withRv(web, '30'), resourceVersion: '30' }),
    ]);
    const retries: Array<[string, number]> = [];
    const ac = new AbortController();
    const running = followObject(
      src,
      { onObject: () => undefined, onError: (e, ms) => retries.push([e.message, ms]) },
      ac.signal,
      { minBackoffMs: 5, maxBackoffMs: 100 },
    );
    (await src.watchCount(1)).end(Object.assign(new Error('Internal Server Error'), { statusCode: 500 }));
    const w = await src.watchCount(2);
    expect(w.resourceVersion).toBe('30');
    expect(retries).toEqual([
      ['Internal Server Error', 5],
      ['connect ECONNREFUSED', 10],
    ]);
    // A list alone does not prove the connection healthy (a watch may be forbidden): still backing off.
    w.emit('ERROR', { code: 500, message: 'etcd unavailable' } as unknown as Obj);
    w.end(null);
    const w3 = await src.watchCount(3);
    expect(retries[2]).toEqual(['etcd unavailable', 20]);
    // An event does: the next error starts from the first delay again.
    w3.emit('MODIFIED', withRv(web, '31'));
    w3.end(Object.assign(new Error('Service Unavailable'), { statusCode: 503 }));
    await src.watchCount(4);
    expect(retries[3]).toEqual(['Service Unavailable', 5]);
    ac.abort();
    await running;
  });

  it('throws the error of the first list (nothing shown yet)', async () => {
    const src = new FakeSource([
      () => {
        throw Object.assign(new Error('Forbidden'), { code: 403 });
      },
    ]);
    await expect(
      followObject(src, { onObject: () => undefined }, new AbortController().signal),
    ).rejects.toThrow('Forbidden');
  });
});

describe('429 Too Many Requests', () => {
  it('waits as the API server asks (header, then Status details), within bounds', () => {
    expect(retryAfterMs({ code: 429, headers: { 'retry-after': '2' } })).toBe(2000);
    expect(retryAfterMs({ code: 429, body: '{"details":{"retryAfterSeconds":3}}' })).toBe(3000);
    expect(retryAfterMs({ code: 429, headers: { 'retry-after': '3600' } })).toBe(10_000);
    expect(retryAfterMs({ code: 429 })).toBe(1000);
  });

  it('retries 429 answers a bounded number of times, and nothing else', async () => {
    let calls = 0;
    const busy = Object.assign(new Error('storage is (re)initializing'), {
      code: 429,
      headers: { 'retry-after': '0.001' },
    });
    await expect(
      withTooManyRequestsRetries(async () => {
        if (++calls < 3) throw busy;
        return 'ok';
      }),
    ).resolves.toBe('ok');
    expect(calls).toBe(3);
    calls = 0;
    await expect(
      withTooManyRequestsRetries(async () => {
        calls++;
        throw busy;
      }, 2),
    ).rejects.toBe(busy);
    expect(calls).toBe(2);
    calls = 0;
    const forbidden = Object.assign(new Error('Forbidden'), { code: 403 });
    await expect(
      withTooManyRequestsRetries(async () => {
        calls++;
        throw forbidden;
      }),
    ).rejects.toBe(forbidden);
    expect(calls).toBe(1);
  });
});

/** A stdout that keeps what was written. */
function output(tty: boolean) {
  const chunks: string[] = [];
  return {
    chunks,
    text: () => chunks.join(''),
    write: (s: string) => chunks.push(s),
    isTTY: tty,
    columns: 200,
  };
}

function deps(src: FakeSource, stdout: ReturnType<typeof output>, signal: AbortSignal, env = {}): GetDeps {
  return {
    stdout,
    stderr: { write: () => undefined },
    env,
    signal,
    source: src,
    now: () => new Date('2026-12-07T11:25:30Z'),
    tickMs: 0,
    retryMs: 1,
  };
}

describe('runGet', () => {
  it('draws once without --watch, without colour when stdout is not a terminal', async () => {
    const src = new FakeSource([() => ({ object: withRv(web, '10'), resourceVersion: '10' })]);
    const out = output(false);
    await runGet('apprel', 'web', {}, deps(src, out, new AbortController().signal));
    expect(out.chunks).toHaveLength(1);
    expect(out.text()).toContain('├──# revision 6b441aee7925');
    expect(out.text()).not.toMatch(ANSI);
    expect(src.watches).toHaveLength(0);
  });

  it('accepts kind/name and fails with kubectl-like messages', async () => {
    const none = new FakeSource([() => ({ object: undefined, resourceVersion: '1' })]);
    const signal = new AbortController().signal;
    await expect(runGet('apprelease/web', undefined, {}, deps(none, output(false), signal))).rejects.toThrow(
      'appreleases.ecsops.io "web" not found in namespace "default"',
    );
    await expect(
      runGet('apprelease/web', undefined, { watch: true }, deps(none, output(false), signal)),
    ).rejects.toThrow('not found');
    await expect(runGet('pods', 'x', {}, deps(none, output(false), signal))).rejects.toThrow(
      'unknown kind "pods"',
    );
    const noCrd = new FakeSource([
      () => {
        throw Object.assign(new Error('HTTP-Code: 404'), {
          code: 404,
          body: '{"message":"the server could not find the requested resource"}',
        });
      },
    ]);
    await expect(runGet('ecsext', 'x', {}, deps(noCrd, output(false), signal))).rejects.toThrow(
      'the server has no ecsextensions.ecsops.io (are the ecsops CRDs installed?)',
    );
  });

  it('--watch off a terminal: one block per change, identical redraws skipped, a delete said plainly', async () => {
    const src = new FakeSource([() => ({ object: withRv(web, '10'), resourceVersion: '10' })]);
    const out = output(false);
    const ac = new AbortController();
    const running = runGet('appreleases', 'web', { watch: true }, deps(src, out, ac.signal));
    const w = await src.watchCount(1);
    w.emit('MODIFIED', withRv(web, '11')); // same drawing
    w.emit('MODIFIED', withRv(web, '12', 'Progressing'));
    w.emit('DELETED', withRv(web, '13'));
    ac.abort();
    await running;
    expect(out.chunks).toHaveLength(3);
    expect(out.chunks[0]).toContain('Status:      ‖ Paused');
    expect(out.chunks[1]).toMatch(/^\nName: {8}web\n/);
    expect(out.chunks[1]).toContain('Status:      ◌ Progressing');
    expect(out.chunks[2]).toBe('\nAppRelease default/web was deleted; waiting for it to come back\n');
    expect(out.text()).not.toContain('\u001b');
  });

  it('--watch on a terminal: redraws in place, in colour, with a status line', async () => {
    const src = new FakeSource([() => ({ object: withRv(web, '10'), resourceVersion: '10' })]);
    const out = output(true);
    const ac = new AbortController();
    const running = runGet('apprel', 'web', { watch: true }, deps(src, out, ac.signal));
    const w = await src.watchCount(1);
    w.emit('MODIFIED', withRv(web, '12', 'Progressing'));
    ac.abort();
    await running;
    expect(out.chunks).toHaveLength(2);
    for (const c of out.chunks) expect(c.startsWith('\u001b[H\u001b[2JName:')).toBe(true);
    expect(out.chunks[1]).toContain('\u001b[36m◌ Progressing\u001b[0m');
    expect(out.chunks[1]).toContain(
      'watching appreleases/web in default; last change 11:25:30; Ctrl-C to stop',
    );
  });

  it('no colour on a terminal with --no-color or NO_COLOR (the redraw codes stay)', async () => {
    for (const [opts, env] of [
      [{ watch: true, color: false }, {}],
      [{ watch: true }, { NO_COLOR: '1' }],
    ] as const) {
      const src = new FakeSource([() => ({ object: withRv(web, '10'), resourceVersion: '10' })]);
      const out = output(true);
      const ac = new AbortController();
      const running = runGet('apprel', 'web', opts, deps(src, out, ac.signal, env));
      await src.watchCount(1);
      ac.abort();
      await running;
      expect(out.text()).toContain('\u001b[H\u001b[2J');
      expect(out.text()).not.toMatch(ANSI);
    }
  });
});
