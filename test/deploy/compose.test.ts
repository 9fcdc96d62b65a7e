import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { loadConfig } from '@app/config';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { ROOT, appEntryPath, documentedVariables, readRepoFile, yamlDocuments } from './deploy-files.js';
import { dockerfileStages, effective, inBuildContext, stageChain } from './dockerfile.js';

/**
 * docker-compose.yml and the Dockerfile, checked without a Docker engine: the compose file against the Compose
 * Specification's JSON schema (compose-spec/compose-spec schema/compose-spec.json, as the dclint package ships
 * it), every app variable against docs/configuration.md and the config schema, ports against health checks,
 * and the Dockerfile's targets, users, health checks and build context against what compose and the apps need.
 */

interface Healthcheck {
  test?: string | string[];
}
interface Service {
  image?: string;
  build?: { context?: string; target?: string };
  environment?: Record<string, string | number | boolean | null>;
  ports?: (string | { target: number; published?: string | number })[];
  healthcheck?: Healthcheck;
  depends_on?: Record<string, { condition: string }>;
  volumes?: (string | { type: string; source?: string; target: string })[];
  stop_grace_period?: string;
  restart?: string;
  read_only?: boolean;
  entrypoint?: string[];
  command?: string[];
}
interface ComposeFile {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

const compose = yamlDocuments(readRepoFile('docker-compose.yml'))[0] as ComposeFile;
const service = (name: string): Service => {
  const found = compose.services[name];
  if (!found) throw new Error(`docker-compose.yml has no service ${name}`);
  return found;
};
const APPS = ['api', 'consumer'] as const;
const WITH_APP_ENV = ['api', 'consumer', 'init'] as const;

/** Compose's interpolation with the defaults written in the file (`${VAR:-default}`), as on a machine without them set. */
const interpolate = (value: string) =>
  value.replace(/\$\$|\$\{(\w+)(?::?-([^}]*))?\}/g, (token, _name?: string, fallback?: string) =>
    token === '$$' ? '$' : (fallback ?? ''),
  );

const envOf = (name: string): Record<string, string> =>
  Object.fromEntries(
    Object.entries(service(name).environment ?? {}).map(([key, value]) => [key, interpolate(String(value ?? ''))]),
  );

/** Seconds of a Compose duration such as `45s` or `1m30s`. */
const seconds = (duration: string) =>
  [...duration.matchAll(/(\d+(?:\.\d+)?)(h|m|s|ms)/g)].reduce(
    (total, [, n, unit]) => total + Number(n) * { h: 3600, m: 60, s: 1, ms: 0.001 }[unit as 'h' | 'm' | 's' | 'ms'],
    0,
  );

const healthcheckText = (name: string) => {
  const test = service(name).healthcheck?.test;
  return Array.isArray(test) ? test.join(' ') : (test ?? '');
};

