// CPU time and resident memory of processes, read from /proc (Linux only; elsewhere the figures stay empty).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat times; 100 on every Linux this runs on (getconf CLK_TCK). */
const CLK_TCK = readClockTicks();

function readClockTicks(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

/** User + system CPU seconds the process (all its threads) has used so far; NaN when it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name may hold spaces and parentheses: count fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime, stime (fields 14 and 15 of stat)
  } catch {
    return NaN;
  }
}

/** Resident set size in bytes; NaN when the process is gone. */
export function rssBytes(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    const m = /VmRSS:\s+(\d+) kB/.exec(status);
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

export interface NamedProcess {
  name: string;
  pid: number;
  /** 'sut' (the server side) or 'load' (the load generator). */
  side: 'sut' | 'load';
}

export interface ProcUsage {
  name: string;
  side: 'sut' | 'load';
  /** Percent of one core over the interval. */
  cpu: number;
  /** CPU-seconds (user + system) used over the interval. */
  cpuSeconds: number;
  rssMiB: number;
}

/** Starts measuring; `stop()` gives each process's CPU share over the interval and its RSS at the end. */
export function cpuWindow(processes: NamedProcess[]): { stop(): ProcUsage[] } {
  const started = process.hrtime.bigint();
  const before = processes.map((p) => cpuSeconds(p.pid));
  return {
    stop() {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      return processes.map((p, i) => {
        const used = cpuSeconds(p.pid) - before[i];
        return { name: p.name, side: p.side, cpu: (100 * used) / seconds, cpuSeconds: used, rssMiB: rssBytes(p.pid) / (1024 * 1024) };
      });
    },
  };
}

/**
 * CPU-seconds the whole machine spent busy so far: user, nice, system and steal of every core from /proc/stat (irq
 * and softirq left out, as they are in a process's own times); NaN where /proc/stat cannot be read.
 */
export function machineBusySeconds(): number {
  try {
    const fields = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, , , , , steal] = fields;
    return (user + nice + system + (steal ?? 0)) / CLK_TCK;
  } catch {
    return NaN;
  }
}

/**
 * Starts measuring what the machine's other processes (and the hypervisor's steal) used; `stop(ours)` takes the
 * CPU-seconds the benchmark's own processes used over the same interval and gives the rest as percent of one core.
 * On a shared machine this is what the measured processes had to share their cores with.
 */
export function othersWindow(): { stop(oursSeconds: number): number } {
  const started = process.hrtime.bigint();
  const before = machineBusySeconds();
  return {
    stop(oursSeconds) {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      return Math.max(0, (100 * (machineBusySeconds() - before - oursSeconds)) / seconds);
    },
  };
}

export function loadAverage(): string {
  try {
    return readFileSync('/proc/loadavg', 'latin1').trim();
  } catch {
    return 'n/a';
  }
}

let tasksetChecked: boolean | undefined;

/** Pins every thread of `pid` to `cpus` (e.g. "0") with taskset; false when taskset is missing or fails. */
export function pin(pid: number, cpus: string): boolean {
  if (tasksetChecked === false) return false;
  try {
    execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
    tasksetChecked = true;
    return true;
  } catch {
    tasksetChecked ??= false;
    return false;
  }
}
