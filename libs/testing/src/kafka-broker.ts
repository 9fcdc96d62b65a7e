import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, type KafkaConfig, logLevel } from 'kafkajs';
import { DelayProxy } from './delay-proxy.js';
import { freePorts, portFree } from './ports.js';
import { describeExit, logTail, onProcessExit, runCommand, ServiceProcess } from './service-process.js';
import { waitFor } from './wait-for.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

// The broker shares two cores with the shared stack and the other tests: a small heap, and only the quick JIT tier,
// which is what a broker living for one test file needs.
const BROKER_JVM = ['-Xms128m', '-Xmx512m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-Djava.awt.headless=true'];
const TOOL_JVM = ['-Xmx256m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-Djava.awt.headless=true'];

/** The jars scripts/stack.sh resolved from Maven Central, in the same cache folder it uses. */
function kafkaJars(): string {
  const cache =
    process.env['WB_CACHE_DIR'] || join(process.env['XDG_CACHE_HOME'] || join(homedir(), '.cache'), 'writebehind');
  const jars = join(cache, `kafka-${process.env['STACK_KAFKA_VERSION'] || '4.4.0'}`, 'libs');
  if (!existsSync(join(jars, '.complete'))) {
    throw new Error(`the Kafka jars are not in ${jars}: run \`scripts/stack.sh up\` once, it resolves them`);
  }
  return jars;
}

export type KafkaScramMechanism = 'SCRAM-SHA-256' | 'SCRAM-SHA-512';

export interface KafkaBrokerOptions {
  /** How long start() and restart() wait for the broker to answer. Default 90 s. */
  startTimeoutMs?: number;
  /** How long stop() waits after SIGTERM (a controlled shutdown) before SIGKILL. Default 30 s. */
  stopGraceMs?: number;
  /**
   * Clients connect over TLS (listener protocol SSL, or SASL_SSL with `sasl`), the broker presenting `cert` (PEM,
   * e.g. from TestCertificates.server()) and trusting `ca` for its own inter-broker connections.
   */
  tls?: { cert: string; key: string; ca: string };
  /**
   * Clients authenticate with SASL/SCRAM. The users are created when the storage is formatted
   * (`kafka-storage format --add-scram`), plus the broker's own inter-broker user.
   */
  sasl?: { mechanism: KafkaScramMechanism; users: { name: string; password: string }[] };
  /**
   * Clients reach the broker through a DelayProxy (plaintext only): the broker advertises the proxy's port, so every
   * connection after the bootstrap goes through it too, and `proxy.delayMs` makes the broker slow for them.
   */
  proxied?: boolean;
}

/** The broker's own SCRAM user, for its inter-broker listener and for the test's admin clients. */
const BROKER_USER = 'broker';

/**
 * A private single-node KRaft broker owned by one test, on its own ports and data dir, so that the test can stop,
 * kill and restart a real broker without disturbing the shared one. restart() keeps the ports and the data, so
 * topics, records and committed offsets survive it as they would in production.
 */
export class KafkaBroker {
  readonly brokers: string;
  /** With `proxied`: the proxy clients go through. */
  proxy: DelayProxy | undefined;
  private readonly brokerPassword = randomBytes(12).toString('hex');
  private java: ServiceProcess | undefined;
  private readonly probe: Kafka;
  private readonly forgetDir: () => void;

