// The curl examples of README.md and docs/examples.md, read at run time and run with the real curl
// against a test server, so the docs cannot rot: each example's printed answer (status line, the
// headers it shows, the body) must be what the server answers, every answer must match
// /openapi.yaml, and what the POSTs sent must be what the server stored. Values that differ on
// every run are printed as typed placeholders (see `placeholders`), or as `$NAME` where a later
// curl uses them. A bash block running `VAR=… npm start` sets the server's environment for the
// examples after it.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { ResponseContract, type OpenApiDocument } from '../helpers/contract.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/** What the examples talk to; rewritten to the test server's address. */
const documentedBase = 'http://localhost:8080';

interface ShellCommand {
  readonly words: string[];
  /** Set when the command uses shell syntax this reader does not interpret. */
  readonly unsupported?: string;
}

/** A `$NAME` in a word, outside single quotes: replaced by the value an earlier answer printed. */
/** Private use: no doc holds it. */
const variableMark = '\uE000';
const variableName = /^[A-Z][A-Z0-9_]*/;

/** Splits a bash block into commands the way bash would for the plain commands the docs hold:
 *  single and double quotes (spanning lines), backslash escapes and line continuations, comments,
 *  `$NAME` variables. */
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
  /** Reads `$NAME` at i into the word; returns where it ends, or i when it is no plain variable. */
  const variable = (i: number): number => {
    const name = variableName.exec(block.slice(i + 1))?.[0];
    if (name === undefined) return i;
    word += `${variableMark}${name}${variableMark}`;
    inWord = true;
    return i + name.length;
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
        const end = block[i] === '$' ? variable(i) : i;
        if (end > i) {
          i = end;
          continue;
        }
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
    } else if (c === '$' && variableName.test(block.slice(i + 1, i + 2))) {
      i = variable(i);
    } else {
      if ('|&<>$`(){}*?'.includes(c)) unsupported = `shell syntax ${c}`;
      word += c;
      inWord = true;
    }
  }
  endCommand();
  return commands;
}

/** One example: a bash block holding one curl command, and the http block printed after it. */
interface Example {
  readonly args: string[];
  readonly answer: DocumentedAnswer;
  /** What the last `VAR=… npm start` before it set (the test supplies the database). */
  readonly serverEnv: Readonly<Record<string, string>>;
}

const databaseVariables = new Set(['POSTGRES_DSN', 'DATABASE_URL']);

/** The environment a `VAR=value … npm start` command gives the server; undefined for others. */
function serverEnvOf(words: readonly string[]): Record<string, string> | undefined {
  const assignments = words.findIndex((w) => !/^[A-Z_][A-Z0-9_]*=/.test(w));
  if (words[assignments] !== 'npm' || words[assignments + 1] !== 'start') return undefined;
  const env = words
    .slice(0, assignments)
    .map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)] as const)
    .filter(([name]) => !databaseVariables.has(name));
  return Object.fromEntries(env);
}

interface DocumentedAnswer {
  readonly status: string;
  readonly headers: [string, string][];
  readonly body: string;
}

/** `HTTP/1.1 202 Accepted`, then the headers the doc shows, a blank line and the body. */
function parseDocumentedAnswer(block: string): DocumentedAnswer {
  const [head = '', ...rest] = block.replace(/\n$/, '').split('\n\n');
  const [status = '', ...headerLines] = head.split('\n');
  return { status, headers: headerLines.map(headerField), body: rest.join('\n\n') };
}

/** `Name: value` as [lower-case name, value]. */
function headerField(line: string): [string, string] {
  const colon = line.indexOf(':');
  return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
}

/** The document's examples, in order; every curl must be alone in its block and show its answer. */
function examplesOf(document: string): { examples: Example[]; unanswered: string[] } {
  const blocks = [...document.matchAll(/^```(\w*)[^\n]*\n([\s\S]*?)^```/gm)].map((m) => ({
    language: m[1]!,
    text: m[2]!,
  }));
  const examples: Example[] = [];
  const unanswered: string[] = [];
  let serverEnv: Record<string, string> = {};
  blocks.forEach((block, i) => {
    if (!['bash', 'sh', 'shell'].includes(block.language)) return;
    const commands = shellCommands(block.text);
    for (const command of commands) serverEnv = serverEnvOf(command.words) ?? serverEnv;
    const curls = commands.filter((c) => c.words[0] === 'curl');
    if (curls.length === 0) return;
    const next = blocks[i + 1];
    if (curls.length > 1 || next?.language !== 'http') return unanswered.push(block.text);
    const [curl] = curls;
    if (curl!.unsupported) throw new Error(`curl uses ${curl!.unsupported}: ${block.text}`);
    examples.push({
      args: curl!.words.slice(1),
      answer: parseDocumentedAnswer(next.text),
      serverEnv,
    });
  });
  return { examples, unanswered };
}

