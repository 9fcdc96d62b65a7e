import { readFileSync } from 'node:fs';
import { Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { LogThrottle, ServiceInfo } from '@app/platform';
import { type ChainableCommander, Cluster, Redis } from 'ioredis';
import { PinoLogger } from 'nestjs-pino';

/** A single server or a Redis Cluster (REDIS_CLUSTER_NODES): both take the same commands and scripts. */
export type RedisConnection = Redis | Cluster;

/** One command's outcome in a pipeline, as ioredis reports it. */
export type PipelineReply = [error: Error | null, reply: unknown];

/** Adds commands on the keys of ONE hash slot to a pipeline (e.g. SET NX then GET of one key). */
export type SlotCommands = (pipeline: ChainableCommander) => void;

/** Reconnection backoff: 200 ms doubling to 3 s, for as long as the process lives. */
const backoff = (attempt: number) => Math.min(100 * 2 ** Math.min(attempt, 5), 3000);

/**
 * The shared ioredis connection, set to fail fast: with Redis down a command rejects at once instead of
 * waiting in ioredis' unbounded offline queue (enableOfflineQueue: false), and a command sent on a
 * connection that drops is retried at most once. Callers decide what a Redis failure means for them.
 * Reconnection goes on in the background, with capped backoff, for as long as the process lives.
 *
 * With REDIS_CLUSTER_NODES set it is an ioredis `Cluster` with the same options. Every command and script
 * still works as long as all the keys of one command share a slot (the counter view's `{c:<name>}` hash tag);
 * what does not carry over is a pipeline over many keys, which ioredis refuses on a cluster when the keys
 * live on different nodes: send those through `pipelineGroups`.
 */
@Injectable()
export class RedisClient implements OnModuleInit, OnApplicationShutdown {
  readonly redis: RedisConnection;
  private readonly errorLog = new LogThrottle();

  constructor(
    config: AppConfig,
    service: ServiceInfo,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext('Redis');
    const { url, keyPrefix, connectTimeoutMs, clusterNodes, tlsCaFile } = config.redis;
    // rediss://: TLS, verifying the server's certificate and name against REDIS_TLS_CA_FILE (else Node's CAs).
    const tls = url.startsWith('rediss://')
      ? tlsCaFile === undefined
        ? {}
        : { ca: [readFileSync(tlsCaFile, 'utf8')] }
      : undefined;
    const perConnection = {
      maxRetriesPerRequest: 1,
      connectTimeout: connectTimeoutMs,
      commandTimeout: connectTimeoutMs,
      tls,
      // CLIENT SETNAME: `CLIENT LIST` on the server shows which app holds each connection.
      connectionName: `writebehind-${service.name}`,
    };
    if (clusterNodes.length === 0) {
      this.redis = new Redis(url, {
        ...perConnection,
        // Commands issued in the same turn of the event loop go out in one write: each API request sends a script or
        // two, and a socket write per command was a visible part of its profile.
        enableAutoPipelining: true,
        lazyConnect: true,
        enableOfflineQueue: false,
        keyPrefix,
        retryStrategy: backoff,
      });
    } else {
      // The nodes share REDIS_URL's credentials and TLS; its host only matters to a single server.
      const credentials = new URL(url);
      this.redis = new Cluster(
        clusterNodes.map(({ host, port }) => ({ host, port })),
        {
          lazyConnect: true,
          // No auto-pipelining on a cluster: ioredis routes an auto-pipelined script by its first argument, which for
          // a script with a variable key count is the count, not a key (wrong node). Plain commands route right.
          enableAutoPipelining: false,
          // Fail fast here too: without a slot map (cluster down or not yet discovered) a command rejects.
          enableOfflineQueue: false,
          keyPrefix,
          clusterRetryStrategy: backoff,
          slotsRefreshTimeout: connectTimeoutMs,
          redisOptions: {
            ...perConnection,
            username: decodeURIComponent(credentials.username) || undefined,
            password: decodeURIComponent(credentials.password) || undefined,
          },
        },
      );
    }
    // Without a listener ioredis prints every connection error; log at most one line per 10 s instead.
    this.redis.on('error', (error: Error) => {
      this.errorLog.run((suppressed) => this.logger.warn({ err: error, suppressed }, 'redis connection error'));
    });
    this.redis.on('ready', () => this.logger.info(this.isCluster ? 'redis cluster ready' : 'redis ready'));
  }

  /** Whether this is a Redis Cluster (REDIS_CLUSTER_NODES set). */
  get isCluster(): boolean {
    return this.redis instanceof Cluster;
  }

  onModuleInit(): void {
    // Do not block boot on Redis: readiness reports it, and the client keeps reconnecting.
    this.redis.connect().catch(() => undefined);
  }

  /**
   * Resolves once the connection is ready, or rejects after `timeoutMs`. With no offline queue, a command sent before
   * the connection is up fails at once ("Stream isn't writeable"): the API waits before it opens its port (a write
   * would miss the view), and so does a one-shot command such as the CLI's `verify`. The consumer does not (its
   * readiness reports Redis, and a failed reconcile is tried again).
   */
  async whenReady(timeoutMs: number): Promise<void> {
    if (this.redis.status === 'ready') return;
    const redis = this.redis;
    await new Promise<void>((resolve, reject) => {
      const done = (error?: Error) => {
        clearTimeout(timer);
        redis.off('ready', onReady);
        if (error) reject(error);
        else resolve();
      };
      const onReady = () => done();
      const timer = setTimeout(
        () => done(new Error(`Redis not ready within ${timeoutMs} ms (${redis.status})`)),
        timeoutMs,
      );
      redis.on('ready', onReady);
      if (redis.status === 'ready') done();
    });
  }

  async ping(): Promise<void> {
    const reply = await this.redis.ping();
    if (reply !== 'PONG') throw new Error(`unexpected PING reply: ${String(reply)}`);
  }

  /**
   * Runs independent groups of commands in as few round trips as the deployment allows and returns each
   * group's replies in order. On a single server: one pipeline for all of them. On a cluster ioredis refuses
   * a pipeline whose keys live on different nodes, so each group gets its own pipeline (its keys share a
   * slot, so one node serves it, and ioredis follows MOVED/ASK for it), all sent at once: still one round
   * trip of latency, spread over the nodes.
   */
  async pipelineGroups(groups: SlotCommands[]): Promise<PipelineReply[][]> {
    if (groups.length === 0) return [];
    if (this.redis instanceof Cluster) {
      // A cluster pipeline would otherwise wait for the slot map rather than fail fast like single commands.
      if (this.redis.status !== 'ready') throw new Error(`Redis Cluster is not ready (${this.redis.status})`);
      const cluster = this.redis;
      return Promise.all(
        groups.map(async (group) => {
          const pipeline = cluster.pipeline();
          group(pipeline);
          return (await pipeline.exec()) ?? [];
        }),
      );
    }
    const pipeline = this.redis.pipeline();
    const sizes = groups.map((group) => {
      const before = pipeline.length;
      group(pipeline);
      return pipeline.length - before;
    });
    const replies = ((await pipeline.exec()) ?? []) as PipelineReply[];
    let offset = 0;
    return sizes.map((size) => replies.slice(offset, (offset += size)));
  }

  async onApplicationShutdown(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
