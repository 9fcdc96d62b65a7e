import { rmSync } from 'node:fs';
import { copyFile, cp, mkdir, readdir, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import {
  AppProcess,
  appEntry,
  KafkaBroker,
  PostgresServer,
  RedisServer,
  TestStack,
  freePort,
  scrapeMetrics,
  waitFor,
} from '@app/testing';
import type { ChaosOptions } from './options.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const APPS = ['api', 'consumer', 'cli'] as const;

/** The newest modification time of the files under `dir`. */
async function newestChange(dir: string): Promise<number> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const times = await Promise.all(
    entries.filter((e) => e.isFile()).map((e) => stat(join(e.parentPath, e.name)).then((s) => s.mtimeMs)),
  );
  return Math.max(0, ...times);
}

/**
 * A copy of the built apps for one run, under dist/chaos/ (so that node still finds the repo's node_modules). A
 * long run restarts processes for half an hour; on a machine where dist/ is rebuilt meanwhile (`nest build` first
 * deletes the app's output) a restart would otherwise find no build, or another one. Copied once no file of
 * dist/apps has changed for 10 s, and again if one changed during the copy.
 */
async function snapshotDist(): Promise<string> {
  const target = join(REPO, 'dist', 'chaos', `${process.pid}-${Date.now().toString(36)}`);
  const source = join(REPO, 'dist', 'apps');
  for (let attempt = 1; ; attempt++) {
    const before = await waitFor(
      async () => {
        await Promise.all(APPS.map((app) => stat(appEntry(app))));
        const newest = await newestChange(source);
        return Date.now() - newest > 10_000 && newest;
      },
      { timeoutMs: 300_000, intervalMs: 1000, description: 'a complete build in dist/ (a build is in progress)' },
    );
    await rm(target, { recursive: true, force: true });
    for (const app of APPS) await cp(join(source, app), join(target, 'apps', app), { recursive: true });
    if ((await newestChange(source)) === before) return target;
    if (attempt >= 5) throw new Error('dist/ keeps changing: could not copy one build of the apps');
  }
}

/** The API keys of the load's two tenants: event ids are `<tenant>:<key>#<fingerprint>`, so both scopes are exercised. */
export const TENANTS = [
  { key: 'chaos-key-alpha-0123456789', client: 'alpha' },
  { key: 'chaos-key-beta-9876543210', client: 'beta' },
] as const;

export interface ExitNote {
  slot: string;
  generation: number;
  exit: { code: number | null; signal: NodeJS.Signals | null };
  at: number;
}

/**
 * One app "slot": a name and a port, run by successive processes (a killed process is replaced by a new one on
 * the same port, as an orchestrator would). Every process it ran is kept for its logs.
 */
export class AppSlot {
  process: AppProcess | undefined;
  generation = 0;
  /** Scaled down: no process is started in it again. */
  removed = false;
  /** Set before the harness kills or stops the process, so that its exit is not reported as unexpected. */
  private expectingExit = false;
  readonly history: AppProcess[] = [];

  constructor(
    readonly app: 'api' | 'consumer',
    readonly name: string,
    readonly port: number,
    private readonly env: () => Record<string, string>,
    private readonly onUnexpectedExit: (note: ExitNote) => void,
    private readonly dist: string,
  ) {}

  get running(): boolean {
    return this.process?.running ?? false;
  }

  start(): void {
    if (this.removed) return;
    if (this.running) throw new Error(`${this.name} is already running`);
    this.generation += 1;
    const generation = this.generation;
    const process = new AppProcess(this.app, this.env(), [], [], this.dist);
    this.process = process;
    this.history.push(process);
    this.expectingExit = false;
    void process.exited.then((exit) => {
      if (this.process === process && !this.expectingExit) {
        this.onUnexpectedExit({ slot: this.name, generation, exit, at: Date.now() });
      }
    });
  }

  /** SIGKILL; resolves once the process is gone. */
  async kill(): Promise<void> {
    const process = this.process;
    if (!process?.running) return;
    this.expectingExit = true;
    process.kill('SIGKILL');
    await process.exited;
  }

  /** SIGTERM (graceful drain); resolves with how it exited. */
  async stop(graceMs = 30_000): Promise<{ code: number | null; signal: NodeJS.Signals | null } | undefined> {
    const process = this.process;
    if (!process) return undefined;
    this.expectingExit = true;
    return process.stop(graceMs);
  }

  async ready(timeoutMs: number): Promise<void> {
    const process = this.process;
    if (!process) throw new Error(`${this.name} has no process`);
    await process.ready(this.port, timeoutMs);
  }

  /** /health/ready answers 200 now. */
  async isReady(): Promise<boolean> {
    if (!this.running) return false;
    try {
      const response = await fetch(`http://127.0.0.1:${this.port}/health/ready`, { signal: AbortSignal.timeout(3000) });
      await response.arrayBuffer();
      return response.status === 200;
    } catch {
      return false;
    }
  }
}

/**
 * SIGKILLs the app processes if this process exits or is told to terminate (Ctrl-C, a timeout) before dispose():
 * the private servers clean up after themselves the same way (libs/testing), the apps must not outlive them.
 */
