import { setTimeout as sleep } from 'node:timers/promises';
import { KafkaAdmin } from '@app/kafka';
import { LagMonitor } from '@app/lag';
import { AuditRepository, OffsetRepository, ReplayRequestRepository } from '@app/store';
import { SingleBar } from 'cli-progress';
import { type Command, type CommandContext, EXIT, RefusedError, UsageError } from './command.js';
import { duration, parseDuration, table } from './format.js';
import { type PartitionPlan, type ReplayTarget, planReplay } from './replay.plan.js';
import { actor, listOption, parsePartitions, resolveTopics, stringOption } from './targets.js';

export const replayCommand: Command = {
  name: 'replay',
  summary: "move a consumer group's position back (by time, offset or to the start); dry run unless --execute",
  usage:
    'wb replay (--to-datetime ISO | --ago 90m | --to-offset N | --to-earliest) [--topic T]... [--partitions 0,3]\n' +
    '          [--group G] [--execute [--follow] [--timeout 30s]] [--actor NAME] [--json]',
  options: {
    'to-datetime': { type: 'string', description: 'ISO 8601 date-time: re-read from the first message at or after it' },
    ago: { type: 'string', description: 'a duration (90s, 15m, 2h, 1d): --to-datetime that long ago' },
    'to-offset': { type: 'string', description: 'an offset (applied to every chosen partition)' },
    'to-earliest': { type: 'boolean', description: 'the start of each partition' },
    topic: { type: 'string', multiple: true, description: 'counters, activities or a topic name (default both)' },
    partitions: { type: 'string', description: 'comma-separated partitions (default all)' },
    group: { type: 'string', description: 'consumer group (default CONSUMER_GROUP_ID)' },
    execute: { type: 'boolean', description: 'carry the plan out (default: print it only)' },
    follow: { type: 'boolean', description: 'after --execute, show the catch-up until lag is zero' },
    timeout: { type: 'string', description: 'how long running consumers have to take the replay (default 30s)' },
    actor: { type: 'string', description: 'who runs this, for the audit log (default user@host)' },
  },
  run: async (context) => {
    const { config, app, options, json, print, note } = context;
    const target = parseTarget(options);
    const timeoutMs = parseDuration(stringOption(options, 'timeout') ?? '30s');
    if (timeoutMs === undefined) throw new UsageError('--timeout: a duration such as 30s or 2m');
    const groupId = stringOption(options, 'group') ?? config.consumer.groupId;
    const topics = resolveTopics(config, listOption(options, 'topic'));
    const partitions = parsePartitions(stringOption(options, 'partitions'));
    const execute = options['execute'] === true;
    const who = actor(options['actor']);

    const nest = await app();
    const admin = nest.get(KafkaAdmin);
    const lag = nest.get(LagMonitor);
    const audit = nest.get(AuditRepository);
    const args = { groupId, topics, partitions, target, execute };
    let plan: PartitionPlan[];
    try {
      plan = await planReplay(
        { admin, lag, offsets: nest.get(OffsetRepository) },
        { groupId, topics, partitions, target, now: Date.now() },
      );
    } catch (error) {
      if (error instanceof RefusedError)
        await audit.record({ actor: who, command: 'replay', args, plan: null, outcome: `refused: ${error.message}` });
      throw error;
    }
    printPlan(context, groupId, plan, execute);
    if (!execute) {
      await audit.record({ actor: who, command: 'replay', args, plan, outcome: 'dry-run' });
      if (!json) note('dry run: nothing changed. Add --execute to carry the plan out.');
      return EXIT.ok;
    }
    const moves = plan.filter((p) => p.to !== p.from);
    const group = await admin.describeGroup(groupId);
    let how: string;
    if (moves.length === 0) {
      how = 'nothing to move';
    } else if (group.members.length === 0) {
      // No member: Kafka lets the group's offsets be set directly.
      for (const topic of new Set(moves.map((m) => m.topic))) {
        await admin.setGroupOffsets(
          groupId,
          topic,
          moves.filter((m) => m.topic === topic).map((m) => ({ partition: m.partition, offset: m.to })),
        );
      }
      how = 'offsets set (the group had no members)';
    } else {
      how = await askRunningGroup(
        context,
        nest.get(ReplayRequestRepository),
        groupId,
        who,
        moves,
        timeoutMs,
        async (outcome) => {
          await audit.record({ actor: who, command: 'replay', args, plan, outcome });
        },
      );
      if (how.startsWith('refused')) throw new RefusedError(how);
    }
    await audit.record({ actor: who, command: 'replay', args, plan, outcome: `executed: ${how}` });
    if (json) print(JSON.stringify({ executed: true, how }));
    else print(`executed: ${how}`);
    if (options['follow'] === true) await follow(context, lag, groupId, topics, partitions);
    return EXIT.ok;
  },
};

