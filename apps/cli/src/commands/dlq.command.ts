import { AppConfig } from '@app/config';
import { KafkaClient, KafkaProducer, type ReadMessage, deadLetterTopic, readToEnd } from '@app/kafka';
import { AuditRepository, RedriveRepository, letterKey } from '@app/store';
import { type Command, type CommandContext, EXIT, UsageError } from './command.js';
import { table } from './format.js';
import { actor, listOption, resolveTopics, stringOption } from './targets.js';

/** The headers the consumer puts on a dead letter (apps/consumer/src/apply/dead-letter.producer.ts). */
const H = {
  errorClass: 'dlq-error-class',
  message: 'dlq-error-message',
  attempts: 'dlq-attempts',
  topic: 'dlq-original-topic',
  partition: 'dlq-original-partition',
  offset: 'dlq-original-offset',
  firstFailedAt: 'dlq-first-failed-at',
} as const;

/** Where a redrive starts reading: this group's committed offset on the dead-letter topic (first letter not sent). */
const redriveGroup = (groupId: string) => `${groupId}.dlq-redrive`;

export const dlqCommand: Command = {
  name: 'dlq',
  summary: 'dead letters: list (counts by reason), show (messages with headers), redrive (back to their topic)',
  usage:
    'wb dlq list [--topic T]... [--json]\n' +
    '       wb dlq show [--topic T]... [--error-class C] [--limit 20] [--json]\n' +
    '       wb dlq redrive [--topic T]... [--error-class C] [--execute] [--actor NAME] [--json]',
  options: {
    topic: {
      type: 'string',
      multiple: true,
      description: 'source topic: counters, activities or a name (default both)',
    },
    'error-class': { type: 'string', description: 'only letters of this error class' },
    limit: { type: 'string', description: 'show: how many messages (default 20)' },
    execute: { type: 'boolean', description: 'redrive: send them (default: dry run)' },
    actor: { type: 'string', description: 'who runs this, for the audit log (default user@host)' },
  },
  run: async (context) => {
    const [sub] = context.positionals;
    if (sub === 'list') return list(context);
    if (sub === 'show') return show(context);
    if (sub === 'redrive') return redrive(context);
    throw new UsageError(
      sub === undefined ? 'dlq needs a subcommand: list, show or redrive' : `unknown dlq subcommand: ${sub}`,
    );
  },
};

async function letters(context: CommandContext, fromGroup: string | undefined) {
  const nest = await context.app();
  const kafka = nest.get(KafkaClient).kafka;
  const only = stringOption(context.options, 'error-class');
  const out: { dlq: string; read: Awaited<ReturnType<typeof readToEnd>> }[] = [];
  for (const topic of resolveTopics(nest.get(AppConfig), listOption(context.options, 'topic'))) {
    const dlq = deadLetterTopic(topic);
    const read = await readToEnd(kafka, dlq, fromGroup === undefined ? {} : { groupId: fromGroup });
    out.push({ dlq, read });
  }
  const matches = (m: ReadMessage) => only === undefined || m.headers[H.errorClass] === only;
  return out.map(({ dlq, read }) => ({
    dlq,
    ends: read.ends,
    all: read.messages,
    selected: read.messages.filter(matches),
  }));
}

async function list(context: CommandContext): Promise<number> {
  const rows: { topic: string; errorClass: string; count: number; oldest: string; newest: string; sample: string }[] =
    [];
  for (const { dlq, selected } of await letters(context, undefined)) {
    const byClass = new Map<string, ReadMessage[]>();
    for (const m of selected) {
      const key = m.headers[H.errorClass] ?? 'unknown';
      byClass.set(key, [...(byClass.get(key) ?? []), m]);
    }
    for (const [errorClass, messages] of byClass) {
      const times = messages.map((m) => m.timestamp);
      rows.push({
        topic: dlq,
        errorClass,
        count: messages.length,
        oldest: new Date(Math.min(...times)).toISOString(),
        newest: new Date(Math.max(...times)).toISOString(),
        sample: (messages[0]?.headers[H.message] ?? '').slice(0, 80),
      });
    }
  }
  if (context.json) context.print(JSON.stringify({ deadLetters: rows }));
  else if (rows.length === 0) context.print('no dead letters');
  else
    context.print(
      table(
        ['dead-letter topic', 'error class', 'count', 'oldest', 'newest', 'reason (first)'],
        rows.map((r) => [r.topic, r.errorClass, r.count, r.oldest, r.newest, r.sample]),
      ),
    );
  return EXIT.ok;
}

