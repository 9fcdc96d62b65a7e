import 'reflect-metadata';
import { loadConfigOrExit } from '@app/config';
import { startHttpApp } from '@app/platform';
import { AppModule } from './app.module.js';
import { answerFrameworkError, configureFastify } from './http/fastify.js';

const config = loadConfigOrExit();
await startHttpApp(AppModule.forRoot(config), {
  name: 'api',
  host: config.api.host,
  port: config.api.port,
  bodyLimitBytes: config.api.bodyLimitBytes,
  configure: configureFastify,
  frameworkErrors: answerFrameworkError,
});
