// jincache configuration: the YAML file (SPEC §5), CLI overrides and live per-group overrides.
export { ConfigError, isConfigError } from './errors.ts';
export type { ConfigErrorOptions, ConfigProblem } from './errors.ts';
export { UnitError, isUnitError, parseDuration, parseSize, formatDuration, formatSize } from './units.ts';
export {
  configSchema,
  parseConfig,
  defaultConfig,
  resolveNodeId,
  resolveAdvertise,
  resolveGroup,
  REBALANCE_STRATEGIES,
  LOG_LEVELS,
  STORAGE_ENGINES,
} from './schema.ts';
export type { Config, GroupConfig, ResolvedGroup, RawConfig, DeepPartialRaw, RebalanceStrategy, LogLevel, StorageEngine } from './schema.ts';
export { parsePeer } from './fields.ts';
export type { PeerSpec } from './fields.ts';
export { loadConfig, readYamlFile, parseYaml, mergeRaw } from './load.ts';
export type { LoadConfigOptions } from './load.ts';
export {
  parseGroupOverride,
  validateGroupOverride,
  applyGroupOverride,
  applyGroupOverrides,
  GROUP_OVERRIDE_FIELDS,
  CLUSTER_WIDE_OVERRIDE_FIELDS,
} from './overrides.ts';
export type { GroupOverride, RawGroupOverride } from './overrides.ts';
