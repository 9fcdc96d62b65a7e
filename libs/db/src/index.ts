export { Database, type Db } from './database.js';
export { DbModule } from './db.module.js';
export { migrate, migrationsDir, type MigrateOptions } from './migrations.js';
export { postgresConnection, type PostgresConnection, type PostgresTlsOptions } from './postgres-connection.js';
export { NETWORK_ERROR_CODES, isPostgresUnavailable } from './postgres-errors.js';
