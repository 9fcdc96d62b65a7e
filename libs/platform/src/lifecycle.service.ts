import { type BeforeApplicationShutdown, Injectable } from '@nestjs/common';

/**
 * Whether the process is draining. Readiness turns false the moment SIGTERM arrives, before the HTTP server
 * stops accepting, so a load balancer takes the instance out while in-flight work finishes.
 *
 * Shutdown order (Nest): onModuleDestroy, beforeApplicationShutdown, HTTP server close, onApplicationShutdown.
 * Libraries therefore stop taking new work in beforeApplicationShutdown and close connections in
 * onApplicationShutdown, after the last request has been answered.
 */
@Injectable()
export class Lifecycle implements BeforeApplicationShutdown {
  private draining = false;

  get isDraining(): boolean {
    return this.draining;
  }

  beforeApplicationShutdown(): void {
    this.draining = true;
  }
}