  private constructor(
    readonly dir: string,
    readonly port: number,
    readonly controllerPort: number,
    private readonly jars: string,
    private readonly options: KafkaBrokerOptions,
    /** The port the broker advertises: its own, or the proxy's. */
    private readonly advertisedPort: number,
  ) {
    this.brokers = `127.0.0.1:${advertisedPort}`;
    // Each probe fails fast; waitFor does the retrying.
    this.probe = new Kafka({
      clientId: 'private-broker-probe',
      brokers: [this.brokers],
      logLevel: logLevel.NOTHING,
      connectionTimeout: 1000,
      retry: { retries: 0 },
      ...this.clientSecurity(),
    });
    this.forgetDir = onProcessExit(() => {
      this.java?.signal('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });
  }

  static async start(options: KafkaBrokerOptions = {}): Promise<KafkaBroker> {
    const jars = kafkaJars();
    const dir = await mkdtemp(join(tmpdir(), 'wb-kafka-'));
    const [port = 0, controllerPort = 0, proxyPort = 0] = await freePorts(3);
    const broker = new KafkaBroker(dir, port, controllerPort, jars, options, options.proxied ? proxyPort : port);
    try {
      if (options.proxied) broker.proxy = await DelayProxy.start({ host: '127.0.0.1', port }, proxyPort);
      await broker.format();
      await broker.launch();
    } catch (error) {
      await broker.dispose();
      throw error;
    }
    return broker;
  }

  get running(): boolean {
    return this.java?.running ?? false;
  }

  /**
   * kafkajs' `ssl` and `sasl` settings for a client of this broker: as `user` (default: the broker's own user, for
   * the test's admin clients), trusting the CA of `tls`. Empty for a plaintext broker.
   */
  clientSecurity(user?: { name: string; password: string }): Pick<KafkaConfig, 'ssl' | 'sasl'> {
    const { tls, sasl } = this.options;
    const as = user ?? { name: BROKER_USER, password: this.brokerPassword };
    return {
      ...(tls ? { ssl: { ca: [readFileSync(tls.ca, 'utf8')] } } : {}),
      ...(sasl
        ? {
            sasl:
              sasl.mechanism === 'SCRAM-SHA-256'
                ? { mechanism: 'scram-sha-256', username: as.name, password: as.password }
                : { mechanism: 'scram-sha-512', username: as.name, password: as.password },
          }
        : {}),
    };
  }

  /** The apps' settings (KAFKA_BROKERS, KAFKA_SSL*, KAFKA_SASL_*) to connect to this broker as `user`. */
  appEnv(user?: { name: string; password: string }): Record<string, string> {
    const { tls, sasl } = this.options;
    return {
      KAFKA_BROKERS: this.brokers,
      ...(tls ? { KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: tls.ca } : {}),
      ...(sasl
        ? {
            KAFKA_SASL_MECHANISM: sasl.mechanism.toLowerCase(),
            KAFKA_SASL_USERNAME: user?.name ?? sasl.users[0]?.name ?? BROKER_USER,
            KAFKA_SASL_PASSWORD: user?.password ?? sasl.users[0]?.password ?? this.brokerPassword,
          }
        : {}),
    };
  }

  get logFile(): string {
    return join(this.dir, 'kafka.log');
  }

  private get propsFile(): string {
    return join(this.dir, 'server.properties');
  }

  private get outFile(): string {
    return join(this.dir, 'kafka.out');
  }

  /** Controlled shutdown (SIGTERM), then SIGKILL if the broker is still up after `stopGraceMs`. */
  async stop(): Promise<void> {
    await this.java?.stop(this.options.stopGraceMs ?? 30_000);
    // A stopped broker refuses connections; the proxy in front of it must not take them and close them instead.
    await this.proxy?.refuse();
  }

  /** A crash: SIGKILL, resolved once the JVM is gone. */
  async kill(): Promise<void> {
    await this.java?.kill();
    await this.proxy?.refuse();
  }

  /** Starts the broker again on the same ports and data dir; stops it first if it still runs. */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  async dispose(): Promise<void> {
    try {
      await this.stop();
    } finally {
      await this.proxy?.close();
      this.forgetDir();
      await rm(this.dir, { recursive: true, force: true });
    }
  }

  /**
   * The client listener's settings. Plaintext by default (listener PLAINTEXT, as scripts/stack.sh's broker); with
   * TLS and/or SASL a listener CLIENT with protocol SSL, SASL_PLAINTEXT or SASL_SSL, which is also the inter-broker
   * listener (the broker authenticates as its own SCRAM user). The controller listener stays PLAINTEXT.
   */
  private listenerProperties(): string[] {
    const { tls, sasl } = this.options;
    if (!tls && !sasl) {
      return [
        `listeners=PLAINTEXT://127.0.0.1:${this.port},CONTROLLER://127.0.0.1:${this.controllerPort}`,
        `advertised.listeners=PLAINTEXT://127.0.0.1:${this.advertisedPort}`,
        'inter.broker.listener.name=PLAINTEXT',
        'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
      ];
    }
    const protocol = tls && sasl ? 'SASL_SSL' : tls ? 'SSL' : 'SASL_PLAINTEXT';
    // Java properties: a PEM value on one line, its line breaks escaped.
    const inline = (file: string) => readFileSync(file, 'utf8').trim().replaceAll('\n', '\\n');
    return [
      `listeners=CLIENT://127.0.0.1:${this.port},CONTROLLER://127.0.0.1:${this.controllerPort}`,
      `advertised.listeners=CLIENT://127.0.0.1:${this.port}`,
      'inter.broker.listener.name=CLIENT',
      `listener.security.protocol.map=CONTROLLER:PLAINTEXT,CLIENT:${protocol}`,
      ...(tls
        ? [
            // Inline PEM values: an unencrypted key, no keystore file and no password to manage.
            'ssl.keystore.type=PEM',
            `ssl.keystore.certificate.chain=${inline(tls.cert)}`,
            `ssl.keystore.key=${inline(tls.key)}`,
            'ssl.truststore.type=PEM',
            `ssl.truststore.certificates=${inline(tls.ca)}`,
            'ssl.client.auth=none',
          ]
        : []),
      ...(sasl
        ? [
            `sasl.enabled.mechanisms=${sasl.mechanism}`,
            `sasl.mechanism.inter.broker.protocol=${sasl.mechanism}`,
            `listener.name.client.${sasl.mechanism.toLowerCase()}.sasl.jaas.config=` +
              `org.apache.kafka.common.security.scram.ScramLoginModule required ` +
              `username="${BROKER_USER}" password="${this.brokerPassword}";`,
          ]
        : []),
    ];
  }

  /** The settings of scripts/stack.sh's broker, on this broker's ports and data dir. */
  private async format(): Promise<void> {
    await mkdir(join(this.dir, 'data'));
    await writeFile(
      this.propsFile,
      [
        'process.roles=broker,controller',
        'node.id=1',
        `controller.quorum.voters=1@127.0.0.1:${this.controllerPort}`,
        ...this.listenerProperties(),
        'controller.listener.names=CONTROLLER',
        `log.dirs=${join(this.dir, 'data')}`,
        'offsets.topic.replication.factor=1',
        'offsets.topic.num.partitions=12',
        'transaction.state.log.replication.factor=1',
        'transaction.state.log.min.isr=1',
        'share.coordinator.state.topic.replication.factor=1',
        'share.coordinator.state.topic.min.isr=1',
        'group.initial.rebalance.delay.ms=0',
        'auto.create.topics.enable=false',
        'num.network.threads=2',
        'num.io.threads=4',
        'num.recovery.threads.per.data.dir=1',
        'log.retention.check.interval.ms=60000',
        // Not in scripts/stack.sh: after a kill, the controller turns the restarted broker away (duplicate
        // registration) until the dead incarnation's session expires, 9 s by default; 3 s keeps a kill-and-restart
        // quick, and half-second heartbeats (also how often registration is retried) still leave ample margin.
        'broker.session.timeout.ms=3000',
        'broker.heartbeat.interval.ms=500',
        '',
      ].join('\n'),
    );
    const tool = [...TOOL_JVM, '-cp', join(this.jars, '*'), 'kafka.tools.StorageTool'];
    const uuid = (await runCommand('java', [...tool, 'random-uuid'])).trim().split('\n').pop() ?? '';
    // SCRAM credentials live in the cluster metadata: they are written when the storage is formatted.
    const { sasl } = this.options;
    const users = sasl ? [{ name: BROKER_USER, password: this.brokerPassword }, ...sasl.users] : [];
    const scram = users.flatMap((u) => ['--add-scram', `${sasl?.mechanism}=[name=${u.name},password=${u.password}]`]);
    await runCommand('java', [...tool, 'format', '-t', uuid, '-c', this.propsFile, ...scram]);
  }

  private async launch(): Promise<void> {
    const timeoutMs = this.options.startTimeoutMs ?? 90_000;
    // A restart binds the same ports: the previous JVM must be gone and nothing else may have taken them.
    await waitFor(async () => (await portFree(this.port)) && (await portFree(this.controllerPort)), {
      timeoutMs: 30_000,
      description: `ports ${this.port} and ${this.controllerPort} free for the private Kafka broker`,
    });
    await this.proxy?.listen();
    const child = new ServiceProcess(
      'java',
      [
        ...BROKER_JVM,
        `-Dlog4j2.configurationFile=${join(ROOT, 'scripts', 'kafka', 'log4j2.properties')}`,
        `-Dkafka.logfile=${this.logFile}`,
        '-cp',
        join(this.jars, '*'),
        'kafka.Kafka',
        this.propsFile,
      ],
      this.outFile,
      { cwd: this.dir },
    );
    this.java = child;
    let outcome: 'ready' | 'exited';
    try {
      outcome = await waitFor(async () => (child.running ? (await this.answers()) && 'ready' : 'exited'), {
        timeoutMs,
        intervalMs: 200,
        description: `the private Kafka broker at ${this.brokers}`,
      });
    } catch (error) {
      await child.kill();
      throw new Error(`${(error as Error).message}\n${this.logs()}`, { cause: error });
    }
    if (outcome === 'exited') {
      const status = await child.exited;
      throw new Error(`the private Kafka broker exited during start (${describeExit(status)})\n${this.logs()}`);
    }
  }

  /** The broker serves metadata: it has caught up with its controller and accepts requests. */
  private async answers(): Promise<boolean> {
    const admin = this.probe.admin();
    try {
      await admin.connect();
      const { brokers } = await admin.describeCluster();
      return brokers.length > 0;
    } finally {
      await admin.disconnect();
    }
  }

  private logs(): string {
    return `${logTail(this.outFile, 20)}\n${logTail(this.logFile)}`;
  }
}
