// One bounded wrk run (Debian's `wrk`, one thread) against one ingest endpoint. wrk is C and
// builds each request in LuaJIT: it costs the shared cores a fraction of what autocannon does, so
// a server that waits rather than computes shows it. Bodies come from the same pieces as
// unique-events.ts, spliced with a counter in the Lua script, so every event_id is unique.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LoadResult } from './drive-load.js';
import type { BodyPieces } from './unique-events.js';

export interface WrkLoadOptions {
  readonly url: string;
  readonly path: '/events' | '/events/bulk';
  readonly connections: number;
  readonly durationSeconds: number;
  readonly body: BodyPieces;
  /** Events per request: one is POSTed bare, more as {"events":[…]}. */
  readonly eventsPerRequest: number;
  readonly headers: Readonly<Record<string, string>>;
}

export interface WrkLoadResult extends LoadResult {
  /** wrk's own CPU, user + system (from the shell's `times`). */
  readonly generatorCpuSeconds: number;
}

export function wrkInstalled(): boolean {
  return spawnSync('wrk', ['--version']).error === undefined;
}

/** A Lua long string: the pieces are JSON, which never holds `]==]`. */
const luaString = (s: string) => {
  if (s.includes(']==]')) throw new Error('a body piece cannot be a Lua long string');
  return `[==[${s}]==]`;
};

function script(options: WrkLoadOptions): string {
  const { head, middle, tail, userCount } = options.body;
  const headers = Object.entries({ 'Content-Type': 'application/json', ...options.headers })
    .map(([name, value]) => `[ ${luaString(name)} ] = ${luaString(value)}`)
    .join(', ');
  return `
local head, middle, tail = ${luaString(head)}, ${luaString(middle)}, ${luaString(tail)}
local users, per, path = ${userCount}, ${options.eventsPerRequest}, ${luaString(options.path)}
local headers = { ${headers} }
local n = 0
function request()
  local parts = {}
  for i = 1, per do
    parts[i] = head .. n .. middle .. (n % users) .. tail
    n = n + 1
  end
  local body = per == 1 and parts[1] or ('{"events":[' .. table.concat(parts, ",") .. "]}")
  return wrk.format("POST", path, headers, body)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nPULSE_WRK {"requests":%d,"durationUs":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50Us":%d,"p99Us":%d,"maxUs":%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
`;
}

interface WrkSummary {
  requests: number;
  durationUs: number;
  connect: number;
  read: number;
  write: number;
  status: number;
  timeout: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
}

/** `times` prints the shell's user and system time, then its children's: `0m1.234s 0m0.056s`. */
function childCpuSeconds(line: string): number {
  let total = 0;
  for (const [, minutes, seconds] of line.matchAll(/(\d+)m([\d.]+)s/g))
    total += Number(minutes) * 60 + Number(seconds);
  return total;
}

export async function driveWrk(options: WrkLoadOptions): Promise<WrkLoadResult> {
  const dir = await mkdtemp(join(tmpdir(), 'pulse-wrk-'));
  try {
    const scriptPath = join(dir, 'load.lua');
    await writeFile(scriptPath, script(options));
    const args = [
      '-t1',
      `-c${options.connections}`,
      `-d${options.durationSeconds}s`,
      '--timeout',
      '10s',
      '-s',
      scriptPath,
      options.url,
    ];
    const output = await new Promise<string>((resolve, reject) => {
      const child = spawn('bash', ['-c', 'wrk "$@" && times', 'wrk', ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      child.on('error', reject);
      child.on('close', (code) =>
        code === 0 ? resolve(out) : reject(new Error(`wrk exited with ${code}: ${err || out}`)),
      );
    });
    const summaryLine = output.split('\n').find((l) => l.startsWith('PULSE_WRK '));
    if (!summaryLine) throw new Error(`wrk printed no summary: ${output}`);
    const s = JSON.parse(summaryLine.slice('PULSE_WRK '.length)) as WrkSummary;
    const lines = output.trimEnd().split('\n');
    const durationSeconds = s.durationUs / 1e6;
    // wrk tells 2xx/3xx from the rest; ingest answers every accepted request 202 and nothing
    // else in 2xx/3xx.
    const statusCounts: Record<string, number> = { '202': s.requests - s.status };
    if (s.status > 0) statusCounts['not 2xx/3xx'] = s.status;
    return {
      durationSeconds,
      responses: s.requests,
      requestsPerSecond: s.requests / durationSeconds,
      statusCounts,
      errors: s.connect + s.read + s.write + s.timeout,
      timeouts: s.timeout,
      latencyP50Ms: s.p50Us / 1000,
      latencyP99Ms: s.p99Us / 1000,
      latencyMaxMs: s.maxUs / 1000,
      generatorCpuSeconds: childCpuSeconds(lines.at(-1) ?? ''),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
