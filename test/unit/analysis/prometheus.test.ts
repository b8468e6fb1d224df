/**
 * The analysis gate's Prometheus client (src/controllers/shared/analysis/prometheus.ts) against a
 * tiny local HTTP(S) server on 127.0.0.1: scalar and vector answers, Prometheus error bodies,
 * 5xx from a proxy, a timeout, a body that is not JSON, a refused connection, the bearer header,
 * a CA bundle for https, and error messages that never carry the token. Also the connection
 * resolution from Secrets (the shared reader).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnalysisSpec } from '../../../src/api/analysis.js';
import {
  PrometheusQueryError,
  queryPrometheus,
  resolvePrometheusConnection,
  resultValues,
} from '../../../src/controllers/shared/analysis/prometheus.js';
import type { SecretReader } from '../../../src/controllers/shared/secrets.js';
import { StalledError } from '../../../src/runtime/errors.js';

const TOKEN = 'tok-' + 'FAKE'.repeat(6);

/** What the server saw of the last request. */
let last: { url: URL; headers: IncomingMessage['headers'] } | undefined;
/** How the server answers the next request (by query text). */
const answers: Record<string, (res: ServerResponse) => void> = {};

const json = (status: number, body: unknown) => (res: ServerResponse) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
};
const ok = (data: unknown) => json(200, { status: 'success', data });

function handler(req: IncomingMessage, res: ServerResponse) {
  const url = new URL(req.url ?? '/', 'http://x');
  last = { url, headers: req.headers };
  if (url.pathname !== '/prefix/api/v1/query') return json(404, '404 page not found')(res);
  const answer = answers[url.searchParams.get('query') ?? ''];
  if (!answer) return json(400, { status: 'error', errorType: 'bad_data', error: 'unknown test query' })(res);
  answer(res);
}

let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/prefix`;
  Object.assign(answers, {
    scalar: ok({ resultType: 'scalar', result: [1765100000.1, '0.25'] }),
    vector: ok({
      resultType: 'vector',
      result: [
        { metric: { instance: 'a' }, value: [1765100000, '1'] },
        { metric: { instance: 'b' }, value: [1765100000, '+Inf'] },
        { metric: { instance: 'c' }, value: [1765100000, 'NaN'] },
      ],
    }),
    empty: ok({ resultType: 'vector', result: [] }),
    matrix: ok({ resultType: 'matrix', result: [{ metric: {}, values: [[1, '1']] }] }),
    'bad query': json(400, { status: 'error', errorType: 'bad_data', error: 'parse error at char 4' }),
    unavailable: json(503, { status: 'error', errorType: 'unavailable', error: 'TSDB not ready' }),
    proxy: (res: ServerResponse) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<html><body>502 Bad Gateway</body></html>');
    },
    'not json': (res: ServerResponse) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('hello');
    },
    hang: () => undefined, // never answers
    echo: (res: ServerResponse) => json(500, `upstream said: token ${TOKEN} is not valid`)(res),
    'bad sample': ok({ resultType: 'vector', result: [{ metric: {}, value: [1, 'abc'] }] }),
  });
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

const conn = (over: Partial<Parameters<typeof queryPrometheus>[0]> = {}) => ({
  url: base,
  timeoutMs: 2000,
  ...over,
});

async function failure(promise: Promise<unknown>): Promise<PrometheusQueryError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(PrometheusQueryError);
    return err as PrometheusQueryError;
  }
  throw new Error('the query succeeded');
}

describe('queryPrometheus', () => {
  it('answers a scalar, sending GET /api/v1/query with the query, a timeout and the bearer token', async () => {
    await expect(queryPrometheus(conn({ bearerToken: TOKEN, timeoutMs: 7000 }), 'scalar')).resolves.toEqual({
      resultType: 'scalar',
      values: [0.25],
    });
    expect(last?.url.searchParams.get('timeout')).toBe('7s');
    expect(last?.headers.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('sends no Authorization header without a token', async () => {
    await queryPrometheus(conn(), 'scalar');
    expect(last?.headers.authorization).toBeUndefined();
  });

  it('answers a vector in order, with +Inf and NaN, and an empty vector', async () => {
    const v = await queryPrometheus(conn(), 'vector');
    expect(v.resultType).toBe('vector');
    expect(v.values[0]).toBe(1);
    expect(v.values[1]).toBe(Infinity);
    expect(Number.isNaN(v.values[2])).toBe(true);
    await expect(queryPrometheus(conn(), 'empty')).resolves.toEqual({ resultType: 'vector', values: [] });
  });

  it('a base URL with a trailing slash is the same endpoint', async () => {
    await expect(queryPrometheus(conn({ url: `${base}/` }), 'scalar')).resolves.toMatchObject({
      values: [0.25],
    });
  });

  it.each([
    ['bad query', 'query', 400, /answered HTTP 400 bad_data: parse error at char 4$/],
    ['unavailable', 'query', 503, /answered HTTP 503 unavailable: TSDB not ready$/],
    ['proxy', 'http', 502, /answered HTTP 502: <html><body>502 Bad Gateway<\/body><\/html>$/],
    ['not json', 'bad-response', 200, /answered HTTP 200 with a body that is not JSON \(text\/plain\)$/],
    [
      'matrix',
      'bad-response',
      200,
      /returned a matrix result; an instant query must return a scalar or a vector$/,
    ],
    ['bad sample', 'bad-response', 200, /sample value "abc" is not a number$/],
  ])('%s → %s error', async (query, kind, status, message) => {
    const err = await failure(queryPrometheus(conn(), query));
    expect(err.kind).toBe(kind);
    expect(err.status).toBe(status);
    expect(err.message).toMatch(message);
    expect(err.message).toContain(`Prometheus ${base}/api/v1/query`);
    expect(err.message).not.toContain('?'); // the query string is never shown
  });

  it('times out when no answer comes in time', async () => {
    const err = await failure(queryPrometheus(conn({ timeoutMs: 300 }), 'hang'));
    expect(err.kind).toBe('timeout');
    expect(err.message).toMatch(/no answer within 0.3s$/);
  });

  it('a refused connection is unreachable', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const err = await failure(queryPrometheus(conn({ url: `http://127.0.0.1:${port}` }), 'scalar'));
    expect(err.kind).toBe('unreachable');
    expect(err.message).toMatch(new RegExp(`unreachable: .*ECONNREFUSED 127.0.0.1:${port}`));
  });

  it('never shows the token, even when the server echoes it', async () => {
    const err = await failure(queryPrometheus(conn({ bearerToken: TOKEN }), 'echo'));
    expect(err.kind).toBe('http');
    expect(err.message).not.toContain(TOKEN);
    expect(err.message).toContain('[REDACTED]');
  });

  it('refuses a URL that is not http(s)', async () => {
    expect((await failure(queryPrometheus(conn({ url: 'ftp://x' }), 'scalar'))).message).toBe(
      'analysis.prometheus.url must be http or https',
    );
  });
});

