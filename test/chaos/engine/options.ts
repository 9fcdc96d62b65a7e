import { parseArgs } from 'node:util';
import { FAULT_KINDS, type FaultKind } from './faults.js';

export interface ChaosOptions {
  seed: number;
  /** How long faults are injected (the drain and the checks come after). */
  durationMs: number;
  /** Stop after this many rounds (each round injects every enabled fault kind once, in a seeded order). */
  rounds: number | undefined;
  /** Concurrent load clients, each with one request at a time. */
  clients: number;
  /** Pause of each client between two writes (ms): the load's pace. */
  pauseMs: number;
  /** Counters each written by one more client that reads it back after every acknowledged write. */
  probes: number;
  counters: number;
  actors: number;
  apis: number;
  /** Consumer processes between scale-ups (a scale-up goes to `scaleTo`). */
  consumers: number;
  scaleTo: number;
  partitions: number;
  faults: FaultKind[];
  /** Base downtime of an outage (Kafka, Postgres, Redis); each outage draws 0.5x to 1.5x of it. */
  downtimeMs: number;
  /** Base pause after a fault has healed and every service is ready again; each draws 1x to 2x of it. */
  recoveryMs: number;
  /** Chance that an episode injects two faults at once (Kafka and Postgres down together, say). */
  overlap: number;
  /** API rate limit per client per API process per second (429 past it); undefined: the default (20,000). */
  rateLimit: number | undefined;
  /** How long unacknowledged writes are retried at the end, with every service up, before the run fails. */
  drainTimeoutMs: number;
  /** Where the apps' and servers' logs and the JSON report go. */
  logDir: string | undefined;
  /** Keep that directory always, or only when the run fails (then it is deleted after a pass). */
  logs: 'keep' | 'on-failure';
  /** Print each fault as it is injected. */
  verbose: boolean;
}

export const DEFAULTS: Omit<ChaosOptions, 'seed'> = {
  durationMs: 5 * 60_000,
  rounds: undefined,
  clients: 6,
  pauseMs: 15,
  probes: 2,
  counters: 40,
  actors: 12,
  apis: 2,
  consumers: 1,
  scaleTo: 3,
  partitions: 6,
  faults: [...FAULT_KINDS],
  downtimeMs: 8000,
  recoveryMs: 4000,
  overlap: 0.2,
  rateLimit: undefined,
  drainTimeoutMs: 180_000,
  logDir: undefined,
  logs: 'keep',
  verbose: true,
};

export const USAGE = `usage: npm run chaos -- [--duration 30m] [--seed N] [options]

Starts a private Kafka broker, Postgres and Redis, the API and consumer processes (built dist/), drives a mixed
write load and injects seeded faults; then drains, waits for lag zero and checks the oracle. Exit 0: no violation.

  --duration <d>       how long faults are injected (90s, 10m, 1h; default 5m)
  --seed <n>           seed of the fault schedule and the load (default: random, printed)
  --rounds <n>         instead of --duration: inject every fault kind exactly n times (n rounds)
  --clients <n>        concurrent load clients (default ${DEFAULTS.clients})
  --pause <d>          pause of each client between writes (default ${DEFAULTS.pauseMs}ms)
  --probes <n>         counters written by one client each and read back after every write (default ${DEFAULTS.probes})
  --counters <n>       counters written (default ${DEFAULTS.counters})
  --actors <n>         actors of the activities (default ${DEFAULTS.actors})
  --apis <n>           API processes (default ${DEFAULTS.apis})
  --consumers <n>      consumer processes (default ${DEFAULTS.consumers}); a scale fault goes to --scale-to
  --scale-to <n>       consumer processes during a scale fault (default ${DEFAULTS.scaleTo})
  --partitions <n>     partitions per topic (default ${DEFAULTS.partitions})
  --faults <list>      fault kinds, comma-separated (default: all of
                       ${FAULT_KINDS.join(', ')})
  --downtime <d>       base downtime of an outage (default ${DEFAULTS.downtimeMs / 1000}s; each draws 0.5x-1.5x)
  --recovery <d>       base pause after each fault once all is ready (default ${DEFAULTS.recoveryMs / 1000}s; 1x-2x)
  --overlap <p>        chance that two faults are injected at once (default ${DEFAULTS.overlap})
  --rate-limit <n>     API requests per client per process per second (default: the API's default)
  --drain-timeout <d>  how long unacknowledged writes are retried at the end (default ${DEFAULTS.drainTimeoutMs / 1000}s)
  --log-dir <dir>      where logs and report.json go (default: a new directory under the OS temp dir)
  --logs <when>        keep (default) or on-failure: delete the log directory after a pass
  --quiet              do not print faults as they happen
  --help`;