describe('docker-compose.yml', () => {
  it('is valid against the Compose Specification JSON schema', () => {
    const require = createRequire(import.meta.url);
    const schemaFile = join(dirname(require.resolve('dclint/package.json')), 'schemas', 'compose.schema.json');
    const schema = JSON.parse(readFileSync(schemaFile, 'utf8')) as { title: string };
    expect(schema.title).toBe('Compose Specification');
    // The schema names its meta-schema by its https address; Ajv knows draft-07 by the http one.
    const draft07 = require('ajv/dist/refs/json-schema-draft-07.json') as Record<string, unknown>;
    const ajv = new Ajv({ allErrors: true, strict: false });
    ajv.addMetaSchema({ ...draft07, $id: 'https://json-schema.org/draft-07/schema' });
    const validate = ajv.compile(schema);
    const valid = validate(compose);
    expect(validate.errors ?? [], JSON.stringify(validate.errors, null, 2)).toEqual([]);
    expect(valid).toBe(true);
  });

  it('runs the full stack on official images: Kafka 4 (KRaft), Postgres 16/17, Redis 7, Prometheus, Grafana', () => {
    expect(service('kafka').image).toMatch(/^apache\/kafka:4\./);
    expect(service('kafka').environment?.['KAFKA_PROCESS_ROLES']).toBe('broker,controller');
    expect(service('postgres').image).toMatch(/^postgres:1[67]\b/);
    expect(service('redis').image).toMatch(/^redis:7\b/);
    expect(service('prometheus').image).toMatch(/^prom\/prometheus:/);
    expect(service('grafana').image).toMatch(/^grafana\/grafana:/);
    for (const name of [...APPS, 'init']) expect(service(name).build?.context).toBe('.');
  });

  it('sets only variables of docs/configuration.md on the apps, with values the config schema accepts', () => {
    const documented = documentedVariables();
    for (const name of WITH_APP_ENV) {
      const env = envOf(name);
      expect(
        Object.keys(env).filter((key) => !documented.has(key)),
        `${name}: variables not in docs/configuration.md`,
      ).toEqual([]);
      // The apps would refuse to start (exit 78) on a value the schema rejects.
      expect(() => loadConfig(env), name).not.toThrow();
    }
  });

  it('publishes API_PORT and CONSUMER_PORT and probes /health/live on them', () => {
    for (const [name, variable] of [
      ['api', 'API_PORT'],
      ['consumer', 'CONSUMER_PORT'],
    ] as const) {
      const port = envOf(name)[variable];
      expect(port, `${name} sets ${variable}`).toMatch(/^\d+$/);
      const targets = (service(name).ports ?? []).map((p) =>
        typeof p === 'string' ? (p.split(':').at(-1) ?? '').split('/')[0] : String(p.target),
      );
      expect(targets, `${name} publishes ${variable}`).toContain(port);
      expect(healthcheckText(name)).toContain(`http://127.0.0.1:${port}/health/live`);
      // The host of the app is all interfaces in a container, or the published port reaches nothing.
      expect(envOf(name)[variable.replace('PORT', 'HOST')]).toBe('0.0.0.0');
    }
  });

  it('orders start-up with health conditions: init after Kafka and Postgres, the apps after init', () => {
    for (const [name, svc] of Object.entries(compose.services)) {
      for (const [dependency, { condition }] of Object.entries(svc.depends_on ?? {})) {
        expect(Object.keys(compose.services), `${name} depends on ${dependency}`).toContain(dependency);
        if (condition === 'service_healthy') {
          expect(service(dependency).healthcheck?.test, `${dependency} needs a health check`).toBeDefined();
        }
        if (condition === 'service_completed_successfully') expect(service(dependency).restart).toBe('no');
      }
    }
    expect(service('init').depends_on).toMatchObject({
      kafka: { condition: 'service_healthy' },
      postgres: { condition: 'service_healthy' },
    });
    expect(service('init').command?.join(' ')).toMatch(/wb topics && wb migrate/);
    for (const name of APPS) {
      expect(service(name).depends_on?.['init']).toEqual({ condition: 'service_completed_successfully' });
      expect(service(name).read_only).toBe(true);
    }
  });

  it('gives the apps longer than their 25 s drain to stop', () => {
    for (const name of APPS) expect(seconds(service(name).stop_grace_period ?? '10s')).toBeGreaterThan(25);
  });

  it('mounts files that exist and declares its named volumes', () => {
    // deploy/prometheus and deploy/grafana come from the monitoring work: while a folder is not there yet, its
    // mounts must be the agreed paths; once it is, they must exist.
    const agreed = [
      'deploy/prometheus/prometheus.yml',
      'deploy/prometheus/rules',
      'deploy/grafana/provisioning',
      'deploy/grafana/dashboards',
    ];
    for (const [name, svc] of Object.entries(compose.services)) {
      for (const volume of svc.volumes ?? []) {
        const source = typeof volume === 'string' ? (volume.split(':')[0] ?? '') : (volume.source ?? '');
        if (source.startsWith('./')) {
          const path = source.slice(2);
          const owner = path.split('/').slice(0, 2).join('/');
          if (agreed.includes(path) && !existsSync(join(ROOT, owner))) continue;
          expect(existsSync(join(ROOT, path)), `${name} mounts ${source}`).toBe(true);
        } else {
          expect(Object.keys(compose.volumes ?? {}), `${name} uses volume ${source}`).toContain(source);
        }
      }
    }
    expect(
      (service('prometheus').volumes ?? []).map((v) => (typeof v === 'string' ? v.split(':')[0] : v.source)),
    ).toEqual(expect.arrayContaining(['./deploy/prometheus/prometheus.yml', './deploy/prometheus/rules']));
    expect((service('grafana').volumes ?? []).map((v) => (typeof v === 'string' ? v.split(':')[0] : v.source))).toEqual(
      expect.arrayContaining(['./deploy/grafana/provisioning', './deploy/grafana/dashboards']),
    );
  });
});

