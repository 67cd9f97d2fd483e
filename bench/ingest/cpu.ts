// Where the CPU went during a load, from /proc: the server's threads one by one, Postgres's
// process tree, this process (the load generator) and the whole machine; and how long the server's
// threads and Postgres's processes were runnable but waited for a core.
import {
  cpuGrowth,
  readMachineCpu,
  readProcessTreeUsage,
  readThreadCpu,
  usageOf,
  type ThreadCpu,
} from '../lib/proc-stats.js';
import type { CpuCores } from './results.js';

export interface CpuSample {
  readonly serverThreads: ThreadCpu[];
  readonly postgres: Map<number, number>;
  readonly postgresWait: Map<number, number>;
  readonly loadGenerator: NodeJS.CpuUsage;
  readonly machine: { busySeconds: number };
}

export function sampleCpu(serverPid: number, postmasterPid: number): CpuSample {
  const postgres = readProcessTreeUsage(postmasterPid);
  return {
    serverThreads: readThreadCpu(serverPid),
    postgres: usageOf(postgres, 'cpuSeconds'),
    postgresWait: usageOf(postgres, 'waitSeconds'),
    loadGenerator: process.cpuUsage(),
    machine: readMachineCpu(),
  };
}

export function cpuCores(
  before: CpuSample,
  after: CpuSample,
  serverPid: number,
  seconds: number,
  /** A load generator in a child process (wrk): its CPU, in place of this process's. */
  childGeneratorSeconds: number | null = null,
): CpuCores {
  const start = new Map(before.serverThreads.map((t) => [t.tid, t]));
  let serverMain = 0;
  let serverWaiting = 0;
  const serverOtherByName: Record<string, number> = {};
  const serverOtherThreads: number[] = [];
  for (const thread of after.serverThreads) {
    const used = (thread.cpuSeconds - (start.get(thread.tid)?.cpuSeconds ?? 0)) / seconds;
    serverWaiting += (thread.waitSeconds - (start.get(thread.tid)?.waitSeconds ?? 0)) / seconds;
    if (thread.tid === serverPid) serverMain = used;
    else {
      serverOtherByName[thread.name] = (serverOtherByName[thread.name] ?? 0) + used;
      serverOtherThreads.push(used);
    }
  }
  serverOtherThreads.sort((a, b) => b - a);
  const other = Object.values(serverOtherByName).reduce((a, b) => a + b, 0);
  const generator = process.cpuUsage(before.loadGenerator);
  return {
    serverMain,
    serverOtherByName,
    serverOtherThreads: serverOtherThreads.slice(0, 8),
    serverTotal: serverMain + other,
    postgres: cpuGrowth(before.postgres, after.postgres) / seconds,
    waiting: serverWaiting + cpuGrowth(before.postgresWait, after.postgresWait) / seconds,
    loadGenerator: (childGeneratorSeconds ?? (generator.user + generator.system) / 1e6) / seconds,
    machineBusy: (after.machine.busySeconds - before.machine.busySeconds) / seconds,
  };
}