/** "90s", "10m", "1h", "1500ms" or a number of seconds, in ms. */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!match) throw new Error(`not a duration: "${text}" (e.g. 90s, 10m, 1h)`);
  const value = Number(match[1]);
  const unit = match[2] ?? 's';
  const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit] ?? 1000;
  return Math.round(value * factor);
}

function positiveInt(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name}: a positive integer, not "${text}"`);
  return n;
}

/** Parses `npm run chaos` arguments; undefined for --help. Throws with a message on bad usage. */
export function parseChaosArgs(argv: string[]): ChaosOptions | undefined {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      duration: { type: 'string' },
      seed: { type: 'string' },
      rounds: { type: 'string' },
      clients: { type: 'string' },
      pause: { type: 'string' },
      probes: { type: 'string' },
      counters: { type: 'string' },
      actors: { type: 'string' },
      apis: { type: 'string' },
      consumers: { type: 'string' },
      'scale-to': { type: 'string' },
      partitions: { type: 'string' },
      faults: { type: 'string' },
      downtime: { type: 'string' },
      recovery: { type: 'string' },
      overlap: { type: 'string' },
      'rate-limit': { type: 'string' },
      'drain-timeout': { type: 'string' },
      'log-dir': { type: 'string' },
      logs: { type: 'string' },
      quiet: { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) return undefined;
  const options: ChaosOptions = { ...DEFAULTS, seed: Math.floor(Math.random() * 2 ** 31) };
  if (values.seed !== undefined) {
    const seed = Number(values.seed);
    if (!Number.isSafeInteger(seed) || seed < 0)
      throw new Error(`--seed: a non-negative integer, not "${values.seed}"`);
    options.seed = seed;
  }
  if (values.duration !== undefined) options.durationMs = parseDuration(values.duration);
  if (values.rounds !== undefined) options.rounds = positiveInt('rounds', values.rounds);
  if (values.clients !== undefined) options.clients = positiveInt('clients', values.clients);
  if (values.pause !== undefined) options.pauseMs = parseDuration(values.pause.replace(/^(\d+)$/, '$1ms'));
  if (values.probes !== undefined) {
    const n = Number(values.probes);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--probes: a non-negative integer, not "${values.probes}"`);
    options.probes = n;
  }
  if (values.counters !== undefined) options.counters = positiveInt('counters', values.counters);
  if (values.actors !== undefined) options.actors = positiveInt('actors', values.actors);
  if (values.apis !== undefined) options.apis = positiveInt('apis', values.apis);
  if (values.consumers !== undefined) options.consumers = positiveInt('consumers', values.consumers);
  if (values['scale-to'] !== undefined) options.scaleTo = positiveInt('scale-to', values['scale-to']);
  if (values.partitions !== undefined) options.partitions = positiveInt('partitions', values.partitions);
  if (values.faults !== undefined) {
    const kinds = values.faults.split(',').map((k) => k.trim());
    const known: readonly string[] = FAULT_KINDS;
    const unknown = kinds.filter((k) => !known.includes(k));
    if (unknown.length > 0) throw new Error(`--faults: unknown ${unknown.join(', ')}; known: ${known.join(', ')}`);
    options.faults = kinds as FaultKind[];
  }
  if (values.downtime !== undefined) options.downtimeMs = parseDuration(values.downtime);
  if (values.recovery !== undefined) options.recoveryMs = parseDuration(values.recovery);
  if (values.overlap !== undefined) {
    const p = Number(values.overlap);
    if (!(p >= 0 && p <= 1)) throw new Error(`--overlap: a probability from 0 to 1, not "${values.overlap}"`);
    options.overlap = p;
  }
  if (values['rate-limit'] !== undefined) options.rateLimit = positiveInt('rate-limit', values['rate-limit']);
  if (values['drain-timeout'] !== undefined) options.drainTimeoutMs = parseDuration(values['drain-timeout']);
  if (values['log-dir'] !== undefined) options.logDir = values['log-dir'];
  if (values.logs !== undefined) {
    if (values.logs !== 'keep' && values.logs !== 'on-failure') {
      throw new Error(`--logs: keep or on-failure, not "${values.logs}"`);
    }
    options.logs = values.logs;
  }
  if (values.quiet) options.verbose = false;
  if (options.scaleTo <= options.consumers) {
    throw new Error(`--scale-to (${options.scaleTo}) must be above --consumers (${options.consumers})`);
  }
  if (options.scaleTo > options.partitions * 2) {
    throw new Error(`--scale-to (${options.scaleTo}) is more than the partitions of both topics can feed`);
  }
  return options;
}
