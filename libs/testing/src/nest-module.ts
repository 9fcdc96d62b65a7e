import type { INestApplicationContext, ModuleMetadata } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { ConfigModule, loadConfig } from '@app/config';
import { DbModule } from '@app/db';
import { KafkaModule } from '@app/kafka';
import { PlatformModule } from '@app/platform';
import { RedisModule } from '@app/redis';

/**
 * An in-process Nest context wired to the real services with `env` (a TestStack's), for testing libraries
 * through their public modules. Logs at warn so test output stays readable. Close it in afterAll.
 */
export async function createTestContext(
  env: Record<string, string>,
  imports: ModuleMetadata['imports'] = [],
): Promise<INestApplicationContext> {
  const config = loadConfig({ LOG_LEVEL: 'warn', ...env });
  const moduleRef = await Test.createTestingModule({
    imports: [
      ConfigModule.forRoot(config),
      PlatformModule.forRoot('api'),
      DbModule,
      RedisModule,
      KafkaModule,
      ...imports,
    ],
  }).compile();
  return moduleRef.init();
}
