import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AppProcess,
  PrometheusServer,
  type PromSeries,
  TestStack,
  WriteLoad,
  parsePrometheus,
  readEvents,
  uniqueName,
  waitFor,
} from '@app/testing';
import autocannon from 'autocannon';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import {
  ROOT,
  alertRules,
  allPanels,
  dashboard,
  grafanaToPromQL,
  topLevelOperands,
  withBoolComparisons,
} from './promql.js';

/** Grafana's $__rate_interval with a 1 s scrape interval is at least 4 s; a minute smooths the test's bursts. */
const RATE_INTERVAL = '1m';
const API_ROUTES = new Set([
  '/v1/counters/:name/increment',
  '/v1/counters/batch',
  '/v1/counters/:name',
  '/v1/activities',
  '/v1/activities/batch',
  '/v1/actors/:actor/activities',
  '/health/live',
  '/health/ready',
  '/metrics',
  'unmatched',
]);

/** The deploy config (deploy/prometheus/prometheus.yml) aimed at this test's processes, scraping every second. */
function prometheusConfig(targets: Record<string, string>): string {
  const config = parse(readFileSync(join(ROOT, 'deploy', 'prometheus', 'prometheus.yml'), 'utf8')) as {
    global: Record<string, string>;
    scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
  };
  for (const job of config.scrape_configs) {
    const target = targets[job.job_name];
    if (!target) throw new Error(`no target for job ${job.job_name}`);
    job.static_configs = [{ targets: [target] }];
  }
  return stringify({
    ...config,
    global: { ...config.global, scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
    rule_files: [join(ROOT, 'deploy', 'prometheus', 'rules', '*.yml')],
  });
}

const hex = (bytes: number) => randomBytes(bytes).toString('hex');
const asStrings = (value: unknown): string[] => (Array.isArray(value) ? value.map(String) : []);

/** The JSON log lines an app wrote so far (a line still being written is skipped). */
function logLines(app: AppProcess): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  for (const text of app.text.split('\n')) {
    if (!text.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(text) as Record<string, unknown>);
    } catch {
      // the last line, not complete yet
    }
  }
  return lines;
}

/** Traffic on every route besides single increments (WriteLoad): batches, reads, activities, feeds, key repeats. */
class RouteTraffic {
  private running = true;
  private readonly done: Promise<void>;
  requests = 0;

  constructor(private readonly baseUrl: string) {
    this.done = this.loop(uniqueName('routes'));
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }

  private async send(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
    const response = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    await response.arrayBuffer();
    this.requests++;
    return response.status;
  }

  private async loop(run: string): Promise<void> {
    for (let i = 0; this.running; i++) {
      const actor = `${run}-actor-${i % 5}`;
      const counter = `${run}-c${i % 10}`;
      await this.send('POST', '/v1/counters/batch', {
        increments: [
          { name: counter, by: 1, id: `${run}-b-${i}` },
          { name: `${run}-c${(i + 1) % 10}`, by: 2 },
        ],
      });
      await this.send('GET', `/v1/counters/${counter}`);
      await this.send('GET', `/v1/counters/${counter}`);
      const activity = { actor, verb: 'liked', object: `post:${i}` };
      await this.send('POST', '/v1/activities', activity, { 'idempotency-key': `${run}-a-${i}` });
      if (i % 4 === 0) {
        // The same key again: replayed; with another body: conflict (422).
        await this.send('POST', '/v1/activities', activity, { 'idempotency-key': `${run}-a-${i}` });
        await this.send(
          'POST',
          '/v1/activities',
          { ...activity, verb: 'shared' },
          { 'idempotency-key': `${run}-a-${i}` },
        );
      }
      await this.send('POST', '/v1/activities/batch', { activities: [{ actor, verb: 'viewed', object: `post:${i}` }] });
      await this.send('GET', `/v1/actors/${actor}/activities?limit=10`);
      await this.send('GET', `/v1/actors/${actor}/activities?limit=10`);
      await sleep(20);
    }
  }
}

