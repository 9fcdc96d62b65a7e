import { type Server, type Socket, connect, createServer } from 'node:net';

/**
 * A TCP proxy that holds what clients send for `delayMs` before passing it on (in order), to make a real server slow
 * rather than stopped: a request reaches it late, and its answer comes back late. Answers pass through at once.
 * `cut()` cuts every connection and refuses new ones until `restore()`, as a network partition that the clients
 * notice: what they sent and was not passed on yet is lost, never carried out by the server.
 */
export class DelayProxy {
  /** How long each chunk a client sends waits before it goes on to the server. */
  delayMs = 0;
  private isCut = false;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(target: { host: string; port: number }, port = 0): Promise<DelayProxy> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
    const address = server.address();
    if (typeof address !== 'object' || address === null) throw new Error('the delay proxy has no port');
    const proxy = new DelayProxy(server, address.port);
    server.on('connection', (client: Socket) => proxy.relay(client, target));
    return proxy;
  }

  private relay(client: Socket, target: { host: string; port: number }): void {
    if (this.isCut) {
      client.destroy();
      return;
    }
    const upstream = connect(target.port, target.host);
    this.sockets.add(client).add(upstream);
    let last = 0;
    client.on('data', (chunk: Buffer) => {
      // Never before the chunk sent ahead of it: order is kept when the delay changes.
      const at = Math.max(Date.now() + this.delayMs, last);
      last = at;
      const pass = () => this.isCut || upstream.destroyed || upstream.write(chunk);
      if (at <= Date.now()) pass();
      else setTimeout(pass, at - Date.now());
    });
    upstream.on('data', (chunk: Buffer) => client.destroyed || client.write(chunk));
    const close = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on('close', close).on('error', close);
    upstream.on('close', close).on('error', close);
  }

  cut(): void {
    this.isCut = true;
    for (const socket of this.sockets) socket.destroy();
  }

  restore(): void {
    this.isCut = false;
  }

  /**
   * As the server stopped: the port is closed (a client's connect is refused, ECONNREFUSED, as it would be by the
   * server itself) and open connections are cut, until `listen()`.
   */
  async refuse(): Promise<void> {
    if (!this.server.listening) return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  /** Takes connections again on the same port, after `refuse()`. */
  async listen(): Promise<void> {
    if (this.server.listening) return;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    if (!this.server.listening) return;
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
