// The README's curl examples, read from README.md at run time and run with the real curl against
// a test server, so the docs cannot rot: each answers 2xx as /openapi.yaml declares, and what the
// POSTs sent is what the server stored.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { ResponseContract, type OpenApiDocument } from '../helpers/contract.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/** What the README's examples talk to; rewritten to the test server's address. */
const documentedBase = 'http://localhost:8080';
const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

interface ShellCommand {
  readonly words: string[];
  /** Set when the command uses shell syntax this reader does not interpret. */
  readonly unsupported?: string;
}

/** Splits a bash block into commands the way bash would for the plain commands a README holds:
 *  single and double quotes (spanning lines), backslash escapes and line continuations, comments. */
function shellCommands(block: string): ShellCommand[] {
  const commands: ShellCommand[] = [];
  let words: string[] = [];
  let word = '';
  let inWord = false;
  let unsupported: string | undefined;
  const endWord = () => {
    if (inWord) words.push(word);
    word = '';
    inWord = false;
  };
  const endCommand = () => {
    endWord();
    if (words.length > 0) commands.push({ words, ...(unsupported ? { unsupported } : {}) });
    words = [];
    unsupported = undefined;
  };
  for (let i = 0; i < block.length; i++) {
    const c = block[i]!;
    if (c === "'") {
      const end = block.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unterminated ' in:\n${block}`);
      word += block.slice(i + 1, end);
      inWord = true;
      i = end;
    } else if (c === '"') {
      inWord = true;
      for (i++; block[i] !== '"'; i++) {
        if (i >= block.length) throw new Error(`unterminated " in:\n${block}`);
        if (block[i] === '$' || block[i] === '`') unsupported = 'expansion inside "…"';
        if (block[i] === '\\' && '"\\$`'.includes(block[i + 1] ?? '')) i++;
        word += block[i];
      }
    } else if (c === '\\') {
      if (block[i + 1] !== '\n') {
        word += block[i + 1] ?? '';
        inWord = true;
      }
      i++;
    } else if (c === '#' && !inWord) {
      while (i + 1 < block.length && block[i + 1] !== '\n') i++;
    } else if (c === ' ' || c === '\t') {
      endWord();
    } else if (c === '\n' || c === ';') {
      endCommand();
    } else {
      if ('|&<>$`(){}*?'.includes(c)) unsupported = `shell syntax ${c}`;
      word += c;
      inWord = true;
    }
  }
  endCommand();
  return commands;
}

function readmeCurlCommands(): string[][] {
  const blocks = [...readme.matchAll(/^```(?:bash|sh|shell)\n([\s\S]*?)^```/gm)].map((m) => m[1]!);
  return blocks
    .flatMap(shellCommands)
    .filter((c) => c.words[0] === 'curl')
    .map((c) => {
      if (c.unsupported) throw new Error(`README curl uses ${c.unsupported}: ${c.words.join(' ')}`);
      return c.words.slice(1);
    });
}

const examples = readmeCurlCommands();

/** The method curl uses for these arguments (only the options the README uses are known). */
function methodOf(args: string[]): string {
  const explicit = args.findIndex((a) => a === '-X' || a === '--request');
  if (explicit >= 0) return args[explicit + 1]!.toUpperCase();
  return args.some((a) => /^(-d|--data(-binary|-raw|-urlencode)?)$/.test(a)) ? 'POST' : 'GET';
}

function dataOf(args: string[]): string | undefined {
  const at = args.findIndex((a) => /^(-d|--data(-binary|-raw)?)$/.test(a));
  return at >= 0 ? args[at + 1] : undefined;
}

/** One example's first line, for test names. */
function title(args: string[]): string {
  return `curl ${methodOf(args)} ${args.find((a) => a.startsWith(documentedBase)) ?? '?'}`;
}

interface CurlAnswer {
  readonly status: number;
  readonly contentType: string | null;
  readonly body: string;
}

