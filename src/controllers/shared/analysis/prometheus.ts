/**
 * A minimal Prometheus HTTP API client for the analysis gate: instant queries only,
 * `GET <url>/api/v1/query?query=<promql>&timeout=<n>s`
 * (https://prometheus.io/docs/prometheus/latest/querying/api/#instant-queries), over node:http /
 * node:https with an optional bearer token (`Authorization: Bearer`) and a PEM CA bundle.
 *
 * Every failure is a {@link PrometheusQueryError} whose message is sanitized
 * (src/runtime/sanitize.ts) and never contains the token (it is also cut out of anything the
 * server echoes). The gate turns any of them into an Inconclusive measurement.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AnalysisMetric, AnalysisSpec } from '../../../api/analysis.js';
import { InvalidSecretValueReason } from '../../../api/conditions.js';
import { StalledError } from '../../../runtime/errors.js';
import { sanitizeError, sanitizeText, truncate } from '../../../runtime/sanitize.js';
import { secretValue, type SecretData, type SecretReader } from '../secrets.js';

/** Where and how to query (the resolved `spec.analysis.prometheus`; memory only, it holds the token). */
export interface PrometheusConnectionOptions {
  /** Base URL (`http(s)://host[:port][/prefix]`); `/api/v1/query` is appended. */
  url: string;
  /** Bearer token, sent as `Authorization: Bearer <token>`. Never logged. */
  bearerToken?: string;
  /** PEM CA bundle trusted for https (instead of the system CAs). */
  ca?: string;
  /** Whole-request timeout (connect, answer, body), ms. Also sent as the query `timeout`. */
  timeoutMs: number;
}

/** One instant-query answer reduced to numbers. */
export interface QueryResult {
  /** `scalar`: one value. `vector`: one value per sample, in the server's order (maybe none). */
  resultType: 'scalar' | 'vector';
  /** Values; Prometheus' `NaN`, `+Inf`, `-Inf` become NaN, Infinity, -Infinity. */
  values: number[];
}

/** Runs one instant query for a metric (the rendered query); throws on any failure. */
export type QueryFn = (metric: AnalysisMetric, renderedQuery: string) => Promise<QueryResult>;

/** Why a query gave no usable answer. */
export type PrometheusErrorKind = 'unreachable' | 'timeout' | 'http' | 'query' | 'bad-response';

/** A failed query; `message` is sanitized and token-free. */
export class PrometheusQueryError extends Error {
  readonly kind: PrometheusErrorKind;
  /** The HTTP status, when the server answered. */
  readonly status?: number;
  constructor(kind: PrometheusErrorKind, message: string, status?: number) {
    super(message);
    this.name = 'PrometheusQueryError';
    this.kind = kind;
    if (status !== undefined) this.status = status;
  }
}

/** Largest response body read, bytes (a query answering more is a bad response). */
const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

function clean(text: string, token: string | undefined): string {
  const cut = token && token.length > 0 ? text.split(token).join('[REDACTED]') : text;
  return truncate(sanitizeText(cut.replace(/\s+/g, ' ').trim()), 400);
}

/** `scheme://host[:port]/path` of the base URL (what messages name). */
function endpointOf(base: URL): string {
  return `${base.protocol}//${base.host}${base.pathname.replace(/\/+$/, '')}/api/v1/query`;
}

function parseSampleValue(v: unknown): number {
  if (typeof v !== 'string') throw new Error('sample value is not a string');
  if (v === '+Inf' || v === 'Inf') return Infinity;
  if (v === '-Inf') return -Infinity;
  if (v === 'NaN') return NaN;
  const n = Number(v);
  if (v.trim() === '' || Number.isNaN(n))
    throw new Error(`sample value ${JSON.stringify(v.slice(0, 40))} is not a number`);
  return n;
}

function pairValue(pair: unknown): number {
  if (!Array.isArray(pair) || pair.length !== 2) throw new Error('sample is not a [time, value] pair');
  return parseSampleValue(pair[1]);
}

/**
 * The numbers of a Prometheus `data` object (`{resultType, result}`).
 * @throws Error for matrix/string results, native histogram samples or a malformed shape.
 */
