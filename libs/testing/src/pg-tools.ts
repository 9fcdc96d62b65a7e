import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';

/** pg_dump/pg_restore of the newest installed major version (Debian keeps them in /usr/lib/postgresql/<v>/bin). */
function pgTool(name: 'pg_dump' | 'pg_restore'): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  const found = versions.map((v) => `${root}/${v}/bin/${name}`).find((p) => existsSync(p));
  if (!found) throw new Error(`${name} not found under ${root}`);
  return found;
}

/** Dumps one schema (custom format) to `file`. */
export function dumpSchema(databaseUrl: string, schema: string, file: string): void {
  execFileSync(pgTool('pg_dump'), ['-d', databaseUrl, '-n', schema, '-Fc', '-f', file]);
}

/** Restores a dump made by dumpSchema (the schema must not exist). */
export function restoreDump(databaseUrl: string, file: string): void {
  execFileSync(pgTool('pg_restore'), ['-d', databaseUrl, file]);
}