/** What the docs print in place of values that differ on every run, and what each stands for. */
const placeholders: Record<string, string> = {
  '<integer>': '-?\\d+',
  '<number>': '-?\\d+(?:\\.\\d+)?(?:[eE][-+]?\\d+)?',
  '<etag>': '(?:W/)?"[!#-~]*"',
  // A project's or a key's id: decimal digits in a JSON string.
  '<id>': '\\d+',
  // Lines (or the rest of a line) the doc leaves out.
  '…': '[\\s\\S]*?',
};

/** `$NAME` in a printed answer: an id or key a later curl uses as `$NAME`. */
const printedVariable = '\\$[A-Z][A-Z0-9_]*';
const printedValue = '[A-Za-z0-9_-]+';

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A printed value as a pattern: literal text, placeholders as wildcards of their type, `$NAME`
 *  as the value printed under that name earlier, else a capture of it. */
function templatePattern(template: string, known: ReadonlyMap<string, string> = new Map()): RegExp {
  const tokens = [...Object.keys(placeholders).map(escapeRegExp), printedVariable].join('|');
  const captured = new Set<string>();
  const source = template
    .split(new RegExp(`(${tokens})`))
    .map((part, i) => {
      if (i % 2 === 0) return escapeRegExp(part);
      if (!part.startsWith('$')) return placeholders[part]!;
      const name = part.slice(1);
      const value = known.get(name);
      if (value !== undefined) return escapeRegExp(value);
      if (captured.has(name)) return `\\k<${name}>`;
      captured.add(name);
      return `(?<${name}>${printedValue})`;
    })
    .join('');
  return new RegExp(`^${source}$`);
}

/** The method curl uses for these arguments (only the options the docs use are known). */
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
  const url = args.find((a) => a.startsWith(documentedBase)) ?? '?';
  return `curl ${methodOf(args)} ${url.replace(/\uE000(\w+)\uE000/g, '$$$1')}`;
}

/** The words with every `$NAME` replaced by the value printed under that name. */
function substitute(args: string[], printed: ReadonlyMap<string, string>): string[] {
  return args.map((a) =>
    a.replace(/\uE000(\w+)\uE000/g, (_, name: string) => {
      const value = printed.get(name);
      if (value === undefined) throw new Error(`$${name} is used before an answer printed it`);
      return value;
    }),
  );
}

const usesVariables = (args: string[]) => args.some((a) => a.includes(variableMark));

interface CurlAnswer {
  /** The status line, e.g. `HTTP/1.1 202 Accepted`. */
  readonly status: string;
  readonly headers: Map<string, string>;
  readonly body: string;
}

