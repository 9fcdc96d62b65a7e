import { USAGE, exitCode, formatReport, parseChaosArgs, runChaos } from './engine/index.js';

/**
 * `npm run chaos -- [options]`: loaded by scripts/chaos-runner.js (Vite's module runner, so that the `@app/*`
 * aliases of libs/testing resolve as they do under Vitest). Prints progress and the report; sets the exit code.
 */
export async function main(argv: string[]): Promise<number> {
  let options;
  try {
    options = parseChaosArgs(argv);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}\n`);
    return 64;
  }
  if (!options) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const verbose = options.verbose;
  const report = await runChaos(options, (line) => {
    if (verbose) process.stdout.write(`${line}\n`);
  });
  process.stdout.write(`${formatReport(report)}\n`);
  return exitCode(report);
}
