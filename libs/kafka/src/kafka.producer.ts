import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { CompressionTypes, Partitioners, type Producer, type RecordMetadata, type TopicMessages } from 'kafkajs';
import { PinoLogger } from 'nestjs-pino';
import { KafkaClient } from './kafka.client.js';

/**
 * The idempotent, acks=all producer. One per process: kafkajs sends one request per `send` call, so callers
 * batch across requests themselves and hand whole batches to `sendBatch`.
 */
@Injectable()
export class KafkaProducer implements OnApplicationShutdown {
  private producer: Producer;
  private connecting: Promise<void> | undefined;

  constructor(
    private readonly client: KafkaClient,
    private readonly config: AppConfig,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext('KafkaProducer');
    this.producer = this.create();
  }

  private create(): Producer {
    return this.client.kafka.producer({
      idempotent: true,
      // The idempotent producer keeps order and de-duplicates retries only with one request in flight (#598).
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
      allowAutoTopicCreation: false,
      retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 2000 },
    });
  }

  /** Connects now rather than on the first send. Boot should not await it: Kafka may be away. */
  async connect(): Promise<void> {
    await this.connected();
  }

  private async connected(): Promise<Producer> {
    const producer = this.producer;
    this.connecting ??= producer.connect().catch((error: unknown) => {
      this.connecting = undefined;
      throw error;
    });
    await this.connecting;
    return producer;
  }

  /**
   * Sends with acks=all; resolves only when every message is on all in-sync replicas. After a failed send the next
   * one goes through a new producer: kafkajs rolls back the sequence numbers of every partition of a failed request,
   * those the broker appended included, and the broker takes the next batch of the same size to such a partition for
   * a duplicate of the appended one and acknowledges it without writing it (test/foundation/kafka-producer.test.ts).
   * A new producer id never reuses those numbers.
   */
  async sendBatch(
    topicMessages: TopicMessages[],
    timeoutMs = this.config.kafka.requestTimeoutMs,
  ): Promise<RecordMetadata[]> {
    const producer = await this.connected();
    try {
      return await producer.sendBatch({
        topicMessages,
        acks: -1,
        timeout: timeoutMs,
        compression: CompressionTypes.None,
      });
    } catch (error) {
      if (this.producer === producer) this.reset();
      throw error;
    }
  }

  /**
   * Drops the current producer and starts over with a new one (new producer id, fresh connections). For
   * when sends keep failing: kafkajs has been seen not to recover a producer after a broker outage
   * (tulios/kafkajs#919). Sends already running on the old producer settle on their own.
   */
  reset(): void {
    const old = this.producer;
    this.producer = this.create();
    this.connecting = undefined;
    old.disconnect().catch((error: unknown) => this.logger.debug({ err: error }, 'old producer disconnect failed'));
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.connecting) await this.producer.disconnect();
  }
}
