export { type ChaosReport, type EpisodeRecord, runChaos } from './campaign.js';
export { FAULT_KINDS, type FaultKind, type FaultPlan, schedule } from './faults.js';
export { ChaosLoad } from './load.js';
export { type ChaosOptions, DEFAULTS, USAGE, parseChaosArgs, parseDuration } from './options.js';
export { checkOracle, type OracleResult } from './oracle.js';
export { Prng } from './prng.js';
export { exitCode, formatReport } from './report.js';
export { ChaosSystem } from './system.js';
