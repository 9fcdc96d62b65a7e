import { setTimeout as sleep } from 'node:timers/promises';
import { KafkaAdmin } from '@app/kafka';
import { type Command, UsageError } from './command.js';

export const waitKafkaCommand: Command = {
  name: 'wait-kafka',
  summary: 'wait until a Kafka broker answers metadata requests (exit 1 after --timeout seconds, default 60)',
  options: { timeout: { type: 'string', description: 'seconds to wait' } },
  run: async ({ config, app, options, print }) => {
    const seconds = Number(options['timeout'] ?? 60);
    if (!Number.isFinite(seconds) || seconds <= 0) throw new UsageError('--timeout must be a positive number');
    const admin = (await app()).get(KafkaAdmin);
    const deadline = Date.now() + seconds * 1000;
    let lastError: unknown;
    while (Date.now() < deadline) {
      try {
        const cluster = await admin.ping();
        print(`kafka: ${cluster.brokers} broker(s) at ${config.kafka.brokers.join(',')} answer`);
        return;
      } catch (error) {
        lastError = error;
        await sleep(500);
      }
    }
    throw new Error(`kafka at ${config.kafka.brokers.join(',')} did not answer within ${seconds}s`, {
      cause: lastError,
    });
  },
};
