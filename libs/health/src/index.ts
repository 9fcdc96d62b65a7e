export { DependenciesHealth } from './dependencies.health.js';
export { HealthModule } from './health.module.js';
export { AllDependenciesReady, ReadinessPolicy } from './readiness.policy.js';
