import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './env.js';
import { portFree } from './ports.js';
import { describeExit, logTail, onProcessExit, ServiceProcess } from './service-process.js';
import { waitFor } from './wait-for.js';

/** One PING over a raw connection: a client library would reconnect and queue instead of answering no. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, timeout: 2000 });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('utf8');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
    socket.once('close', () => done(false));
  });
}

/**
 * A private Redis owned by one test, on its own port, so that the test can stop or kill a real server without
 * disturbing the shared one. It keeps nothing on disk, like the shared one: after a restart it is empty.
 */
export class RedisServer {
  readonly url: string;
  private redis: ServiceProcess | undefined;
  private readonly forgetDir: () => void;

  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {
    this.url = `redis://127.0.0.1:${port}`;
    this.forgetDir = onProcessExit(() => {
      this.redis?.signal('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });
  }

  static async start(): Promise<RedisServer> {
    const server = new RedisServer(await mkdtemp(join(tmpdir(), 'wb-redis-')), await freePort());
    try {
      await server.launch();
    } catch (error) {
      await server.dispose();
      throw error;
    }
    return server;
  }

  get running(): boolean {
    return this.redis?.running ?? false;
  }

  get logFile(): string {
    return join(this.dir, 'redis.log');
  }

  /** SIGTERM (Redis shuts down cleanly), then SIGKILL after 10 s. */
  async stop(): Promise<void> {
    await this.redis?.stop(10_000);
  }

  /** A crash: SIGKILL, resolved once the process is gone. */
  async kill(): Promise<void> {
    await this.redis?.kill();
  }

  /** Starts the server again on the same port; stops it first if it still runs. */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  async dispose(): Promise<void> {
    try {
      await this.stop();
    } finally {
      this.forgetDir();
      await rm(this.dir, { recursive: true, force: true });
    }
  }

  private async launch(): Promise<void> {
    await waitFor(() => portFree(this.port), { description: `port ${this.port} free for the private Redis` });
    // Not daemonized, so that the test process owns it; --dir keeps whatever it writes out of the working directory.
    const child = new ServiceProcess(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir],
      this.logFile,
      { cwd: this.dir },
    );
    this.redis = child;
    let outcome: 'ready' | 'exited';
    try {
      outcome = await waitFor(async () => (child.running ? (await ping(this.port)) && 'ready' : 'exited'), {
        description: `the private Redis on port ${this.port}`,
      });
    } catch (error) {
      await child.kill();
      throw new Error(`${(error as Error).message}\n${logTail(this.logFile)}`, { cause: error });
    }
    if (outcome === 'exited') {
      const status = await child.exited;
      throw new Error(`the private Redis exited during start (${describeExit(status)})\n${logTail(this.logFile)}`);
    }
  }
}
