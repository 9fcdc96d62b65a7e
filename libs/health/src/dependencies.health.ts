import { Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { Database } from '@app/db';
import { KafkaAdmin } from '@app/kafka';
import { RedisClient } from '@app/redis';

/** How long readiness waits for one dependency before calling it down. */
const CHECK_TIMEOUT_MS = 2000;
/** Results are shared for a moment so that frequent probes do not become load on the dependencies. */
const CACHE_MS = 500;

@Injectable()
export class DependenciesHealth {
  constructor(
    private readonly indicators: HealthIndicatorService,
    private readonly database: Database,
    private readonly redisClient: RedisClient,
    private readonly kafkaAdmin: KafkaAdmin,
  ) {}

  postgres() {
    return this.indicators
      .check('postgres')
      .attempt(() => this.database.ping())
      .withTimeout(CHECK_TIMEOUT_MS)
      .cacheFor(CACHE_MS);
  }

  redis() {
    return this.indicators
      .check('redis')
      .attempt(() => this.redisClient.ping())
      .withTimeout(CHECK_TIMEOUT_MS)
      .cacheFor(CACHE_MS);
  }

  kafka() {
    return this.indicators
      .check('kafka')
      .attempt(() => this.kafkaAdmin.ping())
      .withTimeout(CHECK_TIMEOUT_MS)
      .cacheFor(CACHE_MS);
  }
}
