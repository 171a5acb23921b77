/**
 * The etcd side of a node, as one bundle: membership (registry), the partition table store, the
 * leader election and the live config watcher, all on one shared etcd client (SPEC §4 layout).
 */
import type { Etcd3 } from 'etcd3';
import type { Config } from '../config/schema.ts';
import type { Clock, NodeId } from '../core/types.ts';
import { readTls } from '../net/tls.ts';
import { createEtcdClient, type EtcdClientOptions, type EtcdLogger } from './etcd-client.ts';
import { EtcdConfigWatcher } from './etcd-config.ts';
import { EtcdElection } from './etcd-election.ts';
import { EtcdRegistry } from './etcd-registry.ts';
import { EtcdTableStore } from './etcd-table-store.ts';

/** The etcd client of a node's config: endpoints, timeout, TLS files (read now) and credentials. */
export function etcdClientOptions(cfg: Config): EtcdClientOptions {
  const tls = readTls(cfg.etcd.tls, 'etcd.tls');
  return {
    endpoints: cfg.etcd.endpoints,
    dialTimeoutMs: cfg.etcd.dial_timeout,
    ...(tls !== undefined ? { tls } : {}),
    ...(cfg.etcd.username !== undefined && cfg.etcd.password !== undefined ? { auth: { username: cfg.etcd.username, password: cfg.etcd.password } } : {}),
  };
}

export class EtcdCoordination {
  readonly client: Etcd3;
  readonly registry: EtcdRegistry;
  readonly tableStore: EtcdTableStore;
  readonly election: EtcdElection;
  readonly config: EtcdConfigWatcher;
  readonly prefix: string;

  constructor(cfg: Config, nodeId: NodeId, opts: { clock: Clock; logger: EtcdLogger }) {
    const prefix = cfg.etcd.prefix;
    this.prefix = prefix;
    this.client = createEtcdClient(etcdClientOptions(cfg));
    const conn = { client: this.client };
    this.registry = new EtcdRegistry({ ...conn, prefix, leaseTtlMs: cfg.etcd.lease_ttl, clock: opts.clock, logger: opts.logger });
    this.tableStore = new EtcdTableStore({ ...conn, prefix, logger: opts.logger });
    // the leader is re-elected within the lease TTL of a crashed leader, like a node's registration
    this.election = new EtcdElection({ ...conn, prefix, nodeId, ttlSeconds: Math.max(1, Math.round(cfg.etcd.lease_ttl / 1000)), logger: opts.logger });
    this.config = new EtcdConfigWatcher({ ...conn, prefix, logger: opts.logger });
  }

  /** Start everything but the registry (the node registers itself once it listens). */
  async start(): Promise<void> {
    await this.tableStore.start();
    await this.config.start();
    await this.election.start();
  }

  async stop(): Promise<void> {
    await this.election.stop();
    await this.config.stop();
    await this.tableStore.stop();
    this.client.close();
  }
}
