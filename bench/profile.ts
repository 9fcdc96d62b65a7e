// `node bench/profile.ts <target> [seconds]`: runs a built app under load with `--cpu-prof` and prints where its CPU
// time goes (self time by function and by package or app file). Targets:
//   api-single   the API, write-behind, single increments (50 connections)
//   api-batch    the API, write-behind, batches of 100 increments (50 connections)
//   api-noop     the API's GET /health/live (the framework benchmark's no-op route, 50 connections)
//   minimal-single, minimal-batch   the same loads on the minimal same-work server (servers/minimal-writebehind.server.ts)
//   consumer     the consumer draining a backlog of 300,000 events (1,000 counters, one activity in 10)
// The .cpuprofile files stay in .bench/profiles/ (open them in Chrome DevTools for the call trees).
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Workload, produceBacklog } from './lib/drain.ts';
import { incrementRequests, load } from './lib/load.ts';
import { App, BenchStack, ROOT, waitUntil } from './lib/stack.ts';
import { applied } from './lib/drain.ts';

const target = process.argv[2] ?? 'api-single';
const seconds = Number(process.argv[3] ?? 15);
const dir = join(ROOT, '.bench', 'profiles', `${target}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
mkdirSync(dir, { recursive: true });
const profiling = ['--cpu-prof', `--cpu-prof-dir=${dir}`];

let requests = 0;
const stack = await BenchStack.create();
try {
  if (target === 'consumer') {
    const work = new Workload(300_000, 1000, 10);
    await produceBacklog(stack, work);
    const app = await App.start('consumer', stack.env, profiling);
    await waitUntil(async () => (await applied(stack)) >= work.events, 'the backlog drained', 900_000);
    await app.stop();
  } else {
    const app = target.startsWith('minimal-')
      ? await App.script('minimal', 'servers/minimal-writebehind.server.ts', stack.env, '/health/ready', profiling)
      : await App.start('api', stack.env, profiling);
    const next =
      target === 'api-noop'
        ? () => ({ path: '/health/live' })
        : incrementRequests(1000, { batch: target.endsWith('-batch') ? 100 : undefined });
    const method = target === 'api-noop' ? 'GET' : 'POST';
    const r = await load({ url: app.url, connections: 50, durationSeconds: seconds, method, next });
    requests = r.ok + r.errors;
    process.stdout.write(`${r.rps.toFixed(0)} req/s, p99 ${r.p99} ms, ${r.errors} errors\n`);
    await app.stop();
  }
} finally {
  await stack.dispose();
}

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
if (!file) throw new Error(`no profile written in ${dir}`);
const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
};
const total = profile.nodes.reduce((sum, n) => sum + (n.hitCount ?? 0), 0);
// CPU time: the time between samples, except where the sample is the idle node.
const idle = new Set(profile.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id));
let busyMicros = 0;
profile.samples.forEach((id, i) => (busyMicros += idle.has(id) ? 0 : (profile.timeDeltas[i + 1] ?? 0)));
if (requests > 0) {
  process.stdout.write(
    `busy ${(busyMicros / 1000).toFixed(0)} ms in the profile: ${(busyMicros / requests).toFixed(1)} µs per request\n`,
  );
}
const where = (url: string) => {
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1] ?? url;
  const app = /dist\/apps\/[^/]+\/(.*)$/.exec(url);
  if (app) return app[1] ?? url;
  return url === '' ? '(native/GC/idle)' : url.replace(/^node:/, 'node:');
};
const byFunction = new Map<string, number>();
const byPlace = new Map<string, number>();
for (const n of profile.nodes) {
  const hits = n.hitCount ?? 0;
  const fn = `${n.callFrame.functionName || '(anonymous)'}  ${where(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + hits);
  const place = where(n.callFrame.url);
  byPlace.set(place, (byPlace.get(place) ?? 0) + hits);
}
const top = (m: Map<string, number>, k: number) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, k)
    .map(([name, hits]) => `  ${((100 * hits) / total).toFixed(1).padStart(5)}%  ${name}`)
    .join('\n');
process.stdout.write(`\nprofile ${join(dir, file)}\n\nself time by package or file:\n${top(byPlace, 25)}\n`);
process.stdout.write(`\nself time by function:\n${top(byFunction, 40)}\n`);
