import type { Admin, ITopicConfig } from 'kafkajs';

/** Errors a just-created topic answers with until every broker has applied its metadata (KRaft). */
const NOT_YET = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE']);

/**
 * Creates the topics that do not exist and resolves when every partition of every topic has a leader. kafkajs'
 * own `waitForLeaders` retries only LEADER_NOT_AVAILABLE, but a KRaft broker under load may first answer
 * UNKNOWN_TOPIC_OR_PARTITION ("This server does not host this topic-partition") for a topic it has just created:
 * that failed test setups on a busy machine. Here both mean "not yet", until `timeoutMs`.
 */
export async function createTopicsAndWait(admin: Admin, topics: ITopicConfig[], timeoutMs = 60_000): Promise<void> {
  if (topics.length === 0) return;
  await admin.createTopics({ topics, waitForLeaders: false });
  const wanted = new Map(topics.map((t) => [t.topic, t.numPartitions ?? 1]));
  const deadline = Date.now() + timeoutMs;
  let last: string;
  for (;;) {
    try {
      const { topics: found } = await admin.fetchTopicMetadata({ topics: [...wanted.keys()] });
      const waiting = found.filter(
        (t) =>
          t.partitions.length < (wanted.get(t.name) ?? 1) ||
          t.partitions.some((p) => p.partitionErrorCode !== 0 || p.leader < 0),
      );
      if (found.length === wanted.size && waiting.length === 0) return;
      last = `no leader yet for ${waiting.map((t) => t.name).join(', ') || 'some topics'}`;
    } catch (error) {
      if (!NOT_YET.has((error as { type?: string }).type ?? '')) throw error;
      last = (error as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`topics ${[...wanted.keys()].join(', ')} not ready: ${last}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
