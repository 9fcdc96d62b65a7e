import { connect } from 'node:net';
import { existsSync } from 'node:fs';
import { appEntry, baseEnv } from '@app/testing';

function answers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 2000 });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}

/** Fails the run at once, with the fix, when the stack is not up, instead of 50 timeouts. */
export default async function setup(): Promise<void> {
  const env = baseEnv();
  const broker = env.KAFKA_BROKERS.split(',')[0] ?? '';
  const pg = new URL(env.DATABASE_URL);
  const redis = new URL(env.REDIS_URL);
  const targets: [string, string, number][] = [
    ['Kafka', broker.split(':')[0] ?? '', Number(broker.split(':')[1])],
    ['Postgres', pg.hostname, Number(pg.port || 5432)],
    ['Redis', redis.hostname, Number(redis.port || 6379)],
  ];
  const down = [];
  for (const [name, host, port] of targets) if (!(await answers(host, port))) down.push(`${name} at ${host}:${port}`);
  if (down.length > 0) {
    throw new Error(
      `not answering: ${down.join(', ')}. Run \`npm test\` (it brings the stack up) or scripts/stack.sh up.`,
    );
  }
  for (const app of ['api', 'consumer'] as const) {
    if (!existsSync(appEntry(app)))
      throw new Error(`${appEntry(app)} is missing: run \`npm run build\` (npm test does).`);
  }
}
