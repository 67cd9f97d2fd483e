// Reading a process's memory and CPU from /proc (Linux only), so the bench can say where the CPU
// went during a run without a profiler attached, and how long runnable threads waited for a core.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second for /proc/<pid>/stat times (100 on every Linux we run on; asked once). */
const clockTicksPerSecond = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** A field of /proc/<pid>/status in KiB (VmRSS, VmHWM, …), or undefined once the process is gone. */
export function readStatusKib(pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

interface StatLine {
  readonly name: string;
  readonly parentPid: number;
  /** user + system CPU, seconds. */
  readonly cpuSeconds: number;
}

/** Parses /proc/<pid>/stat or /proc/<pid>/task/<tid>/stat. The name is in parentheses and may
 *  itself hold spaces and parentheses, so fields are counted from the last ')'. */
function readStat(path: string): StatLine | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  const fields = text.slice(close + 2).split(' ');
  // After the name: state(3) ppid(4) … utime(14) stime(15), counted from 1 over the whole line.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return {
    name: text.slice(open + 1, close),
    parentPid: Number(fields[1]),
    cpuSeconds: (utime + stime) / clockTicksPerSecond,
  };
}

/** Seconds a thread or process has spent runnable but not running, waiting in a run queue for a
 *  core: the second field of /proc/<pid>/schedstat (nanoseconds). 0 where the kernel keeps none. */
function readRunQueueWaitSeconds(path: string): number {
  try {
    return Number(readFileSync(path, 'utf8').split(' ')[1]) / 1e9 || 0;
  } catch {
    return 0;
  }
}

export interface ThreadCpu {
  readonly tid: number;
  readonly name: string;
  readonly cpuSeconds: number;
  readonly waitSeconds: number;
}

/** CPU used so far by every thread of a process. */
export function readThreadCpu(pid: number): ThreadCpu[] {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const threads: ThreadCpu[] = [];
  for (const tid of tids) {
    const stat = readStat(`/proc/${pid}/task/${tid}/stat`);
    if (stat)
      threads.push({
        tid: Number(tid),
        name: stat.name,
        cpuSeconds: stat.cpuSeconds,
        waitSeconds: readRunQueueWaitSeconds(`/proc/${pid}/task/${tid}/schedstat`),
      });
  }
  return threads;
}

/** CPU used so far by a process (all its threads). */
export function readProcessCpuSeconds(pid: number): number {
  return readStat(`/proc/${pid}/stat`)?.cpuSeconds ?? 0;
}

export interface ProcessUsage {
  readonly cpuSeconds: number;
  readonly waitSeconds: number;
}

/** CPU used and run-queue wait so far of a process and its direct children (the postmaster and
 *  its backends), keyed by pid so a backend that exits between two samples is not counted
 *  negative. */
export function readProcessTreeUsage(rootPid: number): Map<number, ProcessUsage> {
  const usage = new Map<number, ProcessUsage>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const stat = readStat(`/proc/${pid}/stat`);
    if (stat && (pid === rootPid || stat.parentPid === rootPid))
      usage.set(pid, {
        cpuSeconds: stat.cpuSeconds,
        waitSeconds: readRunQueueWaitSeconds(`/proc/${pid}/schedstat`),
      });
  }
  return usage;
}

/** CPU used so far by a process tree (see readProcessTreeUsage). */
export function readProcessTreeCpu(rootPid: number): Map<number, number> {
  return usageOf(readProcessTreeUsage(rootPid), 'cpuSeconds');
}

/** One figure of each process of a tree sample, keyed the same. */
export function usageOf(
  usage: ReadonlyMap<number, ProcessUsage>,
  figure: keyof ProcessUsage,
): Map<number, number> {
  return new Map([...usage].map(([pid, u]) => [pid, u[figure]]));
}

/** Busy and total CPU seconds of the whole machine, summed over cores (/proc/stat). */
export function readMachineCpu(): { busySeconds: number; totalSeconds: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const ticks = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: idle and iowait are not busy.
  const total = ticks.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
  return {
    busySeconds: (total - idle) / clockTicksPerSecond,
    totalSeconds: total / clockTicksPerSecond,
  };
}

/** Sum of CPU growth between two tree samples, over pids present in the second. */
export function cpuGrowth(before: Map<number, number>, after: Map<number, number>): number {
  let seconds = 0;
  for (const [pid, now] of after) seconds += now - (before.get(pid) ?? 0);
  return seconds;
}