describe('queryPrometheus over https with a CA bundle', () => {
  let dir: string;
  let https: Server | undefined;
  let url = '';
  let ca = '';
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ecsops-prom-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    ca = readFileSync(join(dir, 'cert.pem'), 'utf8');
    https = createHttpsServer({ key: readFileSync(join(dir, 'key.pem')), cert: ca }, handler);
    await new Promise<void>((r) => https!.listen(0, '127.0.0.1', r));
    url = `https://127.0.0.1:${(https.address() as AddressInfo).port}/prefix`;
  });
  afterAll(async () => {
    https?.closeAllConnections();
    await new Promise<void>((r) => (https ? https.close(() => r()) : r()));
  });

  it('trusts the server with the CA, and not without it', async () => {
    await expect(queryPrometheus({ url, timeoutMs: 2000, ca }, 'scalar')).resolves.toMatchObject({
      values: [0.25],
    });
    const err = await failure(queryPrometheus({ url, timeoutMs: 2000 }, 'scalar'));
    expect(err.kind).toBe('unreachable');
    expect(err.message).toMatch(/self.signed certificate/);
  });
});

describe('resultValues', () => {
  it('refuses native histogram samples with a hint', () => {
    expect(() =>
      resultValues({ resultType: 'vector', result: [{ metric: {}, histogram: [1, {}] }] }),
    ).toThrow(/native histogram samples cannot be compared/);
  });
});

describe('resolvePrometheusConnection (shared Secret reader)', () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const reader = (data: Record<string, Record<string, string>>): SecretReader => ({
    read: async (_ns, name) =>
      data[name]
        ? {
            resourceVersion: '7',
            data: Object.fromEntries(Object.entries(data[name]).map(([k, v]) => [k, b64(v)])),
          }
        : undefined,
  });
  const spec = (p: Partial<AnalysisSpec['prometheus']>): AnalysisSpec => ({
    prometheus: { url: 'https://prom:9090', ...p },
    metrics: [{ name: 'm', query: 'vector(0)', successCondition: 'result == 0.0' }],
  });
  const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

  it('reads the token (trimmed) and the CA, one GET for the Secret holding both; timeoutSeconds becomes ms', async () => {
    const gets: string[] = [];
    const base = reader({ prom: { token: `${TOKEN}\n`, 'ca.crt': pem } });
    const conn = await resolvePrometheusConnection(
      { read: (ns, name) => (gets.push(`${ns}/${name}`), base.read(ns, name)) },
      'team-a',
      spec({
        bearerTokenSecretRef: { name: 'prom', key: 'token' },
        caSecretRef: { name: 'prom', key: 'ca.crt' },
        timeoutSeconds: 3,
      }),
    );
    expect(conn).toEqual({ url: 'https://prom:9090', bearerToken: TOKEN, ca: pem, timeoutMs: 3000 });
    expect(gets).toEqual(['team-a/prom']);
  });

  it('without references reads nothing and defaults the timeout to 10 s', async () => {
    const none: SecretReader = { read: () => Promise.reject(new Error('must not read')) };
    await expect(resolvePrometheusConnection(none, 'ns', spec({}))).resolves.toEqual({
      url: 'https://prom:9090',
      timeoutMs: 10_000,
    });
  });

  it.each([
    [{}, 'SecretNotFound', 'Secret team-a/prom does not exist'],
    [{ prom: { other: 'x' } }, 'SecretNotFound', 'Secret team-a/prom has no key token'],
    [{ prom: { token: '  \n' } }, 'InvalidSecretValue', 'must hold one non-empty line'],
  ])('token Secret %j → Stalled %s', async (data, reason, message) => {
    const err = await resolvePrometheusConnection(
      reader(data),
      'team-a',
      spec({ bearerTokenSecretRef: { name: 'prom', key: 'token' } }),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StalledError);
    expect((err as StalledError).reason).toBe(reason);
    expect((err as StalledError).message).toContain(message);
  });

  it('a CA that is not PEM is Stalled InvalidSecretValue', async () => {
    const err = await resolvePrometheusConnection(
      reader({ ca: { 'ca.crt': 'not a certificate' } }),
      'team-a',
      spec({ caSecretRef: { name: 'ca', key: 'ca.crt' } }),
    ).catch((e: unknown) => e);
    expect((err as StalledError).reason).toBe('InvalidSecretValue');
    expect((err as StalledError).message).not.toContain('not a certificate');
  });
});
