import { Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { LogThrottle } from '@app/platform';
import { Redis } from 'ioredis';
import { PinoLogger } from 'nestjs-pino';

/**
 * The shared ioredis connection, set to fail fast: with Redis down a command rejects at once instead of
 * waiting in ioredis' unbounded offline queue (enableOfflineQueue: false), and a command sent on a
 * connection that drops is retried at most once. Callers decide what a Redis failure means for them.
 * Reconnection goes on in the background, with capped backoff, for as long as the process lives.
 */
@Injectable()
export class RedisClient implements OnModuleInit, OnApplicationShutdown {
  readonly redis: Redis;
  private readonly errorLog = new LogThrottle();

  constructor(
    config: AppConfig,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext('Redis');
    this.redis = new Redis(config.redis.url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: config.redis.connectTimeoutMs,
      commandTimeout: config.redis.connectTimeoutMs,
      keyPrefix: config.redis.keyPrefix,
      retryStrategy: (attempt) => Math.min(100 * 2 ** Math.min(attempt, 5), 3000),
    });
    // Without a listener ioredis prints every connection error; log at most one line per 10 s instead.
    this.redis.on('error', (error: Error) => {
      this.errorLog.run((suppressed) => this.logger.warn({ err: error, suppressed }, 'redis connection error'));
    });
    this.redis.on('ready', () => this.logger.info('redis ready'));
  }

  onModuleInit(): void {
    // Do not block boot on Redis: readiness reports it, and the client keeps reconnecting.
    this.redis.connect().catch(() => undefined);
  }

  async ping(): Promise<void> {
    const reply = await this.redis.ping();
    if (reply !== 'PONG') throw new Error(`unexpected PING reply: ${String(reply)}`);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
