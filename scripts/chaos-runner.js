// Runs test/chaos/main.ts with Vite's module runner (as Vitest does), so that the chaos engine can use
// libs/testing and its `@app/*` aliases, TypeScript and decorators included, without a build step.
import { dirname, join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { createServer, createServerModuleRunner } from 'vite';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const server = await createServer({
  root,
  configFile: false,
  logLevel: 'error',
  appType: 'custom',
  resolve: { tsconfigPaths: true },
  server: { middlewareMode: true, hmr: false, ws: false, watch: null },
  optimizeDeps: { noDiscovery: true, include: [] },
});
const runner = createServerModuleRunner(server.environments.ssr, { hmr: false });
let code = 1;
try {
  const { main } = await runner.import(join(root, 'test', 'chaos', 'main.ts'));
  code = await main(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
} finally {
  await runner.close();
  await server.close();
}
// kafkajs and pg may keep timers alive for a while after their clients are closed: exit with the verdict.
process.exit(code);
