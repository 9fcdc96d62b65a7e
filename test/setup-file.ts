import { killLeftoverApps } from '@app/testing';
import { afterAll } from 'vitest';

// Runs after every integration test file: app processes a failed test did not stop are killed, so that they
// do not keep consuming, or holding ports, while the next files run.
afterAll(async () => {
  await killLeftoverApps();
});
