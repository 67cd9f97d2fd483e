// The conditions a number was measured under, printed and saved with every result: a benchmark
// number without them cannot be compared with anything.
import { execFileSync } from 'node:child_process';
import { cpus, loadavg, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';

const projectRoot = fileURLToPath(new URL('../..', import.meta.url));

export interface Conditions {
  readonly commit: string;
  /** Uncommitted changes in the working tree when the bench ran. */
  readonly dirty: boolean;
  readonly node: string;
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryGib: number;
  /** 1-minute load average when the bench started: others' work on the machine. */
  readonly loadAverageAtStart: number;
  readonly startedAt: string;
}

function git(args: string[]): string | undefined {
  try {
    return execFileSync('git', args, {
      cwd: projectRoot,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return undefined;
  }
}

export function readConditions(): Conditions {
  const cpuList = cpus();
  return {
    commit: git(['rev-parse', '--short', 'HEAD']) ?? 'unknown',
    // --no-optional-locks: a bench must not write to .git (status refreshes the index otherwise).
    dirty:
      (git(['--no-optional-locks', 'status', '--porcelain', '--untracked-files=no']) ?? '') !== '',
    node: process.version,
    cpuModel: cpuList[0]?.model.trim() ?? 'unknown',
    cores: cpuList.length,
    memoryGib: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    loadAverageAtStart: Math.round((loadavg()[0] ?? 0) * 100) / 100,
    startedAt: new Date().toISOString(),
  };
}
