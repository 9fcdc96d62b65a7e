import { Database } from '@app/db';
import { KafkaAdmin } from '@app/kafka';
import { AuditRepository, OffsetRepository, PartitionHoldRepository } from '@app/store';
import { type Command, type CommandContext, EXIT, RefusedError, UsageError } from './command.js';
import { table } from './format.js';
import { actor, parsePartitions, resolveTopics, stringOption } from './targets.js';

interface RebaselineRow {
  topic: string;
  partition: number;
  /** The offset stored in Postgres now (undefined: the group never applied this partition). */
  from: number | undefined;
  /** The stored offset after the command: the log start when re-baselined. */
  to: number | undefined;
  logStart: number;
  logEnd: number;
  held: boolean;
  action: 'rebaseline' | 'none';
  /** Events of the new log the consumers apply once it is re-baselined. */
  toApply: number;
  why: string;
}

export const offsetsCommand: Command = {
  name: 'offsets',
  summary: 're-baseline the offsets stored in Postgres of a recreated topic (they belong to its older log)',
  usage: 'wb offsets rebaseline --topic T [--partitions 0,3] [--group G] [--force] [--execute] [--actor NAME] [--json]',
  options: {
    topic: { type: 'string', description: 'counters, activities or a topic name' },
    partitions: { type: 'string', description: 'comma-separated partitions (default all)' },
    group: { type: 'string', description: 'consumer group (default CONSUMER_GROUP_ID)' },
    force: {
      type: 'boolean',
      description: 'also partitions whose stored offset is inside the log (the new log grew past it); no members',
    },
    execute: { type: 'boolean', description: 'carry the plan out (default: print it only)' },
    actor: { type: 'string', description: 'who runs this, for the audit log (default user@host)' },
  },
  run: async (context) => {
    const [sub] = context.positionals;
    if (sub === 'rebaseline') return rebaseline(context);
    throw new UsageError(
      sub === undefined ? 'offsets needs a subcommand: rebaseline' : `unknown offsets subcommand: ${sub}`,
    );
  },
};

/**
 * After a topic was recreated (or the broker's data lost), the offsets Postgres stored for it belong to the old log:
 * the consumers hold those partitions rather than skip the new log's events below them. This sets each stored
 * offset to the new log's start and releases the hold, in one transaction; the consumers then apply the new log
 * from its start (event ids already applied, say by the write-through fallback, are deduplicated by the ledger).
 * A dry run unless --execute; recorded in ops_audit either way.
 */
async function rebaseline(context: CommandContext): Promise<number> {
  const { config, options, json, print, note } = context;
  const topicName = stringOption(options, 'topic');
  if (topicName === undefined) throw new UsageError('--topic is required (counters, activities or a topic name)');
  const [topic = topicName] = resolveTopics(config, [topicName]);
  const groupId = stringOption(options, 'group') ?? config.consumer.groupId;
  const wanted = parsePartitions(stringOption(options, 'partitions'));
  const force = options['force'] === true;
  const execute = options['execute'] === true;
  const who = actor(options['actor']);
  const nest = await context.app();
  const audit = nest.get(AuditRepository);
  const offsets = nest.get(OffsetRepository);
  const holds = nest.get(PartitionHoldRepository);
  const admin = nest.get(KafkaAdmin);
  const args = { groupId, topic, partitions: wanted, force, execute };
  const refuse = async (why: string, plan: RebaselineRow[] | null = null): Promise<never> => {
    await audit.record({ actor: who, command: 'offsets rebaseline', args, plan, outcome: `refused: ${why}` });
    throw new RefusedError(why);
  };

  const log = await admin.partitionOffsets(topic);
  const unknown = (wanted ?? []).filter((p) => !log.some((l) => l.partition === p));
  if (unknown.length > 0) await refuse(`${topic} has no partition ${unknown.join(', ')} (it has ${log.length})`);
  if (force && (await admin.describeGroup(groupId)).members.length > 0) {
    await refuse(
      `group ${groupId} has running members: stop its consumers before --force (a held partition needs no --force)`,
    );
  }
  const stored = new Map(
    (await offsets.all(groupId)).filter((o) => o.topic === topic).map((o) => [o.partition, o.nextOffset]),
  );
  const held = new Map((await holds.list(groupId, topic)).map((h) => [h.partition, h]));
  const plan = log
    .filter((l) => wanted === undefined || wanted.includes(l.partition))
    .map(({ partition, low, high }): RebaselineRow => {
      const from = stored.get(partition);
      const hold = held.get(partition);
      const row = { topic, partition, from, logStart: low, logEnd: high, held: hold !== undefined };
      const rebase = (why: string): RebaselineRow => ({
        ...row,
        to: low,
        action: 'rebaseline',
        toApply: high - low,
        why,
      });
      const keep = (why: string): RebaselineRow => ({ ...row, to: from, action: 'none', toApply: 0, why });
      if (from === undefined) return keep('nothing stored: the consumers start this partition at the log start');
      if (hold) return rebase(`held since ${hold.heldAt.toISOString()} (${hold.reason})`);
      if (from > high) return rebase(`stored offset ${from} is beyond the log end ${high}`);
      if (force) return rebase('--force');
      return keep(
        `stored offset ${from} is inside the log (${low} to ${high}) and no hold is recorded: nothing says it ` +
          'belongs to an older log (--force if the topic was recreated and has grown past it)',
      );
    });
  printPlan(context, groupId, plan, execute);
  const moves = plan.filter((p) => p.action === 'rebaseline');
  const refusedAsked = wanted === undefined ? [] : plan.filter((p) => p.action === 'none' && p.from !== undefined);
  if (refusedAsked.length > 0) {
    await refuse(refusedAsked.map((p) => `${p.topic}/${p.partition}: ${p.why}`).join('; '), plan);
  }
  if (moves.length === 0) await refuse(`nothing to re-baseline on ${topic} for group ${groupId}`, plan);
  if (!execute) {
    await audit.record({ actor: who, command: 'offsets rebaseline', args, plan, outcome: 'dry-run' });
    if (!json) note('dry run: nothing changed. Add --execute to carry the plan out.');
    return EXIT.ok;
  }
  await nest.get(Database).db.tx(async (t) => {
    for (const move of moves) {
      await offsets.rebaseline(t, groupId, topic, move.partition, move.logStart);
      await holds.release(t, groupId, topic, move.partition);
    }
  });
  const outcome = `executed: ${moves.length} partition(s) re-baselined to the log start`;
  await audit.record({ actor: who, command: 'offsets rebaseline', args, plan, outcome });
  if (json) print(JSON.stringify({ executed: true, rebaselined: moves.length }));
  else
    print(
      `${outcome}; running consumers resume them within a second, and apply ${moves.reduce((n, m) => n + m.toApply, 0)} event(s)`,
    );
  return EXIT.ok;
}

function printPlan({ json, print }: CommandContext, groupId: string, plan: RebaselineRow[], execute: boolean): void {
  if (json) {
    print(JSON.stringify({ group: groupId, execute, plan }));
    return;
  }
  print(`re-baseline plan for group ${groupId}${execute ? '' : ' (dry run)'}:`);
  print(
    table(
      ['topic', 'partition', 'stored', 'log start', 'log end', 'held', 'new stored', 'to apply', 'why'],
      plan.map((p) => [
        p.topic,
        p.partition,
        p.from ?? '-',
        p.logStart,
        p.logEnd,
        p.held ? 'yes' : 'no',
        p.action === 'rebaseline' ? (p.to ?? '-') : 'unchanged',
        p.toApply,
        p.why,
      ]),
    ),
  );
}
