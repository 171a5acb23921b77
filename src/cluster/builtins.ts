/**
 * The plugins every `jincache serve` node runs (library users may pass their own list).
 * One line per component; each component decides from the config whether it has work to do.
 */
import type { Config } from '../config/schema.ts';
import type { NodePlugin } from './plugin.ts';
import { FaultTolerancePlugin } from './fault-plugin.ts';
import { MigrationPlugin } from './migration/plugin.ts';
import { RebalancerPlugin } from './rebalancer.ts';

export function builtinPlugins(_config: Config): NodePlugin[] {
  return [
    new FaultTolerancePlugin(),
    new MigrationPlugin(),
    new RebalancerPlugin(),
  ];
}
