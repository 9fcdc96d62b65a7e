import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

function processes(): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number);
}

function commandLine(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return [];
  }
}

/** The processes whose command line (arguments joined by spaces) passes `test`. */
export function pidsByCommandLine(test: (commandLine: string) => boolean): number[] {
  return processes().filter((pid) => pid !== process.pid && test(commandLine(pid).join(' ')));
}

/** The processes working in `dir`: a Postgres cluster's postmaster and all its backends. */
export function pidsWorkingIn(dir: string): number[] {
  return processes().filter((pid) => {
    try {
      return readlinkSync(`/proc/${pid}/cwd`) === dir;
    } catch {
      return false;
    }
  });
}

/**
 * Freezes processes (SIGSTOP) as a hung server or a network partition would look to its clients: connections stay
 * open, nothing answers, requests already sent are processed once the processes are thawed (SIGCONT). `find` is
 * asked again when thawing, so that processes forked meanwhile are thawed too.
 */
export async function freeze(find: () => number[], ms: number): Promise<number> {
  const frozen = find();
  if (frozen.length === 0) throw new Error('no process to freeze');
  const signal = (pid: number, name: NodeJS.Signals) => {
    try {
      process.kill(pid, name);
    } catch {
      // Exited meanwhile.
    }
  };
  frozen.forEach((pid) => signal(pid, 'SIGSTOP'));
  try {
    await new Promise((resolve) => setTimeout(resolve, ms));
  } finally {
    new Set([...frozen, ...find()]).forEach((pid) => signal(pid, 'SIGCONT'));
  }
  return frozen.length;
}
