import 'reflect-metadata';
import { loadConfigOrExit } from '@app/config';
import { startHttpApp } from '@app/platform';
import { RedisClient } from '@app/redis';
import { Logger } from 'nestjs-pino';
import { AppModule } from './app.module.js';
import { answerFrameworkError, configureFastify } from './http/fastify.js';

const config = loadConfigOrExit();
await startHttpApp(AppModule.forRoot(config), {
  name: 'api',
  host: config.api.host,
  port: config.api.port,
  bodyLimitBytes: config.api.bodyLimitBytes,
  configure: configureFastify,
  frameworkErrors: answerFrameworkError,
  // A write taken before the Redis connection is ready misses the view (the command fails at once, no offline queue)
  // and is still acknowledged: reads would leave it out until it is applied, with Redis up all along. So the port
  // opens once the connection is ready; with Redis really down, after REDIS_CONNECT_TIMEOUT_MS, degraded as designed.
  beforeListen: async (app) => {
    await app
      .get(RedisClient)
      .whenReady(config.redis.connectTimeoutMs)
      .catch((error: unknown) =>
        app.get(Logger).warn(`listening without Redis: ${(error as Error).message}`, 'Bootstrap'),
      );
  },
});
