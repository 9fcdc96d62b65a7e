import 'reflect-metadata';
import { parseArgs } from 'node:util';
import type { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { loadConfigOrExit } from '@app/config';
import { Logger } from 'nestjs-pino';
import { CliModule } from './cli.module.js';
import { type Command, EXIT, RefusedError, UsageError } from './commands/command.js';
import { dlqCommand } from './commands/dlq.command.js';
import { envCommand } from './commands/env.command.js';
import { lagCommand } from './commands/lag.command.js';
import { migrateCommand } from './commands/migrate.command.js';
import { offsetsCommand } from './commands/offsets.command.js';
import { replayCommand } from './commands/replay.command.js';
import { topicsCommand } from './commands/topics.command.js';
import { verifyCommand } from './commands/verify.command.js';
import { waitKafkaCommand } from './commands/wait-kafka.command.js';

const commands: Command[] = [
  lagCommand,
  replayCommand,
  dlqCommand,
  offsetsCommand,
  verifyCommand,
  migrateCommand,
  topicsCommand,
  waitKafkaCommand,
  envCommand,
];

function usage(): string {
  const lines = commands.map((c) => `  ${c.name.padEnd(12)} ${c.summary}`);
  return (
    `usage: wb <command> [options]   (npm run cli -- <command>)\n\ncommands:\n${lines.join('\n')}\n\n` +
    'Every command takes --json (machine output on stdout) and --help.\n' +
    'Exit codes: 0 done, 1 failed, 2 drift found (verify), 64 bad usage, 65 refused, 78 bad configuration.\n' +
    'Configuration comes from the environment (docs/configuration.md).\n'
  );
}

function commandUsage(command: Command): string {
  const options = Object.entries(command.options ?? {}).map(
    ([name, o]) => `  --${name}${o.type === 'string' ? ' <value>' : ''}`.padEnd(26) + ` ${o.description}`,
  );
  return `${command.summary}\n\nusage: ${command.usage ?? `wb ${command.name}`}\n${options.length ? `\n${options.join('\n')}\n` : ''}`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const command = commands.find((c) => c.name === name);
  if (name === undefined || name === '--help' || name === '-h' || command === undefined) {
    process.stderr.write(
      name === undefined || name.startsWith('-') ? usage() : `unknown command: ${name}\n\n${usage()}`,
    );
    return name === '--help' || name === '-h' ? EXIT.ok : EXIT.usage;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(commandUsage(command));
    return EXIT.ok;
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: rest,
      options: { ...(command.options ?? {}), json: { type: 'boolean' } },
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${commandUsage(command)}`);
    return EXIT.usage;
  }
  const config = loadConfigOrExit();
  let context: INestApplicationContext | undefined;
  const app = async () => {
    if (context === undefined) {
      context = await NestFactory.createApplicationContext(CliModule.forRoot(config), { bufferLogs: true });
      context.useLogger(context.get(Logger));
    }
    return context;
  };
  const json = parsed.values['json'] === true;
  try {
    const code = await command.run({
      config,
      app,
      options: parsed.values,
      positionals: parsed.positionals,
      json,
      print: (line) => process.stdout.write(`${line}\n`),
      note: (line) => process.stderr.write(`${line}\n`),
    });
    return code ?? EXIT.ok;
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`${error.message}\n\n${commandUsage(command)}`);
      return EXIT.usage;
    }
    const message = (error as Error).message;
    const cause = (error as Error).cause;
    const detail = cause instanceof Error ? ` (${cause.message})` : '';
    if (json) process.stdout.write(`${JSON.stringify({ error: message })}\n`);
    process.stderr.write(`${name}: ${message}${detail}\n`);
    return error instanceof RefusedError ? EXIT.refused : EXIT.failed;
  } finally {
    await context?.close();
  }
}

process.exitCode = await main(process.argv.slice(2));
