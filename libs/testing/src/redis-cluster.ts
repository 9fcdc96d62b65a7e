import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePorts, portAnswers } from './ports.js';
import { describeExit, logTail, onProcessExit, runCommand, ServiceProcess } from './service-process.js';
import { waitFor } from './wait-for.js';

interface ClusterNode {
  port: number;
  /** The cluster bus port, set explicitly: the default (port + 10000) overflows for ephemeral ports. */
  busPort: number;
  dir: string;
  process: ServiceProcess;
}

/**
 * A private Redis Cluster owned by one test: three masters, no replicas, on free ports, created with
 * `redis-cli --cluster create` (16384 slots split in three). Like the other private servers it keeps nothing
 * on disk beyond its temporary folder, and it is killed if the test process exits without `dispose()`.
 */
export class RedisCluster {
  /** `host:port` of every master, comma-separated: the value of REDIS_CLUSTER_NODES. */
  readonly nodesEnv: string;
  /** A `redis://` URL of the first master (REDIS_URL in cluster mode only carries credentials and TLS). */
  readonly url: string;
  private readonly nodes: ClusterNode[] = [];
  private readonly clients = new Map<number, Redis>();
  private readonly forgetDir: () => void;

  private constructor(
    readonly dir: string,
    readonly ports: readonly number[],
    private readonly busPorts: readonly number[],
  ) {
    this.nodesEnv = ports.map((port) => `127.0.0.1:${port}`).join(',');
    this.url = `redis://127.0.0.1:${ports[0] ?? 0}`;
    this.forgetDir = onProcessExit(() => {
      for (const node of this.nodes) node.process.signal('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });
  }

  static async start(masters = 3): Promise<RedisCluster> {
    const ports = await freePorts(masters * 2);
    const cluster = new RedisCluster(
      await mkdtemp(join(tmpdir(), 'wb-redis-cluster-')),
      ports.slice(0, masters),
      ports.slice(masters),
    );
    try {
      await cluster.launch();
    } catch (error) {
      await cluster.dispose();
      throw error;
    }
    return cluster;
  }

  /** A plain connection to one master (no key prefix), e.g. to see which keys it holds. */
  client(port: number): Redis {
    const client = this.clients.get(port);
    if (!client) throw new Error(`no master of this cluster listens on ${port}`);
    return client;
  }

  /** How many keys matching `pattern` each master holds, by port. */
  async keysPerMaster(pattern: string): Promise<Map<number, number>> {
    const counts = new Map<number, number>();
    for (const port of this.ports) {
      let cursor = '0';
      let count = 0;
      do {
        const [next, keys] = await this.client(port).scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        count += keys.length;
      } while (cursor !== '0');
      counts.set(port, count);
    }
    return counts;
  }

  async dispose(): Promise<void> {
    for (const client of this.clients.values()) client.disconnect();
    this.clients.clear();
    try {
      await Promise.all(this.nodes.map((node) => node.process.stop(10_000)));
    } finally {
      this.forgetDir();
      await rm(this.dir, { recursive: true, force: true });
    }
  }

  private async launch(): Promise<void> {
    for (const [i, port] of this.ports.entries()) {
      const dir = join(this.dir, String(port));
      await mkdir(dir);
      const busPort = this.busPorts[i] ?? 0;
      // Not daemonized, so that the test process owns them; each node keeps its nodes.conf in its own folder.
      const process = new ServiceProcess(
        'redis-server',
        [
          ...['--port', String(port), '--bind', '127.0.0.1', '--dir', dir],
          ...['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-port', String(busPort)],
          ...['--cluster-node-timeout', '5000', '--save', '', '--appendonly', 'no'],
        ],
        join(dir, 'redis.log'),
        { cwd: dir },
      );
      this.nodes.push({ port, busPort, dir, process });
    }
    for (const node of this.nodes) {
      const log = join(node.dir, 'redis.log');
      const up = await waitFor(async () => (node.process.running ? (await portAnswers(node.port)) && 'up' : 'exited'), {
        description: `the Redis Cluster node on port ${node.port}`,
      }).catch((error: unknown) => {
        throw new Error(`${(error as Error).message}\n${logTail(log)}`, { cause: error });
      });
      if (up === 'exited') {
        const status = await node.process.exited;
        throw new Error(`a Redis Cluster node exited during start (${describeExit(status)})\n${logTail(log)}`);
      }
      this.clients.set(node.port, new Redis(node.port, '127.0.0.1', { maxRetriesPerRequest: 1 }));
    }
    await runCommand(
      'redis-cli',
      ['--cluster', 'create', ...this.ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'],
      { timeoutMs: 60_000 },
    );
    // `--cluster create` returns once the nodes have met; each node reports `ok` once it has the whole slot map.
    await waitFor(
      async () => {
        for (const port of this.ports) {
          const info = String(await this.client(port).call('CLUSTER', 'INFO'));
          const known = /cluster_known_nodes:(\d+)/.exec(info)?.[1];
          if (!info.includes('cluster_state:ok') || Number(known) !== this.ports.length) return false;
        }
        return true;
      },
      { description: 'the Redis Cluster to report cluster_state:ok on every node', timeoutMs: 60_000 },
    );
  }
}