export function resultValues(data: unknown): QueryResult {
  const d = data as { resultType?: unknown; result?: unknown } | null;
  if (!d || typeof d !== 'object') throw new Error('no data in the answer');
  if (d.resultType === 'scalar') return { resultType: 'scalar', values: [pairValue(d.result)] };
  if (d.resultType === 'vector') {
    if (!Array.isArray(d.result)) throw new Error('vector result is not a list');
    const values = (d.result as Array<{ value?: unknown; histogram?: unknown }>).map((s) => {
      if (s && typeof s === 'object' && s.value === undefined && s.histogram !== undefined)
        throw new Error('native histogram samples cannot be compared; use histogram_quantile() or sum()');
      return pairValue(s?.value);
    });
    return { resultType: 'vector', values };
  }
  throw new Error(
    `the query returned a ${typeof d.resultType === 'string' ? d.resultType : 'unknown'} result; an instant query must return a scalar or a vector`,
  );
}

function get(
  target: URL,
  conn: PrometheusConnectionOptions,
): Promise<{ status: number; contentType: string; body: string }> {
  return new Promise((resolve, reject) => {
    const https = target.protocol === 'https:';
    const headers: Record<string, string> = { Accept: 'application/json', 'User-Agent': 'ecsops-analysis' };
    if (conn.bearerToken) headers.Authorization = `Bearer ${conn.bearerToken}`;
    const options = {
      method: 'GET',
      headers,
      agent: false as const,
      ...(https && conn.ca ? { ca: conn.ca } : {}),
    };
    let done = false;
    const finish = (fn: () => void) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      fn();
    };
    const onResponse = (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_RESPONSE_BYTES) {
          finish(() =>
            reject(
              new PrometheusQueryError(
                'bad-response',
                `the answer is larger than ${MAX_RESPONSE_BYTES} bytes`,
              ),
            ),
          );
          res.destroy();
          return;
        }
        chunks.push(c);
      });
      res.on('end', () =>
        finish(() =>
          resolve({
            status: res.statusCode ?? 0,
            contentType: String(res.headers['content-type'] ?? ''),
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        ),
      );
      res.on('error', (err) => finish(() => reject(err)));
    };
    const req = https ? httpsRequest(target, options, onResponse) : httpRequest(target, options, onResponse);
    const timer = setTimeout(() => {
      finish(() =>
        reject(
          new PrometheusQueryError('timeout', `no answer within ${Math.round(conn.timeoutMs / 100) / 10}s`),
        ),
      );
      req.destroy();
    }, conn.timeoutMs);
    req.on('error', (err) => finish(() => reject(err)));
    req.end();
  });
}

/**
 * Runs the instant query `promql` (evaluated at the server's current time).
 * @returns the scalar or vector values ({@link QueryResult}); a vector may be empty.
 * @throws PrometheusQueryError: `unreachable` (connection refused, DNS, TLS), `timeout`
 *   (no complete answer within `timeoutMs`), `http` (a status other than 2xx without a Prometheus
 *   error body, e.g. 502 from a proxy), `query` (Prometheus answered `status: error`, e.g. a bad
 *   query, 422/503), `bad-response` (not JSON, matrix/string result, unparseable sample).
 */
