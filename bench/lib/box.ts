// Whole-box CPU: what the shared services (Redis, Kafka, Postgres) have used, read from /proc, so that a write
// path's CPU per event can include the work it hands them and not only its own process's. Linux only.
import { readFileSync, readdirSync } from 'node:fs';

export type Service = 'redis' | 'kafka' | 'postgres';

/**
 * The service a process belongs to: `redis-server`, the `java` process running `kafka.Kafka`, or any `postgres`
 * process (postmaster, backends, background workers). By /proc/<pid>/comm, which keeps the executable's name when
 * Postgres rewrites its command line ("postgres: 15/main: checkpointer").
 */
function serviceOf(pid: string): Service | undefined {
  const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  if (comm === 'redis-server') return 'redis';
  if (comm === 'postgres') return 'postgres';
  if (comm === 'java' && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('kafka.Kafka')) return 'kafka';
  return undefined;
}

/**
 * CPU seconds (user + system) of a process and of its children that exited and were waited for (cutime, cstime):
 * a Postgres backend that closes during a measurement leaves its time in the postmaster's. Ticks are 1/100 s.
 */
function cpuWithChildren(pid: string): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / 100;
}

/** CPU seconds each service has used so far, all its processes together (found anew on each call). */
export function servicesCpuSeconds(): Record<Service, number> {
  const used: Record<Service, number> = { redis: 0, kafka: 0, postgres: 0 };
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const service = serviceOf(pid);
      if (service) used[service] += cpuWithChildren(pid);
    } catch {
      // exited meanwhile
    }
  }
  return used;
}
