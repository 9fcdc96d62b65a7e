import { AppConfig, toAppConfig } from './app-config.js';
import { ConfigError } from './config.error.js';
import { checkedEnvSchema } from './config.schema.js';

/**
 * Validates the environment. An empty string counts as unset, so `FOO=` in a shell or a compose file
 * falls back to the default instead of failing as "not a number". Values are never echoed: a bad
 * DATABASE_URL may hold a password.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const input = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const result = checkedEnvSchema.safeParse(input);
  if (!result.success) {
    // One line per variable: a list such as KAFKA_BROKERS reports its first bad element only.
    const byVariable = new Map<string, string>();
    for (const issue of result.error.issues) {
      const variable = String(issue.path[0] ?? '(environment)');
      if (!byVariable.has(variable)) byVariable.set(variable, issue.message);
    }
    throw new ConfigError([...byVariable].map(([variable, message]) => ({ variable, message })));
  }
  return toAppConfig(result.data);
}

/** For `main.ts`: a bad environment ends the process with one clear message and exit code 78 (EX_CONFIG). */
export function loadConfigOrExit(env: NodeJS.ProcessEnv = process.env): AppConfig {
  try {
    return loadConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\nRefusing to start. See docs/configuration.md.\n`);
    process.exit(78);
  }
}
