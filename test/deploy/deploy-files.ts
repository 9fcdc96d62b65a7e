import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

/** The repository root. */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export const readRepoFile = (path: string) => readFileSync(join(ROOT, path), 'utf8');

/** Every variable of docs/configuration.md's tables, with its documented default (as config-docs.spec.ts reads them). */
export function documentedVariables(): Map<string, string> {
  const doc = readRepoFile('docs/configuration.md');
  return new Map([...doc.matchAll(/^\| `([A-Z][A-Z0-9_]+)` \| ([^|]*) \|/gm)].map((m) => [m[1] ?? '', m[2] ?? '']));
}

/**
 * The YAML documents of a file or of a string, as plain data. Merge keys (`<<: *anchor`) are resolved, as
 * Compose and Kubernetes tooling do; a syntax error fails the test with the parser's message.
 */
export function yamlDocuments(text: string): unknown[] {
  return parseAllDocuments(text, { merge: true })
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(doc.errors.map((e) => e.message).join('\n'));
      return doc.toJS({ maxAliasCount: 100 }) as unknown;
    })
    .filter((doc) => doc !== null && doc !== undefined);
}

/** Where `nest build` writes an app's entry file (nest-cli.json `entryFile` under the app's outDir). */
export const appEntryPath = (app: 'api' | 'consumer' | 'cli') => `dist/apps/${app}/apps/${app}/src/main.js`;
