import { readFileSync } from 'node:fs';
import { Injectable } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { Kafka, type KafkaConfig, type LogEntry, type SASLOptions, logLevel } from 'kafkajs';
import { PinoLogger } from 'nestjs-pino';

/**
 * kafkajs warns on every boot that bounded retries "may invalidate EoS guarantees" of the idempotent
 * producer. Here they cannot: a re-send after exhausted retries may duplicate a record in Kafka, and the
 * consumer's dedupe ledger applies each event id once. So it is logged at debug, not warn.
 */
const EXPECTED_WARNINGS = ['Limiting retries for the idempotent producer'];

/**
 * Broker error responses that are part of normal operation and that kafkajs retries on its own: a rebalance
 * in progress, a coordinator still loading after a restart. kafkajs logs each at error level; they are
 * logged at debug here so that an error line means something.
 */
const ROUTINE_ERRORS = [
  'The group is rebalancing',
  'The coordinator is loading',
  'The coordinator is not available',
  'The group coordinator is not available',
  'This is not the correct coordinator',
  'Specified group generation id is not valid',
  'The coordinator is not aware of this member',
  'There is no leader for this topic-partition',
];

/**
 * kafkajs' `ssl` and `sasl` options from the config (KAFKA_SSL*, KAFKA_SASL_*). With TLS, kafkajs verifies the
 * broker's certificate and, for a broker named by host name, that name (SNI and identity); KAFKA_SSL_CA_FILE replaces
 * Node's trusted CAs.
 */
export function kafkaSecurity(kafka: AppConfig['kafka']): Pick<KafkaConfig, 'ssl' | 'sasl'> {
  const ssl =
    kafka.ssl === undefined
      ? undefined
      : {
          rejectUnauthorized: kafka.ssl.rejectUnauthorized,
          ...(kafka.ssl.caFile === undefined ? {} : { ca: [readFileSync(kafka.ssl.caFile, 'utf8')] }),
        };
  const sasl: SASLOptions | undefined = kafka.sasl && {
    mechanism: kafka.sasl.mechanism,
    username: kafka.sasl.username,
    password: kafka.sasl.password,
  };
  return { ...(ssl ? { ssl } : {}), ...(sasl ? { sasl } : {}) };
}

/** The kafkajs client, logging through pino. Producers, consumers and admins are created from it. */
@Injectable()
export class KafkaClient {
  readonly kafka: Kafka;

  constructor(config: AppConfig, logger: PinoLogger) {
    logger.setContext('Kafka');
    this.kafka = new Kafka({
      clientId: config.kafka.clientId,
      brokers: [...config.kafka.brokers],
      connectionTimeout: config.kafka.connectionTimeoutMs,
      requestTimeout: config.kafka.requestTimeoutMs,
      ...kafkaSecurity(config.kafka),
      logLevel: logLevel.INFO,
      logCreator:
        () =>
        ({ namespace, level, log }: LogEntry) => {
          const { message, ...fields } = log;
          const line = { ...fields, namespace };
          const routine = typeof fields['error'] === 'string' && ROUTINE_ERRORS.some((e) => fields['error'] === e);
          if (level === logLevel.ERROR && !routine) logger.error(line, message);
          else if (routine) logger.debug(line, message);
          else if (level === logLevel.WARN && !EXPECTED_WARNINGS.some((w) => message.startsWith(w)))
            logger.warn(line, message);
          else if (level <= logLevel.INFO) logger.debug(line, message);
          else logger.trace(line, message);
        },
    });
  }
}
