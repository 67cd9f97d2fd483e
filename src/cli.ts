// `npm run pulse -- <command>`: projects and keys from the command line, for people without curl
// at hand or before any key exists. Talks to the database: POSTGRES_DSN/DATABASE_URL, else the
// embedded Postgres of `npm start` (the running one when the server is up). JSON on stdout; a
// failure is one line on stderr and exit code 1 (2 for a usage error).
import { parseArgs } from 'node:util';
import type pg from 'pg';
import { pino } from 'pino';
import { createKey, keyJson, parseId, projectJson } from './access/manage-access.js';
import { ConfigError, loadConfig } from './config.js';
import { runningEmbeddedDsn, startConfiguredPostgres } from './embedded/embedded-postgres.js';
import { findKey, listKeys, revokeKey } from './sql/api-keys.js';
import { createPool } from './sql/create-pool.js';
import { migrate } from './sql/migrate.js';
import { findProjectByName, insertProject, listProjects } from './sql/projects.js';
import { checkKeyCreate, checkProjectCreate } from './validation/validate-admin-request.js';

const usage =
  'commands: projects create <name> | projects list | keys create --project <name or id> --scope write|read|admin [--name <label>] | keys list --project <name or id> | keys revoke <key id>';

/** An expected failure: said in one line, exit code given. */
class CliFailure extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

type Command = (pool: pg.Pool, args: string[], options: Options) => Promise<unknown>;
interface Options {
  readonly project?: string;
  readonly scope?: string;
  readonly name?: string;
}

function valid<T>(checked: { ok: true; value: T } | { ok: false; problem: { errors?: object } }) {
  if (checked.ok) return checked.value;
  throw new CliFailure(`invalid input: ${JSON.stringify(checked.problem.errors ?? {})}`, 2);
}

async function projectNamed(pool: pg.Pool, nameOrId: string | undefined): Promise<number> {
  if (nameOrId === undefined) throw new CliFailure('--project is required', 2);
  const byName = await findProjectByName(pool, nameOrId);
  if (byName) return byName.id;
  const id = parseId(nameOrId);
  if (id !== null && (await listProjects(pool, id)).length > 0) return id;
  throw new CliFailure(`no project is named or numbered ${JSON.stringify(nameOrId)}`);
}

const commands: Record<string, Command> = {
  'projects create': async (pool, [name]) => {
    const body = valid(checkProjectCreate({ name }));
    const row = await insertProject(pool, body.name);
    if (row === 'name_taken')
      throw new CliFailure(`a project named ${JSON.stringify(name)} exists`);
    return projectJson(row);
  },
  'projects list': async (pool) => ({
    projects: (await listProjects(pool, null)).map(projectJson),
  }),
  'keys create': async (pool, _args, options) => {
    const body = valid(
      checkKeyCreate({ scope: options.scope, ...(options.name ? { name: options.name } : {}) }),
    );
    return createKey(
      pool,
      await projectNamed(pool, options.project),
      body.scope,
      body.name ?? null,
    );
  },
  'keys list': async (pool, _args, options) => ({
    keys: (await listKeys(pool, await projectNamed(pool, options.project))).map(keyJson),
  }),
  'keys revoke': async (pool, [id]) => {
    const keyId = parseId(id ?? '');
    const key = keyId === null ? null : await findKey(pool, keyId);
    if (key === null) throw new CliFailure(`no key has the id ${JSON.stringify(id ?? '')}`);
    await revokeKey(pool, key.id);
    return { id: String(key.id), revoked: true };
  },
};

async function connect(): Promise<{ pool: pg.Pool; close: () => Promise<void> }> {
  const config = loadConfig();
  // Logs go to stderr: stdout carries only the answer.
  const log = pino({ level: 'warn' }, pino.destination(2));
  let dsn = config.postgresDsn ?? (await runningEmbeddedDsn(config.embeddedPostgresDataDir));
  const embedded = dsn === null ? await startConfiguredPostgres(config, log) : undefined;
  dsn ??= embedded!.dsn;
  const pool = createPool(
    {
      connectionString: dsn,
      applicationName: `pulse-cli-${process.pid}`,
      max: 1,
      connectTimeoutMs: config.pgConnectTimeoutMs,
      statementTimeoutMs: config.pgStatementTimeoutMs,
      queryTimeoutMs: config.pgQueryTimeoutMs,
    },
    log,
  );
  return {
    pool,
    close: async () => {
      await pool.end();
      await embedded?.stop();
    },
  };
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        project: { type: 'string' },
        scope: { type: 'string' },
        name: { type: 'string' },
      },
    });
  } catch (err) {
    throw new CliFailure(`${(err as Error).message}; ${usage}`, 2);
  }
  const { values, positionals } = parsed;
  const command = commands[positionals.slice(0, 2).join(' ')];
  if (command === undefined)
    throw new CliFailure(`unknown command ${JSON.stringify(positionals.join(' '))}; ${usage}`, 2);
  const { pool, close } = await connect();
  try {
    // A database the server never started on gets its tables first.
    await migrate(pool);
    process.stdout.write(`${JSON.stringify(await command(pool, positionals.slice(2), values))}\n`);
    return 0;
  } finally {
    await close();
  }
}

// Exits explicitly: embedded-postgres's exit hook would otherwise end the process with code 0.
try {
  process.exit(await main(process.argv.slice(2)));
} catch (err) {
  const failure =
    err instanceof CliFailure
      ? err
      : err instanceof ConfigError
        ? new CliFailure(err.message, 2)
        : new CliFailure(
            `pulse: ${(err as Error).message} (is the database reachable? set POSTGRES_DSN, or start the server once with npm start)`,
          );
  process.stderr.write(`${failure.message.replaceAll('\n', ' ')}\n`);
  process.exit(failure.exitCode);
}