function killOnExit(processes: () => AppProcess[], dist: string): () => void {
  const killAll = () => {
    processes().forEach((p) => p.kill('SIGKILL'));
    rmSync(dist, { recursive: true, force: true });
  };
  const onSignal = (signal: NodeJS.Signals) => {
    killAll();
    release();
    // Listening replaced the default action: die of the signal as intended, unless someone else handles it.
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  const release = () => {
    process.off('exit', killAll);
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(signal, onSignal);
  };
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal);
  return release;
}

/**
 * The system under test, all private to one chaos run: a Kafka broker, Postgres and Redis that the faults stop,
 * kill and flush, a TestStack on them (topics, migrated schema, key prefix, consumer group), and the API and
 * consumer processes in slots.
 */
export class ChaosSystem {
  readonly apis: AppSlot[] = [];
  readonly consumers: AppSlot[] = [];
  readonly unexpectedExits: ExitNote[] = [];
  private consumerCount = 0;
  private readonly releaseExitHandler: () => void;

  private constructor(
    readonly broker: KafkaBroker,
    readonly postgres: PostgresServer,
    readonly redis: RedisServer,
    readonly stack: TestStack,
    private readonly options: ChaosOptions,
    /** The copy of the built apps this run starts (see snapshotDist). */
    readonly dist: string,
  ) {
    this.releaseExitHandler = killOnExit(() => [...this.apis, ...this.consumers].flatMap((slot) => slot.history), dist);
  }

