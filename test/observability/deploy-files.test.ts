import { execFile } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ensurePrometheus } from '@app/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { ROOT, RULES_FILE, alertRules, allPanels, dashboard, headingAnchor, withBoolComparisons } from './promql.js';

const run = promisify(execFile);
const PROMETHEUS_DIR = join(ROOT, 'deploy', 'prometheus');
const TESTS_DIR = join(PROMETHEUS_DIR, 'tests');
const RUNBOOK = readFileSync(join(ROOT, 'docs', 'runbook.md'), 'utf8');

interface RuleTestFile {
  rule_files: string[];
  tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[];
}

describe('Prometheus alert rules (deploy/prometheus)', () => {
  let promtool = '';
  let scratch = '';

  beforeAll(async () => {
    ({ promtool } = await ensurePrometheus());
    scratch = await mkdtemp(join(tmpdir(), 'wb-promtool-'));
  }, 600_000);
  afterAll(async () => {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('pass `promtool check rules`', async () => {
    const { stdout } = await run(promtool, ['check', 'rules', RULES_FILE]);
    expect(stdout).toContain(`SUCCESS: ${alertRules().length} rules found`);
  });

  it('pass `promtool test rules`: per alert, a case where it fires and one where it does not', async () => {
    const files = readdirSync(TESTS_DIR).filter((f) => f.endsWith('.yml'));
    const { stdout } = await run(promtool, ['test', 'rules', ...files], { cwd: TESTS_DIR });
    expect(stdout).toContain('SUCCESS');

    const cases = files.flatMap((f) =>
      (parse(readFileSync(join(TESTS_DIR, f), 'utf8')) as RuleTestFile).tests.flatMap((t) => t.alert_rule_test ?? []),
    );
    for (const rule of alertRules()) {
      const own = cases.filter((c) => c.alertname === rule.alert);
      expect(
        own.some((c) => (c.exp_alerts ?? []).length > 0),
        `${rule.alert} has a case where it fires`,
      ).toBe(true);
      expect(
        own.some((c) => (c.exp_alerts ?? []).length === 0),
        `${rule.alert} has a case where it does not fire`,
      ).toBe(true);
    }
  });

  it('is a valid config for Prometheus, with the scrape jobs the rules and compose expect', async () => {
    // The deploy config loads /etc/prometheus/rules/*.yml (the compose mount): point it at the repo's rules.
    const config = parse(readFileSync(join(PROMETHEUS_DIR, 'prometheus.yml'), 'utf8')) as {
      rule_files: string[];
      scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
    };
    expect(config.rule_files).toEqual(['/etc/prometheus/rules/*.yml']);
    expect(config.scrape_configs.map((s) => [s.job_name, s.static_configs.flatMap((c) => c.targets)])).toEqual([
      ['writebehind-api', ['api:3000']],
      ['writebehind-consumer', ['consumer:3001']],
    ]);
    const file = join(scratch, 'prometheus.yml');
    await writeFile(file, stringify({ ...config, rule_files: [join(PROMETHEUS_DIR, 'rules', '*.yml')] }));
    const { stdout } = await run(promtool, ['check', 'config', file]);
    expect(stdout).toContain('SUCCESS');
  });

  it('link every alert to its docs/runbook.md section', () => {
    const anchors = new Set([...RUNBOOK.matchAll(/^#{2,3} (.+)$/gm)].map((m) => headingAnchor(m[1] ?? '')));
    for (const rule of alertRules()) {
      expect(rule.annotations?.['runbook_url'], rule.alert).toBe(`docs/runbook.md#${rule.alert.toLowerCase()}`);
      expect(anchors.has(rule.alert.toLowerCase()), `docs/runbook.md has a section ${rule.alert}`).toBe(true);
      expect(rule.annotations?.['summary'], rule.alert).toBeTruthy();
      expect(rule.annotations?.['description'], rule.alert).toBeTruthy();
      expect(['warning', 'critical']).toContain(rule.labels?.['severity']);
    }
  });

  it('turn every comparison into its bool form for the end-to-end test', () => {
    expect(withBoolComparisons('max by (a) (x{b!="c"}) > 0 and on (a) max by (a) (changes(y[5m])) == 0')).toBe(
      'max by (a) (x{b!="c"}) > bool 0 and on (a) max by (a) (changes(y[5m])) == bool 0',
    );
    for (const rule of alertRules()) expect(withBoolComparisons(rule.expr)).toMatch(/ bool /);
  });
});

describe('Grafana dashboard and provisioning (deploy/grafana)', () => {
  const d = dashboard();
  const provisioning = join(ROOT, 'deploy', 'grafana', 'provisioning');
  const datasources = parse(readFileSync(join(provisioning, 'datasources', 'prometheus.yml'), 'utf8')) as {
    datasources: { uid: string; type: string; url: string }[];
  };
  const providers = parse(readFileSync(join(provisioning, 'dashboards', 'writebehind.yml'), 'utf8')) as {
    providers: { type: string; options: { path: string } }[];
  };

  it('provisions the Prometheus datasource the panels use, and the dashboards folder compose mounts', () => {
    expect(datasources.datasources).toEqual([
      expect.objectContaining({ uid: 'prometheus', type: 'prometheus', url: 'http://prometheus:9090' }),
    ]);
    expect(providers.providers.map((p) => [p.type, p.options.path])).toEqual([['file', '/etc/grafana/dashboards']]);
    for (const panel of allPanels(d).filter((p) => p.type !== 'row')) {
      expect(panel.datasource?.uid, panel.title).toBe('prometheus');
      for (const target of panel.targets ?? []) expect(target.datasource?.uid, panel.title).toBe('prometheus');
    }
  });

  it('has a stable uid, unique panel ids, and "are we keeping up?" first: lag, ingest vs apply, latency', () => {
    expect(d.uid).toBe('writebehind-overview');
    const panels = allPanels(d);
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    const rows = panels.filter((p) => p.type === 'row');
    expect(rows.map((r) => r.title)).toEqual([
      'Are we keeping up?',
      'Write path (API)',
      'Consumer',
      'Postgres retries and dead letters',
      'Cache',
      'Processes',
    ]);
    const firstRow = panels.slice(
      1,
      panels.findIndex((p, i) => i > 0 && p.type === 'row'),
    );
    const exprs = firstRow.flatMap((p) => (p.targets ?? []).map((t) => t.expr)).join('\n');
    for (const metric of [
      'writebehind_consumer_lag_seconds',
      'writebehind_consumer_lag_messages',
      'writebehind_events_accepted_total',
      'writebehind_consumer_events_applied_total',
      'writebehind_consumer_end_to_end_latency_seconds_bucket',
    ]) {
      expect(exprs).toContain(metric);
    }
    expect(exprs).toMatch(/histogram_quantile\(0\.5,/);
    expect(exprs).toMatch(/histogram_quantile\(0\.99,/);
  });

  it('has group, topic and instance variables', () => {
    expect(d.templating.list.map((v) => v.name)).toEqual(['group', 'topic', 'instance']);
  });
});
