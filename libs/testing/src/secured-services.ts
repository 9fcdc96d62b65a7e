import { randomBytes } from 'node:crypto';
import { TestCertificates } from './certificates.js';
import { KafkaBroker, type KafkaScramMechanism } from './kafka-broker.js';
import { PostgresServer } from './postgres-server.js';
import { RedisServer } from './redis-server.js';
import type { TestStackOptions } from './test-stack.js';

export interface SecuredServicesOptions {
  /** Default SCRAM-SHA-512. */
  mechanism?: KafkaScramMechanism;
  /**
   * The names the Postgres server's certificate is issued for. Default `localhost` only, so that connecting to
   * 127.0.0.1 with sslmode=verify-full fails on the name (while verify-ca passes): the URLs use `localhost`.
   */
  postgresNames?: string[];
}

/** A password no test output would contain by chance, recognisable when it leaks. */
const secret = (what: string) => `${what}-${randomBytes(9).toString('base64url')}`;

/**
 * A private Kafka, Postgres and Redis set up as production should be, for the security tests: one test CA signs
 * the three server certificates; Kafka has a single SASL_SSL listener (SCRAM) for clients, Postgres accepts TCP over
 * TLS only with a SCRAM password, Redis serves TLS only with `requirepass`. Each password is random per run.
 */
export class SecuredServices {
  private constructor(
    readonly certificates: TestCertificates,
    readonly broker: KafkaBroker,
    readonly postgres: PostgresServer,
    readonly redis: RedisServer,
    /** The SASL user the apps connect as. */
    readonly kafkaUser: { name: string; password: string },
    readonly postgresPassword: string,
    readonly redisPassword: string,
  ) {}

  static async start(options: SecuredServicesOptions = {}): Promise<SecuredServices> {
    const certificates = await TestCertificates.create();
    const [kafkaCert, postgresCert, redisCert] = await Promise.all([
      certificates.server('kafka'),
      certificates.server('postgres', options.postgresNames ?? ['localhost']),
      certificates.server('redis'),
    ]);
    const kafkaUser = { name: 'writebehind', password: secret('sasl') };
    const postgresPassword = secret('pg');
    const redisPassword = secret('redis');
    const started = await Promise.allSettled([
      KafkaBroker.start({
        tls: { ...kafkaCert, ca: certificates.ca },
        sasl: { mechanism: options.mechanism ?? 'SCRAM-SHA-512', users: [kafkaUser] },
      }),
      PostgresServer.start({ tls: postgresCert, password: postgresPassword }),
      RedisServer.start({ tls: { ...redisCert, ca: certificates.ca }, password: redisPassword }),
    ]);
    const [broker, postgres, redis] = started;
    if (broker.status !== 'fulfilled' || postgres.status !== 'fulfilled' || redis.status !== 'fulfilled') {
      await Promise.all(started.flatMap((s) => (s.status === 'fulfilled' ? [s.value.dispose()] : [])));
      await certificates.dispose();
      const failure = started.find((s) => s.status === 'rejected');
      throw failure?.reason instanceof Error ? failure.reason : new Error('a secured service did not start');
    }
    return new SecuredServices(
      certificates,
      broker.value,
      postgres.value,
      redis.value,
      kafkaUser,
      postgresPassword,
      redisPassword,
    );
  }

  /** DATABASE_URL of the private Postgres (host `localhost`), with `sslmode` and the CA given as `sslrootcert`. */
  databaseUrl(options: { sslmode?: string; ca?: string; host?: string; password?: string } = {}): string {
    const url = new URL(this.postgres.url);
    url.hostname = options.host ?? 'localhost';
    if (options.password !== undefined) url.password = encodeURIComponent(options.password);
    url.searchParams.set('sslmode', options.sslmode ?? 'verify-full');
    url.searchParams.set('sslrootcert', options.ca ?? this.certificates.ca);
    return url.toString();
  }

  /** REDIS_URL of the private Redis (`rediss://:<password>@127.0.0.1:<port>`), or with another password. */
  redisUrl(password = this.redisPassword): string {
    return `rediss://:${encodeURIComponent(password)}@127.0.0.1:${this.redis.port}`;
  }

  /** TestStack options for this trio: the test's own clients and the apps' settings. */
  stackOptions(): TestStackOptions {
    return {
      brokers: this.broker.brokers,
      kafkaSecurity: this.broker.clientSecurity(),
      databaseUrl: this.databaseUrl(),
      redisUrl: this.redisUrl(),
      redisCaFile: this.certificates.ca,
      env: { ...this.broker.appEnv(this.kafkaUser), REDIS_TLS_CA_FILE: this.certificates.ca },
    };
  }

  /** Every password of this trio: none may ever appear in the apps' output. */
  get secrets(): string[] {
    return [this.kafkaUser.password, this.postgresPassword, this.redisPassword];
  }

  async dispose(): Promise<void> {
    await Promise.allSettled([this.broker.dispose(), this.postgres.dispose(), this.redis.dispose()]);
    await this.certificates.dispose();
  }
}
