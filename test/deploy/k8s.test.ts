import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { loadConfig } from '@app/config';
import { Deployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { Job } from 'kubernetes-models/batch/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Namespace, Secret, Service } from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import { ROOT, documentedVariables, readRepoFile, yamlDocuments } from './deploy-files.js';

/**
 * deploy/k8s: every manifest validated against the Kubernetes API schemas (kubernetes-models, generated from the
 * Kubernetes OpenAPI spec) and the KEDA and prometheus-operator CRD schemas (@kubernetes-models/keda,
 * @kubernetes-models/prometheus-operator, generated from their CRDs), as written in the base and as the overlay
 * renders them through kustomize (`kubectl kustomize` or `kustomize build`, whichever is installed); then what
 * the schemas cannot know: variable names against docs/configuration.md, probes on the configured ports,
 * termination grace, selectors that select, autoscaling capped at the partition count.
 */

const BASE = 'deploy/k8s/base';
const OVERLAY = 'deploy/k8s/overlays/example';

interface Meta {
  name: string;
  labels?: Record<string, string>;
}
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: Meta;
  spec?: unknown;
  data?: Record<string, string>;
}
interface Probe {
  httpGet?: { path: string; port: string | number };
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  ports?: { name?: string; containerPort: number }[];
  env?: { name: string; value?: string }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: { readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean; runAsUser?: number };
}
interface PodSpec {
  containers: Container[];
  terminationGracePeriodSeconds?: number;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
}
interface Workload extends Manifest {
  spec: { selector?: { matchLabels: Record<string, string> }; template: { metadata: Meta; spec: PodSpec } };
}

type Validating = new (data: unknown) => { validate(): void };
const MODELS: Record<string, Validating> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'batch/v1/Job': Job,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'keda.sh/v1alpha1/ScaledObject': ScaledObject,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
} as Record<string, Validating>;

/** Validates one manifest against its kind's schema; the error names the manifest and lists what is wrong. */
function validate(manifest: Manifest): void {
  const key = `${manifest.apiVersion}/${manifest.kind}`;
  const Model = MODELS[key];
  if (!Model) throw new Error(`no schema for ${key} (${manifest.metadata.name}): add its model to MODELS`);
  // kustomize folds long base64 values of a Secret over several lines; the API server's decoder (Go's base64)
  // skips line breaks, the schema's "byte" format does not.
  const data =
    manifest.kind === 'Secret' && manifest.data
      ? Object.fromEntries(Object.entries(manifest.data).map(([k, v]) => [k, v.replace(/\s+/g, '')]))
      : manifest.data;
  try {
    new Model({ ...manifest, ...(data ? { data } : {}) }).validate();
  } catch (error) {
    throw new Error(`${key} ${manifest.metadata.name}: ${(error as Error).message}`, { cause: error });
  }
}

/** A kustomize that runs here: `kubectl kustomize` (built in since kubectl 1.14) or the standalone one. */
function findKustomize(): [string, string[]] | undefined {
  for (const [command, args] of [
    ['kubectl', ['kustomize']],
    ['kustomize', ['build']],
  ] as [string, string[]][]) {
    try {
      execFileSync(command, command === 'kubectl' ? ['version', '--client'] : ['version'], { stdio: 'ignore' });
      return [command, args];
    } catch {
      // Not installed: try the next one.
    }
  }
  return undefined;
}
const kustomize = findKustomize();

