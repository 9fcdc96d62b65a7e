import 'reflect-metadata';
import { parseArgs } from 'node:util';
import type { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { loadConfigOrExit } from '@app/config';
import { Logger } from 'nestjs-pino';
import { CliModule } from './cli.module.js';
import { type Command, UsageError } from './commands/command.js';
import { envCommand } from './commands/env.command.js';
import { migrateCommand } from './commands/migrate.command.js';
import { topicsCommand } from './commands/topics.command.js';
import { waitKafkaCommand } from './commands/wait-kafka.command.js';

const commands: Command[] = [migrateCommand, topicsCommand, waitKafkaCommand, envCommand];

function usage(): string {
  const lines = commands.map((c) => `  ${c.name.padEnd(12)} ${c.summary}`);
  return `usage: wb <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nConfiguration comes from the environment (docs/configuration.md).\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const command = commands.find((c) => c.name === name);
  if (name === undefined || name === '--help' || name === '-h' || command === undefined) {
    process.stderr.write(
      name === undefined || name.startsWith('-') ? usage() : `unknown command: ${name}\n\n${usage()}`,
    );
    return name === '--help' || name === '-h' ? 0 : 64;
  }
  const config = loadConfigOrExit();
  let context: INestApplicationContext | undefined;
  const app = async () => {
    context ??= await NestFactory.createApplicationContext(CliModule.forRoot(config), { bufferLogs: true });
    context.useLogger(context.get(Logger));
    return context;
  };
  try {
    const { values } = parseArgs({ args: rest, options: command.options ?? {}, strict: true, allowPositionals: false });
    await command.run({ config, app, options: values, print: (line) => process.stdout.write(`${line}\n`) });
    return 0;
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`${(error as Error).message}\n\n${usage()}`);
      return 64;
    }
    const cause = (error as Error).cause;
    const detail = cause instanceof Error ? ` (${cause.message})` : '';
    process.stderr.write(`${name}: ${(error as Error).message}${detail}\n`);
    return 1;
  } finally {
    await context?.close();
  }
}

process.exitCode = await main(process.argv.slice(2));
