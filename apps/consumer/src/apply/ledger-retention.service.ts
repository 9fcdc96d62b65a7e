import { Injectable } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { KafkaAdmin } from '@app/kafka';

const DAY_MS = 24 * 60 * 60 * 1000;

/** "7 d", "36 h", "90 min": a duration the way an operator reads it. */
function readable(ms: number): string {
  if (ms % DAY_MS === 0) return `${ms / DAY_MS} d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  return `${Math.round(ms / 60_000)} min`;
}

/**
 * The dedupe ledger is pruned by wall clock (CONSUMER_LEDGER_RETENTION_MS), while Kafka deletes whole segments: a
 * segment goes once its newest event is older than retention.ms, and takes events for up to segment.ms, so an event
 * can stay readable for retention.ms + segment.ms. A client retry of an idempotency key (API_IDEMPOTENCY_TTL_SECONDS)
 * can publish the same event id that much later again. A consumer that reads such an event with no stored offset to
 * skip it (a new or renamed group, `wb replay --group` of another group) relies on the ledger alone: if its id was
 * pruned, the event is applied twice. So the ledger must keep ids for retention.ms + segment.ms + the idempotency
 * TTL of every change-event topic; this says where it does not.
 */
@Injectable()
export class LedgerRetention {
  constructor(
    private readonly config: AppConfig,
    private readonly admin: KafkaAdmin,
  ) {}

  /** One line per change-event topic whose events can outlive their ledger rows; empty when all is covered. */
  async problems(): Promise<string[]> {
    const { counters, activities } = this.config.kafka.topics;
    const topics = await this.admin.topicConfigs([counters, activities], ['retention.ms', 'segment.ms']);
    const ledgerMs = this.config.consumer.ledger.retentionMs;
    const ttlMs = this.config.api.idempotency.ttlSeconds * 1000;
    const problems: string[] = [];
    for (const topic of [counters, activities]) {
      const retentionMs = Number(topics.get(topic)?.get('retention.ms') ?? Number.NaN);
      const segmentMs = Number(topics.get(topic)?.get('segment.ms') ?? Number.NaN);
      if (Number.isNaN(retentionMs) || Number.isNaN(segmentMs)) {
        problems.push(`${topic}: Kafka did not report its retention.ms and segment.ms`);
      } else if (retentionMs < 0) {
        problems.push(
          `${topic} keeps events forever (retention.ms ${retentionMs}): no ledger retention covers it; give the ` +
            'topic a retention.ms',
        );
      } else if (ledgerMs < retentionMs + segmentMs + ttlMs) {
        const needed = retentionMs + segmentMs + ttlMs;
        problems.push(
          `${readable(ledgerMs)} is shorter than ${topic} can hold an event: retention.ms ${readable(retentionMs)} + ` +
            `segment.ms ${readable(segmentMs)} + API_IDEMPOTENCY_TTL_SECONDS ${readable(ttlMs)} = ` +
            `${readable(needed)}; set it to at least ${needed}, or lower the topic's retention.ms or segment.ms`,
        );
      }
    }
    return problems;
  }
}
