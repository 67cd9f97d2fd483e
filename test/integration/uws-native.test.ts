// uWS's npm package silently swaps in a slow JS server when its native binary does not load; the
// service must notice and refuse to start.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isNativeUws, loadNativeUws, type Uws } from '../../src/http/load-uws.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

const projectRoot = fileURLToPath(new URL('../..', import.meta.url));

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.close();
});

/** Runs src/main.ts to completion (bounded) and returns its exit code and everything it printed. */
function runMain(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: projectRoot,
      env: { ...process.env, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`main.ts did not exit within 30 s; output:\n${output}`));
    }, 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('the uWebSockets.js binary', () => {
  it('is the native module in this environment', () => {
    const uws = createRequire(import.meta.url)('uWebSockets.js') as Uws;
    expect(isNativeUws(uws)).toBe(true);
  });

  it('loads through loadNativeUws without throwing', () => {
    expect(typeof loadNativeUws().App).toBe('function');
  });

  it('is not mistaken for native when App is a plain JS function', () => {
    const fallbackLike = { App: () => ({}), getParts: () => [] } as unknown as Uws;
    expect(isNativeUws(fallbackLike)).toBe(false);
  });

  it('refuses to start on the JS fallback (UWS_USE_FALLBACK=1) with a clear message', async () => {
    const { code, output } = await runMain({ UWS_USE_FALLBACK: '1', POSTGRES_DSN: db.dsn });
    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
    expect(output).toMatch(/fell back to its JS server; refusing to start/);
    expect(output).not.toMatch(/"msg":"listening"/);
  });
});
