import { rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './env.js';
import { describeExit, logTail, onProcessExit, runCommand, ServiceProcess } from './service-process.js';
import { waitFor } from './wait-for.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/**
 * Installs Prometheus and promtool from Debian's `prometheus` package when they are missing
 * (scripts/ensure-prometheus.sh; quick once installed) and returns their paths.
 */
export async function ensurePrometheus(): Promise<{ prometheus: string; promtool: string }> {
  const out = await runCommand('bash', [join(ROOT, 'scripts', 'ensure-prometheus.sh')], { timeoutMs: 600_000 });
  const [prometheus = '', promtool = ''] = out.trim().split('\n').slice(-2);
  return { prometheus, promtool };
}

/** One series of an instant query: its labels and value (`NaN` stays NaN). */
export interface PromSeries {
  metric: Record<string, string>;
  value: number;
}

interface QueryResponse {
  status: string;
  error?: string;
  data?: { resultType: string; result: unknown };
}

/**
 * A private Prometheus (the Debian binary) owned by one test, on a free port, with its own data dir, scraping what
 * the test's config says. For asserting that dashboards and alert rules work against the real apps.
 */
export class PrometheusServer {
  readonly url: string;
  private process: ServiceProcess | undefined;
  private readonly forgetDir: () => void;

  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {
    this.url = `http://127.0.0.1:${port}`;
    this.forgetDir = onProcessExit(() => {
      this.process?.signal('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });
  }

  /** `config`: the prometheus.yml text (rule_files must be absolute paths). */
  static async start(config: string, timeoutMs = 60_000): Promise<PrometheusServer> {
    const { prometheus } = await ensurePrometheus();
    const server = new PrometheusServer(await mkdtemp(join(tmpdir(), 'wb-prometheus-')), await freePort());
    try {
      const configFile = join(server.dir, 'prometheus.yml');
      await writeFile(configFile, config);
      server.process = new ServiceProcess(
        prometheus,
        [
          `--config.file=${configFile}`,
          `--storage.tsdb.path=${join(server.dir, 'data')}`,
          `--web.listen-address=127.0.0.1:${server.port}`,
          '--log.level=warn',
        ],
        server.logFile,
      );
      const exited = server.process.exited.then((status) => {
        throw new Error(`prometheus exited while starting (${describeExit(status)})\n${logTail(server.logFile)}`);
      });
      await Promise.race([
        waitFor(async () => (await fetch(`${server.url}/-/ready`)).ok, {
          timeoutMs,
          description: 'prometheus ready',
        }),
        exited,
      ]);
      exited.catch(() => undefined);
    } catch (error) {
      await server.dispose();
      throw error;
    }
    return server;
  }

  get logFile(): string {
    return join(this.dir, 'prometheus.log');
  }

  /** An instant query; throws with Prometheus' message when the expression is invalid. */
  async query(expr: string): Promise<PromSeries[]> {
    const response = await fetch(`${this.url}/api/v1/query?${new URLSearchParams({ query: expr }).toString()}`);
    const body = (await response.json()) as QueryResponse;
    if (body.status !== 'success' || !body.data) throw new Error(`query failed: ${body.error ?? response.status}`);
    const { resultType, result } = body.data;
    if (resultType === 'scalar') {
      const [, value] = result as [number, string];
      return [{ metric: {}, value: Number(value) }];
    }
    if (resultType !== 'vector') throw new Error(`expected an instant vector or scalar, got ${resultType}`);
    return (result as { metric: Record<string, string>; value: [number, string] }[]).map((s) => ({
      metric: s.metric,
      value: Number(s.value[1]),
    }));
  }

  /** GET an API path (e.g. `/api/v1/rules`) and return its `data`. */
  async api<T>(path: string): Promise<T> {
    const body = (await (await fetch(`${this.url}${path}`)).json()) as QueryResponse;
    if (body.status !== 'success') throw new Error(`${path} failed: ${body.error ?? 'unknown error'}`);
    return body.data as T;
  }

  async dispose(): Promise<void> {
    try {
      await this.process?.stop(10_000);
    } finally {
      this.forgetDir();
      await rm(this.dir, { recursive: true, force: true });
    }
  }
}
