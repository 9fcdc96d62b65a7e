import { userInfo, hostname } from 'node:os';
import type { AppConfig } from '@app/config';
import { UsageError } from './command.js';

/** `counters`, `activities`, or a topic name, to the topic; default both change-event topics. */
export function resolveTopics(config: AppConfig, names: string[] | undefined): string[] {
  const { counters, activities } = config.kafka.topics;
  if (names === undefined || names.length === 0) return [counters, activities];
  return names.map((name) => (name === 'counters' ? counters : name === 'activities' ? activities : name));
}

/** "0,2,5" to [0, 2, 5]. */
export function parsePartitions(text: string | undefined): number[] | undefined {
  if (text === undefined) return undefined;
  const parts = text.split(',').map((p) => p.trim());
  if (parts.some((p) => !/^\d+$/.test(p)))
    throw new UsageError(`--partitions: a comma-separated list of partition numbers, not "${text}"`);
  return [...new Set(parts.map(Number))].sort((a, b) => a - b);
}

/** Who runs the command, for the audit log: --actor, else user@host. */
export function actor(option: unknown): string {
  if (typeof option === 'string' && option.length > 0) return option;
  try {
    return `${userInfo().username}@${hostname()}`;
  } catch {
    return `unknown@${hostname()}`;
  }
}

export function stringOption(options: Record<string, unknown>, name: string): string | undefined {
  const value = options[name];
  return typeof value === 'string' ? value : undefined;
}

export function listOption(options: Record<string, unknown>, name: string): string[] | undefined {
  const value = options[name];
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  return typeof value === 'string' ? [value] : undefined;
}
