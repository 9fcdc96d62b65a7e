export { AppConfig, type AdminListener, type KafkaSaslMechanism, type WriteMode } from './app-config.js';
export { ConfigError } from './config.error.js';
export { ConfigModule } from './config.module.js';
export { POSTGRES_SSL_MODES, envSchema, type Env } from './config.schema.js';
export { loadConfig, loadConfigOrExit } from './load-config.js';
