import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the command could not be spawned at all (not installed, not executable). */
  error?: Error;
}

const exitCleanups = new Set<() => void>();
// Vitest ends its worker processes with SIGTERM, which skips 'exit' handlers: a private server must go then too.
const TERMINATING_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

/**
 * Runs `cleanup` when this process exits or is told to terminate, unless the returned function was called first.
 * Private servers are owned by one test: a test that fails before its afterAll must not leave a broker or a cluster
 * running. An 'exit' handler can only do synchronous work, so a cleanup sends SIGKILL rather than waiting for a stop.
 */
export function onProcessExit(cleanup: () => void): () => void {
  if (exitCleanups.size === 0) listen(true);
  exitCleanups.add(cleanup);
  return () => {
    if (exitCleanups.delete(cleanup) && exitCleanups.size === 0) listen(false);
  };
}

function listen(on: boolean): void {
  if (on) {
    process.on('exit', runExitCleanups);
    for (const signal of TERMINATING_SIGNALS) process.on(signal, onTerminatingSignal);
  } else {
    process.off('exit', runExitCleanups);
    for (const signal of TERMINATING_SIGNALS) process.off(signal, onTerminatingSignal);
  }
}

function runExitCleanups(): void {
  for (const cleanup of exitCleanups) {
    try {
      cleanup();
    } catch {
      // The process is going away: one failed cleanup must not keep the others from running.
    }
  }
  exitCleanups.clear();
  listen(false);
}

function onTerminatingSignal(signal: NodeJS.Signals): void {
  runExitCleanups();
  // Listening replaced the default action; unless someone else handles the signal, die of it as intended.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

/** Runs a command to completion and returns its stdout; the error carries its whole output. */
export function runCommand(
  command: string,
  args: string[],
  options: { cwd?: string; timeoutMs?: number } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { cwd: options.cwd, timeout: options.timeoutMs ?? 120_000, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (!error) return resolve(stdout);
        const how = error.signal ? `signal ${error.signal}` : `exit code ${String(error.code)}`;
        reject(new Error(`${[command, ...args].join(' ')} failed (${how}):\n${stdout}${stderr}`.trimEnd()));
      },
    );
  });
}

/** The last `lines` lines of a log file, for error messages; says why when the file cannot be read. */
export function logTail(file: string, lines = 40): string {
  try {
    const fd = openSync(file, 'r');
    try {
      const size = fstatSync(fd).size;
      const length = Math.min(size, 64 * 1024);
      const buffer = Buffer.alloc(length);
      readSync(fd, buffer, 0, length, size - length);
      return `--- ${file} ---\n${buffer.toString('utf8').trimEnd().split('\n').slice(-lines).join('\n')}`;
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    return `--- ${file}: ${(error as Error).message} ---`;
  }
}

export function describeExit(status: ExitStatus): string {
  if (status.error) return status.error.message;
  return status.signal ? `signal ${status.signal}` : `exit code ${String(status.code)}`;
}

/**
 * A server run as a direct child of the test process (not daemonized), its stdout and stderr appended to
 * `logFile`. It is SIGKILLed if the test process exits while it still runs.
 */
export class ServiceProcess {
  readonly exited: Promise<ExitStatus>;
  private readonly child: ChildProcess;
  private status: ExitStatus | undefined;

  constructor(command: string, args: string[], logFile: string, options: { cwd?: string } = {}) {
    const fd = openSync(logFile, 'a');
    try {
      this.child = spawn(command, args, { cwd: options.cwd, stdio: ['ignore', fd, fd] });
    } finally {
      // The child has its own copy of the descriptor.
      closeSync(fd);
    }
    const forget = onProcessExit(() => this.signal('SIGKILL'));
    this.exited = new Promise((resolve) => {
      const settle = (status: ExitStatus) => {
        if (this.status) return;
        this.status = status;
        forget();
        resolve(status);
      };
      this.child.once('exit', (code, signal) => settle({ code, signal }));
      // 'error' also reports a failed kill(); only a failed spawn (no pid) means there is no process.
      this.child.on('error', (error) => {
        if (this.child.pid === undefined) settle({ code: null, signal: null, error });
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.status === undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  signal(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }

  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. Resolves once the process is gone. */
  async stop(graceMs: number): Promise<ExitStatus> {
    if (!this.running) return this.exited;
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGKILL; resolves once the process is gone (reaped, so its ports and files are released). */
  async kill(): Promise<ExitStatus> {
    this.signal('SIGKILL');
    return this.exited;
  }
}
