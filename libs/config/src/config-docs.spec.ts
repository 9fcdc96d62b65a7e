import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { envSchema } from './config.schema.js';

const doc = readFileSync(join(import.meta.dirname, '..', '..', '..', 'docs', 'configuration.md'), 'utf8');
const documented = new Map(
  [...doc.matchAll(/^\| `([A-Z][A-Z0-9_]+)` \| ([^|]*) \|/gm)].map((m) => [m[1] ?? '', (m[2] ?? '').trim()]),
);

describe('docs/configuration.md', () => {
  it('lists every variable of the schema', () => {
    const missing = Object.keys(envSchema.shape).filter((name) => !documented.has(name));
    expect(missing).toEqual([]);
  });

  it('gives the schema default of each', () => {
    const defaults = envSchema.parse({});
    for (const [name, value] of Object.entries(defaults)) {
      const shown = Array.isArray(value) ? value.join(',') : String(value);
      expect(documented.get(name), name).toBe(`\`${shown}\``);
    }
  });
});