function parseTarget(options: Record<string, unknown>): ReplayTarget {
  const given = ['to-datetime', 'ago', 'to-offset', 'to-earliest'].filter((name) => options[name] !== undefined);
  if (given.length !== 1) throw new UsageError('give exactly one of --to-datetime, --ago, --to-offset, --to-earliest');
  if (options['to-earliest'] === true) return { kind: 'earliest' };
  const datetime = stringOption(options, 'to-datetime');
  if (datetime !== undefined) {
    const at = Date.parse(datetime);
    if (Number.isNaN(at) || !/\d{4}-\d{2}-\d{2}T/.test(datetime)) {
      throw new UsageError(`--to-datetime: an ISO 8601 date-time such as 2026-11-26T06:00:00Z, not "${datetime}"`);
    }
    return { kind: 'datetime', at };
  }
  const ago = stringOption(options, 'ago');
  if (ago !== undefined) {
    const ms = parseDuration(ago);
    if (ms === undefined) throw new UsageError(`--ago: a duration such as 90s, 15m, 2h or 1d, not "${ago}"`);
    return { kind: 'datetime', at: Date.now() - ms };
  }
  const offset = stringOption(options, 'to-offset') ?? '';
  if (!/^\d+$/.test(offset)) throw new UsageError(`--to-offset: a non-negative integer, not "${offset}"`);
  return { kind: 'offset', offset: Number(offset) };
}

function printPlan({ json, print }: CommandContext, groupId: string, plan: PartitionPlan[], execute: boolean): void {
  if (json) {
    print(JSON.stringify({ group: groupId, execute, plan }));
    return;
  }
  print(`replay plan for group ${groupId}${execute ? '' : ' (dry run)'}:`);
  print(
    table(
      ['topic', 'partition', 'from', 'to', 're-read', 'already applied', 'to apply', 'span'],
      plan.map((p) => [
        p.topic,
        p.partition,
        p.from,
        p.to,
        p.reread,
        p.alreadyApplied,
        p.toApply,
        p.span
          ? `${new Date(p.span.first).toISOString()} .. ${new Date(p.span.last).toISOString()} (${duration((p.span.last - p.span.first) / 1000)})`
          : '-',
      ]),
    ),
  );
  const reread = plan.reduce((n, p) => n + p.reread, 0);
  const noops = plan.reduce((n, p) => n + p.alreadyApplied, 0);
  print(
    `${reread} message(s) re-read; ${noops} already applied in Postgres (no-ops when re-read); ${plan.reduce((n, p) => n + p.toApply, 0)} to apply`,
  );
}

/**
 * A group with members: Kafka refuses to move its offsets from outside, so the members seek themselves. The
 * requests go to Postgres; each member seeks the partitions it owns and acknowledges. Requests not taken in
 * time are withdrawn and the replay is refused (nothing half-done stays queued for later).
 */
async function askRunningGroup(
  { note }: CommandContext,
  requests: ReplayRequestRepository,
  groupId: string,
  who: string,
  moves: PartitionPlan[],
  timeoutMs: number,
  onRefused: (outcome: string) => Promise<void>,
): Promise<string> {
  const ids = await requests.create(
    groupId,
    who,
    moves.map((m) => ({ topic: m.topic, partition: m.partition, targetOffset: m.to })),
  );
  note(`asked the running members of ${groupId} to seek ${ids.length} partition(s)...`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await requests.unacknowledged(ids);
    if (open.length === 0) return `${ids.length} partition(s) sought by the running members`;
    if (Date.now() > deadline) {
      await requests.cancel(open.map((r) => r.id));
      const taken = ids.length - open.length;
      const outcome =
        `refused: no member took ${open.map((r) => `${r.topic}/${r.partition}`).join(', ')} within ${duration(timeoutMs / 1000)} ` +
        `(${taken} other partition(s) were sought); is the group rebalancing or are its consumers too old for replays? Run again when \`wb lag\` shows it stable`;
      await onRefused(outcome);
      return outcome;
    }
    await sleep(250);
  }
}

async function follow(
  { json, note }: CommandContext,
  lag: LagMonitor,
  groupId: string,
  topics: string[],
  partitions: number[] | undefined,
): Promise<void> {
  const pick = async () =>
    (await lag.snapshot(groupId, topics)).filter((p) => partitions === undefined || partitions.includes(p.partition));
  // Progress of the group's read position (Kafka's committed offset): a replay re-reads messages that Postgres
  // has already applied, so the applied lag alone would show nothing to do.
  const behind = (parts: Awaited<ReturnType<typeof pick>>) =>
    parts.reduce((n, p) => n + p.endOffset - Math.min(p.committedOffset ?? p.position, p.position), 0);
  const first = await pick();
  const total = Math.max(1, behind(first));
  const bar = json
    ? undefined
    : new SingleBar({ format: 'catching up [{bar}] {value}/{total} applied, lag {lag}', stream: process.stderr });
  bar?.start(total, 0, { lag: total });
  for (let current = first; ; current = await pick()) {
    const remaining = behind(current);
    bar?.update(Math.max(0, total - remaining), { lag: remaining });
    if (remaining === 0) break;
    await sleep(1000);
  }
  bar?.stop();
  note('caught up: lag is zero');
}
