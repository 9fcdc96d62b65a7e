import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';

/** The connection settings the stack was brought up with (scripts/test.sh exports them), with the defaults. */
export function baseEnv() {
  return {
    KAFKA_BROKERS: process.env['KAFKA_BROKERS'] || '127.0.0.1:9092',
    DATABASE_URL: process.env['DATABASE_URL'] || 'postgres://postgres@127.0.0.1:5432/test',
    REDIS_URL: process.env['REDIS_URL'] || 'redis://127.0.0.1:6379',
  };
}

/** A name no other test run uses: lower case, digits and underscores, so it is valid as schema, topic or key. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}

/** A TCP port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}