describe('Dockerfile', () => {
  const stages = dockerfileStages();

  it('has the targets compose builds, each on the official Node 24 image', () => {
    for (const name of WITH_APP_ENV) {
      const target = service(name).build?.target ?? '';
      const chain = stageChain(stages, target);
      expect(chain.length, `stage ${target}`).toBeGreaterThan(0);
      expect(chain.at(-1)?.base).toMatch(/^node:24-(bookworm-slim|alpine)/);
    }
  });

  it('builds with nest build and keeps only production dependencies in the runtime images', () => {
    const all = stages.flatMap((s) => s.instructions);
    const build = all.filter((i) => i.keyword === 'RUN' && i.args.includes('nest build'));
    expect(build.map((i) => i.args).join(' ')).toMatch(/nest build api.*nest build consumer.*nest build cli/);
    for (const target of ['api', 'consumer', 'cli']) {
      const copies = stageChain(stages, target).flatMap((s) => s.instructions.filter((i) => i.keyword === 'COPY'));
      const modules = copies.find((i) => i.args.includes('node_modules'));
      const from = /--from=(\S+)/.exec(modules?.args ?? '')?.[1] ?? '';
      const install = stageChain(stages, from)
        .flatMap((s) => s.instructions)
        .find((i) => i.args.includes('npm ci'));
      expect(install?.args, `${target}'s node_modules`).toMatch(/npm ci --omit=dev/);
      expect(copies.map((i) => i.args)).toContainEqual(expect.stringMatching(/^migrations migrations$/));
      expect(copies.map((i) => i.args)).toContainEqual(expect.stringMatching(/^package\.json \.\/$/));
    }
  });

  it('runs every app as a non-root user, with the warning flag, the built entry and a /health/live check', () => {
    for (const [target, variable] of [
      ['api', 'API_PORT'],
      ['consumer', 'CONSUMER_PORT'],
      ['cli', undefined],
    ] as const) {
      const user = effective(stages, target, 'USER')?.args;
      expect(user, `${target} user`).toBeDefined();
      expect(['root', '0']).not.toContain(user?.split(':')[0]);
      const run = [effective(stages, target, 'ENTRYPOINT'), effective(stages, target, 'CMD')]
        .map((i) => i?.args ?? '')
        .join(' ');
      const wrapper = stages.flatMap((s) => s.instructions).find((i) => i.args.includes('/usr/local/bin/wb'))?.args;
      const command = target === 'cli' ? `${run} ${wrapper ?? ''}` : run;
      expect(command).toContain('--disable-warning=TimeoutNegativeWarning');
      expect(command).toContain(appEntryPath(target));
      const healthcheck = effective(stages, target, 'HEALTHCHECK')?.args ?? '';
      if (variable === undefined) {
        expect(healthcheck).toBe('NONE');
        continue;
      }
      // With no port set the app listens on the documented default, which the check and EXPOSE must use.
      const fallback = documentedVariables().get(variable)?.replace(/`/g, '').trim();
      expect(healthcheck).toContain(`process.env.${variable}||${fallback}`);
      expect(healthcheck).toContain('/health/live');
      expect(effective(stages, target, 'EXPOSE')?.args).toBe(fallback);
    }
  });

  it('writes CMD, ENTRYPOINT and HEALTHCHECK in exec form that parses (invalid JSON silently becomes a shell form)', () => {
    const execForms = stages
      .flatMap((s) => s.instructions)
      .filter((i) => ['CMD', 'ENTRYPOINT', 'HEALTHCHECK'].includes(i.keyword) && i.args !== 'NONE')
      .map((i) => (i.keyword === 'HEALTHCHECK' ? i.args.slice(i.args.indexOf('CMD ') + 4) : i.args));
    expect(execForms.length).toBeGreaterThanOrEqual(6);
    for (const form of execForms) {
      const parsed = JSON.parse(form) as unknown;
      expect(Array.isArray(parsed) && parsed.every((part) => typeof part === 'string'), form).toBe(true);
    }
  });

  it('copies only what .dockerignore lets into the build context, and the apps need nothing it leaves out', () => {
    const sources = stages
      .flatMap((s) => s.instructions)
      .filter((i) => i.keyword === 'COPY' && !i.args.includes('--from='))
      .flatMap((i) => i.args.split(' ').slice(0, -1));
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) {
      expect(existsSync(join(ROOT, source)), `${source} exists`).toBe(true);
      expect(inBuildContext(source), `${source} is in the build context`).toBe(true);
    }
    for (const out of ['node_modules', 'dist', '.git', 'test/deploy', '.env', 'libs/testing/src/index.ts']) {
      expect(inBuildContext(out), `${out} stays out`).toBe(false);
    }
    expect(inBuildContext('apps/api/src/main.ts')).toBe(true);
    expect(inBuildContext('apps/api/src/ingest/event-publisher.spec.ts')).toBe(false);
    // libs/testing is left out of the context: no app or other lib may import it.
    const importsTesting = (dir: string): string[] =>
      readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
        .filter((file) => file.endsWith('.ts') && !file.endsWith('.spec.ts'))
        .filter((file) => readFileSync(join(ROOT, dir, file), 'utf8').includes('@app/testing'))
        .map((file) => `${dir}/${file}`);
    expect([
      ...importsTesting('apps'),
      ...importsTesting('libs').filter((f) => !f.startsWith('libs/testing/')),
    ]).toEqual([]);
  });
});
