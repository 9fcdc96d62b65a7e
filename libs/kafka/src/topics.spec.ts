import { loadConfig } from '@app/config';
import { describe, expect, it } from 'vitest';
import { CHANGE_EVENT_TOPIC_CONFIG, topicSpecs } from './topics.js';

describe('topicSpecs', () => {
  const config = loadConfig({});

  it('sets retention.ms and segment.ms on every topic it creates, so how long an event stays readable is known', () => {
    for (const spec of topicSpecs(config)) {
      const names = (spec.configEntries ?? []).map((e) => e.name);
      expect(names, spec.topic).toEqual(expect.arrayContaining(['retention.ms', 'segment.ms']));
    }
  });

  it('creates change-event topics that the default ledger retention covers (the consumer refuses to start otherwise)', () => {
    const readable = CHANGE_EVENT_TOPIC_CONFIG.retentionMs + CHANGE_EVENT_TOPIC_CONFIG.segmentMs;
    expect(config.consumer.ledger.retentionMs).toBeGreaterThanOrEqual(
      readable + config.api.idempotency.ttlSeconds * 1000,
    );
  });
});
