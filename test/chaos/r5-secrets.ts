/**
 * R5 secrets: known secret values are configured — the AccessKey secret, an STS security token,
 * the signature of a pre-signed artifact URL, a secret a hook prints and one a cloud failure
 * message carries — and every error path is run: throttling, 5xx, connection resets, expired
 * STS tokens, permission denied, a wrong AccessKey ID, a signature mismatch (wrong secret),
 * failing instances, a template that does not exist, an AppRelease whose hook fails printing the
 * secret. Then the controllers' logs (debug level), every Event, the status of every object of
 * every kind and every controller's /metrics are searched for each secret, raw, URL-encoded
 * (once and twice), JSON-escaped and base64 / base64url at all three byte alignments.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { startEmulator } from '../../src/emulator/index.js';
import { kubeRequestRaw } from '../harness/kube-raw.js';
import {
  API,
  chaosSeed,
  ControllerProc,
  createExtension,
  createNamespace,
  ids,
  list,
  metricsText,
  REGION,
  Rng,
  until,
  type Figure,
} from './lib.js';
import type { ChaosContext } from './run.js';

/** Every searchable form of `s`: raw, URL-encoded, JSON-escaped, base64 cores at 3 alignments. */
export function secretForms(s: string): string[] {
  const forms = new Set([
    s,
    encodeURIComponent(s),
    encodeURIComponent(encodeURIComponent(s)),
    JSON.stringify(s).slice(1, -1),
  ]);
  for (let o = 0; o < 3; o++) {
    const bytes = Buffer.concat([Buffer.alloc(o, 0x78), Buffer.from(s)]);
    const start = Math.ceil((o * 8) / 6);
    const end = Math.floor((bytes.length * 8) / 6) - 1;
    for (const enc of ['base64', 'base64url'] as const) forms.add(bytes.toString(enc).slice(start, end));
  }
  return [...forms].filter((f) => f.length >= 12);
}

