// Benchmarks run with Node's own TypeScript support (type stripping): plain ESM, npm packages and relative
// `.ts` imports only, so no build step sits between a change and its measurement. They drive the BUILT apps
// (dist/) as separate processes, as production runs them, against the stack of scripts/stack.sh.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export const shared = {
  KAFKA_BROKERS: process.env['KAFKA_BROKERS'] || '127.0.0.1:9092',
  DATABASE_URL: process.env['DATABASE_URL'] || 'postgres://postgres@127.0.0.1:5432/test',
  REDIS_URL: process.env['REDIS_URL'] || 'redis://127.0.0.1:6379',
};

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

  static async create(partitions = 12): Promise<BenchStack> {
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
    cli(['topics'], stack.env);
    cli(['migrate'], stack.env);
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
  }
}

function cli(args: string[], env: Record<string, string>): void {
  const run = spawnSync(process.execPath, ['--disable-warning=TimeoutNegativeWarning', appEntry('cli'), ...args], {
    env: { PATH: process.env['PATH'] ?? '', ...env },
    encoding: 'utf8',
  });
  if (run.status !== 0) throw new Error(`cli ${args.join(' ')} failed: ${run.stderr}`);
}

export function appEntry(app: 'api' | 'consumer' | 'cli'): string {
  return join(ROOT, 'dist', 'apps', app, 'apps', app, 'src', 'main.js');
}

/** A built app as a child process. */
export class App {
  readonly name: 'api' | 'consumer';
  readonly port: number;
  private readonly child: ChildProcess;
  private output = '';

  private constructor(name: 'api' | 'consumer', port: number, env: Record<string, string>) {
    this.name = name;
    this.port = port;
    this.child = spawn(process.execPath, ['--disable-warning=TimeoutNegativeWarning', appEntry(name)], {
      env: { PATH: process.env['PATH'] ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (chunk: Buffer) => (this.output = (this.output + chunk.toString()).slice(-20_000));
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
  }

  static async start(name: 'api' | 'consumer', env: Record<string, string>): Promise<App> {
    const port = await freePort();
    const app = new App(name, port, { ...env, [name === 'api' ? 'API_PORT' : 'CONSUMER_PORT']: String(port) });
    await waitUntil(async () => {
      if (app.child.exitCode !== null) throw new Error(`${name} exited:\n${app.output}`);
      return (await fetch(`${app.url}/health/ready`)).status === 200;
    }, `${name} ready`).catch((error: unknown) => {
      app.child.kill('SIGKILL');
      throw new Error(`${(error as Error).message}\n${app.output}`);
    });
    return app;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    this.child.kill('SIGTERM');
    await once(this.child, 'exit');
  }
}
