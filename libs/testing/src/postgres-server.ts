import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { appendFile, chmod, chown, copyFile, mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './env.js';
import { portAnswers, portFree } from './ports.js';
import { logTail, onProcessExit, runCommand } from './service-process.js';
import { waitFor } from './wait-for.js';

const PG_ROOT = '/usr/lib/postgresql';

export type PostgresStopMode = 'fast' | 'immediate';

export interface PostgresServerOptions {
  /**
   * Serve TLS with this certificate and key (PEM, e.g. from TestCertificates.server()), and accept TCP connections
   * over TLS only (`hostssl` lines in pg_hba.conf, no `host` line): a plaintext connection is refused.
   */
  tls?: { cert: string; key: string };
  /** The `postgres` user's password, required (SCRAM) on TCP connections. Default: none (trust). */
  password?: string;
}

/** The newest server binaries: Debian keeps them out of PATH (its /usr/bin wrappers are not initdb and pg_ctl). */
function pgBin(): string {
  const versions = existsSync(PG_ROOT)
    ? readdirSync(PG_ROOT).filter((version) => existsSync(join(PG_ROOT, version, 'bin', 'initdb')))
    : [];
  const newest = versions.sort((a, b) => b.localeCompare(a, 'en', { numeric: true }))[0];
  if (newest === undefined) {
    throw new Error(`no Postgres server binaries (initdb, pg_ctl) in ${PG_ROOT}/*/bin: install PostgreSQL 14+`);
  }
  return join(PG_ROOT, newest, 'bin');
}

async function postgresUser(): Promise<[uid: number, gid: number]> {
  try {
    const [uid, gid] = await Promise.all([runCommand('id', ['-u', 'postgres']), runCommand('id', ['-g', 'postgres'])]);
    return [Number(uid.trim()), Number(gid.trim())];
  } catch {
    throw new Error("running as root and there is no 'postgres' user to run a private Postgres as");
  }
}

/**
 * The live processes whose working directory is `dir`. The postmaster and every child it forks work in the data
 * dir, so this finds the whole server, children orphaned by a killed postmaster included, and nothing of any other
 * cluster. A zombie has no working directory, so it does not count.
 */
function processesIn(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/cwd`) === dir) pids.push(Number(entry));
    } catch {
      // Exited meanwhile, or another user's process.
    }
  }
  return pids;
}

function sigkill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/**
 * A private Postgres cluster owned by one test, on its own port and data dir, so that the test can stop or kill a
 * real server without disturbing the shared one. restart() keeps the port and the data. As root, the cluster
 * belongs to and runs as the `postgres` user (Postgres refuses to run as root), so it lives under /var/tmp, which
 * that user can reach, unlike root's home.
 */
export class PostgresServer {
  readonly url: string;
  /** The SysV segment a killed postmaster leaves behind; a restart reclaims it, dispose() otherwise. */
  private staleShmId: string | undefined;
  private readonly forgetDir: () => void;

  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly bin: string,
    private readonly asPostgresUser: boolean,
    private readonly options: PostgresServerOptions,
  ) {
    const credentials = options.password === undefined ? '' : `:${encodeURIComponent(options.password)}`;
    // Without TLS parameters: a test adds sslmode/sslrootcert as the case needs.
    this.url = `postgres://postgres${credentials}@127.0.0.1:${port}/test`;
    this.forgetDir = onProcessExit(() => {
      const shmId = this.shmId();
      processesIn(this.dataDir).forEach(sigkill);
      // Marked for removal, the segment goes when the killed processes have detached from it.
      if (shmId !== undefined) spawnSync('ipcrm', ['-m', shmId]);
      rmSync(dir, { recursive: true, force: true });
    });
  }

  static async start(options: PostgresServerOptions = {}): Promise<PostgresServer> {
    const bin = pgBin();
    const asPostgresUser = process.getuid?.() === 0;
    // realpath: the data dir is compared with the servers' working directories, which are resolved paths.
    const dir = await realpath(await mkdtemp('/var/tmp/wb-postgres-'));
    if (asPostgresUser) await chown(dir, ...(await postgresUser()));
    const server = new PostgresServer(dir, await freePort(), bin, asPostgresUser, options);
    try {
      // --no-sync and fsync=off: the data must survive a killed process, not a lost machine.
      await server.run('initdb', [
        `--pgdata=${server.dataDir}`,
        '--username=postgres',
        '--auth=trust',
        '--no-sync',
        '--no-locale',
        '--encoding=UTF8',
      ]);
      await server.secure();
      await server.launch();
      // Over the Unix socket (trusted whatever TCP requires): the set-up needs neither TLS nor the password.
      const client = new pg.Client({ host: server.dir, port: server.port, user: 'postgres', database: 'postgres' });
      await client.connect();
      try {
        await client.query('CREATE DATABASE test');
        if (options.password !== undefined) {
          await client.query(`ALTER USER postgres PASSWORD ${client.escapeLiteral(options.password)}`);
        }
      } finally {
        await client.end();
      }
    } catch (error) {
      await server.dispose();
      throw error;
    }
    return server;
  }

  /**
   * TLS and authentication as the options ask, before the first start: the certificate and key copied into the
   * server's folder (owned by the server's user, the key readable by it only, as Postgres requires), `ssl = on`,
   * and pg_hba.conf rewritten: the Unix socket trusted, TCP over TLS only when TLS is on, SCRAM when a password is.
   */
  private async secure(): Promise<void> {
    const { tls, password } = this.options;
    if (!tls && password === undefined) return;
    if (tls) {
      const cert = join(this.dir, 'server.crt');
      const key = join(this.dir, 'server.key');
      await copyFile(tls.cert, cert);
      await copyFile(tls.key, key);
      await chmod(key, 0o600);
      if (this.asPostgresUser) {
        const [uid, gid] = await postgresUser();
        await chown(cert, uid, gid);
        await chown(key, uid, gid);
      }
      await appendFile(
        join(this.dataDir, 'postgresql.conf'),
        `\nssl = on\nssl_cert_file = '${cert}'\nssl_key_file = '${key}'\n`,
      );
    }
    const method = password === undefined ? 'trust' : 'scram-sha-256';
    const tcp = tls ? 'hostssl' : 'host';
    await writeFile(
      join(this.dataDir, 'pg_hba.conf'),
      [
        'local all all trust',
        `${tcp} all all 127.0.0.1/32 ${method}`,
        `${tcp} all all ::1/128 ${method}`,
        // No other line: a plaintext TCP connection to a TLS server matches nothing and is refused.
        '',
      ].join('\n'),
    );
  }

  get dataDir(): string {
    return join(this.dir, 'data');
  }

  get logFile(): string {
    return join(this.dir, 'postgres.log');
  }

  /** The postmaster's pid while it runs. */
  get pid(): number | undefined {
    const pid = Number(this.postmasterPidFile()[0]);
    return Number.isInteger(pid) && processesIn(this.dataDir).includes(pid) ? pid : undefined;
  }

  get running(): boolean {
    return this.pid !== undefined;
  }

  /** `pg_ctl stop`: 'fast' disconnects clients and checkpoints; 'immediate' exits at once and recovers on start. */
  async stop(mode: PostgresStopMode = 'fast'): Promise<void> {
    if (!this.running) return;
    await this.run('pg_ctl', ['stop', `--pgdata=${this.dataDir}`, `--mode=${mode}`, '--wait', '--timeout=60']);
    await this.waitGone(false);
  }

  /**
   * A crash: SIGKILL the postmaster, then its children. Children outlive a killed postmaster for a while and
   * keep its shared memory attached, and a new postmaster refuses to start while they do, so they are killed too,
   * as when the whole server is killed. Resolves once no process of this cluster is left and the port is closed.
   */
  async kill(): Promise<void> {
    const pid = this.pid;
    if (pid !== undefined) sigkill(pid);
    await this.waitGone(true);
    this.staleShmId = this.shmId();
    // The dead postmaster can linger as a zombie when nothing reaps orphans (as in some containers), and Postgres
    // takes a lock file whose pid still answers kill(pid, 0) as held by a live server: remove the stale ones.
    for (const file of [
      join(this.dataDir, 'postmaster.pid'),
      join(this.dir, `.s.PGSQL.${this.port}.lock`),
      join(this.dir, `.s.PGSQL.${this.port}`),
    ]) {
      await rm(file, { force: true });
    }
  }

  /** Starts the server again on the same port and data dir (after a kill, with crash recovery). */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  async dispose(): Promise<void> {
    try {
      await this.stop('immediate').catch(() => this.kill());
      if (this.staleShmId !== undefined) await runCommand('ipcrm', ['-m', this.staleShmId]).catch(() => undefined);
    } finally {
      this.forgetDir();
      await rm(this.dir, { recursive: true, force: true });
    }
  }

  private async launch(): Promise<void> {
    await waitFor(() => portFree(this.port), {
      description: `port ${this.port} free for the private Postgres`,
    });
    const options = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
    try {
      await this.run('pg_ctl', [
        'start',
        `--pgdata=${this.dataDir}`,
        `--log=${this.logFile}`,
        `--options=${options}`,
        '--wait',
        '--timeout=60',
      ]);
    } catch (error) {
      await this.kill();
      throw new Error(
        `the private Postgres on port ${this.port} did not start: ${(error as Error).message}\n${logTail(this.logFile)}`,
        { cause: error },
      );
    }
    // A started postmaster reclaims the segment its killed predecessor left.
    this.staleShmId = undefined;
  }

  /** Waits until no process of this cluster is left and the port is closed; SIGKILLs the leftovers if `force`. */
  private async waitGone(force: boolean): Promise<void> {
    await waitFor(
      async () => {
        const left = processesIn(this.dataDir);
        if (force) left.forEach(sigkill);
        return left.length === 0 && !(await portAnswers(this.port));
      },
      { description: `the private Postgres on port ${this.port} gone` },
    );
  }

  /** The id of the server's SysV shared memory segment: the running or killed postmaster's. */
  private shmId(): string | undefined {
    return this.postmasterPidFile()[6]?.trim().split(/\s+/)[1] ?? this.staleShmId;
  }

  /** postmaster.pid, line by line: pid, data dir, start time, port, socket dir, address, shared memory key and id. */
  private postmasterPidFile(): (string | undefined)[] {
    try {
      return readFileSync(join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n');
    } catch {
      return [];
    }
  }

  private run(tool: string, args: string[]): Promise<string> {
    const command = join(this.bin, tool);
    return this.asPostgresUser
      ? runCommand('runuser', ['-u', 'postgres', '--', command, ...args], { cwd: this.dir })
      : runCommand(command, args, { cwd: this.dir });
  }
}
