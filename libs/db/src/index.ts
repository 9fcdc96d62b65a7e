export { Database, type Db } from './database.js';
export { DbModule } from './db.module.js';
export { migrate, migrationsDir, type MigrateOptions } from './migrations.js';
