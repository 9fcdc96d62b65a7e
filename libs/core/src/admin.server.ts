import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpException, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { type AdminListener, AppConfig } from '@app/config';
import { HealthController } from '@app/health';
import { MetricsRegistry } from '@app/metrics';
import { ServiceInfo } from '@app/platform';
import { PinoLogger } from 'nestjs-pino';
import { Registry } from 'prom-client';

/** Where this app serves `/metrics` and `/health/*` apart from its public port; undefined: on the public port. */
export function adminListener(config: AppConfig, service: ServiceInfo['name']): AdminListener | undefined {
  switch (service) {
    case 'api':
      return config.api.admin;
    case 'consumer':
      return config.consumer.admin;
    case 'cli':
      return undefined;
  }
}

const ROUTES = ['/metrics', '/health/live', '/health/ready'] as const;

interface Answer {
  status: number;
  contentType: string;
  body: string;
  cacheControl: string;
}

const json = (status: number, body: unknown, cacheControl = 'no-store'): Answer => ({
  status,
  contentType: 'application/json; charset=utf-8',
  body: JSON.stringify(body),
  cacheControl,
});

/**
 * `/metrics`, `/health/live` and `/health/ready` on their own listener (API_ADMIN_PORT, CONSUMER_ADMIN_PORT), so that
 * they can stay inside the cluster network while the API's port is public. It answers exactly what the app's own
 * routes would (the same controller and registry; the app then does not serve them, so its port answers 404), and
 * nothing else: a plain node:http server, with no body parsing.
 *
 * It listens once the app's modules are initialised and closes in onApplicationShutdown, after the app's HTTP
 * server: during a drain, probes keep getting 503 from /health/ready rather than a refused connection.
 */
@Injectable()
export class AdminServer implements OnApplicationBootstrap, OnApplicationShutdown {
  private server: Server | undefined;

  constructor(
    private readonly config: AppConfig,
    private readonly service: ServiceInfo,
    private readonly metrics: MetricsRegistry,
    private readonly health: HealthController,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext('AdminServer');
  }

  async onApplicationBootstrap(): Promise<void> {
    const listener = adminListener(this.config, this.service.name);
    if (listener === undefined) return;
    const server = createServer((request, response) => void this.handle(request, response));
    // Probes and scrapers come back every few seconds: no reason to hold idle connections long.
    server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listener.port, listener.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    const { address, port } = server.address() as AddressInfo;
    this.logger.info({ address, port }, `metrics and health listening on http://${address}:${port}`);
  }

  /** The port it listens on (the configured one, or the one the system chose for port 0). */
  get port(): number | undefined {
    return (this.server?.address() as AddressInfo | null)?.port;
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    let answer: Answer;
    try {
      answer = await this.answer(request);
    } catch (error) {
      this.logger.error({ err: error }, 'admin request failed');
      answer = json(500, { status: 'error' });
    }
    response.writeHead(answer.status, {
      'content-type': answer.contentType,
      'cache-control': answer.cacheControl,
      'content-length': Buffer.byteLength(answer.body),
    });
    response.end(request.method === 'HEAD' ? undefined : answer.body);
  }

  private async answer(request: IncomingMessage): Promise<Answer> {
    const path = (request.url ?? '/').split('?')[0];
    const route = ROUTES.find((r) => r === path);
    if (route === undefined) return json(404, { statusCode: 404, error: 'Not Found' });
    if (request.method !== 'GET' && request.method !== 'HEAD') return json(405, { statusCode: 405 });
    switch (route) {
      case '/metrics':
        return {
          status: 200,
          contentType: Registry.PROMETHEUS_CONTENT_TYPE,
          body: await this.metrics.registry.metrics(),
          cacheControl: 'no-store',
        };
      case '/health/live':
        return json(200, this.health.live());
      case '/health/ready':
        try {
          return json(200, await this.health.ready(), 'no-cache, no-store, must-revalidate');
        } catch (error) {
          // Not ready (a dependency down, or draining): Terminus' report, as the app's own route answers it.
          if (!(error instanceof HttpException)) throw error;
          return json(error.getStatus(), error.getResponse(), 'no-cache, no-store, must-revalidate');
        }
    }
  }

  async onApplicationShutdown(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    server.closeIdleConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
