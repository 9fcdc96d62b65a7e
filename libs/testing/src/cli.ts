import { AppProcess } from './app-process.js';

export interface CliResult {
  code: number | null;
  /** Standard output. */
  stdout: string;
  /** Standard output and error, interleaved. */
  output: string;
  /** A line of standard output parsed as JSON (for --json; default the last line). */
  json: <T = unknown>(line?: number) => T;
}

/** Runs the built ops CLI (`wb <args>`) with `env` and waits for it to exit; `dist` as for AppProcess. */
export async function runCli(env: Record<string, string>, args: string[], dist?: string): Promise<CliResult> {
  const cli = new AppProcess('cli', { LOG_LEVEL: 'warn', ...env }, args, [], dist);
  const { code } = await cli.exited;
  const stdout = cli.stdout.join('');
  return {
    code,
    stdout,
    output: cli.text,
    json: <T>(line = -1) => JSON.parse(stdout.trim().split('\n').at(line) ?? 'null') as T,
  };
}
