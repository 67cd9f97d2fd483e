// The Docker and Compose files, checked without a Docker engine: the compose services, ports per
// profile and environment (derived from src/config.ts, never copied), the balancer's config, and
// the Dockerfile's COPY sources, the build-stage ones after a real compile into a temp directory.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  configVariableNames,
  configVariables,
  faultInjectionSwitch,
  loadConfig,
} from '../../src/config.js';
import { writeHeavySettings } from '../../src/embedded/embedded-postgres.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string) => readFileSync(join(root, path), 'utf8');

// ---------------------------------------------------------------------------------------------
// docker-compose.yml

type PortSpec = string | number | { target: number; published?: string | number };
interface ComposeService {
  image?: string;
  build?: unknown;
  profiles?: string[];
  ports?: PortSpec[];
  volumes?: (string | { type: string; source: string; target: string })[];
  environment?: Record<string, string | number | boolean | null>;
  healthcheck?: { test?: unknown; disable?: boolean };
  depends_on?: Record<string, { condition?: string }> | string[];
  stop_grace_period?: string;
  command?: string[];
}
interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

const compose = parse(read('docker-compose.yml')) as ComposeFile;
const service = (name: string): ComposeService => {
  const found = compose.services[name];
  if (!found) throw new Error(`docker-compose.yml has no service ${name}`);
  return found;
};
const postgres = service('postgres');
/** The service `docker compose --scale api=3` scales: the README names it. */
const api = service('api');
const apiEnv: Record<string, string> = Object.fromEntries(
  Object.entries(api.environment ?? {}).map(([name, value]) => [name, String(value ?? '')]),
);

/** Services `docker compose --profile …` starts: those without profiles, and those in one. */
function activeServices(profiles: readonly string[]): [string, ComposeService][] {
  return Object.entries(compose.services).filter(
    ([, s]) => s.profiles === undefined || s.profiles.some((p) => profiles.includes(p)),
  );
}

/** Host port → container port of one `ports` entry; host null when Docker picks one. */
function portMapping(spec: PortSpec): { host: number | null; container: number } {
  if (typeof spec === 'object')
    return {
      host: spec.published === undefined ? null : Number(spec.published),
      container: spec.target,
    };
  const parts = String(spec).split(':');
  const container = Number(parts.at(-1));
  return { host: parts.length >= 2 ? Number(parts.at(-2)) : null, container };
}

function durationMs(text: string): number {
  const match = /^(\d+)(ms|s|m)$/.exec(text);
  if (!match) throw new Error(`unsupported duration ${text}`);
  return Number(match[1]) * { ms: 1, s: 1000, m: 60_000 }[match[2] as 'ms' | 's' | 'm'];
}

// ---------------------------------------------------------------------------------------------
// Dockerfile

interface Instruction {
  readonly stage: string;
  readonly keyword: string;
  readonly args: string;
}

/** Instructions with their stage name; continuation lines joined, comments dropped. */
function parseDockerfile(text: string): Instruction[] {
  const lines = text
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  const instructions: Instruction[] = [];
  let stage = '';
  for (const line of lines) {
    const [, keyword = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    if (keyword.toUpperCase() === 'FROM') stage = /\bAS\s+(\S+)/i.exec(args)?.[1] ?? args;
    instructions.push({ stage, keyword: keyword.toUpperCase(), args });
  }
  return instructions;
}

interface Copy {
  readonly stage: string;
  readonly from: string | null;
  readonly sources: string[];
  readonly destination: string;
}

function copiesOf(instructions: readonly Instruction[]): Copy[] {
  return instructions
    .filter((i) => i.keyword === 'COPY')
    .map((i) => {
      const words = i.args.split(/\s+/);
      const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length) ?? null;
      const paths = words.filter((w) => !w.startsWith('--'));
      return { stage: i.stage, from, sources: paths.slice(0, -1), destination: paths.at(-1)! };
    });
}

const dockerfile = parseDockerfile(read('Dockerfile'));
const stages = [...new Set(dockerfile.map((i) => i.stage))];
const buildStage = stages[0]!;
const runtimeStage = stages.at(-1)!;
const inStage = (stage: string, keyword: string) =>
  dockerfile.filter((i) => i.stage === stage && i.keyword === keyword).map((i) => i.args);
const workdirOf = (stage: string) => inStage(stage, 'WORKDIR').at(-1) ?? '/';