export async function queryPrometheus(
  conn: PrometheusConnectionOptions,
  promql: string,
): Promise<QueryResult> {
  let base: URL;
  try {
    base = new URL(conn.url);
  } catch {
    throw new PrometheusQueryError('unreachable', 'analysis.prometheus.url is not a URL');
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:')
    throw new PrometheusQueryError('unreachable', 'analysis.prometheus.url must be http or https');
  const where = endpointOf(base);
  const target = new URL(where);
  target.searchParams.set('query', promql);
  target.searchParams.set('timeout', `${Math.max(1, Math.floor(conn.timeoutMs / 1000))}s`);
  let answer: { status: number; contentType: string; body: string };
  try {
    answer = await get(target, conn);
  } catch (err) {
    if (err instanceof PrometheusQueryError)
      throw new PrometheusQueryError(
        err.kind,
        `Prometheus ${where}: ${clean(err.message, conn.bearerToken)}`,
      );
    throw new PrometheusQueryError(
      'unreachable',
      `Prometheus ${where} unreachable: ${clean(sanitizeError(err, 300), conn.bearerToken)}`,
    );
  }
  let parsed: { status?: unknown; data?: unknown; errorType?: unknown; error?: unknown } | undefined;
  try {
    parsed = JSON.parse(answer.body) as typeof parsed;
  } catch {
    parsed = undefined;
  }
  if (parsed && parsed.status === 'error')
    throw new PrometheusQueryError(
      'query',
      `Prometheus ${where} answered HTTP ${answer.status} ${clean(String(parsed.errorType ?? 'error'), conn.bearerToken)}: ${clean(String(parsed.error ?? ''), conn.bearerToken)}`,
      answer.status,
    );
  if (answer.status < 200 || answer.status > 299)
    throw new PrometheusQueryError(
      'http',
      `Prometheus ${where} answered HTTP ${answer.status}: ${clean(answer.body.slice(0, 400), conn.bearerToken) || '(empty body)'}`,
      answer.status,
    );
  if (!parsed || parsed.status !== 'success')
    throw new PrometheusQueryError(
      'bad-response',
      `Prometheus ${where} answered HTTP ${answer.status} with ${parsed ? 'JSON that is not a query answer' : `a body that is not JSON (${answer.contentType || 'no content type'})`}`,
      answer.status,
    );
  try {
    return resultValues(parsed.data);
  } catch (err) {
    throw new PrometheusQueryError(
      'bad-response',
      `Prometheus ${where}: ${clean(err instanceof Error ? err.message : String(err), conn.bearerToken)}`,
      answer.status,
    );
  }
}

/** A {@link QueryFn} over {@link queryPrometheus} with one connection. */
export function prometheusQueryFn(conn: PrometheusConnectionOptions): QueryFn {
  return (_metric, renderedQuery) => queryPrometheus(conn, renderedQuery);
}

/**
 * Resolves `spec.prometheus` into connection options: reads the bearer token and CA Secrets (one GET
 * per Secret in `namespace`, one for both when they share a Secret; the shared reader of src/controllers/shared/secrets.ts; same RBAC as AppRelease
 * envVars secrets). The token is trimmed of surrounding whitespace (a trailing newline is common).
 * @throws StalledError `SecretNotFound` / `SecretForbidden` (from the reader), `InvalidSecretValue`
 *   when the token is empty or the CA is not PEM; TransientError on other read failures.
 */
export async function resolvePrometheusConnection(
  reader: SecretReader,
  namespace: string,
  spec: AnalysisSpec,
): Promise<PrometheusConnectionOptions> {
  const p = spec.prometheus;
  const conn: PrometheusConnectionOptions = { url: p.url, timeoutMs: (p.timeoutSeconds ?? 10) * 1000 };
  const read = new Map<string, Promise<SecretData | undefined>>(); // a Secret holding both: one GET
  const valueOf = async (ref: { name: string; key: string }): Promise<string> => {
    let secret = read.get(ref.name);
    if (!secret) read.set(ref.name, (secret = reader.read(namespace, ref.name)));
    return secretValue(await secret, namespace, ref);
  };
  if (p.bearerTokenSecretRef) {
    const ref = p.bearerTokenSecretRef;
    const token = (await valueOf(ref)).trim();
    if (!token || /[\r\n]/.test(token))
      throw new StalledError(
        InvalidSecretValueReason,
        `Secret ${namespace}/${ref.name} key ${ref.key} (analysis.prometheus.bearerTokenSecretRef) must hold one non-empty line`,
      );
    conn.bearerToken = token;
  }
  if (p.caSecretRef) {
    const ref = p.caSecretRef;
    const ca = await valueOf(ref);
    if (!ca.includes('-----BEGIN CERTIFICATE-----'))
      throw new StalledError(
        InvalidSecretValueReason,
        `Secret ${namespace}/${ref.name} key ${ref.key} (analysis.prometheus.caSecretRef) is not a PEM certificate bundle`,
      );
    conn.ca = ca;
  }
  return conn;
}
