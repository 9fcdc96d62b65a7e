import { Injectable } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { Kafka, type LogEntry, logLevel } from 'kafkajs';
import { PinoLogger } from 'nestjs-pino';

/**
 * kafkajs warns on every boot that bounded retries "may invalidate EoS guarantees" of the idempotent
 * producer. Here they cannot: a re-send after exhausted retries may duplicate a record in Kafka, and the
 * consumer's dedupe ledger applies each event id once. So it is logged at debug, not warn.
 */
const EXPECTED_WARNINGS = ['Limiting retries for the idempotent producer'];

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
      logLevel: logLevel.INFO,
      logCreator:
        () =>
        ({ namespace, level, log }: LogEntry) => {
          const { message, ...fields } = log;
          const line = { ...fields, namespace };
          if (level === logLevel.ERROR) logger.error(line, message);
          else if (level === logLevel.WARN && !EXPECTED_WARNINGS.some((w) => message.startsWith(w)))
            logger.warn(line, message);
          else if (level <= logLevel.INFO) logger.debug(line, message);
          else logger.trace(line, message);
        },
    });
  }
}