  static async start(options: ChaosOptions): Promise<ChaosSystem> {
    const dist = await snapshotDist();
    const servers = await Promise.allSettled([
      KafkaBroker.start({ proxied: true }),
      PostgresServer.start(),
      RedisServer.start(),
    ]);
    const [broker, postgres, redis] = servers.map((s) => (s.status === 'fulfilled' ? s.value : undefined)) as [
      KafkaBroker | undefined,
      PostgresServer | undefined,
      RedisServer | undefined,
    ];
    const failed = servers.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed || !broker || !postgres || !redis) {
      await Promise.allSettled([broker?.dispose(), postgres?.dispose(), redis?.dispose()]);
      await rm(dist, { recursive: true, force: true });
      throw failed?.reason instanceof Error ? failed.reason : new Error('a private server did not start');
    }
    let stack: TestStack;
    try {
      stack = await TestStack.create({
        brokers: broker.brokers,
        databaseUrl: postgres.url,
        redisUrl: redis.url,
        partitions: options.partitions,
      });
    } catch (error) {
      await Promise.allSettled([broker.dispose(), postgres.dispose(), redis.dispose()]);
      await rm(dist, { recursive: true, force: true });
      throw error;
    }
    // The stack's own clients outlive every outage of the servers the faults take away: no unhandled errors.
    stack.redis.on('error', () => undefined);
    const system = new ChaosSystem(broker, postgres, redis, stack, options, dist);
    for (let i = 0; i < options.apis; i++) {
      const port = i === 0 ? Number(stack.env['API_PORT']) : await freePort();
      system.apis.push(system.slot('api', `api-${i + 1}`, port));
    }
    for (let i = 0; i < options.consumers; i++) await system.addConsumer(false);
    return system;
  }

  get topics(): string[] {
    return [this.stack.topics.counters, this.stack.topics.activities];
  }

  get apiUrls(): string[] {
    return this.apis.map((a) => `http://127.0.0.1:${a.port}`);
  }

  /** Consumer slots that are not scaled away. */
  get activeConsumers(): AppSlot[] {
    return this.consumers.filter((c) => !c.removed);
  }

  /** What every app gets: the stack's settings, with timings that suit a run of many faults. */
  private appEnv(app: 'api' | 'consumer', port: number): Record<string, string> {
    const common = {
      ...this.stack.env,
      LOG_LEVEL: 'warn',
      API_KEYS: TENANTS.map((t) => `${t.key}:${t.client}`).join(','),
    };
    if (app === 'api') {
      return {
        ...common,
        API_PORT: String(port),
        // A Kafka outage is noticed in 1.5 s (then write-through), and Kafka is tried again every second.
        API_PRODUCE_TIMEOUT_MS: '1500',
        API_BREAKER_RESET_MS: '1000',
        // A key held by a SIGKILLed API is free again after 8 s, not 30: the clients' retries get through sooner.
        // It stays well above the longest live request (produce timeout + a write-through).
        API_IDEMPOTENCY_LOCK_MS: '8000',
        // The lag the report shows comes from the API's exporter.
        API_LAG_EXPORT_INTERVAL_MS: '1000',
        ...(this.options.rateLimit === undefined
          ? {}
          : { API_RATE_LIMIT: String(this.options.rateLimit), API_RATE_LIMIT_WINDOW_MS: '1000' }),
      };
    }
    return {
      ...common,
      CONSUMER_PORT: String(port),
      // A SIGKILLed member's partitions go to the others once its session expires: keep that short.
      CONSUMER_SESSION_TIMEOUT_MS: '6000',
      CONSUMER_HEARTBEAT_INTERVAL_MS: '500',
      CONSUMER_RETRY_MAX_DELAY_MS: '1500',
      // The view sweep every 5 s, on deltas older than 5 s (default: a minute each): an over-count a missed reconcile
      // left heals within seconds, so the probes can tell a view that heals from one that does not.
      CONSUMER_VIEW_SWEEP_INTERVAL_MS: '5000',
      CONSUMER_VIEW_SWEEP_MIN_AGE_MS: '5000',
    };
  }

  private slot(app: 'api' | 'consumer', name: string, port: number): AppSlot {
    return new AppSlot(
      app,
      name,
      port,
      () => this.appEnv(app, port),
      (note) => this.unexpectedExits.push(note),
      this.dist,
    );
  }

  /** Starts a new consumer slot (and process); waits for it to be ready when `wait`. */
  async addConsumer(wait = true, timeoutMs = 120_000): Promise<AppSlot> {
    this.consumerCount += 1;
    const slot = this.slot('consumer', `consumer-${this.consumerCount}`, await freePort());
    this.consumers.push(slot);
    slot.start();
    if (wait) await slot.ready(timeoutMs);
    return slot;
  }

  /** Stops a consumer gracefully and retires its slot. */
  async removeConsumer(slot: AppSlot) {
    slot.removed = true;
    return slot.stop();
  }

  /** Starts the first processes and waits until every app is ready. */
  async boot(timeoutMs = 120_000): Promise<void> {
    for (const api of this.apis) api.start();
    await Promise.all([...this.apis, ...this.activeConsumers].map((s) => s.ready(timeoutMs)));
  }

  /**
   * Heals what is down (servers not running, app slots without a process) and waits until every app answers
   * ready. Returns the names of what it had to start.
   */
  async settle(timeoutMs: number): Promise<string[]> {
    const started: string[] = [];
    if (!this.broker.running) {
      started.push('kafka');
      await this.broker.restart();
    }
    if (!this.postgres.running) {
      started.push('postgres');
      await this.postgres.restart();
    }
    if (!this.redis.running) {
      started.push('redis');
      await this.redis.restart();
    }
    for (const slot of [...this.apis, ...this.activeConsumers]) {
      if (!slot.running) {
        started.push(slot.name);
        slot.start();
      }
    }
    const slots = [...this.apis, ...this.activeConsumers];
    await waitFor(
      async () => {
        const states = await Promise.all(slots.map((s) => s.isReady()));
        // A process that died meanwhile is replaced, as an orchestrator would.
        slots.forEach((s) => {
          if (!s.running && !s.removed) s.start();
        });
        return states.every(Boolean);
      },
      {
        timeoutMs,
        intervalMs: 250,
        description: `every app ready (${slots.map((s) => s.name).join(', ')})`,
      },
    );
    return started;
  }

  /** The consumer group's lag as the API exports it: the sum over partitions, and the oldest unapplied event. */
  async lag(): Promise<{ messages: number; seconds: number } | undefined> {
    for (const api of this.apis) {
      if (!api.running) continue;
      try {
        const { samples } = await scrapeMetrics(api.port);
        const lag = samples.filter((s) => s.name === 'writebehind_consumer_lag_messages');
        if (lag.length === 0) continue;
        const seconds = samples.filter((s) => s.name === 'writebehind_consumer_lag_seconds');
        return {
          messages: lag.reduce((sum, s) => sum + s.value, 0),
          seconds: seconds.reduce((max, s) => Math.max(max, s.value), 0),
        };
      } catch {
        // This API is restarting: ask the next.
      }
    }
    return undefined;
  }

  /** Writes every process's output and the servers' logs to `dir`. */
  async saveLogs(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    for (const slot of [...this.apis, ...this.consumers]) {
      for (const [i, process] of slot.history.entries()) {
        await writeFile(join(dir, `${slot.name}.${i + 1}.log`), process.text);
      }
    }
    const copies: [string, string][] = [
      [this.broker.logFile, 'kafka.log'],
      [this.postgres.logFile, 'postgres.log'],
      [this.redis.logFile, 'redis.log'],
    ];
    for (const [from, to] of copies) await copyFile(from, join(dir, to)).catch(() => undefined);
  }

  /** Stops every app (SIGTERM, SIGKILL after 15 s), then the stack and the servers. Best effort. */
  async dispose(): Promise<void> {
    await Promise.allSettled([...this.apis, ...this.consumers].map((s) => s.stop(15_000)));
    this.releaseExitHandler();
    // The stack's clients talk to the private servers: if one is down, do not wait for its timeouts.
    await Promise.race([this.stack.dispose(), sleep(20_000)]).catch(() => undefined);
    await Promise.allSettled([this.broker.dispose(), this.postgres.dispose(), this.redis.dispose()]);
    await rm(this.dist, { recursive: true, force: true });
    // dist/chaos itself, unless another run still has its copy there.
    await rmdir(dirname(this.dist)).catch(() => undefined);
  }
}
