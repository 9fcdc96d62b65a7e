// Benchmarks run with Node's own TypeScript support (type stripping): plain ESM, npm packages and relative
// `.ts` imports only, so no build step sits between a change and its measurement. They drive the BUILT apps
// (dist/) as separate processes, as production runs them, against the stack of scripts/stack.sh.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BENCH_DIR = join(ROOT, 'bench');

export const shared = {
  KAFKA_BROKERS: process.env['KAFKA_BROKERS'] || '127.0.0.1:9092',
  DATABASE_URL: process.env['DATABASE_URL'] || 'postgres://postgres@127.0.0.1:5432/test',
  REDIS_URL: process.env['REDIS_URL'] || 'redis://127.0.0.1:6379',
};

/** A number from the environment (`DURATION=5 npm run bench -- ingest`), or the default. */
export function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new Error(`${name}=${raw} is not a number`);
  return value;
}

/** A comma-separated list of numbers from the environment (`KEYS=1,1000`), or the default. */
export function envNumbers(name: string, fallback: number[]): number[] {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  return raw.split(',').map((part) => {
    const value = Number(part);
    if (!Number.isFinite(value)) throw new Error(`${name}=${raw}: ${part} is not a number`);
    return value;
  });
}

/** A comma-separated list of names from the environment (`SHAPES=single,batch`), each one of `allowed`, or the default. */
export function envList<T extends string>(name: string, allowed: readonly T[], fallback: readonly T[] = allowed): T[] {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return [...fallback];
  return raw.split(',').map((part) => {
    const value = allowed.find((a) => a === part.trim());
    if (value === undefined) throw new Error(`${name}=${raw}: ${part} is not one of ${allowed.join(', ')}`);
    return value;
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

export async function waitUntil(probe: () => Promise<boolean>, what: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await probe()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** One benchmark's own topics, schema and key prefix on the shared services; `dispose` removes them. */
export class BenchStack {
  readonly id = `bench_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  readonly kafka = new Kafka({
    clientId: 'bench',
    brokers: shared.KAFKA_BROKERS.split(','),
    logLevel: logLevel.NOTHING,
  });
  readonly pg = new pg.Pool({ connectionString: shared.DATABASE_URL, max: 2 });
  env: Record<string, string> = {};

  /** `migrate: false` for a benchmark that needs only the schema name and key prefix (no topics, no tables). */
  static async create(partitions = 12, options: { migrate?: boolean } = {}): Promise<BenchStack> {
    const stack = new BenchStack();
    stack.env = {
      ...shared,
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      DATABASE_SCHEMA: stack.id,
      KAFKA_TOPIC_COUNTERS: `${stack.id}.counters`,
      KAFKA_TOPIC_ACTIVITIES: `${stack.id}.activities`,
      KAFKA_TOPIC_PARTITIONS: String(partitions),
      CONSUMER_GROUP_ID: `${stack.id}-group`,
      REDIS_KEY_PREFIX: `${stack.id}:`,
      API_HOST: '127.0.0.1',
      CONSUMER_HOST: '127.0.0.1',
      // The load generator sends far more than a client would; rate limits are not what is measured.
      API_RATE_LIMIT: '10000000',
    };
    if (options.migrate !== false) {
      cli(['topics'], stack.env);
      cli(['migrate'], stack.env);
    }
    return stack;
  }

  get topics(): string[] {
    const main = [this.env['KAFKA_TOPIC_COUNTERS'] ?? '', this.env['KAFKA_TOPIC_ACTIVITIES'] ?? ''];
    return [...main, ...main.map((t) => `${t}.dlq`)];
  }

  async dispose(): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: this.topics }).catch(() => undefined);
    await admin.deleteGroups([this.env['CONSUMER_GROUP_ID'] ?? '']).catch(() => undefined);
    await admin.disconnect();
    await this.pg.query(`DROP SCHEMA IF EXISTS "${this.id}" CASCADE`);
    await this.pg.end();
    await deleteRedisKeys(`${this.id}:`);
  }
}

/** Removes every Redis key under `prefix` (the view, idempotency records and caches a benchmark left). */
export async function deleteRedisKeys(prefix: string): Promise<void> {
  const redis = new Redis(shared.REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

function cli(args: string[], env: Record<string, string>): void {
  const run = spawnSync(process.execPath, ['--disable-warning=TimeoutNegativeWarning', appEntry('cli'), ...args], {
    env: { PATH: process.env['PATH'] ?? '', ...env },
    encoding: 'utf8',
  });
  if (run.status !== 0) throw new Error(`cli ${args.join(' ')} failed: ${run.stderr}`);
}

export type AppName = 'api' | 'consumer' | 'cli';

/**
 * Where the built apps are: `dist/`, or BENCH_DIST (another build of the apps, e.g. of the code before a change,
 * to measure before and after with the same benchmark).
 */
export const DIST = process.env['BENCH_DIST'] || join(ROOT, 'dist');

export function appEntry(app: AppName): string {
  return join(DIST, 'apps', app, 'apps', app, 'src', 'main.js');
}

/**
 * A module of a built app (dist/apps/<app>/<path>.js), for the benchmarks that run one piece of the app in the
 * benchmark's own process (the producer's micro-batcher, the consumer's SQL, the view's scripts), so that it is
 * measured next to a standalone loop with nothing else differing. `path` is relative to the app's output root,
 * e.g. `libs/store/src/index.js`. Typed by the caller, which declares the little it uses.
 */
export async function importBuilt<T>(app: AppName, path: string): Promise<T> {
  return (await import(pathToFileURL(join(DIST, 'apps', app, path)).href)) as T;
}

/** Resident memory of a process: now, and the most it ever had (the kernel's high-water mark), in MB. */
export function rssOf(pid: number | undefined): { rssMb: number; peakMb: number } {
  if (pid === undefined) return { rssMb: NaN, peakMb: NaN };
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
  } catch {
    return { rssMb: NaN, peakMb: NaN };
  }
}

/** CPU time (user + system) a process has used so far, in seconds (Linux clock ticks are 1/100 s). */
export function cpuSecondsOf(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces, hence the last ')'): utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/**
 * A server under test as a child process: a built app (`App.start('api', env)`), or a reference server of the
 * benchmarks (`App.script('naive', 'servers/naive.server.ts', env)`), ready when `readyPath` answers 200.
 */
export class App {
  readonly name: string;
  readonly port: number;
  private readonly child: ChildProcess;
  private output = '';

  private constructor(name: string, port: number, args: string[], env: Record<string, string>) {
    this.name = name;
    this.port = port;
    this.child = spawn(process.execPath, ['--disable-warning=TimeoutNegativeWarning', ...args], {
      env: { PATH: process.env['PATH'] ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (chunk: Buffer) => (this.output = (this.output + chunk.toString()).slice(-20_000));
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
  }

  /**
   * A built app. `nodeArgs` go before the entry point, e.g. `['--cpu-prof', '--cpu-prof-dir=/tmp/prof']` to
   * profile it (the profile is written when it exits on SIGTERM).
   */
  static async start(name: 'api' | 'consumer', env: Record<string, string>, nodeArgs: string[] = []): Promise<App> {
    const port = await freePort();
    const portVar = name === 'api' ? 'API_PORT' : 'CONSUMER_PORT';
    // APP_NODE_ARGS: V8/Node flags for every app started (e.g. `--max-semi-space-size=16`), to compare settings.
    const extra = (process.env['APP_NODE_ARGS'] ?? '').split(' ').filter(Boolean);
    const args = [...extra, ...nodeArgs, appEntry(name)];
    return App.ready(new App(name, port, args, { ...env, [portVar]: String(port) }));
  }

  /** A benchmark's own server under bench/ (plain TypeScript run by Node), listening on the env's PORT. */
  static async script(
    name: string,
    file: string,
    env: Record<string, string>,
    readyPath = '/',
    nodeArgs: string[] = [],
  ): Promise<App> {
    const port = await freePort();
    const args = ['--disable-warning=ExperimentalWarning', ...nodeArgs, join(BENCH_DIR, file)];
    return App.ready(new App(name, port, args, { ...env, PORT: String(port) }), readyPath);
  }

  private static async ready(app: App, readyPath = '/health/ready'): Promise<App> {
    // waitUntil takes a throwing probe for "not yet": an exit ends the wait through `exited` instead.
    let exited = false;
    await waitUntil(async () => {
      exited = app.child.exitCode !== null || app.child.signalCode !== null;
      return exited || (await fetch(`${app.url}${readyPath}`)).status === 200;
    }, `${app.name} ready`).catch((error: unknown) => {
      app.child.kill('SIGKILL');
      throw new Error(`${(error as Error).message}\n${app.output}`);
    });
    if (exited) throw new Error(`${app.name} exited before it was ready:\n${app.output}`);
    return app;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Throws, with the process's last output, once it has exited: a dead server's numbers must not be reported. */
  assertRunning(): void {
    const { exitCode, signalCode } = this.child;
    if (exitCode !== null || signalCode !== null) {
      throw new Error(`${this.name} exited (${signalCode ?? `code ${exitCode}`}):\n${this.output}`);
    }
  }

  /** CPU seconds the process has used so far. */
  cpuSeconds(): number {
    return cpuSecondsOf(this.child.pid);
  }

  /** Resident memory now and its high-water mark since the process started, in MB. */
  memory(): { rssMb: number; peakMb: number } {
    return rssOf(this.child.pid);
  }

  /** The sum of a Prometheus metric's series from the app's /metrics: all of them, or those whose labels hold `label`. */
  async metric(name: string, label?: string): Promise<number> {
    const text = await (await fetch(`${this.url}/metrics`)).text();
    return text
      .split('\n')
      .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
      .filter((line) => label === undefined || line.includes(label))
      .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    await once(this.child, 'exit');
  }
}

/**
 * Samples a process's resident memory every 250 ms while `work` runs; returns the most seen, in MB, and the CPU
 * seconds the process used meanwhile (on a shared machine, CPU per request is steadier than requests per second).
 */
export async function peakRss<T>(
  app: App,
  work: () => Promise<T>,
): Promise<{ result: T; rssMb: number; cpuSeconds: number }> {
  const cpuBefore = app.cpuSeconds();
  let most = app.memory().rssMb;
  const timer = setInterval(() => {
    const now = app.memory().rssMb;
    if (now > most) most = now;
  }, 250);
  try {
    const result = await work();
    return { result, rssMb: Math.max(most, app.memory().rssMb), cpuSeconds: app.cpuSeconds() - cpuBefore };
  } finally {
    clearInterval(timer);
  }
}
