import type { KafkaAdmin } from '@app/kafka';
import type { LagMonitor } from '@app/lag';
import type { OffsetRepository } from '@app/store';
import { RefusedError } from './command.js';

export type ReplayTarget = { kind: 'datetime'; at: number } | { kind: 'offset'; offset: number } | { kind: 'earliest' };

export interface PartitionPlan {
  topic: string;
  partition: number;
  /** Where the group stands now: Kafka's committed offset, else the log start. */
  from: number;
  /** Where it will stand: the first message to re-read. */
  to: number;
  end: number;
  /** Postgres' applied offset: messages below it are skipped when re-read (no-ops). */
  applied: number | undefined;
  /** Messages between `to` and `from` that the group reads again. */
  reread: number;
  /** Of all the messages from `to` to the end, those already applied (no-ops) and those still to apply. */
  alreadyApplied: number;
  toApply: number;
  /** Timestamps (ms) of the first re-read message and of the last one before `from`; null when nothing is re-read. */
  span: { first: number; last: number } | null;
}

/**
 * The plan of a replay, partition by partition, read-only. Refuses (RefusedError) what cannot be done as
 * asked: an unknown group, a topic without partitions, a partition out of range, a time in the future, an
 * offset past the end.
 */
export async function planReplay(
  deps: { admin: KafkaAdmin; lag: LagMonitor; offsets: OffsetRepository },
  request: { groupId: string; topics: string[]; partitions: number[] | undefined; target: ReplayTarget; now: number },
): Promise<PartitionPlan[]> {
  const { admin, lag, offsets } = deps;
  const { groupId, topics, target, now } = request;
  if (target.kind === 'datetime' && target.at > now) {
    throw new RefusedError(`--to-datetime ${new Date(target.at).toISOString()} is in the future`);
  }
  const applied = new Map((await offsets.all(groupId)).map((o) => [`${o.topic}/${o.partition}`, o.nextOffset]));
  const group = await admin.describeGroup(groupId);
  const plans: PartitionPlan[] = [];
  let known = applied.size > 0 || group.members.length > 0;
  for (const topic of topics) {
    const log = await admin.partitionOffsets(topic).catch((error: unknown) => {
      throw new RefusedError(`topic ${topic}: ${(error as Error).message}`);
    });
    if (log.length === 0) throw new RefusedError(`topic ${topic} has no partitions (does it exist?)`);
    const committed = await admin.committedOffsets(groupId, topic);
    if ([...committed.values()].some((c) => c !== undefined)) known = true;
    const wanted = request.partitions ?? log.map((p) => p.partition);
    const outOfRange = wanted.filter((p) => !log.some((l) => l.partition === p));
    if (outOfRange.length > 0) {
      throw new RefusedError(
        `topic ${topic} has partitions 0..${log.length - 1}; no partition ${outOfRange.join(', ')}`,
      );
    }
    const byTime = target.kind === 'datetime' ? await admin.offsetsAtTime(topic, target.at) : undefined;
    for (const { partition, low, high } of log.filter((l) => wanted.includes(l.partition))) {
      let to: number;
      if (target.kind === 'earliest') to = low;
      else if (target.kind === 'offset') {
        if (target.offset > high) {
          throw new RefusedError(`${topic}/${partition}: --to-offset ${target.offset} is past the end (${high})`);
        }
        to = Math.max(low, target.offset);
      } else to = Math.max(low, byTime?.get(partition) ?? high);
      const from = Math.min(high, Math.max(low, committed.get(partition) ?? low));
      const done = applied.get(`${topic}/${partition}`);
      const alreadyApplied = Math.max(0, Math.min(done ?? to, high) - to);
      const reread = Math.max(0, from - to);
      const span =
        reread > 0
          ? {
              first: await lag.timestampAt(topic, partition, to, now),
              last: await lag.timestampAt(topic, partition, from - 1, now),
            }
          : null;
      // Whatever the target, applying resumes at Postgres' offset: below it a re-read is a no-op, and above it
      // the consumer seeks back to it (nothing unapplied is ever skipped).
      const toApply = Math.max(0, high - (done ?? to));
      plans.push({ topic, partition, from, to, end: high, applied: done, reread, alreadyApplied, toApply, span });
    }
  }
  if (!known) {
    throw new RefusedError(
      `consumer group ${groupId} is unknown: no members, no committed offsets, nothing applied in Postgres`,
    );
  }
  return plans;
}
