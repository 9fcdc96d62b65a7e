// `npm run bench [-- name...]`: runs the benchmarks (all, or those named) one after the other.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = dirname(fileURLToPath(import.meta.url));
const all = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .sort();
const wanted = process.argv.slice(2);
const chosen = wanted.length === 0 ? all : all.filter((f) => wanted.some((w) => f.startsWith(w)));
if (chosen.length === 0) {
  process.stderr.write(`no benchmark matches ${wanted.join(' ')}; there are: ${all.join(', ')}\n`);
  process.exit(64);
}
for (const file of chosen) {
  process.stdout.write(`\n=== ${file}\n`);
  await import(join(dir, file));
}
