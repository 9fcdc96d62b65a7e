export { AdminServer, adminListener } from './admin.server.js';
export { CoreModule, type CoreOptions } from './core.module.js';
