import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { runner } from 'node-pg-migrate';
import { postgresConnection } from './postgres-connection.js';

export interface MigrateOptions {
  databaseUrl: string;
  /** DATABASE_SSL_CA_FILE: the CA of the server's certificate (DATABASE_URL's sslmode/sslrootcert also apply). */
  sslCaFile?: string | undefined;
  schema: string;
  /** Defaults to the repository's (or image's) `migrations/` folder. */
  dir?: string;
  log?: (message: string) => void;
}

/**
 * Applies the versioned SQL files in `migrations/` with node-pg-migrate. Safe to run from several processes
 * at once: they queue on node-pg-migrate's advisory lock. Returns the names of the migrations applied.
 */
export async function migrate(options: MigrateOptions): Promise<string[]> {
  const applied = await runner({
    // The same TLS settings as the apps' pool: node-pg-migrate hands this object to pg.Client.
    databaseUrl: postgresConnection(options.databaseUrl, options.sslCaFile),
    dir: options.dir ?? migrationsDir(),
    direction: 'up',
    migrationsTable: 'pgmigrations',
    schema: options.schema,
    createSchema: true,
    checkOrder: true,
    singleTransaction: true,
    advisoryLockMode: 'wait',
    log: options.log ?? (() => undefined),
  });
  return applied.map((m) => m.name);
}

/** The nearest `migrations/` folder above this file: the same answer from source, from dist and in an image. */
export function migrationsDir(from: string = import.meta.dirname): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'migrations')) && existsSync(join(dir, 'package.json'))) return join(dir, 'migrations');
    if (dirname(dir) === dir) throw new Error(`no migrations/ folder above ${from}`);
  }
}
