import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { onProcessExit } from './service-process.js';
import { waitFor } from './wait-for.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export type AppName = 'api' | 'consumer' | 'cli';

/**
 * The built entry point of `app`, under `dist`: the repo's dist/, or WB_TEST_DIST (another build, e.g. of the code
 * before a fix, to see a new test fail on it), or a copy of it for a long chaos run.
 */
export function appEntry(app: AppName, dist = process.env['WB_TEST_DIST'] || join(ROOT, 'dist')): string {
  return join(dist, 'apps', app, 'apps', app, 'src', 'main.js');
}

/**
 * A real app process (the built `dist/` output), as production runs it: tests can SIGTERM or SIGKILL it.
 * Its output is kept for assertions and printed when a test fails to start it.
 */
const running = new Set<AppProcess>();

/** Kills every app process this test process started that is still running (a failed test's leftovers). */
export async function killLeftoverApps(): Promise<number> {
  const left = [...running].filter((p) => p.running);
  for (const p of left) p.kill('SIGKILL');
  await Promise.all(left.map((p) => p.exited));
  return left.length;
}

export class AppProcess {
  readonly output: string[] = [];
  /** Standard output alone (the CLI's --json output). */
  readonly stdout: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;

  constructor(
    readonly app: AppName,
    readonly env: Record<string, string>,
    args: string[] = [],
    /** Extra node flags, e.g. a heap cap. */
    nodeArgs: string[] = [],
    /** Run the build in this directory instead of dist/ (see appEntry). */
    dist?: string,
  ) {
    this.child = spawn(
      process.execPath,
      ['--disable-warning=TimeoutNegativeWarning', ...nodeArgs, appEntry(app, dist), ...args],
      {
        env: { PATH: process.env['PATH'] ?? '', TZ: 'UTC', LOG_LEVEL: 'info', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const keep = (chunk: Buffer) => this.output.push(chunk.toString('utf8'));
    this.child.stdout?.on('data', (chunk: Buffer) => {
      keep(chunk);
      this.stdout.push(chunk.toString('utf8'));
    });
    this.child.stderr?.on('data', keep);
    // A test that fails before stopping its processes must not leave them running against the shared services.
    running.add(this);
    const forget = onProcessExit(() => this.kill('SIGKILL'));
    this.exited = once(this.child, 'exit').then(([code, signal]) => {
      running.delete(this);
      forget();
      return { code: code as number | null, signal: signal as NodeJS.Signals | null };
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  get text(): string {
    return this.output.join('');
  }

  /** Resolves when `/health/ready` answers 200 on `port`; fails at once if the process exits. */
  async ready(port: number, timeoutMs = 60_000): Promise<void> {
    const ready = waitFor(
      async () => {
        const response = await fetch(`http://127.0.0.1:${port}/health/ready`);
        return response.status === 200;
      },
      { timeoutMs, description: `${this.app} ready on ${port}` },
    );
    // An app that dies while starting fails the wait at once, not at the timeout.
    const died = this.exited.then((exit) => {
      throw new Error(`${this.app} exited while starting (${JSON.stringify(exit)})`);
    });
    await Promise.race([ready, died]).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}\n--- ${this.app} output ---\n${this.text}`);
    });
    died.catch(() => undefined);
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.running) this.child.kill(signal);
  }

  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. Resolves with how it exited. */
  async stop(graceMs = 15_000) {
    if (!this.running) return this.exited;
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}
