// The ingest bench reports how long the server's threads and Postgres's processes were runnable
// but waited for a core (bench/lib/proc-stats.ts, from /proc/<pid>/schedstat). More busy processes
// than cores must show up as waiting; a process that sleeps must not.
import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import {
  cpuGrowth,
  readProcessTreeCpu,
  readProcessTreeUsage,
  readThreadCpu,
  usageOf,
} from '../../bench/lib/proc-stats.js';

const children: ChildProcess[] = [];

function startChild(script: string): ChildProcess {
  const child = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
  children.push(child);
  return child;
}

afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

describe('run-queue wait from /proc', () => {
  it('counts the wait of more spinning processes than cores, and none for a sleeping one', async () => {
    const spinners = availableParallelism() + 1;
    for (let i = 0; i < spinners; i++) startChild('for (;;) {}');
    const sleeper = startChild('setInterval(() => {}, 1000)');
    await sleep(300); // every child running
    const waitBefore = usageOf(readProcessTreeUsage(process.pid), 'waitSeconds');
    const cpuBefore = readProcessTreeCpu(process.pid);
    await sleep(1000);
    const waitAfter = usageOf(readProcessTreeUsage(process.pid), 'waitSeconds');
    const cpuAfter = readProcessTreeCpu(process.pid);

    // One spinner more than cores: for each second, about one core-second is spent waiting.
    const waited = cpuGrowth(
      new Map([...waitBefore].filter(([pid]) => pid !== process.pid)),
      new Map([...waitAfter].filter(([pid]) => pid !== process.pid)),
    );
    expect(waited).toBeGreaterThan(0.4);
    const sleeperWait = (waitAfter.get(sleeper.pid!) ?? 0) - (waitBefore.get(sleeper.pid!) ?? 0);
    expect(sleeperWait).toBeLessThan(0.05);
    // The CPU they used cannot exceed the cores, whatever the wait says.
    expect(cpuGrowth(cpuBefore, cpuAfter)).toBeLessThan(availableParallelism() * 1.1 + 0.2);
  });

  it('reads a wait for every thread of a process', () => {
    const threads = readThreadCpu(process.pid);
    expect(threads.length).toBeGreaterThan(1);
    for (const thread of threads) expect(thread.waitSeconds).toBeGreaterThanOrEqual(0);
    expect(threads.some((t) => t.waitSeconds > 0)).toBe(true);
  });
});
