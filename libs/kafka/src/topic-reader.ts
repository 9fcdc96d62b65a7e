import type { IHeaders, Kafka } from 'kafkajs';

export interface ReadMessage {
  topic: string;
  partition: number;
  offset: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, string>;
  timestamp: number;
}

export interface ReadOptions {
  /**
   * The consumer group to read with. Its committed offsets say where to start (the beginning if none), and
   * it is left where it started: `read` commits nothing. Default: a throwaway group, deleted afterwards.
   */
  groupId?: string;
  /** Give up when the log end is not reached by then (default 60 s). */
  timeoutMs?: number;
}

/**
 * Reads a topic from its group position (or the beginning) up to the end offsets it had when called, with a
 * kafkajs consumer (kafkajs has no manual partition assignment). Returns the messages in offset order per
 * partition, and the end offset of each partition, so that a caller can commit exactly what it read.
 */
export async function readToEnd(
  kafka: Kafka,
  topic: string,
  options: ReadOptions = {},
): Promise<{ messages: ReadMessage[]; ends: Map<number, number> }> {
  const admin = kafka.admin();
  await admin.connect();
  const groupId = options.groupId ?? `wb-reader-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    const ends = new Map(offsets.map((o) => [o.partition, Number(o.high)]));
    const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
    const starts = new Map(
      offsets.map((o) => {
        const c = Number(committed?.partitions.find((p) => p.partition === o.partition)?.offset ?? -1);
        return [o.partition, Math.max(Number(o.low), c)] as const;
      }),
    );
    const wanted = [...ends].reduce((n, [p, end]) => n + Math.max(0, end - (starts.get(p) ?? 0)), 0);
    const messages: ReadMessage[] = [];
    if (wanted > 0) {
      const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100, allowAutoTopicCreation: false });
      await consumer.connect();
      try {
        await consumer.subscribe({ topic, fromBeginning: true });
        let seen = 0;
        let done: () => void = () => undefined;
        const finished = new Promise<void>((resolve) => (done = resolve));
        await consumer.run({
          autoCommit: false,
          eachMessage: async ({ partition, message }) => {
            const offset = Number(message.offset);
            if (offset < (starts.get(partition) ?? 0) || offset >= (ends.get(partition) ?? 0)) return;
            messages.push({
              topic,
              partition,
              offset,
              key: message.key,
              value: message.value,
              headers: headersOf(message.headers),
              timestamp: Number(message.timestamp),
            });
            if (++seen >= wanted) done();
          },
        });
        const timeoutMs = options.timeoutMs ?? 60_000;
        let timer: NodeJS.Timeout | undefined;
        const timedOut = new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`read ${seen} of ${wanted} messages of ${topic} in ${timeoutMs} ms`)),
            timeoutMs,
          );
        });
        await Promise.race([finished, timedOut]).finally(() => clearTimeout(timer));
      } finally {
        await consumer.disconnect();
      }
    }
    if (options.groupId === undefined) await admin.deleteGroups([groupId]).catch(() => undefined);
    messages.sort((a, b) => a.partition - b.partition || a.offset - b.offset);
    return { messages, ends };
  } finally {
    await admin.disconnect();
  }
}

function headersOf(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    out[name] = Array.isArray(value) ? value.map(String).join(',') : String(value);
  }
  return out;
}