const statusMarker = '\n<<pulse-status>>';

/** Runs the real curl: no ~/.curlrc (-q, first), no proxy, bounded in time. */
function runCurl(args: string[]): Promise<CurlAnswer> {
  const options = ['-q', '--silent', '--show-error', '--noproxy', '*', '--max-time', '20'];
  const writeOut = ['--write-out', `${statusMarker}%{http_code} %{content_type}`];
  return new Promise((resolve, reject) => {
    execFile(
      'curl',
      [...options, ...writeOut, ...args],
      { timeout: 30_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err)
          return reject(new Error(`curl ${args.join(' ')} failed: ${stderr || err.message}`));
        const at = stdout.lastIndexOf(statusMarker);
        const [status, contentType] = stdout.slice(at + statusMarker.length).split(' ');
        resolve({
          status: Number(status),
          contentType: contentType ? contentType : null,
          body: stdout.slice(0, at),
        });
      },
    );
  });
}

/** JSON with object keys sorted at every level: JSONB does not keep the order they were sent in. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

let db: TestDatabase;
let server: TestServer;
let contract: ResponseContract;

beforeAll(async () => {
  db = await createTestDatabase();
  // Rate limit off: the examples query /metrics more often than the default allows per minute.
  server = await startTestServer(db.dsn, { RATE_LIMIT_METRICS_PER_MIN: '0' });
  const yaml = await (await fetch(`${server.url}/openapi.yaml`)).text();
  contract = new ResponseContract(parseYaml(yaml) as OpenApiDocument);
});
afterAll(async () => {
  await server?.stop();
  await db?.close();
});

describe('README curl examples', () => {
  it('finds GET and POST examples, every one aimed at the documented address', () => {
    const methods = new Set(examples.map(methodOf));
    expect({ methods: [...methods].sort(), elsewhere: [] }).toEqual({
      methods: ['GET', 'POST'],
      elsewhere: examples.flat().filter((a) => /^https?:/.test(a) && !a.startsWith(documentedBase)),
    });
  });

  // In README order: the metrics examples read what the POST examples stored.
  it.each(examples.map((args, i) => [i + 1, title(args), args] as const))(
    'example %i (%s) answers 2xx as /openapi.yaml declares',
    async (_n, _title, args) => {
      // Only the documented address is rewritten; anything else was refused above and here.
      const rewritten = args.map((a) =>
        a.startsWith(documentedBase) ? server.url + a.slice(documentedBase.length) : a,
      );
      expect(rewritten.filter((a) => /^https?:/.test(a) && !a.startsWith(server.url))).toEqual([]);
      const answer = await runCurl(rewritten);
      const url = rewritten.find((a) => a.startsWith(server.url))!;
      expect(answer.status, answer.body).toBeGreaterThanOrEqual(200);
      expect(answer.status, answer.body).toBeLessThan(300);
      contract.check(methodOf(args), url, answer.status, answer.contentType, answer.body);
    },
  );

  it('stores every event the POST examples sent, fields as sent', async () => {
    const sent = examples
      .filter((args) => methodOf(args) === 'POST')
      .flatMap((args) => {
        const body = JSON.parse(dataOf(args)!) as { events?: object[] };
        return body.events ?? [body];
      }) as { timestamp: number }[];
    const timestamps = sent.map((e) => e.timestamp);
    const from = Math.min(...timestamps);
    const to = Math.max(...timestamps);
    const res = await fetch(`${server.url}/events/export?from=${from}&to=${to}`);
    const stored = (await res.text())
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .map(({ received_at: _, ...event }) => event);
    const canonical = (events: object[]) => events.map(canonicalJson).sort();
    expect(sent.length).toBeGreaterThan(0);
    expect(res.headers.get('content-type')).toBe('application/x-ndjson');
    expect(canonical(stored)).toEqual(canonical(sent));
  });
});
