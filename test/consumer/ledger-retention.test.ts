import { ConfigResourceTypes } from 'kafkajs';
import { AppProcess, TestStack, waitFor } from '@app/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The dedupe ledger must keep an event id as long as Kafka can hand the event out again (retention.ms + segment.ms
 * of the topic) plus the API's idempotency window: a new or renamed group reads such an event with no stored offset,
 * and only the ledger stops it from being applied twice. The topics here are created as the project creates them
 * (7 d retention, 1 d segments), so 9 d are needed.
 */
describe('ledger retention against the topics', () => {
  let stack: TestStack;
  const port = () => Number(stack.env['CONSUMER_PORT']);

  beforeAll(async () => {
    stack = await TestStack.create({ partitions: 1 });
  });
  afterAll(async () => {
    await stack?.dispose();
  });

  /** Resolves with the exit once the process ends, or with 'ready' once it answers ready. */
  const outcome = async (consumer: AppProcess) =>
    Promise.race([consumer.exited, consumer.ready(port()).then(() => 'ready' as const)]);

  it('refuses to start, exit 78, when the ledger is pruned sooner than a topic can return an event', async () => {
    const consumer = new AppProcess('consumer', {
      ...stack.env,
      CONSUMER_LEDGER_RETENTION_MS: String(8 * DAY_MS),
      LOG_LEVEL: 'warn',
    });
    try {
      const result = await outcome(consumer);
      expect(result, consumer.text).toEqual({ code: 78, signal: null });
      expect(consumer.text).toMatch(/^Invalid configuration:$/m);
      expect(consumer.text).toMatch(
        new RegExp(
          `CONSUMER_LEDGER_RETENTION_MS: 8 d is shorter than ${stack.topics.counters} can hold an event: ` +
            'retention.ms 7 d \\+ segment.ms 1 d \\+ API_IDEMPOTENCY_TTL_SECONDS 1 d = 9 d; set it to at least 777600000',
        ),
      );
      expect(consumer.text).toMatch(/Refusing to start\. See docs\/configuration\.md\./);
      // It never joined the group: nothing was applied or committed.
      expect(await stack.query('SELECT 1 FROM consumer_offsets')).toEqual([]);
    } finally {
      await consumer.stop();
    }
  });

  it('starts with the defaults, and stops pruning once a topic keeps events longer than the ledger', async () => {
    const consumer = new AppProcess('consumer', {
      ...stack.env,
      CONSUMER_LEDGER_PRUNE_INTERVAL_MS: '1000',
      LOG_LEVEL: 'info',
    });
    try {
      expect(await outcome(consumer), consumer.text).toBe('ready');
      // An operator raises the topic's retention to 30 days (as the runbook suggests before a long consumer outage).
      const admin = stack.kafka.admin();
      await admin.connect();
      try {
        await admin.alterConfigs({
          validateOnly: false,
          resources: [
            {
              type: ConfigResourceTypes.TOPIC,
              name: stack.topics.counters,
              configEntries: [
                { name: 'retention.ms', value: String(30 * DAY_MS) },
                { name: 'segment.ms', value: String(DAY_MS) },
              ],
            },
          ],
        });
      } finally {
        await admin.disconnect();
      }
      const refusals = () => consumer.text.split('dedupe ledger not pruned').length - 1;
      await waitFor(async () => refusals() > 0, { timeoutMs: 30_000, description: 'the pruner to refuse' });
      // An id applied 12 days ago: past the ledger's 10 days, but its event may still be in the topic. Inserted
      // after a refusal, so every pass that can see it started after the change.
      await stack.query(
        "INSERT INTO processed_events (event_id, source, applied_at) VALUES ('old-id', 'consumer', now() - interval '12 days')",
      );
      const seen = refusals();
      await waitFor(async () => refusals() > seen, { timeoutMs: 30_000, description: 'a later pass refused too' });
      expect(await stack.query("SELECT event_id FROM processed_events WHERE event_id = 'old-id'")).toEqual([
        { event_id: 'old-id' },
      ]);
    } finally {
      await consumer.stop();
    }
  });
});
