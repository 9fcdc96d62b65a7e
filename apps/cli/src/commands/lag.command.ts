import { KafkaAdmin } from '@app/kafka';
import { LagMonitor } from '@app/lag';
import type { Command } from './command.js';
import { duration, table } from './format.js';
import { listOption, resolveTopics, stringOption } from './targets.js';

export const lagCommand: Command = {
  name: 'lag',
  summary: 'consumer lag per topic and partition: committed, applied and end offsets, lag in messages and seconds',
  usage: 'wb lag [--group G] [--topic counters|activities|<name>]... [--json]',
  options: {
    group: { type: 'string', description: 'consumer group (default CONSUMER_GROUP_ID)' },
    topic: { type: 'string', multiple: true, description: 'topic (default both change-event topics)' },
  },
  run: async ({ config, app, options, json, print }) => {
    const context = await app();
    const groupId = stringOption(options, 'group') ?? config.consumer.groupId;
    const topics = resolveTopics(config, listOption(options, 'topic'));
    const [lag, group] = await Promise.all([
      context.get(LagMonitor).snapshot(groupId, topics),
      context.get(KafkaAdmin).describeGroup(groupId),
    ]);
    if (json) {
      print(JSON.stringify({ group: groupId, state: group.state, members: group.members, partitions: lag }));
      return;
    }
    print(
      `group ${groupId}: ${group.state}, ${group.members.length} member(s)${group.members.length ? ` (${group.members.map((m) => `${m.clientId}@${m.host}`).join(', ')})` : ''}`,
    );
    print(
      table(
        ['topic', 'partition', 'committed', 'applied', 'end', 'lag', 'lag age'],
        lag.map((p) => [
          p.topic,
          p.partition,
          p.committedOffset ?? '-',
          p.appliedOffset ?? '-',
          p.endOffset,
          p.lagMessages,
          duration(p.lagSeconds),
        ]),
      ),
    );
    const total = lag.reduce((n, p) => n + p.lagMessages, 0);
    const oldest = Math.max(0, ...lag.map((p) => p.lagSeconds));
    print(`total lag: ${total} message(s), oldest unapplied ${duration(oldest)} old`);
  },
};
