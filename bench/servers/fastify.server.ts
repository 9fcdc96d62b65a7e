// The bare Fastify reference of the framework benchmark: Fastify (the version the API's Nest adapter runs on)
// answering GET / with a small JSON object, without Nest, logging, hooks or plugins. Run by framework.bench.ts as
// a child process on PORT.
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.get('/', async () => ({ status: 'ok' }));
await app.listen({ port: Number(process.env['PORT'] ?? 3200), host: '127.0.0.1' });
