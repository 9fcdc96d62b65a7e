// The naive references of the ingest benchmark: what a service without the write path would do, Postgres per
// request and nothing else (no validation beyond parsing, no idempotency, no cache, no queue). NAIVE_MODE picks one:
// - `insert` (default): one append-only INSERT per request, the cheapest possible "Postgres per request", which does
//   not even keep the counter;
// - `upsert`: what a team without write-behind writes for counters, one INSERT ... ON CONFLICT DO UPDATE ... RETURNING
//   per request, answering the value (a batch: one statement over unnest, its counters summed per name and sorted by
//   name so that concurrent batches lock rows in the same order and cannot deadlock).
// node:http and pg, with the pool size of the API (DATABASE_POOL_MAX, 10). Run by ingest.bench.ts as a child
// process: PORT, DATABASE_URL, DATABASE_SCHEMA, NAIVE_MODE.
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import pg from 'pg';

const schema = process.env['DATABASE_SCHEMA'] ?? 'public';
const pool = new pg.Pool({ connectionString: process.env['DATABASE_URL'], max: 10 });
const upsert = process.env['NAIVE_MODE'] === 'upsert';
const table = `"${schema}".naive_increments`;
const counters = `"${schema}".naive_counters`;
await pool.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
await pool.query(
  upsert
    ? `CREATE TABLE IF NOT EXISTS ${counters} (name text PRIMARY KEY, value bigint NOT NULL)`
    : `CREATE TABLE IF NOT EXISTS ${table} (id bigserial PRIMARY KEY, name text NOT NULL, by bigint NOT NULL, at timestamptz NOT NULL DEFAULT now())`,
);
const INSERT_ONE = `INSERT INTO ${table} (name, by) VALUES ($1, $2)`;
const INSERT_MANY = `INSERT INTO ${table} (name, by) SELECT * FROM unnest($1::text[], $2::bigint[])`;
const UPSERT = `ON CONFLICT (name) DO UPDATE SET value = c.value + EXCLUDED.value RETURNING name, value`;
const UPSERT_ONE = `INSERT INTO ${counters} AS c (name, value) VALUES ($1, $2) ${UPSERT}`;
const UPSERT_MANY = `INSERT INTO ${counters} AS c (name, value) SELECT * FROM unnest($1::text[], $2::bigint[]) ${UPSERT}`;

function body(request: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      try {
        resolve(chunks.length === 0 ? {} : JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
    request.on('error', reject);
  });
}

function send(response: ServerResponse, status: number, payload: unknown): void {
  const text = JSON.stringify(payload);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
  const url = request.url ?? '/';
  if (request.method === 'GET') return send(response, 200, { status: 'ok' });
  const single = /^\/v1\/counters\/([^/]+)\/increment$/.exec(url);
  if (single?.[1] !== undefined) {
    const { by = 1 } = (await body(request)) as { by?: number };
    const name = decodeURIComponent(single[1]);
    if (!upsert) {
      await pool.query(INSERT_ONE, [name, by]);
      return send(response, 200, { name, mode: 'naive' });
    }
    const { rows } = await pool.query<{ value: string }>(UPSERT_ONE, [name, by]);
    return send(response, 200, { name, value: Number(rows[0]?.value), mode: 'naive-upsert' });
  }
  if (url === '/v1/counters/batch') {
    const { increments } = (await body(request)) as { increments: { name: string; by?: number }[] };
    if (!upsert) {
      await pool.query(INSERT_MANY, [increments.map((i) => i.name), increments.map((i) => i.by ?? 1)]);
      return send(response, 200, { accepted: increments.length, mode: 'naive' });
    }
    const sums = new Map<string, number>();
    for (const { name, by = 1 } of increments) sums.set(name, (sums.get(name) ?? 0) + by);
    const names = [...sums.keys()].sort();
    const { rows } = await pool.query<{ name: string; value: string }>(UPSERT_MANY, [
      names,
      names.map((name) => sums.get(name)),
    ]);
    const values = rows.map((r) => ({ name: r.name, value: Number(r.value) }));
    return send(response, 200, { accepted: increments.length, mode: 'naive-upsert', values });
  }
  send(response, 404, { error: 'not found' });
}

createServer((request, response) => {
  handle(request, response).catch((error: unknown) => send(response, 500, { error: String(error) }));
}).listen(Number(process.env['PORT'] ?? 3100), '127.0.0.1');
