import { KafkaAdmin } from '@app/kafka';
import { LagMonitor } from '@app/lag';
import { PartitionHoldRepository } from '@app/store';
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
    const [lag, group, allHolds] = await Promise.all([
      context.get(LagMonitor).snapshot(groupId, topics),
      context.get(KafkaAdmin).describeGroup(groupId),
      context.get(PartitionHoldRepository).list(groupId),
    ]);
    const holds = allHolds.filter((h) => topics.includes(h.topic));
    if (json) {
      print(JSON.stringify({ group: groupId, state: group.state, members: group.members, partitions: lag, holds }));
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
    for (const h of holds) {
      print(
        `HELD ${h.topic}/${h.partition} since ${h.heldAt.toISOString()}: stored offset ${h.storedOffset} belongs to an ` +
          `older log (log ${h.logStart} to ${h.logEnd} then); nothing is applied there until ` +
          `\`wb offsets rebaseline --topic ${h.topic} --partitions ${h.partition}\``,
      );
    }
  },
};
