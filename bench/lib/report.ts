// Results of a benchmark: printed as a table, kept as JSON in bench/results/<date>-<scenario>.json (small, meant to
// be committed), and written into the scenario's section of docs/benchmarks.md with the machine, the versions, the
// command and the load average, so the document always shows the last run of each scenario.
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import * as prettier from 'prettier';
import { ROOT, shared } from './stack.ts';

export interface Row {
  /** The group of rows this one belongs to (one comparison). */
  bench: string;
  variant: string;
  /** The unit of `rate`: req/s, events/s, ops/s. */
  unit: string;
  rate: number;
  p50Ms?: number;
  p99Ms?: number;
  extra?: Record<string, number | string>;
}

export interface Ratio {
  label: string;
  value: number;
  /** The issue's target for this ratio, e.g. `>= 5`. */
  target?: { op: '>=' | '<='; threshold: number };
}

export function ratio(label: string, value: number, target?: Ratio['target']): Ratio {
  return target === undefined ? { label, value } : { label, value, target };
}

const met = (r: Ratio): boolean | undefined =>
  r.target === undefined
    ? undefined
    : r.target.op === '>='
      ? r.value >= r.target.threshold
      : r.value <= r.target.threshold;

export interface Environment {
  machine: string;
  cpus: number;
  memoryGb: number;
  kernel: string;
  node: string;
  kafka: string;
  kafkajs: string;
  postgres: string;
  redis: string;
}

/** Kafka's version as the running broker's class path names it (scripts/stack.sh runs the release jars). */
function kafkaVersion(): string {
  try {
    for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      let cmdline: string;
      try {
        cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        continue;
      }
      if (!cmdline.includes('kafka.Kafka')) continue;
      const version = /kafka[_-](?:2\.\d+-)?(\d+\.\d+\.\d+)/.exec(cmdline)?.[1];
      if (version) return version;
    }
  } catch {
    // not Linux, or /proc unreadable
  }
  return 'unknown (broker not found in /proc)';
}

