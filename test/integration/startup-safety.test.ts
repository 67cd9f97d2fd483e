// Start-up fails closed and says what is unsafe: an open API on a public interface is logged,
// test-only faults are refused without the test suites' switch, and writer sessions keep COMMIT
// durable whatever the database's own settings say.
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { faultInjectionSwitch, loadConfig } from '../../src/config.js';
import { servicePoolOptions, type PoolRole } from '../../src/service.js';
import { createPool } from '../../src/sql/create-pool.js';
import { readDurabilitySettings } from '../../src/sql/durability-settings.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { faultInjectionEnv } from '../helpers/fault-injection.js';
import { runMainToExit, spawnServer, type ServerProcess } from '../helpers/server.js';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.close());

async function stopProcess(server: ServerProcess): Promise<void> {
  server.child.kill('SIGTERM');
  await server.exited;
}

describe('start-up warnings', () => {
  it('logs that the API is open when no key is set and HOST is not loopback', async () => {
    const server = await spawnServer(db.dsn, { HOST: '0.0.0.0' });
    try {
      const warnings = server.lines
        .map((line) => JSON.parse(line) as { level?: number; msg?: string })
        .filter((entry) => entry.level === 40)
        .map((entry) => entry.msg);
      expect(warnings).toContain(
        'API_KEYS is not set and HOST=0.0.0.0 is not a loopback address: the API is open to anyone who can reach it',
      );
    } finally {
      await stopProcess(server);
    }
  });
});

describe('FAULT_INJECTION', () => {
  it('stops start-up with one message when the test-only switch is not set', async () => {
    const { code, output } = await runMainToExit({
      POSTGRES_DSN: db.dsn,
      FAULT_INJECTION: 'ack-before-commit',
      [faultInjectionSwitch.name]: '', // in case the shell running the tests exported it
    });
    expect({ code, output: output.trim() }).toEqual({
      code: 2,
      output:
        'invalid configuration:\n  FAULT_INJECTION is set: it breaks the service on purpose and only the test suites may use it; unset it',
    });
  });

  it('is accepted with the test-only switch', async () => {
    const server = await spawnServer(db.dsn, faultInjectionEnv('unsorted-batches'));
    await stopProcess(server);
    expect(server.lines.some((line) => line.includes('"msg":"listening"'))).toBe(true);
  });
});

describe('durability settings', () => {
  const log = pino({ level: 'silent' });

  async function sessionSetting(role: PoolRole, dsn = db.dsn): Promise<string | undefined> {
    const options = servicePoolOptions(loadConfig({ POSTGRES_DSN: dsn }), dsn, role, 1);
    const pool = createPool(options, log);
    try {
      return (await pool.query<{ synchronous_commit: string }>('SHOW synchronous_commit')).rows[0]
        ?.synchronous_commit;
    } finally {
      await pool.end();
    }
  }

  it('keeps synchronous_commit on in writer sessions of a database set to off', async () => {
    await db.query(`ALTER DATABASE ${db.name} SET synchronous_commit = off`);
    try {
      // The reader shows the database's setting took effect; only the writer overrides it.
      expect({
        writer: await sessionSetting('writer'),
        reader: await sessionSetting('reader'),
      }).toEqual({ writer: 'on', reader: 'off' });
    } finally {
      await db.query(`ALTER DATABASE ${db.name} RESET synchronous_commit`);
    }
  });

  it('keeps synchronous_commit on in writer sessions whose DSN asks for off', async () => {
    const dsn = new URL(db.dsn);
    dsn.searchParams.set('options', '-c synchronous_commit=off');
    expect({
      writer: await sessionSetting('writer', dsn.toString()),
      reader: await sessionSetting('reader', dsn.toString()),
    }).toEqual({ writer: 'on', reader: 'off' });
  });

  it("reads the server's fsync setting", async () => {
    const pool = createPool(servicePoolOptions(loadConfig({}), db.dsn, 'admin', 1), log);
    try {
      expect(await readDurabilitySettings(pool)).toEqual({ fsync: 'on' });
    } finally {
      await pool.end();
    }
  });
});
