import type { INestApplicationContext } from '@nestjs/common';
import type { AppConfig } from '@app/config';

export interface CommandContext {
  config: AppConfig;
  /** Opens the Nest context (logging, Kafka) only for commands that need it. */
  app: () => Promise<INestApplicationContext>;
  options: Record<string, string | boolean | undefined>;
  print: (line: string) => void;
}

export interface Command {
  name: string;
  summary: string;
  options?: Record<string, { type: 'string' | 'boolean'; description: string }>;
  run: (context: CommandContext) => Promise<void>;
}

/** Wrong usage: the message is printed with the usage text and the process exits 64 (EX_USAGE). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
