import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { LogThrottle, ServiceInfo } from '@app/platform';
import { PinoLogger } from 'nestjs-pino';
import pgPromise, { type IDatabase, type IMain } from 'pg-promise';
import { postgresConnection } from './postgres-connection.js';

export type Db = IDatabase<object>;

/**
 * The Postgres pool (pg-promise over pg). One per process.
 *
 * pg-promise listens for `error` on the pool and on every client it hands out, and reports it through the
 * `error` init option: a connection dropped while idle (server restart, pg_terminate_backend, a proxy
 * timeout) is logged and discarded instead of killing the process (brianc/node-postgres#2386, #3202).
 */
@Injectable()
export class Database implements OnApplicationShutdown {
  readonly pgp: IMain;
  readonly db: Db;

  constructor(config: AppConfig, service: ServiceInfo, logger: PinoLogger) {
    logger.setContext('Database');
    const throttle = new LogThrottle();
    this.pgp = pgPromise({
      schema: config.database.schema,
      noWarnings: true,
      error: (error: unknown, context) => {
        // Query errors reach the caller as rejections; only connection-level errors need a log line here.
        if (context.cn === undefined) return;
        throttle.run((suppressed) => logger.warn({ err: error, suppressed }, 'postgres connection error'));
      },
    });
    this.db = this.pgp({
      // DATABASE_URL, with its sslmode/sslrootcert (and DATABASE_SSL_CA_FILE) turned into explicit TLS settings.
      ...postgresConnection(config.database.url, config.database.sslCaFile),
      max: config.database.poolMax,
      application_name: config.database.applicationName ?? `writebehind-${service.name}`,
      statement_timeout: config.database.statementTimeoutMs,
      connectionTimeoutMillis: 5000,
      idleTimeoutMillis: 30_000,
      keepAlive: true,
    });
  }

  async ping(): Promise<void> {
    await this.db.one('SELECT 1 AS ok');
  }

  async onApplicationShutdown(): Promise<void> {
    await this.db.$pool.end();
  }
}
