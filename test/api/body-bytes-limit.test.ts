import { type Socket, connect } from 'node:net';
import { AppProcess, TestStack, scrapeMetrics } from '@app/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * G6 by bytes: request bodies being received count against API_MAX_BODY_BYTES_IN_FLIGHT from their headers on, so
 * slow senders of large bodies cannot fill the process's memory; past the bound a write is refused with 503 before
 * its body is read, and the bytes come back once a request is answered or abandoned.
 */
describe('request body bytes in flight', () => {
  let stack: TestStack;
  let api: AppProcess;
  let port: number;

  beforeAll(async () => {
    stack = await TestStack.create();
    port = Number(stack.env['API_PORT']);
    api = new AppProcess('api', {
      ...stack.env,
      LOG_LEVEL: 'warn',
      API_BODY_LIMIT_BYTES: '1024',
      API_MAX_BODY_BYTES_IN_FLIGHT: '2048',
    });
    await api.ready(port);
  });
  afterAll(async () => {
    await api?.stop();
    await stack?.dispose();
  });

  /** A request whose headers announce `length` bytes of body, of which only the first byte is sent yet. */
  const slowRequest = async (length: number): Promise<Socket> => {
    const socket = connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(
      `POST /v1/counters/slow/increment HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${length}\r\n\r\n{`,
    );
    return socket;
  };
  const post = () =>
    fetch(`http://127.0.0.1:${port}/v1/counters/fast/increment`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ by: 1, pad: 'x'.repeat(900) }),
    });
  const bytesInFlight = async () => (await scrapeMetrics(port)).sum('writebehind_request_body_bytes_in_flight');

  it('refuses with 503 past the bound, before reading the body, and takes writes again once bodies are done', async () => {
    const slow = [await slowRequest(1000), await slowRequest(1000)];
    // The two slow bodies hold 2,000 of the 2,048 bytes: a third body of ~900 bytes does not fit.
    await expect.poll(bytesInFlight).toBe(2000);
    const refused = await post();
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(((await refused.json()) as { type: string }).type).toBe('/problems/overloaded');

    // One slow client finishes its body and is answered; the other hangs up: both give their bytes back.
    const answered = new Promise<string>((resolve) => slow[0]?.once('data', (d: Buffer) => resolve(d.toString())));
    slow[0]?.write(`"by":1${' '.repeat(1000 - 8)}}`);
    expect(await answered).toMatch(/^HTTP\/1\.1 202/);
    slow[1]?.destroy();
    await expect.poll(bytesInFlight).toBe(0);
    // The body is refused for its unknown field, which means it was read: the bytes were taken.
    expect((await post()).status).toBe(400);
    slow[0]?.destroy();
  });
});