describe('Prometheus scraping the running apps: dashboard panels, alert expressions, traces', () => {
  let stack: TestStack;
  let api: AppProcess;
  let consumer: AppProcess;
  let prometheus: PrometheusServer;
  let load: WriteLoad;
  let traffic: RouteTraffic;
  let baseUrl = '';
  const apiPort = () => Number(stack.env['API_PORT']);
  const consumerPort = () => Number(stack.env['CONSUMER_PORT']);

  beforeAll(async () => {
    stack = await TestStack.create({ partitions: 3 });
    const env = { ...stack.env, API_LAG_EXPORT_INTERVAL_MS: '1000' };
    api = new AppProcess('api', env);
    consumer = new AppProcess('consumer', env);
    await Promise.all([api.ready(apiPort()), consumer.ready(consumerPort())]);
    baseUrl = `http://127.0.0.1:${apiPort()}`;
    prometheus = await PrometheusServer.start(
      prometheusConfig({
        'writebehind-api': `127.0.0.1:${apiPort()}`,
        'writebehind-consumer': `127.0.0.1:${consumerPort()}`,
      }),
    );
    load = new WriteLoad({ baseUrl, clients: 4, counters: 50, prefix: uniqueName('obs') });
    traffic = new RouteTraffic(baseUrl);
    // Enough samples for every rate() and a few lag refreshes: both targets up, events applied, lag exported.
    await waitFor(
      async () => {
        const up = await prometheus.query('up');
        const applied = await prometheus.query('sum(writebehind_consumer_events_applied_total)');
        const lag = await prometheus.query('writebehind_consumer_lag_seconds');
        return up.length === 2 && up.every((s) => s.value === 1) && (applied[0]?.value ?? 0) > 500 && lag.length === 6;
      },
      { timeoutMs: 90_000, intervalMs: 1000, description: 'prometheus has scraped traffic from both apps' },
    );
    await sleep(15_000);
  }, 240_000);

  afterAll(async () => {
    await Promise.all([load?.stop(), traffic?.stop()]);
    await prometheus?.dispose();
    await Promise.all([api?.stop(), consumer?.stop()]);
    await stack?.dispose();
  }, 120_000);

  const problems = (series: PromSeries[]) =>
    series.length === 0
      ? 'no series'
      : series.some((s) => Number.isNaN(s.value))
        ? `NaN in ${JSON.stringify(series.filter((s) => Number.isNaN(s.value)).map((s) => s.metric))}`
        : undefined;

  it('answers every panel query of the dashboard with series, none NaN', async () => {
    const failures: string[] = [];
    let queries = 0;
    for (const panel of allPanels(dashboard())) {
      for (const target of panel.targets ?? []) {
        const expr = grafanaToPromQL(target.expr, RATE_INTERVAL);
        queries++;
        const problem = problems(await prometheus.query(expr));
        if (problem) failures.push(`${panel.title} [${target.refId}] ${expr}: ${problem}`);
      }
    }
    expect(queries).toBeGreaterThan(40);
    expect(failures).toEqual([]);
  });

  it('has values for the dashboard variables (group, topic, instance)', async () => {
    const values = async (label: string, match: string) =>
      prometheus.api<string[]>(`/api/v1/label/${label}/values?${new URLSearchParams({ 'match[]': match }).toString()}`);
    expect(await values('group', 'writebehind_consumer_lag_messages')).toContain(stack.groupId);
    expect(await values('topic', `writebehind_consumer_lag_messages{group="${stack.groupId}"}`)).toEqual(
      [stack.topics.activities, stack.topics.counters].sort(),
    );
    expect(await values('instance', 'writebehind_ready')).toEqual(
      [`127.0.0.1:${apiPort()}`, `127.0.0.1:${consumerPort()}`].sort(),
    );
  });

  it('evaluates every alert rule without error; each expression and operand returns series, none NaN', async () => {
    const rules = await prometheus.api<{ groups: { rules: { name: string; health: string; lastError?: string }[] }[] }>(
      '/api/v1/rules',
    );
    const loaded = rules.groups.flatMap((g) => g.rules);
    expect(loaded.map((r) => r.name).sort()).toEqual(
      alertRules()
        .map((r) => r.alert)
        .sort(),
    );
    expect(loaded.filter((r) => r.health !== 'ok')).toEqual([]);

    const failures: string[] = [];
    for (const rule of alertRules()) {
      // With `bool` comparisons the expression keeps its series whether it fires or not.
      for (const expr of [withBoolComparisons(rule.expr), ...topLevelOperands(rule.expr)]) {
        if (/^[\d.]+$/.test(expr)) continue;
        const problem = problems(await prometheus.query(expr));
        if (problem) failures.push(`${rule.alert}: ${expr}: ${problem}`);
      }
    }
    expect(failures).toEqual([]);
    // Healthy system: nothing fires.
    expect(await prometheus.query('ALERTS{alertstate="firing"}')).toEqual([]);
  });

  it('carries the W3C trace context from the HTTP request through Kafka into the consumer batch log', async () => {
    const traceId = hex(16);
    const callerSpan = hex(8);
    const name = uniqueName('traced');
    const response = await fetch(`${baseUrl}/v1/counters/${name}/increment`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-${callerSpan}-01` },
      body: JSON.stringify({ by: 3 }),
    });
    expect(response.status).toBe(202);
    const answered = response.headers.get('traceresponse') ?? '';
    const [, apiSpan] = new RegExp(`^00-${traceId}-([0-9a-f]{16})-01$`).exec(answered) ?? [];
    expect(apiSpan, answered).toBeDefined();
    expect(apiSpan).not.toBe(callerSpan);
    const traceparent = `00-${traceId}-${apiSpan}-01`;

    // Without a traceparent (or with an invalid one) the API starts a new, unsampled trace.
    const untraced = await fetch(`${baseUrl}/v1/counters/${name}/increment`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: 'not-a-traceparent' },
      body: JSON.stringify({ by: 4 }),
    });
    expect(untraced.status).toBe(202);
    const started = untraced.headers.get('traceresponse') ?? '';
    expect(started).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    expect(started).not.toContain(traceId);

    // The events carry the request's span in their traceparent header.
    const events = (await readEvents(stack.kafka, stack.topics.counters)).filter((e) => e.event.key === name);
    expect(events.map((e) => e.traceparent).sort()).toEqual([traceparent, started].sort());

    // The consumer's batch line names the trace: the write is followed from the request to the Postgres commit.
    const line = await waitFor(
      () =>
        logLines(consumer).find(
          (l) => String(l['msg']).startsWith('batch applied') && asStrings(l['traceparents']).includes(traceparent),
        ),
      { timeoutMs: 30_000, description: 'a consumer batch line naming the trace' },
    );
    expect(line).toMatchObject({ topic: stack.topics.counters, level: 30 });
    expect(line['traces']).toBeGreaterThanOrEqual(1);
    await waitFor(
      async () => {
        const [row] = await stack.query<{ value: string }>('SELECT value FROM counters WHERE name = $1', [name]);
        return Number(row?.value) === 7;
      },
      { description: 'both increments applied' },
    );
  });

  it('labels HTTP metrics by route template and status, never by raw path', async () => {
    expect((await fetch(`${baseUrl}/no/such/path`)).status).toBe(404);
    const samples = parsePrometheus(await (await fetch(`${baseUrl}/metrics`)).text()).filter(
      (s) => s.name === 'writebehind_http_requests_total',
    );
    const routes = new Set(samples.map((s) => s.labels['route'] ?? ''));
    expect([...routes].filter((r) => !API_ROUTES.has(r))).toEqual([]);
    const has = (labels: Record<string, string>) =>
      samples.some((sample) => Object.entries(labels).every(([k, v]) => sample.labels[k] === v) && sample.value > 0);
    expect(has({ route: '/v1/counters/:name/increment', method: 'POST', status: '202' })).toBe(true);
    expect(has({ route: '/v1/counters/:name', method: 'GET', status: '200' })).toBe(true);
    expect(has({ route: 'unmatched', method: 'GET', status: '404' })).toBe(true);
  });

  it('keeps /metrics cheap under load', async () => {
    // A burst of single increments on top of the background traffic, while /metrics is fetched over and over.
    const run = uniqueName('burst');
    const burst = autocannon({
      url: baseUrl,
      connections: 32,
      duration: 8,
      requests: [
        {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          setupRequest: (request) => ({
            ...request,
            path: `/v1/counters/${run}-${Math.floor(Math.random() * 1000)}/increment`,
            body: '{"by":1}',
          }),
        },
      ],
    });
    await sleep(2000);
    const measure = async (port: number) => {
      const times: number[] = [];
      let bytes = 0;
      let series = 0;
      for (let i = 0; i < 30; i++) {
        const started = performance.now();
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        times.push(performance.now() - started);
        bytes = Buffer.byteLength(text);
        series = text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
        await sleep(50);
      }
      times.sort((a, b) => a - b);
      const round = (ms: number) => Math.round(ms * 10) / 10;
      return {
        bytes,
        series,
        p50ms: round(times[15] ?? 0),
        p90ms: round(times[27] ?? 0),
        maxMs: round(times.at(-1) ?? 0),
      };
    };
    const [apiScrape, consumerScrape] = await Promise.all([measure(apiPort()), measure(consumerPort())]);
    const scrapes = await prometheus.query('max_over_time(scrape_duration_seconds[10s])');
    const samples = await prometheus.query('scrape_samples_scraped');
    const result = await burst;
    console.log(
      JSON.stringify({
        burst: { requestsPerSecond: Math.round(result.requests.average), non2xx: result.non2xx, errors: result.errors },
        api: apiScrape,
        consumer: consumerScrape,
        prometheus: scrapes.map((s) => ({
          job: s.metric['job'],
          maxScrapeMsLast10s: Math.round(s.value * 10_000) / 10,
          samples: samples.find((x) => x.metric['job'] === s.metric['job'])?.value,
        })),
      }),
    );
    expect(result.requests.average).toBeGreaterThan(0);
    for (const scrape of [apiScrape, consumerScrape]) {
      expect(scrape.bytes).toBeLessThan(256 * 1024);
      expect(scrape.p50ms).toBeLessThan(100);
    }
  });
});