export async function environment(): Promise<Environment> {
  const pool = new pg.Pool({ connectionString: shared.DATABASE_URL, max: 1 });
  const postgres = await pool
    .query<{ server_version: string }>('SHOW server_version')
    .then((r) => r.rows[0]?.server_version ?? 'unknown')
    .finally(() => pool.end());
  const redis = new Redis(shared.REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  const info = await redis.info('server').finally(() => redis.disconnect());
  const kafkajs = JSON.parse(readFileSync(join(ROOT, 'node_modules', 'kafkajs', 'package.json'), 'utf8')) as {
    version: string;
  };
  return {
    machine: cpus()[0]?.model.trim() ?? 'unknown',
    cpus: cpus().length,
    memoryGb: Math.round(totalmem() / 1024 ** 3),
    kernel: release(),
    node: process.version,
    kafka: kafkaVersion(),
    kafkajs: kafkajs.version,
    postgres,
    redis: /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown',
  };
}

const round = (n: number, digits = 2) => Number(n.toFixed(digits));

/**
 * One scenario's run. Created when the benchmark starts (it notes the time and the load average), reported when it
 * ends. `params` are the knobs it ran with; `envNames` the environment variables that set them, for the command.
 */
export class Scenario {
  readonly startedAt = new Date();
  private readonly loadAtStart = loadavg()[0] ?? NaN;
  private readonly started = performance.now();

  readonly name: string;
  readonly title: string;
  readonly params: Record<string, number | string>;
  private readonly envNames: string[];

  constructor(name: string, title: string, params: Record<string, number | string>, envNames: string[] = []) {
    this.name = name;
    this.title = title;
    this.params = params;
    this.envNames = envNames;
    process.stdout.write(`${title}: load average ${this.loadAtStart.toFixed(2)} at start\n`);
  }

  get command(): string {
    const set = this.envNames.filter((n) => process.env[n] !== undefined && process.env[n] !== '');
    return [...set.map((n) => `${n}=${process.env[n]}`), `npm run bench -- ${this.name}`].join(' ');
  }

  async report(rows: Row[], ratios: Ratio[], notes: string[] = []): Promise<void> {
    const seconds = (performance.now() - this.started) / 1000;
    const load = { start: round(this.loadAtStart), end: round(loadavg()[0] ?? NaN) };
    const env = await environment();
    printTable(this.title, rows, ratios);
    const date = this.startedAt.toISOString().slice(0, 10);
    const result = {
      scenario: this.name,
      title: this.title,
      at: this.startedAt.toISOString(),
      seconds: round(seconds, 1),
      command: this.command,
      params: this.params,
      loadAverage1m: load,
      environment: env,
      rows: rows.map((r) => ({
        ...r,
        rate: round(r.rate, 1),
        ...(r.p50Ms === undefined ? {} : { p50Ms: round(r.p50Ms) }),
        ...(r.p99Ms === undefined ? {} : { p99Ms: round(r.p99Ms) }),
      })),
      ratios: ratios.map((r) => ({ ...r, value: round(r.value, 3), met: met(r) })),
      notes,
    };
    const dir = join(ROOT, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    // A run against another build (BENCH_DIST, e.g. the code before a change) is kept beside the others under its
    // BENCH_LABEL and leaves docs/benchmarks.md alone, which shows the runs of dist/.
    const label = process.env['BENCH_DIST'] ? `-${process.env['BENCH_LABEL'] || 'other-build'}` : '';
    const file = join(dir, `${date}-${this.name}${label}.json`);
    const options = (await prettier.resolveConfig(file)) ?? {};
    const json = JSON.stringify(label ? { ...result, build: process.env['BENCH_DIST'] } : result);
    writeFileSync(file, await prettier.format(json, { ...options, parser: 'json' }));
    if (!label) updateSection(this.name, markdown(this, result.at, seconds, load, env, rows, ratios, notes));
    process.stdout.write(`  (${seconds.toFixed(0)} s; saved ${file}${label ? '' : '; docs/benchmarks.md updated'})\n`);
  }
}

function fmt(n: number | undefined): string {
  if (n === undefined) return '';
  if (!Number.isFinite(n)) return 'n/a';
  if (n >= 100 || Number.isInteger(n)) return Math.round(n).toLocaleString('en-US');
  return n.toFixed(n >= 10 ? 1 : 2);
}

function extras(extra: Row['extra']): string {
  if (!extra) return '';
  return Object.entries(extra)
    .map(([k, v]) => `${k} ${typeof v === 'number' ? fmt(v) : v}`)
    .join(', ');
}

function printTable(title: string, rows: Row[], ratios: Ratio[]): void {
  const lines = rows.map(
    (r) =>
      `  ${r.bench.padEnd(28)} ${r.variant.padEnd(34)} ${fmt(r.rate).padStart(10)} ${r.unit.padEnd(9)}` +
      `${r.p50Ms === undefined ? '' : ` p50 ${fmt(r.p50Ms)} ms`}${r.p99Ms === undefined ? '' : `  p99 ${fmt(r.p99Ms)} ms`}` +
      `  ${extras(r.extra)}`,
  );
  process.stdout.write(`\n${title}\n${lines.join('\n')}\n`);
  for (const r of ratios) {
    const verdict =
      met(r) === undefined ? '' : `  (target ${r.target?.op} ${r.target?.threshold}: ${met(r) ? 'met' : 'NOT met'})`;
    process.stdout.write(`  ratio: ${r.label} = ${r.value.toFixed(2)}${verdict}\n`);
  }
}

function markdown(
  scenario: Scenario,
  at: string,
  seconds: number,
  load: { start: number; end: number },
  env: Environment,
  rows: Row[],
  ratios: Ratio[],
  notes: string[],
): string {
  const lines = [
    `### ${scenario.title}`,
    '',
    `\`${scenario.command}\` — ${at.slice(0, 16).replace('T', ' ')} UTC, ${seconds.toFixed(0)} s; load average (1 min) ` +
      `${load.start} at start, ${load.end} at end. ${env.machine}, ${env.cpus} CPUs, ${env.memoryGb} GB, Linux ${env.kernel}; ` +
      `Node ${env.node}, Kafka ${env.kafka} (kafkajs ${env.kafkajs}), Postgres ${env.postgres}, Redis ${env.redis}. ` +
      `Parameters: ${Object.entries(scenario.params)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')}.`,
    '',
  ];
  if (ratios.length > 0) {
    lines.push('| ratio (same run) | value | target | |', '|---|---:|---|---|');
    for (const r of ratios) {
      const verdict = met(r);
      lines.push(
        `| ${r.label} | ${r.value.toFixed(2)} | ${r.target ? `${r.target.op.replace('>=', '≥').replace('<=', '≤')} ${r.target.threshold}` : ''} | ${
          verdict === undefined ? '' : verdict ? 'met' : '**not met**'
        } |`,
      );
    }
    lines.push('');
  }
  lines.push('| benchmark | variant | rate | p50 ms | p99 ms | other |', '|---|---|---:|---:|---:|---|');
  for (const r of rows) {
    lines.push(
      `| ${r.bench} | ${r.variant} | ${fmt(r.rate)} ${r.unit} | ${fmt(r.p50Ms)} | ${fmt(r.p99Ms)} | ${extras(r.extra)} |`,
    );
  }
  for (const note of notes) lines.push('', note);
  return lines.join('\n');
}

const DOC = join(ROOT, 'docs', 'benchmarks.md');
const marker = (name: string, edge: 'start' | 'end') => `<!-- bench:${name}:${edge} -->`;

/** Replaces the text between the scenario's markers in docs/benchmarks.md (appends the section when it is new). */
export function updateSection(name: string, body: string): void {
  const doc = existsSync(DOC) ? readFileSync(DOC, 'utf8') : '# Benchmarks\n';
  const start = marker(name, 'start');
  const end = marker(name, 'end');
  const block = `${start}\n${body}\n${end}`;
  const from = doc.indexOf(start);
  const to = doc.indexOf(end);
  const next =
    from >= 0 && to > from ? doc.slice(0, from) + block + doc.slice(to + end.length) : `${doc.trimEnd()}\n\n${block}\n`;
  writeFileSync(DOC, next);
}
