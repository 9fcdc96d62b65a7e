export { DependenciesHealth } from './dependencies.health.js';
export { HealthController } from './health.controller.js';
export { HealthModule, type HealthModuleOptions } from './health.module.js';
export { AllDependenciesReady, ReadinessPolicy } from './readiness.policy.js';
