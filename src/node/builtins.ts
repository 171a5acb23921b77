/**
 * The plugins every `jincache serve` node runs (library users may pass their own list).
 * One line per component; each component decides from the config whether it has work to do.
 */
import type { Config } from '../config/schema.ts';
import type { NodePlugin } from '../cluster/plugin.ts';
import { FaultTolerancePlugin } from '../cluster/fault-plugin.ts';
import { MigrationPlugin } from '../cluster/migration/plugin.ts';
import { MirrorPlugin } from '../cluster/mirror.ts';
import { RebalancerPlugin } from '../cluster/rebalancer.ts';

export function builtinPlugins(_config: Config): NodePlugin[] {
  const rebalancer = new RebalancerPlugin();
  return [
    new FaultTolerancePlugin(),
    new MigrationPlugin(),
    rebalancer,
    // hot keys come from the load monitor of the same node
    new MirrorPlugin({ hotKeys: () => rebalancer.load.report()?.hotKeys }),
  ];
}
