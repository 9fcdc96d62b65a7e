export { startHttpApp, type HttpAppOptions } from './http-app.js';
export { Lifecycle } from './lifecycle.service.js';
export { logFailedRequests, recordFailure } from './request-log.js';
export { PlatformModule } from './platform.module.js';
export { ServiceInfo, type ServiceName } from './service-info.js';
export { LogThrottle } from './log-throttle.js';
export { SCRUBBED, secretScrubber } from './secret-scrubber.js';
export {
  TRACEPARENT_HEADER,
  TRACERESPONSE_HEADER,
  type TraceContext,
  childSpan,
  formatTraceparent,
  parseTraceparent,
  requestTrace,
} from './trace-context.js';
