import type { KafkaMessage } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { chunkMessages } from './chunk.js';

const message = (offset: number, bytes = 10): KafkaMessage => ({
  offset: String(offset),
  key: null,
  value: Buffer.alloc(bytes),
  timestamp: '0',
  attributes: 0,
  headers: {},
});

const offsets = (chunks: KafkaMessage[][]) => chunks.map((c) => c.map((m) => Number(m.offset)));

describe('chunkMessages', () => {
  it('bounds each chunk by count, in offset order', () => {
    const messages = Array.from({ length: 7 }, (_, i) => message(i));
    expect(offsets(chunkMessages(messages, { maxEvents: 3, maxBytes: 1_000_000 }))).toEqual([
      [0, 1, 2],
      [3, 4, 5],
      [6],
    ]);
  });

  it('bounds each chunk by bytes, and a single larger message still makes its own chunk', () => {
    const messages = [message(0, 40), message(1, 40), message(2, 200), message(3, 10)];
    expect(offsets(chunkMessages(messages, { maxEvents: 100, maxBytes: 100 }))).toEqual([[0, 1], [2], [3]]);
  });

  it('returns nothing for nothing', () => {
    expect(chunkMessages([], { maxEvents: 10, maxBytes: 10 })).toEqual([]);
  });
});
