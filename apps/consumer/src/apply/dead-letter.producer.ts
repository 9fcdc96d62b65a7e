import { Injectable } from '@nestjs/common';
import { KafkaProducer, deadLetterTopic } from '@app/kafka';
import type { IHeaders, KafkaMessage, Message } from 'kafkajs';
import type { PermanentErrorClass } from './error-classifier.js';

/** Header names of a dead letter (docs/architecture.md section 5: reason, attempts and origin). */
export const DLQ_HEADERS = {
  errorClass: 'dlq-error-class',
  errorCode: 'dlq-error-code',
  errorMessage: 'dlq-error-message',
  attempts: 'dlq-attempts',
  originalTopic: 'dlq-original-topic',
  originalPartition: 'dlq-original-partition',
  originalOffset: 'dlq-original-offset',
  firstFailedAt: 'dlq-first-failed-at',
} as const;

const MAX_MESSAGE_CHARS = 2000;

export interface DeadLetter {
  message: KafkaMessage;
  topic: string;
  partition: number;
  errorClass: PermanentErrorClass;
  /** The SQLSTATE when Postgres rejected the record. */
  errorCode?: string;
  reason: string;
  /** Attempts to apply the record (1 for a record that failed validation). */
  attempts: number;
  /** Epoch ms of the first failure that involved the record. */
  firstFailedAt: number;
}

/**
 * Sends records that can never be applied to `<topic>.dlq`, with the original key, value, timestamp and headers
 * and the reason and origin in `dlq-*` headers, through the process's idempotent acks=all producer. The caller
 * moves the partition's offset past a record only after this resolved, so no record is lost in between; a crash
 * between the two sends the same dead letter again (at least once).
 */
@Injectable()
export class DeadLetterProducer {
  constructor(private readonly producer: KafkaProducer) {}

  async send(letters: DeadLetter[]): Promise<void> {
    const byTopic = new Map<string, Message[]>();
    for (const letter of letters) {
      const topic = deadLetterTopic(letter.topic);
      byTopic.set(topic, [...(byTopic.get(topic) ?? []), toMessage(letter)]);
    }
    await this.producer.sendBatch([...byTopic].map(([topic, messages]) => ({ topic, messages })));
  }
}

function toMessage(letter: DeadLetter): Message {
  const headers: IHeaders = {
    ...letter.message.headers,
    [DLQ_HEADERS.errorClass]: letter.errorClass,
    [DLQ_HEADERS.errorMessage]: letter.reason.slice(0, MAX_MESSAGE_CHARS),
    [DLQ_HEADERS.attempts]: String(letter.attempts),
    [DLQ_HEADERS.originalTopic]: letter.topic,
    [DLQ_HEADERS.originalPartition]: String(letter.partition),
    [DLQ_HEADERS.originalOffset]: letter.message.offset,
    [DLQ_HEADERS.firstFailedAt]: new Date(letter.firstFailedAt).toISOString(),
  };
  if (letter.errorCode !== undefined) headers[DLQ_HEADERS.errorCode] = letter.errorCode;
  return { key: letter.message.key, value: letter.message.value, timestamp: letter.message.timestamp, headers };
}
