/**
 * Live config overrides in etcd (SPEC §4 `/jincache/config/{group}`): one JSON document per
 * group, e.g. `${prefix}/config/cache` = {"cache_bytes": 268435456}.
 *
 * This class only moves raw JSON: the caller validates it (src/config/overrides.ts
 * `parseGroupOverride`) and keeps the previous config when an override is invalid. The watch is
 * an {@link EtcdMirror}: it survives etcd restarts and compaction, and keeps the last known
 * overrides while etcd is unreachable.
 */
import type { Etcd3 } from 'etcd3';
import type { Disposer } from './registry.ts';
import { checkPrefix, connect, etcdCall, noopLogger, type EtcdConnection, type EtcdLogger } from './etcd-client.ts';
import { EtcdMirror } from './etcd-watch.ts';

export type EtcdConfigOptions = EtcdConnection & {
  /** Key prefix, no trailing slash, e.g. "/jincache". */
  prefix: string;
  /** Default: no logging. */
  logger?: EtcdLogger;
};

/** `rawJson` is null when the group's override was deleted. */
export type ConfigListener = (group: string, rawJson: string | null) => void;

/** A group name is one path segment: letters, digits, `_` and `-`. */
export function checkGroup(group: string): string {
  if (typeof group !== 'string' || !/^[A-Za-z0-9_-]+$/.test(group)) {
    throw new TypeError(`config group must match [A-Za-z0-9_-]+, got ${JSON.stringify(group)}`);
  }
  return group;
}

export class EtcdConfigWatcher {
  readonly #client: Etcd3;
  readonly #ownsClient: boolean;
  readonly #root: string;
  readonly #logger: EtcdLogger;
  readonly #listeners = new Set<ConfigListener>();
  readonly #mirror: EtcdMirror;
  #started = false;

  constructor(opts: EtcdConfigOptions) {
    this.#root = `${checkPrefix(opts.prefix)}/config/`;
    this.#logger = opts.logger ?? noopLogger;
    const { client, owned } = connect(opts);
    this.#client = client;
    this.#ownsClient = owned;
    this.#mirror = new EtcdMirror({
      client,
      range: { prefix: this.#root },
      logger: this.#logger,
      name: 'config',
      onChange: (state, changed) => {
        for (const key of changed) {
          const group = key.slice(this.#root.length);
          this.#emit(group, state.get(key) ?? null);
        }
      },
    });
  }

  /** Read every override and start watching. Rejects (EtcdUnavailableError) if etcd is unreachable. */
  async start(): Promise<void> {
    await this.#mirror.start();
    this.#started = true;
  }

  async stop(): Promise<void> {
    if (this.#started) await this.#mirror.stop();
    this.#started = false;
    this.#listeners.clear();
    if (this.#ownsClient) this.#client.close();
  }

  /** group -> raw JSON of every override known now (last known while etcd is down). */
  current(): Map<string, string> {
    const out = new Map<string, string>();
    for (const [key, value] of this.#mirror.state()) out.set(key.slice(this.#root.length), value);
    return out;
  }

  onChange(cb: ConfigListener): Disposer {
    this.#listeners.add(cb);
    return () => {
      this.#listeners.delete(cb);
    };
  }

  /** Write a group's override (raw JSON, stored as given; validate before calling). */
  async set(group: string, json: string): Promise<void> {
    const key = this.#root + checkGroup(group);
    await etcdCall('config set', () => this.#client.put(key).value(json).exec());
  }

  /** Read a group's override straight from etcd (no start() needed), or null when none. */
  async get(group: string): Promise<string | null> {
    const key = this.#root + checkGroup(group);
    return etcdCall('config get', () => this.#client.get(key).string());
  }

  /** Remove a group's override; nodes fall back to their YAML base. True if one existed. */
  async delete(group: string): Promise<boolean> {
    const key = this.#root + checkGroup(group);
    const res = await etcdCall('config delete', () => this.#client.delete().key(key).exec());
    return Number(res.deleted) > 0;
  }

  #emit(group: string, raw: string | null): void {
    for (const cb of [...this.#listeners]) {
      try {
        cb(group, raw);
      } catch (err) {
        this.#logger.error({ group, err: (err as Error).message }, 'config listener threw');
      }
    }
  }
}
