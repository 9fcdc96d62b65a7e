import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './stack.ts';

export interface Row {
  bench: string;
  variant: string;
  /** The unit of `rate`: requests/s, events/s. */
  unit: string;
  rate: number;
  p50Ms?: number;
  p99Ms?: number;
  extra?: Record<string, number | string>;
}

/** Prints a table and keeps the rows as JSON under .bench/ (ignored by git). */
export function report(title: string, rows: Row[], ratios: { label: string; value: number }[]): void {
  const lines = rows.map(
    (r) =>
      `  ${r.bench.padEnd(22)} ${r.variant.padEnd(26)} ${fmt(r.rate).padStart(10)} ${r.unit.padEnd(10)}` +
      `${r.p50Ms === undefined ? '' : ` p50 ${r.p50Ms.toFixed(1)} ms`}${r.p99Ms === undefined ? '' : `  p99 ${r.p99Ms.toFixed(1)} ms`}` +
      `${
        r.extra
          ? `  ${Object.entries(r.extra)
              .map(([k, v]) => `${k}=${v}`)
              .join(' ')}`
          : ''
      }`,
  );
  process.stdout.write(`\n${title}\n${lines.join('\n')}\n`);
  for (const ratio of ratios) process.stdout.write(`  ratio: ${ratio.label} = ${ratio.value.toFixed(2)}x\n`);
  const dir = join(ROOT, '.bench');
  mkdirSync(dir, { recursive: true });
  const file = join(
    dir,
    `${title.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`,
  );
  writeFileSync(
    file,
    JSON.stringify(
      { title, at: new Date().toISOString(), cpus: cpus().length, node: process.version, rows, ratios },
      null,
      2,
    ),
  );
  process.stdout.write(`  (saved ${file})\n`);
}

function fmt(n: number): string {
  return n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1);
}
