import type { INestApplicationContext } from '@nestjs/common';
import type { AppConfig } from '@app/config';

export type OptionSpec = Record<string, { type: 'string' | 'boolean'; description: string; multiple?: boolean }>;

export interface CommandContext {
  config: AppConfig;
  /** Opens the Nest context (logging, Kafka, Postgres, Redis) only for commands that need it. */
  app: () => Promise<INestApplicationContext>;
  options: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
  /** --json: machine output on stdout, nothing else there. */
  json: boolean;
  print: (line: string) => void;
  /** Progress and notes for humans: stderr, never mixed into --json output. */
  note: (line: string) => void;
}

export interface Command {
  name: string;
  summary: string;
  usage?: string;
  options?: OptionSpec;
  /** Returns the exit code (0 when omitted). */
  run: (context: CommandContext) => Promise<number | void>;
}

/** Wrong usage: the message is printed with the command's usage and the process exits 64 (EX_USAGE). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The request cannot be carried out as asked (unknown group, partition out of range...): exit 65 (EX_DATAERR). */
export class RefusedError extends Error {
  override readonly name = 'RefusedError';
}

export const EXIT = { ok: 0, failed: 1, drift: 2, usage: 64, refused: 65, config: 78 } as const;