function render(dir: string): Manifest[] {
  if (!kustomize) throw new Error('no kustomize');
  const [command, args] = kustomize;
  const output = execFileSync(command, [...args, join(ROOT, dir)], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  return yamlDocuments(output) as Manifest[];
}

interface Kustomization {
  resources?: string[];
  patches?: { path?: string }[];
  secretGenerator?: { name: string; envs?: string[]; files?: string[] }[];
  configMapGenerator?: { name: string; envs?: string[]; files?: string[] }[];
}
const kustomization = (dir: string) => yamlDocuments(readRepoFile(`${dir}/kustomization.yaml`))[0] as Kustomization;

/** The base's manifests as written, file by file: what kustomize would start from. */
const baseFiles = () =>
  (kustomization(BASE).resources ?? []).flatMap((file) => yamlDocuments(readRepoFile(`${BASE}/${file}`)) as Manifest[]);

/** `KEY=value` lines of an env file (kustomize's `envs`). */
const envFile = (path: string) =>
  Object.fromEntries(
    readRepoFile(path)
      .split('\n')
      .filter((line) => line.trim() !== '' && !line.trimStart().startsWith('#'))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );

const one = <T extends Manifest>(manifests: Manifest[], kind: string, name: string): T => {
  const found = manifests.filter((m) => m.kind === kind && m.metadata.name === name);
  if (found.length !== 1) throw new Error(`expected one ${kind} ${name}, found ${found.length}`);
  return found[0] as T;
};
const selects = (selector: Record<string, string> | undefined, labels: Record<string, string> | undefined) =>
  selector !== undefined &&
  Object.keys(selector).length > 0 &&
  Object.entries(selector).every(([k, v]) => labels?.[k] === v);

describe('deploy/k8s kustomizations', () => {
  it.each([BASE, OVERLAY])('%s references only files that exist, and the base lists every manifest', (dir) => {
    const k = kustomization(dir);
    const referenced = [
      ...(k.resources ?? []),
      ...(k.patches ?? []).flatMap((p) => (p.path ? [p.path] : [])),
      ...[...(k.secretGenerator ?? []), ...(k.configMapGenerator ?? [])].flatMap((g) => [
        ...(g.envs ?? []),
        ...(g.files ?? []),
      ]),
    ];
    expect(referenced.length).toBeGreaterThan(0);
    for (const file of referenced) expect(existsSync(join(ROOT, dir, file)), `${dir}: ${file}`).toBe(true);
    if (dir === BASE) {
      const manifests = readdirSync(join(ROOT, dir)).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
      expect([...manifests].sort()).toEqual([...(k.resources ?? [])].sort());
    }
  });

  it('the overlay patches only what the base has', () => {
    const base = baseFiles();
    for (const patch of kustomization(OVERLAY).patches ?? []) {
      const [target] = yamlDocuments(readRepoFile(`${OVERLAY}/${patch.path ?? ''}`)) as Manifest[];
      expect(target, patch.path).toBeDefined();
      expect(
        base.some(
          (m) =>
            m.apiVersion === target?.apiVersion && m.kind === target.kind && m.metadata.name === target.metadata.name,
        ),
        `${patch.path} patches ${target?.kind} ${target?.metadata.name}`,
      ).toBe(true);
    }
  });

  it('finds a kustomize to render with (kubectl or kustomize), or checks the files as written only', () => {
    // Without one, the checks below run on the base files as written and the overlay is not rendered.
    if (kustomize) expect(render(OVERLAY).length).toBeGreaterThan(baseFiles().length);
    else expect(baseFiles().length).toBeGreaterThan(0);
  });
});

const variants: [string, () => Manifest[]][] = [
  ['the base files as written', baseFiles],
  ...(kustomize
    ? ([
        ['the base rendered', () => render(BASE)],
        ['the example overlay rendered', () => render(OVERLAY)],
      ] as [string, () => Manifest[]][])
    : []),
];

describe.each(variants)('%s', (_, load) => {
  const manifests = load();
  const config = one(manifests, 'ConfigMap', 'writebehind-config').data ?? {};
  const secret = manifests.find((m) => m.kind === 'Secret' && m.metadata.name.startsWith('writebehind-secrets'));
  const secretEnv = secret
    ? Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]))
    : {};
  const api = one<Workload>(manifests, 'Deployment', 'writebehind-api');
  const consumer = one<Workload>(manifests, 'Deployment', 'writebehind-consumer');
  const job = one<Workload>(manifests, 'Job', 'writebehind-migrate');
  const settings = loadConfig({ ...config, ...secretEnv });

  it('is valid against the Kubernetes, KEDA and prometheus-operator schemas', () => {
    expect(manifests.length).toBeGreaterThanOrEqual(12);
    for (const manifest of manifests) validate(manifest);
  });

  it('sets only variables of docs/configuration.md, with values the config schema accepts', () => {
    const documented = documentedVariables();
    const names = new Set([...Object.keys(config), ...Object.keys(secretEnv)]);
    for (const workload of [api, consumer, job]) {
      for (const container of workload.spec.template.spec.containers) {
        for (const { name, value } of container.env ?? []) {
          names.add(name);
          expect(() => loadConfig({ ...config, ...secretEnv, [name]: value ?? '' }), name).not.toThrow();
        }
        for (const from of container.envFrom ?? []) {
          if (from.configMapRef) expect(from.configMapRef.name).toBe('writebehind-config');
          // The base leaves the Secret to the installation; a rendered overlay must have the one it references.
          if (from.secretRef && secret) expect(from.secretRef.name).toBe(secret.metadata.name);
          if (from.secretRef && !secret) expect(from.secretRef.name).toBe('writebehind-secrets');
        }
      }
    }
    expect([...names].filter((name) => !documented.has(name))).toEqual([]);
    if (secret) expect(Object.keys(secretEnv).sort()).toEqual(['API_KEYS', 'DATABASE_URL', 'REDIS_URL']);
  });

  it.each([
    ['api', 'API_PORT'],
    ['consumer', 'CONSUMER_PORT'],
  ] as const)('probes the %s on /health/live and /health/ready at its configured port', (app, variable) => {
    const workload = app === 'api' ? api : consumer;
    const [container] = workload.spec.template.spec.containers;
    const port = app === 'api' ? settings.api.port : settings.consumer.port;
    expect(config[variable], `${variable} in the ConfigMap`).toBe(String(port));
    const portOf = (probe: Probe | undefined) => {
      const ref = probe?.httpGet?.port;
      return typeof ref === 'number' ? ref : container?.ports?.find((p) => p.name === ref)?.containerPort;
    };
    expect(container?.livenessProbe?.httpGet?.path).toBe('/health/live');
    expect(container?.startupProbe?.httpGet?.path).toBe('/health/live');
    expect(container?.readinessProbe?.httpGet?.path).toBe('/health/ready');
    for (const probe of [container?.livenessProbe, container?.readinessProbe, container?.startupProbe]) {
      expect(portOf(probe)).toBe(port);
    }
  });

  it('runs non-root on a read-only filesystem, with requests and a memory limit', () => {
    for (const workload of [api, consumer, job]) {
      const pod = workload.spec.template.spec;
      expect(pod.securityContext?.runAsNonRoot, workload.metadata.name).toBe(true);
      expect(pod.securityContext?.runAsUser).not.toBe(0);
      for (const container of pod.containers) {
        expect(container.securityContext?.readOnlyRootFilesystem, container.name).toBe(true);
        expect(container.securityContext?.allowPrivilegeEscalation, container.name).toBe(false);
        expect(container.resources?.requests?.['cpu'], container.name).toBeDefined();
        expect(container.resources?.requests?.['memory'], container.name).toBeDefined();
        expect(container.resources?.limits?.['memory'], container.name).toBeDefined();
      }
    }
  });

  it('gives the apps longer to stop than their drain (and the consumer its batch in flight)', () => {
    const DRAIN_SECONDS = 25;
    const preStop = Number(api.spec.template.spec.containers[0]?.lifecycle?.preStop?.exec?.command.at(-1) ?? 0);
    expect(api.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThan(DRAIN_SECONDS + preStop);
    // A batch is one Postgres transaction, bounded by the statement timeout.
    const batchSeconds = settings.database.statementTimeoutMs / 1000;
    expect(consumer.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThan(DRAIN_SECONDS + batchSeconds);
  });

  it('selects the pods it means: Services, PodDisruptionBudgets, ServiceMonitors, autoscalers', () => {
    const pods = { api: api.spec.template.metadata.labels, consumer: consumer.spec.template.metadata.labels };
    for (const [app, labels] of Object.entries(pods)) {
      const workload = app === 'api' ? api : consumer;
      expect(selects(workload.spec.selector?.matchLabels, labels), `${app} Deployment`).toBe(true);
      const service = one<Manifest & { spec: { selector: Record<string, string>; ports: { name: string }[] } }>(
        manifests,
        'Service',
        `writebehind-${app}`,
      );
      expect(selects(service.spec.selector, labels), `${app} Service`).toBe(true);
      const pdb = one<Manifest & { spec: { selector: { matchLabels: Record<string, string> } } }>(
        manifests,
        'PodDisruptionBudget',
        `writebehind-${app}`,
      );
      expect(selects(pdb.spec.selector.matchLabels, labels), `${app} PodDisruptionBudget`).toBe(true);
      const monitor = one<
        Manifest & {
          spec: { selector: { matchLabels: Record<string, string> }; endpoints: { port: string; path: string }[] };
        }
      >(manifests, 'ServiceMonitor', `writebehind-${app}`);
      expect(selects(monitor.spec.selector.matchLabels, service.metadata.labels), `${app} ServiceMonitor`).toBe(true);
      for (const endpoint of monitor.spec.endpoints) {
        expect(endpoint.path).toBe('/metrics');
        expect(service.spec.ports.map((p) => p.name)).toContain(endpoint.port);
      }
    }
    const hpa = one<Manifest & { spec: { scaleTargetRef: { kind: string; name: string }; minReplicas: number } }>(
      manifests,
      'HorizontalPodAutoscaler',
      'writebehind-api',
    );
    expect(hpa.spec.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: 'writebehind-api' });
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
  });

  it('scales the consumer on Kafka lag with KEDA, up to the partition count and no further', () => {
    const scaled = one<
      Manifest & {
        spec: {
          scaleTargetRef: { name: string; kind?: string };
          minReplicaCount: number;
          maxReplicaCount: number;
          triggers: { type: string; metadata: Record<string, string> }[];
        };
      }
    >(manifests, 'ScaledObject', 'writebehind-consumer');
    expect(scaled.spec.scaleTargetRef.name).toBe('writebehind-consumer');
    expect(scaled.spec.maxReplicaCount).toBe(settings.kafka.partitions);
    expect(scaled.spec.maxReplicaCount).toBe(12);
    expect(scaled.spec.minReplicaCount).toBeGreaterThanOrEqual(1);
    expect(scaled.spec.triggers.map((t) => t.type)).toEqual(['kafka', 'kafka']);
    expect(scaled.spec.triggers.map((t) => t.metadata['topic']).sort()).toEqual(
      [settings.kafka.topics.activities, settings.kafka.topics.counters].sort(),
    );
    for (const { metadata } of scaled.spec.triggers) {
      expect(metadata['bootstrapServers']).toBe(settings.kafka.brokers.join(','));
      expect(metadata['consumerGroup']).toBe(settings.consumer.groupId);
      expect(Number(metadata['lagThreshold'])).toBeGreaterThan(0);
      expect(metadata['allowIdleConsumers'] ?? 'false').toBe('false');
    }
  });

  it('runs the topics and the migrations in a Job from the CLI image', () => {
    const [container] = job.spec.template.spec.containers;
    expect(container?.image).toMatch(/writebehind[-/]cli/);
    expect(container?.command?.join(' ')).toMatch(/wb topics && wb migrate/);
    for (const [app, workload] of [
      ['api', api],
      ['consumer', consumer],
    ] as const) {
      expect(workload.spec.template.spec.containers[0]?.image).toMatch(new RegExp(`writebehind[-/]${app}`));
    }
  });
});

describe('deploy/k8s/overlays/example/secrets.example.env', () => {
  it('holds exactly the secret variables, as placeholders the config schema accepts', () => {
    const env = envFile(`${OVERLAY}/secrets.example.env`);
    expect(Object.keys(env).sort()).toEqual(['API_KEYS', 'DATABASE_URL', 'REDIS_URL']);
    expect(() => loadConfig(env)).not.toThrow();
    for (const value of Object.values(env)) expect(value).toContain('change-me');
  });
});
