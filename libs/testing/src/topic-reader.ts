import { type ChangeEvent, decodeRecord } from '@app/events';
import { TRACEPARENT_HEADER } from '@app/platform';
import type { Kafka } from 'kafkajs';
import { uniqueName } from './env.js';
import { waitFor } from './wait-for.js';

export interface ReadMessage {
  partition: number;
  offset: string;
  key: string | null;
  value: Buffer | null;
  headers: Record<string, string>;
}

/**
 * Every message of `topic` up to its current end, read with a throwaway consumer group (nothing committed
 * anywhere that matters). For assertions on what reached Kafka.
 */
export async function readTopic(kafka: Kafka, topic: string, timeoutMs = 60_000): Promise<ReadMessage[]> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const expected = ends.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
  const messages: ReadMessage[] = [];
  if (expected === 0) return messages;
  const groupId = uniqueName('reader');
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    const high = new Map(ends.map((p) => [p.partition, BigInt(p.high)]));
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        if (BigInt(message.offset) >= (high.get(partition) ?? 0n)) return;
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(message.headers ?? {})) headers[name] = String(value);
        messages.push({
          partition,
          offset: message.offset,
          key: message.key?.toString() ?? null,
          value: message.value,
          headers,
        });
      },
    });
    await waitFor(() => messages.length >= expected, { timeoutMs, description: `${expected} messages of ${topic}` });
  } finally {
    await consumer.disconnect();
    const cleanup = kafka.admin();
    await cleanup.connect();
    await cleanup.deleteGroups([groupId]).catch(() => undefined);
    await cleanup.disconnect();
  }
  return messages;
}

/** An event of a topic, as a record carried it: alone (format v1) or in an envelope with others (v2). */
export interface ReadEvent {
  partition: number;
  offset: string;
  event: ChangeEvent;
  traceparent: string | undefined;
}

/**
 * Every event of `topic` up to its current end, envelopes opened (see readTopic). Throws, naming the record, when a
 * record does not decode: nothing invalid may reach the topic.
 */
export async function readEvents(kafka: Kafka, topic: string, timeoutMs = 60_000): Promise<ReadEvent[]> {
  const events: ReadEvent[] = [];
  for (const m of await readTopic(kafka, topic, timeoutMs)) {
    const decoded = decodeRecord(m.value, m.headers[TRACEPARENT_HEADER]);
    if (!decoded.ok) {
      throw new Error(
        `an invalid record in ${topic}/${m.partition}@${m.offset}: ${decoded.reason}: ${String(m.value)}`,
      );
    }
    for (const { event, traceparent } of decoded.events) {
      events.push({ partition: m.partition, offset: m.offset, event, traceparent });
    }
  }
  return events;
}