/** Runs the real curl: no ~/.curlrc (-q, first), no proxy, bounded in time, headers on stdout. */
function runCurl(args: string[]): Promise<CurlAnswer> {
  const options = ['-q', '--silent', '--show-error', '--noproxy', '*', '--max-time', '20'];
  return new Promise((resolve, reject) => {
    execFile(
      'curl',
      [...options, '--dump-header', '-', ...args],
      { timeout: 30_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err)
          return reject(new Error(`curl ${args.join(' ')} failed: ${stderr || err.message}`));
        // Skip interim answers (100 Continue) to the head of the final one.
        let rest = stdout;
        let head = '';
        do {
          const end = rest.indexOf('\r\n\r\n');
          head = rest.slice(0, end);
          rest = rest.slice(end + 4);
        } while (/^HTTP\/1\.1 1\d\d /.test(head));
        const [status = '', ...lines] = head.split('\r\n');
        resolve({ status, headers: new Map(lines.map(headerField)), body: rest });
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

describe.each(['README.md', 'docs/examples.md'])('the curl examples of %s', (path) => {
  const document = readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');
  const { examples, unanswered } = examplesOf(document);
  let db: TestDatabase;
  let server: TestServer;
  let serverEnv: Readonly<Record<string, string>> = {};
  let contract: ResponseContract;
  /** The values earlier answers printed as `$NAME`. */
  const printedValues = new Map<string, string>();
  // Rate limit off: the examples query /metrics more often than the default allows per minute.
  const start = (env: Readonly<Record<string, string>>) =>
    startTestServer(db.dsn, { RATE_LIMIT_METRICS_PER_MIN: '0', ...env });

  beforeAll(async () => {
    db = await createTestDatabase();
    server = await start(serverEnv);
    const yaml = await (await fetch(`${server.url}/openapi.yaml`)).text();
    contract = new ResponseContract(parseYaml(yaml) as OpenApiDocument);
  });
  afterAll(async () => {
    await server?.stop();
    await db?.close();
  });

  it('finds GET and POST examples, each alone in its block with its answer after it', () => {
    const methods = new Set(examples.map((e) => methodOf(e.args)));
    expect({ methods: [...methods].sort(), unanswered: [], elsewhere: [] }).toEqual({
      methods: ['GET', 'POST'],
      unanswered,
      elsewhere: examples
        .flatMap((e) => e.args)
        .filter((a) => /^https?:/.test(a) && !a.startsWith(documentedBase)),
    });
  });

  // In document order: the metrics examples read what the POST examples stored.
  it.each(examples.map((e, i) => [i + 1, title(e.args), e] as const))(
    'example %i (%s) answers what the doc prints, as /openapi.yaml declares',
    async (_n, _title, { args: documented, answer: printed, serverEnv: env }) => {
      if (JSON.stringify(env) !== JSON.stringify(serverEnv)) {
        // The same database, as a restart with the new environment would have it.
        await server.stop();
        server = await start(env);
        serverEnv = env;
      }
      const args = substitute(documented, printedValues);
      // Only the documented address is rewritten; anything else was refused above and here.
      const rewritten = args.map((a) =>
        a.startsWith(documentedBase) ? server.url + a.slice(documentedBase.length) : a,
      );
      expect(rewritten.filter((a) => /^https?:/.test(a) && !a.startsWith(server.url))).toEqual([]);
      const answer = await runCurl(rewritten);
      const url = rewritten.find((a) => a.startsWith(server.url))!;
      expect(answer.status, answer.body).toBe(printed.status);
      for (const [name, value] of printed.headers)
        expect(answer.headers.get(name), name).toMatch(templatePattern(value));
      // The server's last newline is the closing fence's line break in the doc.
      const body = answer.body.replace(/\n$/, '');
      const bodyPattern = templatePattern(printed.body, printedValues);
      expect(body).toMatch(bodyPattern);
      for (const [name, value] of Object.entries(bodyPattern.exec(body)?.groups ?? {}))
        printedValues.set(name, value);
      const contentType = answer.headers.get('content-type') ?? null;
      contract.check(
        methodOf(args),
        url,
        Number(answer.status.split(' ')[1]),
        contentType,
        answer.body,
      );
    },
  );

  // Events sent with a project's key (a `$NAME`) are that project's: its examples read them back.
  it('stores every event the accepted POST examples sent, fields as sent', async () => {
    const sent = examples
      .filter((e) => methodOf(e.args) === 'POST' && / 2\d\d /.test(`${e.answer.status} `))
      .filter((e) => e.args.some((a) => a.startsWith(`${documentedBase}/events`)))
      .filter((e) => !usesVariables(e.args))
      .flatMap(({ args, answer }) => {
        const body = JSON.parse(dataOf(args)!) as { events?: object[] };
        // With ?partial=true the doc prints the rejected ones as `events[i].field` errors.
        const rejected = new Set(
          [...answer.body.matchAll(/"events\[(\d+)\]/g)].map((m) => Number(m[1])),
        );
        return (body.events ?? [body]).filter((_, i) => !rejected.has(i));
      }) as { timestamp: number }[];
    const timestamps = sent.map((e) => e.timestamp);
    const from = Math.min(...timestamps);
    const to = Math.max(...timestamps);
    const rootKey = serverEnv.API_KEYS?.split(',')[0];
    const res = await fetch(`${server.url}/events/export?from=${from}&to=${to}`, {
      headers: rootKey === undefined ? {} : { 'x-api-key': rootKey },
    });
    const stored = (await res.text())
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .map(({ received_at: _, ...event }) => event);
    // A re-sent event is stored once.
    const canonical = (events: object[]) => [...new Set(events.map(canonicalJson))].sort();
    expect(sent.length).toBeGreaterThan(0);
    expect(res.headers.get('content-type')).toBe('application/x-ndjson');
    expect(canonical(stored)).toEqual(canonical(sent));
  });
});
