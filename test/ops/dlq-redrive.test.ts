import { EventLoad, TestStack, readTopic, runCli } from '@app/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * `wb dlq redrive` sends each dead letter back once, also when `--error-class` selects letters that lie after
 * letters of another class: no later redrive, filtered or not, sends a letter again. The letters are written
 * straight to the dead-letter topic (as the consumer writes them) and no consumer runs: what the redrives send is
 * read back from the change-event topic.
 */
describe('ops CLI: dead-letter redrive with a class filter', () => {
  let stack: TestStack;
  let load: EventLoad;
  const dlq = () => `${stack.topics.counters}.dlq`;
  /** Class of each letter, in the order they sit on dead-letter partition 0. */
  const classes = ['constraint-violation', 'data-exception', 'constraint-violation', 'data-exception'];

  beforeAll(async () => {
    stack = await TestStack.create();
    load = new EventLoad(stack.kafka, stack.topics);
    await load.connect();
    const events = classes.map((_, i) => load.counterEvent(`redrive-${i}`, 1));
    await load.sendRaw([
      {
        topic: dlq(),
        messages: events.map((event, i) => ({
          key: event.key,
          value: JSON.stringify(event),
          partition: 0,
          headers: {
            'dlq-error-class': classes[i] ?? '',
            'dlq-error-message': 'made by the test',
            'dlq-attempts': '1',
            'dlq-original-topic': stack.topics.counters,
            'dlq-original-partition': '0',
            'dlq-original-offset': String(i),
            'dlq-first-failed-at': new Date().toISOString(),
          },
        })),
      },
    ]);
  });
  afterAll(async () => {
    await load?.disconnect();
    await stack?.dispose();
  });

  const redrive = async (...args: string[]) => {
    const result = await runCli(stack.env, ['dlq', 'redrive', '--execute', '--json', ...args]);
    expect(result.code, result.output).toBe(0);
    return result.json<{ redriven: number }>().redriven;
  };

  it('sends every letter back exactly once across filtered and unfiltered redrives', async () => {
    expect(await redrive('--error-class', 'constraint-violation')).toBe(2);
    // The same filter again: nothing is left of that class.
    expect(await redrive('--error-class', 'constraint-violation')).toBe(0);
    // Everything else: only the two data-exception letters.
    expect(await redrive()).toBe(2);
    expect(await redrive()).toBe(0);

    const sent = (await readTopic(stack.kafka, stack.topics.counters)).filter((m) => m.headers['redriven-from']);
    const perLetter = new Map<string, number>();
    for (const m of sent) {
      const from = m.headers['redriven-from'] ?? '';
      perLetter.set(from, (perLetter.get(from) ?? 0) + 1);
    }
    expect(Object.fromEntries(perLetter)).toEqual({
      [`${dlq()}/0/0`]: 1,
      [`${dlq()}/0/1`]: 1,
      [`${dlq()}/0/2`]: 1,
      [`${dlq()}/0/3`]: 1,
    });

    const audit = await stack.query<{ outcome: string }>(
      "SELECT outcome FROM ops_audit WHERE command = 'dlq redrive' ORDER BY id",
    );
    expect(audit.map((a) => a.outcome)).toEqual([
      'executed: 2 letter(s) sent back',
      'executed: 0 letter(s) sent back',
      'executed: 2 letter(s) sent back',
      'executed: 0 letter(s) sent back',
    ]);
  });
});
