import type { KafkaMessage } from 'kafkajs';

export interface ChunkLimits {
  maxEvents: number;
  maxBytes: number;
}

/** What a message weighs against the byte bound: its value and key, which is what the transaction carries. */
export function messageBytes(message: KafkaMessage): number {
  return (message.value?.length ?? 0) + (message.key?.length ?? 0);
}

/**
 * Splits a fetched batch into the units applied in one Postgres transaction each, in offset order: at most
 * `maxEvents` messages and `maxBytes` bytes, except that a single larger message still makes a unit of its own.
 */
export function chunkMessages(messages: readonly KafkaMessage[], limits: ChunkLimits): KafkaMessage[][] {
  const chunks: KafkaMessage[][] = [];
  let current: KafkaMessage[] = [];
  let bytes = 0;
  for (const message of messages) {
    const size = messageBytes(message);
    if (current.length > 0 && (current.length >= limits.maxEvents || bytes + size > limits.maxBytes)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(message);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}
