import { KafkaAdmin, topicSpecs } from '@app/kafka';
import { OffsetRepository, PartitionHoldRepository } from '@app/store';
import type { Command, CommandContext } from './command.js';
import { actor } from './targets.js';

export const topicsCommand: Command = {
  name: 'topics',
  summary: 'create the change-event and dead-letter topics that do not exist yet (KAFKA_TOPIC_*)',
  options: { actor: { type: 'string', description: 'who runs this, for the holds it records (default user@host)' } },
  run: async (context) => {
    const { config, app, print } = context;
    const admin = (await app()).get(KafkaAdmin);
    const result = await admin.ensureTopics(topicSpecs(config));
    if (result.created.length > 0) print(`topics: created ${result.created.join(', ')}`);
    if (result.existing.length > 0) print(`topics: already present ${result.existing.join(', ')}`);
    for (const t of result.fewerPartitions) {
      print(`topics: WARNING ${t.topic} has ${t.has} partitions, configured ${t.wanted}; not changed`);
    }
    for (const t of result.settingsAdded) {
      print(`topics: set ${t.name}=${t.value} on ${t.topic} (it had the broker's default; its other settings kept)`);
    }
    for (const t of result.otherSettings) {
      print(
        `topics: WARNING ${t.topic} has ${t.name}=${t.has}, the layout says ${t.wanted}; not changed ` +
          '(the consumer checks that its ledger retention covers retention.ms + segment.ms, see docs/runbook.md)',
      );
    }
    const { counters, activities } = config.kafka.topics;
    await holdRecreated(
      context,
      result.created.filter((t) => t === counters || t === activities),
    );
  },
};

/**
 * A change-event topic created while Postgres has offsets stored for it was recreated (the broker's data was lost,
 * or the topic deleted): those offsets belong to the old log, and the new log's events below them would be skipped
 * as applied. Each such partition is held for its group until `wb offsets rebaseline`. Recorded here because the
 * consumers notice it on their own only while the new log is shorter than the old stored offset.
 */
async function holdRecreated({ app, options, print }: CommandContext, created: string[]): Promise<void> {
  if (created.length === 0) return;
  const nest = await app();
  const offsets = nest.get(OffsetRepository);
  const holds = nest.get(PartitionHoldRepository);
  try {
    for (const topic of created) {
      const stored = await offsets.ofTopic(topic);
      for (const s of stored) {
        await holds.hold({
          groupId: s.groupId,
          topic,
          partition: s.partition,
          storedOffset: s.nextOffset,
          logStart: 0,
          logEnd: 0,
          reason: 'topic created by wb topics while offsets of an older log were stored',
          heldBy: `wb topics (${actor(options['actor'])})`,
        });
      }
      for (const groupId of new Set(stored.map((s) => s.groupId))) {
        print(
          `topics: HELD ${topic} for group ${groupId}: Postgres has offsets of an older log of this topic; the ` +
            `consumers apply nothing there until \`wb offsets rebaseline --topic ${topic} --group ${groupId}\``,
        );
      }
    }
  } catch (error) {
    // Before the first migration there is nothing stored to hold.
    if ((error as { code?: string }).code === '42P01') return;
    print(
      `topics: WARNING could not check Postgres for offsets of an older log of ${created.join(', ')}: ` +
        `${(error as Error).message}. If these topics existed before, run \`wb offsets rebaseline\` for them`,
    );
  }
}