// ---------------------------------------------------------------------------------------------
// .dockerignore (the subset of its syntax used here: root-relative globs, no `!`, no `**`)

const ignorePatterns = read('.dockerignore')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line !== '' && !line.startsWith('#'));

function globRegExp(pattern: string): RegExp {
  if (pattern.startsWith('!') || pattern.includes('**'))
    throw new Error(`.dockerignore pattern ${pattern}: extend this matcher first`);
  const body = pattern
    .replace(/^\/+|\/+$/g, '')
    .split('')
    .map((c) => (c === '*' ? '[^/]*' : c === '?' ? '[^/]' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${body}$`);
}

/** Whether Docker leaves `path` (relative to the context) out: it or a parent matches. */
function dockerIgnores(path: string): boolean {
  const segments = posix.normalize(path).replace(/\/$/, '').split('/');
  const prefixes = segments.map((_, i) => segments.slice(0, i + 1).join('/'));
  return ignorePatterns.some((pattern) => prefixes.some((p) => globRegExp(pattern).test(p)));
}

// ---------------------------------------------------------------------------------------------

describe('docker-compose.yml', () => {
  it('runs postgres:16 with a health check and its data on a named volume', () => {
    expect(postgres.image).toBe('postgres:16');
    expect(postgres.healthcheck?.test).toBeDefined();
    const dataVolume = postgres.volumes
      ?.map((v) => (typeof v === 'string' ? v.split(':') : [v.source, v.target]))
      .find(([, target]) => target === '/var/lib/postgresql/data');
    expect(Object.keys(compose.volumes ?? {})).toContain(dataVolume?.[0]);
  });

  it("gives postgres the embedded Postgres's settings", () => {
    const flags = postgres.command ?? [];
    const settings = flags.filter((_, i) => flags[i - 1] === '-c');
    expect(flags[0]).toBe('postgres');
    expect(settings).toEqual([
      `shared_buffers=${configVariables.embeddedPostgresSharedBuffersMb.fallback}MB`,
      ...writeHeavySettings,
    ]);
  });

  it('starts the api once postgres is healthy', () => {
    expect(api.depends_on).toMatchObject({ postgres: { condition: 'service_healthy' } });
  });

  it('health-checks the api, in the compose file or through the Dockerfile', () => {
    expect(api.healthcheck?.disable).not.toBe(true);
    const checked = api.healthcheck?.test !== undefined || inStage(runtimeStage, 'HEALTHCHECK');
    expect(checked).toBeTruthy();
  });

  it('lists exactly the environment variables src/config.ts reads', () => {
    expect(Object.keys(apiEnv).sort()).toEqual([...configVariableNames].sort());
  });

  it('sets every variable but the database URL to the default src/config.ts falls back to', () => {
    const defaults = Object.fromEntries(
      Object.values(configVariables).map((v) => [
        v.name,
        Array.isArray(v.fallback) ? v.fallback.join(',') : String(v.fallback),
      ]),
    );
    const rest = Object.fromEntries(
      Object.entries(apiEnv).filter(([name]) => name !== 'POSTGRES_DSN' && name !== 'DATABASE_URL'),
    );
    expect(rest).toEqual(defaults);
    expect(loadConfig(apiEnv)).toEqual(loadConfig({ POSTGRES_DSN: apiEnv.POSTGRES_DSN }));
  });

  it('points POSTGRES_DSN at the postgres service with its user, password and database', () => {
    const url = new URL(apiEnv.POSTGRES_DSN ?? '');
    expect({
      host: url.hostname,
      user: url.username,
      password: url.password,
      database: url.pathname.slice(1),
    }).toEqual({
      host: 'postgres',
      user: postgres.environment?.POSTGRES_USER,
      password: postgres.environment?.POSTGRES_PASSWORD,
      database: postgres.environment?.POSTGRES_DB,
    });
  });

  it('gives the api longer to stop than its own SIGTERM drain deadline', () => {
    expect(durationMs(api.stop_grace_period ?? '10s')).toBeGreaterThan(
      Number(apiEnv.SHUTDOWN_TIMEOUT_MS),
    );
  });

  it('publishes no fixed host port on the api, so --scale api=3 cannot clash', () => {
    expect((api.ports ?? []).map(portMapping).filter((p) => p.host !== null)).toEqual([]);
  });

  for (const profiles of [[], ['scale']]) {
    it(`publishes :8080 once, on the balancer, with profiles [${profiles.join(', ')}]`, () => {
      const published = activeServices(profiles).flatMap(([name, s]) =>
        (s.ports ?? [])
          .map(portMapping)
          .filter((p) => p.host !== null)
          .map((p) => ({ service: name, ...p })),
      );
      expect(published).toEqual([{ service: 'lb', host: 8080, container: 8080 }]);
    });
  }
});

describe('the balancer (service lb, deploy/haproxy.cfg)', () => {
  const lb = service('lb');
  const mount = lb.volumes
    ?.map((v) => (typeof v === 'string' ? v.split(':') : [v.source, v.target]))
    .find(([, target]) => target === '/usr/local/etc/haproxy/haproxy.cfg');
  const configPath = mount?.[0] ?? '';
  const config = existsSync(join(root, configPath)) ? read(configPath) : '';
  const directives = config
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .filter((line) => line !== '');

  it('runs the official haproxy image with the config file from deploy/', () => {
    expect(lb.image).toMatch(/^haproxy:\d/);
    expect(configPath).toMatch(/^\.\/deploy\//);
    expect(existsSync(join(root, configPath))).toBe(true);
  });

  it('starts once the api is healthy, in the scale profile too', () => {
    expect(lb.depends_on).toMatchObject({ api: { condition: 'service_healthy' } });
    expect(activeServices(['scale']).map(([name]) => name)).toEqual(
      expect.arrayContaining(['postgres', 'api', 'lb']),
    );
  });

  it('listens on the container port compose publishes', () => {
    const published = (lb.ports ?? []).map(portMapping).find((p) => p.host === 8080);
    expect(directives.filter((d) => d.startsWith('bind '))).toEqual([
      `bind :${published?.container}`,
    ]);
  });

  it('sends requests to the api service on the port the api listens on', () => {
    const servers = directives.filter((d) => /^server(-template)? /.test(d));
    const targets = servers.map((d) => d.split(/\s+/).find((word) => word.includes(':')));
    expect(servers.length).toBeGreaterThan(0);
    expect(new Set(targets)).toEqual(new Set([`api:${apiEnv.PORT}`]));
  });

  it('checks each replica with GET /readyz over HTTP/1.1 (uWS refuses HTTP/1.0)', () => {
    expect(directives).toContain('option httpchk');
    expect(directives.find((d) => d.startsWith('http-check send'))).toMatch(
      /meth GET uri \/readyz ver HTTP\/1\.1 hdr Host \S+/,
    );
    expect(directives.find((d) => d.startsWith('default-server'))).toMatch(/\bcheck\b/);
  });
});

describe('Dockerfile', () => {
  it('builds on node:24-trixie-slim and runs on it (glibc 2.41: the newer uWS build serves)', () => {
    expect(inStage(buildStage, 'FROM')).toEqual([`node:24-trixie-slim AS ${buildStage}`]);
    expect(inStage(runtimeStage, 'FROM')).toEqual([`node:24-trixie-slim AS ${runtimeStage}`]);
  });

  it('checks the generated validators and compiles in the build stage', () => {
    const run = inStage(buildStage, 'RUN').join('\n');
    expect(run).toMatch(/npm ci\b/);
    expect(run).toMatch(/npm run check:validators/);
    expect(run).toMatch(/npm run build/);
  });

  it('installs production dependencies only in the runtime stage', () => {
    expect(inStage(runtimeStage, 'RUN').join('\n')).toMatch(/npm ci --omit=dev/);
  });

  it('runs as a non-root user, stops on SIGTERM and health-checks with node, not curl', () => {
    const user = inStage(runtimeStage, 'USER').at(-1) ?? 'root';
    expect(user.split(':')[0]).not.toMatch(/^(root|0)$/);
    expect(inStage(runtimeStage, 'STOPSIGNAL')).toEqual(['SIGTERM']);
    const healthcheck = inStage(runtimeStage, 'HEALTHCHECK').join('\n');
    expect(healthcheck).toMatch(/CMD \["node", "-e", ".*fetch\(.*\/readyz/);
    expect(healthcheck).not.toMatch(/curl|wget/);
  });

  it('copies from the build context only paths that exist and .dockerignore lets through', () => {
    const sources = copiesOf(dockerfile)
      .filter((c) => c.from === null)
      .flatMap((c) => c.sources);
    expect(sources.length).toBeGreaterThan(0);
    expect(sources.filter((s) => !existsSync(join(root, s)))).toEqual([]);
    expect(sources.filter(dockerIgnores)).toEqual([]);
  });
});

describe('test-only faults', () => {
  it.each(['Dockerfile', 'docker-compose.yml', 'package.json'])(
    '%s sets neither FAULT_INJECTION nor the switch that lets it through',
    (path) => {
      expect(read(path)).not.toMatch(new RegExp(`FAULT_INJECTION|${faultInjectionSwitch.name}`));
    },
  );
});

describe('.dockerignore', () => {
  it('keeps node_modules, build output, local data, bench results and tests out', () => {
    const keptOut = ['node_modules', 'dist', '.data', 'bench/results', 'test', 'test-results'];
    expect(keptOut.filter((path) => !dockerIgnores(path))).toEqual([]);
  });
});

describe('the image after a real compile', () => {
  // The build stage's WORKDIR, recreated: the Dockerfile's `npm run build` output goes to dist/.
  let app: string;
  beforeAll(() => {
    app = realpathSync(mkdtempSync(join(tmpdir(), 'pulse-image-')));
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    const build = spawnSync(
      process.execPath,
      [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', join(app, 'dist')],
      { encoding: 'utf8' },
    );
    if (build.status !== 0) throw new Error(`tsc failed:\n${build.stdout}${build.stderr}`);
  }, 120_000);
  afterAll(() => rmSync(app, { recursive: true, force: true }));

  /** Where a path of the build stage's filesystem is here: build output in `app`, the rest
   *  (what the build stage copied from the context) in the repository. */
  const builtPath = (path: string) => {
    const relative = posix.relative(
      workdirOf(buildStage),
      posix.resolve(workdirOf(buildStage), path),
    );
    return relative === 'dist' || relative.startsWith('dist/')
      ? join(app, relative)
      : join(root, relative);
  };

  it('has every path the runtime stage copies from the build stage', () => {
    const sources = copiesOf(dockerfile)
      .filter((c) => c.stage === runtimeStage && c.from === buildStage)
      .flatMap((c) => c.sources);
    expect(sources.length).toBeGreaterThan(0);
    expect(sources.filter((s) => !existsSync(builtPath(s)))).toEqual([]);
  });

  it('has the file the runtime CMD starts', () => {
    const [, script] = JSON.parse(inStage(runtimeStage, 'CMD').at(-1) ?? '[]') as string[];
    expect(existsSync(join(app, script ?? 'missing'))).toBe(true);
  });

  it('resolves every relative import of the compiled code, the JSON Schemas included', () => {
    const files = readdirSync(join(app, 'dist'), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.js'))
      .map((f) => join(app, 'dist', f));
    const specifiers = files.flatMap((file) =>
      [...readFileSync(file, 'utf8').matchAll(/(?:from|import\()\s*'(\.{1,2}\/[^']+)'/g)].map((m) =>
        resolve(dirname(file), m[1]!),
      ),
    );
    const schemas = specifiers.filter((s) => s.endsWith('.schema.json'));
    expect(schemas.length).toBeGreaterThan(0);
    expect(specifiers.filter((s) => !existsSync(s))).toEqual([]);
  });

  it('finds migrations/ where the runtime stage puts it', () => {
    const child = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import(${JSON.stringify(join(app, 'dist/src/project-root.js'))}).then((m) => process.stdout.write(m.projectRoot))`,
      ],
      { encoding: 'utf8' },
    );
    // The compiled module's root is the directory holding dist/; the image's is its WORKDIR.
    expect(child.stdout).toBe(app);
    const migrations = copiesOf(dockerfile).find(
      (c) => c.stage === runtimeStage && c.from === null && c.sources.includes('migrations'),
    );
    expect(posix.resolve(workdirOf(runtimeStage), migrations?.destination ?? '')).toBe(
      posix.join(workdirOf(runtimeStage), 'migrations'),
    );
    const dist = copiesOf(dockerfile).find(
      (c) => c.stage === runtimeStage && c.from === buildStage,
    );
    expect(posix.resolve(workdirOf(runtimeStage), dist?.destination ?? '')).toBe(
      posix.join(workdirOf(runtimeStage), 'dist'),
    );
  });
});
