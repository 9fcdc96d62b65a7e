import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './env.js';
import { portFree } from './ports.js';
import { describeExit, logTail, onProcessExit, ServiceProcess } from './service-process.js';
import { waitFor } from './wait-for.js';

export interface RedisServerOptions {
  /**
   * Serve TLS only (`--tls-port`, no plaintext port) with this certificate and key (PEM, e.g. from
   * TestCertificates.server()); clients are not asked for a certificate.
   */
  tls?: { cert: string; key: string; ca: string };
  /** Require this password (`--requirepass`). */
  password?: string;
}

/**
 * One PING over a raw connection (after AUTH when a password is set): a client library would reconnect and queue
 * instead of answering no.
 */
function ping(port: number, options: RedisServerOptions): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = options.tls
      ? connectTls({ host: '127.0.0.1', port, timeout: 2000, ca: readFileSync(options.tls.ca, 'utf8') })
      : connect({ host: '127.0.0.1', port, timeout: 2000 });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    const auth = options.password === undefined ? '' : `AUTH ${JSON.stringify(options.password)}\r\n`;
    socket.once(options.tls ? 'secureConnect' : 'connect', () => socket.write(`${auth}PING\r\n`));
    const lines = options.password === undefined ? 1 : 2;
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('utf8');
      if (reply.split('\r\n').length > lines) done(reply.split('\r\n')[lines - 1] === '+PONG');
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
    private readonly options: RedisServerOptions,
  ) {
    const credentials = options.password === undefined ? '' : `:${encodeURIComponent(options.password)}@`;
    this.url = `${options.tls ? 'rediss' : 'redis'}://${credentials}127.0.0.1:${port}`;
    this.forgetDir = onProcessExit(() => {
      this.redis?.signal('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });
  }

  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const server = new RedisServer(await mkdtemp(join(tmpdir(), 'wb-redis-')), await freePort(), options);
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
    const { tls, password } = this.options;
    const listen = tls
      ? [
          ...['--port', '0', '--tls-port', String(this.port)],
          ...['--tls-cert-file', tls.cert, '--tls-key-file', tls.key, '--tls-ca-cert-file', tls.ca],
          ...['--tls-auth-clients', 'no'],
        ]
      : ['--port', String(this.port)];
    const auth = password === undefined ? [] : ['--requirepass', password];
    const child = new ServiceProcess(
      'redis-server',
      [...listen, ...auth, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir],
      this.logFile,
      { cwd: this.dir },
    );
    this.redis = child;
    let outcome: 'ready' | 'exited';
    try {
      outcome = await waitFor(
        async () => (child.running ? (await ping(this.port, this.options)) && 'ready' : 'exited'),
        {
          description: `the private Redis on port ${this.port}`,
        },
      );
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