/** Runs R5; see the module comment. */
export async function r5Secrets(ctx: ChaosContext): Promise<Figure> {
  const t0 = Date.now();
  const rng = new Rng(ctx.seed('R5'));
  const tag = rng.int(100000, 999999);
  const secrets: Record<string, string> = {
    accessKeySecret: `Chaos/AK+secret=${tag}/value`,
    wrongSecret: `Wrong/AK+secret=${tag}/other`,
    stsToken: `CAIS/sts+token=${tag}/chaos`,
    urlSignature: `Sig/url+sign=${tag}/chaos`,
    hookOutput: `hook/printed+secret=${tag}`,
    cloudMessage: `cloud/said+secret=${tag}`,
  };
  const keyId = `fake-chaos-key-id-${tag}`;
  const emu = await startEmulator({
    seed: chaosSeed('sc', 40),
    timeScale: 0.01,
    accessKeys: [{ id: keyId, secret: secrets.accessKeySecret! }],
  });
  const procs: ControllerProc[] = [];
  const namespaces = ['chaos-r5-main', 'chaos-r5-wrongid', 'chaos-r5-wrongsecret', 'chaos-r5-sts'];
  const metrics: string[] = [];
  try {
    for (const ns of namespaces) await createNamespace(ctx.kc, ns);
    await emu.control.setFaults({
      seed: rng.int(1, 2 ** 31),
      actions: { '*': { throttleRate: 0.3, errorRate: 0.1, resetRate: 0.02, responseLossRate: 0.01 } },
      failInstances: {
        'i-sc0003': `permission denied: /etc/app/credentials contains ${secrets.cloudMessage}`,
      },
      failNext: [
        {
          action: 'ListInstancePackageStates',
          code: 'InvalidSecurityToken.Expired',
          httpStatus: 400,
          count: 3,
        },
        {
          action: 'StartExecution',
          code: 'Forbidden.RAM',
          httpStatus: 403,
          count: 4,
          message: 'User not authorized to operate on the specified resource.',
        },
      ],
    });
    await emu.control.scriptInvocation({
      instanceId: 'i-sc0021',
      exitCode: 1,
      output: `starting…\nexport TOKEN=${secrets.hookOutput}\nfailed`,
      delayMs: 200,
    });
    const start = (
      ns: string,
      key: { id: string; secret: string },
      env: NodeJS.ProcessEnv = {},
    ): ControllerProc => {
      const p = new ControllerProc({
        kubeconfig: ctx.cp.kubeconfigPath,
        namespace: ns,
        emu,
        accessKey: key,
        env,
        logLevel: 'debug',
      });
      procs.push(p);
      return p;
    };
    const good = { id: keyId, secret: secrets.accessKeySecret! };
    start('chaos-r5-main', good);
    start('chaos-r5-wrongid', { id: `fake-unknown-key-id-${tag}`, secret: secrets.accessKeySecret! });
    start('chaos-r5-wrongsecret', { id: keyId, secret: secrets.wrongSecret! });
    start('chaos-r5-sts', good, { ALIBABA_CLOUD_SECURITY_TOKEN: secrets.stsToken });
    const [main, wrongId, wrongSecret, sts] = namespaces as [string, string, string, string];
    await createExtension(ctx.kc, main, 'faulty', ids('sc', 1, 10), 'g1', {
      rateControl: { concurrency: 5, maxErrors: 0 },
    });
    await createExtension(ctx.kc, main, 'stalled', ids('sc', 11, 12), 'g1');
    await kubeRequestRaw(
      ctx.kc,
      'PATCH',
      `${API}/namespaces/${main}/ecsextensions/stalled`,
      { spec: { packageName: 'ACS-Extension-does-not-exist-1' } },
      'application/merge-patch+json',
    );
    await kubeRequestRaw(ctx.kc, 'POST', `${API}/namespaces/${main}/appreleases`, {
      apiVersion: 'ecsops.io/v1alpha1',
      kind: 'AppRelease',
      metadata: { name: 'presigned' },
      spec: {
        regionId: REGION,
        targets: { instanceIds: ids('sc', 21, 24) },
        application: 'web',
        version: '1.0.0',
        artifact: {
          url: `https://bucket.oss-cn-hangzhou.aliyuncs.com/web.tgz?OSSAccessKeyId=${keyId}&Expires=1999999999&Signature=${encodeURIComponent(secrets.urlSignature!)}`,
          sha256: 'a'.repeat(64),
        },
        hooks: { start: { script: 'echo chaos-hook-marker; exit 1', timeoutSeconds: 30 } },
        strategy: { batchSize: 2 },
        rollback: { automatic: true },
      },
    });
    for (const ns of [wrongId, wrongSecret, sts])
      await createExtension(ctx.kc, ns, 'x', ids('sc', 31, 33), 'g1');
    // Let every path run: wait until each object has a status for its generation, plus 15 s of retries.
    await until(
      'R5 objects reconciled',
      async () => {
        for (const ns of namespaces) {
          for (const plural of ['ecsextensions', 'appreleases']) {
            for (const o of await list(ctx.kc, ns, plural))
              if (o.status?.observedGeneration !== o.metadata.generation) return false;
          }
        }
        return true;
      },
      120_000,
      1000,
    );
    await sleep(15_000);
    for (const p of procs) metrics.push(await metricsText(await p.metricsPort).catch(() => ''));
    const crashes = procs.filter((p) => p.crashed).length;
    for (const p of procs) await p.kill('SIGTERM');

    // Haystacks.
    const logs = procs.flatMap((p) => p.lines).join('\n');
    const events = JSON.stringify([
      await kubeRequestRaw(ctx.kc, 'GET', '/apis/events.k8s.io/v1/events'),
      await kubeRequestRaw(ctx.kc, 'GET', '/api/v1/events'),
    ]);
    const statuses: unknown[] = [];
    for (const ns of namespaces) {
      for (const plural of ['ecsextensions', 'appreleases', 'patchpolicies', 'maintenancewindows']) {
        for (const o of await list(ctx.kc, ns, plural))
          statuses.push({ metadata: o.metadata, status: o.status });
      }
    }
    const hay: Record<string, string> = {
      logs,
      events,
      status: JSON.stringify(statuses),
      metrics: metrics.join('\n'),
    };
    const leaks: string[] = [];
    let searched = 0;
    for (const [name, value] of Object.entries(secrets)) {
      for (const form of secretForms(value)) {
        for (const [where, text] of Object.entries(hay)) {
          searched++;
          const n = text.split(form).length - 1;
          if (n > 0) leaks.push(`${name} as "${form}" ×${n} in ${where}`);
        }
      }
    }
    // Sanity: the error paths really ran (otherwise 0 leaks proves nothing).
    const ran = {
      throttled: (logs.match(/Throttling/g) ?? []).length,
      expiredToken: (logs.match(/InvalidSecurityToken/g) ?? []).length,
      forbidden: (logs.match(/Forbidden\.RAM/g) ?? []).length,
      wrongKeyId: (logs.match(/InvalidAccessKeyId/g) ?? []).length,
      signature: (logs.match(/SignatureDoesNotMatch/g) ?? []).length,
      failedHook: statuses.some((s) =>
        /RolledBack|Failed/.test(JSON.stringify((s as { status?: unknown }).status ?? {})),
      )
        ? 1
        : 0,
    };
    const allRan = Object.values(ran).every((n) => n > 0);
    const bytes = Object.values(hay).reduce((a, t) => a + t.length, 0);
    return {
      id: 'R5',
      title: 'secrets',
      pass: leaks.length === 0 && crashes === 0 && allRan,
      seed: rng.seed,
      seconds: (Date.now() - t0) / 1000,
      line: `R5 secrets: ${Object.keys(secrets).length} known secrets × ${searched / Object.keys(secrets).length / 4} forms searched in ${(bytes / 1024).toFixed(0)} KiB of debug logs (${logs.split('\n').length} lines from ${procs.length} controllers), Events, the status of every object and /metrics: ${leaks.length} leaks; error paths seen in logs ${JSON.stringify(ran)}; controller crashes ${crashes}`,
      details: leaks.slice(0, 10),
    };
  } finally {
    for (const p of procs) await p.kill('SIGKILL');
    for (const ns of namespaces) await ctx.deleteNamespace(ns);
    await emu.stop();
  }
}
