import { migrate } from '@app/db';
import type { Command } from './command.js';

export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'apply the pending database migrations (migrations/*.sql) to DATABASE_URL, schema DATABASE_SCHEMA',
  run: async ({ config, print }) => {
    const applied = await migrate({
      databaseUrl: config.database.url,
      sslCaFile: config.database.sslCaFile,
      schema: config.database.schema,
    });
    print(
      applied.length === 0
        ? `migrations: schema "${config.database.schema}" is up to date`
        : `migrations: applied ${applied.join(', ')} to schema "${config.database.schema}"`,
    );
  },
};
