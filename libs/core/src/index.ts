export { CoreModule } from './core.module.js';
