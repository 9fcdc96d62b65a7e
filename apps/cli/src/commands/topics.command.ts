import { KafkaAdmin, topicSpecs } from '@app/kafka';
import type { Command } from './command.js';

export const topicsCommand: Command = {
  name: 'topics',
  summary: 'create the change-event and dead-letter topics that do not exist yet (KAFKA_TOPIC_*)',
  run: async ({ config, app, print }) => {
    const admin = (await app()).get(KafkaAdmin);
    const result = await admin.ensureTopics(topicSpecs(config));
    if (result.created.length > 0) print(`topics: created ${result.created.join(', ')}`);
    if (result.existing.length > 0) print(`topics: already present ${result.existing.join(', ')}`);
    for (const t of result.fewerPartitions) {
      print(`topics: WARNING ${t.topic} has ${t.has} partitions, configured ${t.wanted}; not changed`);
    }
    for (const t of result.otherSettings) {
      print(
        `topics: WARNING ${t.topic} has ${t.name}=${t.has}, the layout says ${t.wanted}; not changed ` +
          '(the consumer checks that its ledger retention covers retention.ms + segment.ms, see docs/runbook.md)',
      );
    }
  },
};
