export type ServiceName = 'api' | 'consumer' | 'cli';

/** Which app this process is; used for log fields, metric labels and the Postgres application_name. */
export abstract class ServiceInfo {
  abstract readonly name: ServiceName;
}
