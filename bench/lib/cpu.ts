/**
 * Where a benchmark's CPU went, on Linux (/proc): the whole machine, and PostgreSQL's processes
 * (live backends plus the ones the postmaster already reaped). Everything returns null elsewhere,
 * and the benchmarks then print rates without the split.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';

const TICK_MS = 10; // USER_HZ is 100 on Linux

function statFields(pid: string): string[] | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may contain spaces.
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** Busy and total CPU time of the whole machine, in ms summed over cores. */
export function machineCpu(): { busyMs: number; totalMs: number } | null {
  try {
    const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
    const total = fields.reduce((a, b) => a + b, 0);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    return { busyMs: (total - idle) * TICK_MS, totalMs: total * TICK_MS };
  } catch {
    return null;
  }
}

/** Cores kept busy between two `machineCpu()` readings. */
export function busyCores(a: ReturnType<typeof machineCpu>, b: ReturnType<typeof machineCpu>): number | null {
  if (!a || !b || b.totalMs === a.totalMs) return null;
  return (b.busyMs - a.busyMs) / ((b.totalMs - a.totalMs) / cpus().length);
}

/**
 * CPU used so far by every PostgreSQL server process on this machine: the live ones (field
 * utime+stime) plus the children the postmaster has reaped (its cutime+cstime), so a backend
 * that exits between two readings is still counted.
 */
export function postgresCpuMs(): number | null {
  let total = 0;
  let found = false;
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return null;
  }
  for (const pid of pids) {
    let comm: string;
    try {
      comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      continue;
    }
    if (comm !== 'postgres' && !comm.startsWith('postgres:')) continue;
    const f = statFields(pid);
    if (!f) continue;
    found = true;
    // After the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14); ppid 1 marks the postmaster.
    const own = Number(f[11]) + Number(f[12]);
    const reaped = f[1] === '1' ? Number(f[13]) + Number(f[14]) : 0;
    total += (own + reaped) * TICK_MS;
  }
  return found ? total : null;
}