async function show(context: CommandContext): Promise<number> {
  const limitText = stringOption(context.options, 'limit') ?? '20';
  if (!/^\d+$/.test(limitText)) throw new UsageError('--limit: a number');
  const limit = Number(limitText);
  const shown = (await letters(context, undefined))
    .flatMap(({ dlq, selected }) => selected.map((m) => ({ dlq, m })))
    .slice(0, limit);
  const view = shown.map(({ dlq, m }) => ({
    deadLetterTopic: dlq,
    partition: m.partition,
    offset: m.offset,
    key: m.key?.toString('utf8') ?? null,
    headers: m.headers,
    value: m.value?.toString('utf8') ?? null,
  }));
  if (context.json) {
    context.print(JSON.stringify({ messages: view }));
    return EXIT.ok;
  }
  for (const v of view) {
    context.print(`${v.deadLetterTopic} ${v.partition}/${v.offset} key=${v.key ?? '-'}`);
    for (const [name, value] of Object.entries(v.headers)) context.print(`  ${name}: ${value}`);
    context.print(`  value: ${(v.value ?? '').slice(0, 500)}`);
  }
  if (view.length === 0) context.print('no dead letters');
  return EXIT.ok;
}

/**
 * Sends the letters not redriven yet back to their original topic, unchanged (same key, same value, so the
 * same event id: the dedupe ledger keeps anything from being applied twice). Each letter goes back at most once:
 * the letters sent are recorded in Postgres (`dlq_redrives`), so a filter (--error-class) can leave letters behind
 * and a later redrive, filtered or not, still sends only the others. This tool's group on the dead-letter topic
 * moves to the first letter not sent yet, so that later runs do not read the whole topic again.
 */
async function redrive(context: CommandContext): Promise<number> {
  const nest = await context.app();
  const config = nest.get(AppConfig);
  const records = nest.get(RedriveRepository);
  const group = redriveGroup(config.consumer.groupId);
  const execute = context.options['execute'] === true;
  const who = actor(context.options['actor']);
  const sets = await Promise.all(
    (await letters(context, group)).map(async (set) => {
      const done = await records.redriven(set.dlq, set.all);
      const open = (m: ReadMessage) => !done.has(letterKey(m));
      return { ...set, all: set.all.filter(open), selected: set.selected.filter(open) };
    }),
  );
  const plan = sets.map(({ dlq, all, selected }) => ({
    deadLetterTopic: dlq,
    pending: all.length,
    toRedrive: selected.length,
    byTarget: countBy(selected, (m) => m.headers[H.topic] ?? 'unknown'),
  }));
  const missingTarget = sets.flatMap((s) => s.selected).filter((m) => !m.headers[H.topic]);
  if (missingTarget.length > 0)
    throw new UsageError(`${missingTarget.length} letter(s) have no ${H.topic} header; cannot tell where they go`);
  const total = plan.reduce((n, p) => n + p.toRedrive, 0);
  if (!execute) {
    await nest.get(AuditRepository).record({
      actor: who,
      command: 'dlq redrive',
      args: context.options,
      plan,
      outcome: 'dry-run',
    });
    if (context.json) context.print(JSON.stringify({ execute: false, plan }));
    else {
      context.print(
        table(
          ['dead-letter topic', 'not redriven yet', 'to redrive'],
          plan.map((p) => [p.deadLetterTopic, p.pending, p.toRedrive]),
        ),
      );
      context.note(`dry run: nothing sent. Add --execute to send ${total} letter(s) back.`);
    }
    return EXIT.ok;
  }
  const producer = nest.get(KafkaProducer);
  const admin = nest.get(KafkaClient).kafka.admin();
  await admin.connect();
  try {
    for (const { dlq, selected, all, ends } of sets) {
      const byTopic = new Map<string, ReadMessage[]>();
      for (const m of selected) {
        const target = m.headers[H.topic] ?? '';
        byTopic.set(target, [...(byTopic.get(target) ?? []), m]);
      }
      for (const [topic, messages] of byTopic) {
        for (let i = 0; i < messages.length; i += 500) {
          const chunk = messages.slice(i, i + 500);
          await producer.sendBatch([
            {
              topic,
              messages: chunk.map((m) => ({
                key: m.key,
                value: m.value,
                headers: { 'redriven-from': `${dlq}/${m.partition}/${m.offset}` },
              })),
            },
          ]);
          // Recorded once Kafka has them: a crash in between sends this chunk again at the next redrive (soon,
          // so within the ledger's retention, which applies those ids once).
          await records.record(dlq, topic, chunk, who);
        }
      }
      // Past everything read, unless a filter left letters behind: then only up to the first one left.
      const left = all.filter((m) => !selected.includes(m));
      const partitions = [...ends].map(([partition, end]) => {
        const firstLeft = left.find((m) => m.partition === partition);
        return { partition, offset: String(firstLeft ? firstLeft.offset : end) };
      });
      await admin.setOffsets({ groupId: group, topic: dlq, partitions });
    }
  } finally {
    await admin.disconnect();
  }
  await nest.get(AuditRepository).record({
    actor: who,
    command: 'dlq redrive',
    args: context.options,
    plan,
    outcome: `executed: ${total} letter(s) sent back`,
  });
  if (context.json) context.print(JSON.stringify({ execute: true, redriven: total, plan }));
  else
    context.print(`redriven: ${total} letter(s) sent back to their topics (same event ids: nothing is applied twice)`);
  return EXIT.ok;
}

function countBy<T>(items: T[], key: (item: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of items) out[key(item)] = (out[key(item)] ?? 0) + 1;
  return out;
}
