// The peer side of the migration figure (issue 8 scenario 3): how many keys per second
// `redis-cli --cluster rebalance --cluster-use-empty-masters` moves to a new, empty master.
//
// A 3-master Redis Cluster (no replicas, persistence off) is loaded with `keys` 100-byte values
// spread over all 16384 slots; an empty master joins with `redis-cli --cluster add-node`; the
// rebalance is timed wall-clock from the start of redis-cli to its exit, and the keys moved are
// what the new master holds afterwards (DBSIZE; it started empty). With 3 masters + 1 the new
// master ends up with about a quarter of the keys. redis-cli's own defaults are kept
// (`--cluster-pipeline 10`: MIGRATE of 10 keys at a time), because that is what a user gets.
//
// The migration scenario (bench/scenarios/migration.ts) calls measureRedisClusterRebalance()
// in its own run to get the peer value side by side; run() here publishes the peer alone.

import type { Figure } from '../lib/figure.ts';
import { figure } from '../lib/figure.ts';
import { ensureRedis } from '../lib/deps.ts';
import { RedisCluster, RedisClusterError, benchKeys, fixedValue } from '../lib/redis-cluster.ts';
import type { ScenarioOptions } from '../lib/scenario.ts';

export interface RebalanceMeasure {
  /** Keys the new master holds after the rebalance (it started empty). */
  keysMoved: number;
  /** Wall seconds of `redis-cli --cluster rebalance`, start to exit. */
  seconds: number;
  keysPerSec: number;
}

export interface RebalanceOptions extends ScenarioOptions {
  /** Masters before the join. Default 3. */
  masters?: number;
  /** Value size in bytes. Default 100. */
  valueBytes?: number;
  /** Extra `redis-cli --cluster rebalance` arguments, e.g. ['--cluster-pipeline', '100']. Default none. */
  rebalanceArgs?: readonly string[];
}

/** Keys loaded before the join: full 100k (issue 8), quick 20k. */
export function defaultKeys(quick: boolean): number {
  return quick ? 20_000 : 100_000;
}

/**
 * Starts a Redis Cluster, loads `keys` keys, joins an empty master, times the rebalance, and
 * stops every process it started (by PID) before returning or throwing.
 */
export async function measureRedisClusterRebalance(keys: number, opts: RebalanceOptions): Promise<RebalanceMeasure> {
  const log = opts.log ?? (() => {});
  ensureRedis(log);
  const cluster = await RedisCluster.start({ masters: opts.masters ?? 3, replicas: 0, log, signal: opts.signal });
  try {
    const names = benchKeys(keys);
    const loaded = await cluster.load(names, fixedValue(opts.valueBytes ?? 100));
    const before = await cluster.totalKeys();
    if (before !== keys) throw new RedisClusterError(`loaded ${keys} keys but the masters hold ${before}`);
    log(`  redis cluster: loaded ${keys} keys in ${loaded.seconds.toFixed(2)} s`);
    const fresh = await cluster.addEmptyMaster();
    const r = await cluster.rebalance(opts.rebalanceArgs ?? []);
    const keysMoved = await cluster.dbsize(fresh.port);
    const after = await cluster.totalKeys();
    if (after !== keys) throw new RedisClusterError(`after the rebalance the masters hold ${after} keys, not ${keys}`);
    if (keysMoved === 0) throw new RedisClusterError(`the rebalance moved no keys:\n${r.output.slice(-1500)}`);
    const keysPerSec = keysMoved / r.seconds;
    log(`  redis cluster: rebalance moved ${keysMoved} keys in ${r.seconds.toFixed(2)} s = ${Math.round(keysPerSec)} keys/s`);
    return { keysMoved, seconds: r.seconds, keysPerSec };
  } finally {
    await cluster.stop();
  }
}

export async function prepare(opts: ScenarioOptions): Promise<void> {
  ensureRedis(opts.log);
}

/** Publishes the peer's rate alone (reported, no target): the comparison lives in migration.ts. */
export async function run(opts: ScenarioOptions): Promise<Figure[]> {
  const m = await measureRedisClusterRebalance(defaultKeys(opts.quick), opts);
  return [figure({ name: 'redis_cluster.rebalance.keys_per_s', unit: 'keys/s', ours: m.keysPerSec })];
}
