// `npm run bench [-- name...]`: runs the benchmarks (all, or those whose file name starts with a given name) one
// after the other, and prints the total time.
import { readdirSync } from 'node:fs';
import { loadavg } from 'node:os';
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
const started = performance.now();
for (const file of chosen) {
  process.stdout.write(`\n=== ${file}\n`);
  await import(join(dir, file));
}
const minutes = (performance.now() - started) / 60_000;
process.stdout.write(
  `\n${chosen.length} benchmark${chosen.length === 1 ? '' : 's'} in ${minutes.toFixed(1)} min` +
    ` (load average now ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')})\n`,
);
