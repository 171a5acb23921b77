/**
 * jincache as a library, groupcache-style: start a node inside your own service, give each group
 * a loader function, and read through it. Concurrent misses for one key share one loader call;
 * with peers, every key is loaded and cached once, by its owner.
 *
 * ```ts
 * import { createNode } from 'jincache';
 * const node = await createNode({
 *   groups: [{ name: 'users', loader: async (key) => db.findUser(key) }],
 * });
 * const user = await node.get('users', '42'); // loads once, then served from memory
 * await node.stop();
 * ```
 *
 * Other processes reach the node at `node.url` with the HTTP API or `jincache/client`.
 */
import { createServer } from 'node:net';
import { keyFromText, keyToText } from './core/keys.ts';
import type { Loader } from './cache/loader.ts';
import { JincacheNode } from './node/node.ts';
import type { KvService } from './cluster/kv.ts';
import type { Config, DeepPartialRaw } from './config/schema.ts';
import { parseConfig } from './config/schema.ts';
import { mergeRaw } from './config/load.ts';

export { JincacheNode } from './node/node.ts';
export type { NodeOptions } from './node/node.ts';
export type { KvService, GetResult, CacheSource, PutOptions, RequestOptions } from './cluster/kv.ts';
export type { ClusterEvent, ClusterEventKind, ClusterEventMap } from './cluster/events.ts';
export { JincacheError, isJincacheError } from './core/errors.ts';
export type { JincacheErrorCode } from './core/errors.ts';
export { LoaderError, isLoaderError, httpLoader } from './cache/loader.ts';
export type { Loader, LoaderFailureKind } from './cache/loader.ts';
export { loadConfig, parseConfig, defaultConfig, ConfigError, isConfigError } from './config/index.ts';
export type { Config, RawConfig, DeepPartialRaw, LoadConfigOptions } from './config/index.ts';
export { JincacheClient, JincacheClientError, isJincacheClientError } from './client/index.ts';
export type { JincacheClientOptions, CallOptions, PutCallOptions, ClusterInfo, ClusterNodeInfo, JincacheClientErrorCode } from './client/index.ts';

/**
 * A library loader: the value for `key`, or null when the origin has none. A string is stored
 * as its UTF-8 bytes. Throwing fails the read with a `LOADER_FAILED` JincacheError (the
 * failure is not cached; the next read calls the loader again).
 */
export type LoaderFunction = (key: string, signal: AbortSignal) => Promise<Buffer | string | null>;

/** One group of an embedded node. */
export interface EmbeddedGroupOptions {
  /** Group name (letters, digits, `_`, `-`, `.`), used in URLs: `/api/{name}/{key}`. */
  name: string;
  /** Byte budget of the group. @default config `cache.cache_bytes` (64 MiB) */
  cacheBytes?: number;
  /** Called on a miss (by the key's owner, once per key at a time). @default none: a plain key-value store */
  loader?: LoaderFunction;
}

export interface CreateNodeOptions {
  /** Node id, unique in the cluster. @default config `node.id`, else "node-<port>" */
  id?: string;
  /** Interface to listen on. @default config `server.host`, else 127.0.0.1 */
  host?: string;
  /**
   * Port of the node's HTTP listener (client API and node-to-node traffic); 0 = any free port.
   * A multi-node cluster (`peers`) needs a fixed port: the other nodes must know it in advance.
   * @default config `server.port` when given, else 0
   */
  port?: number;
  /**
   * Static peers, this node included or not: "id=http://host:port" or "http://host:port".
   * Every node must be given the same list. @default config `cluster.peers`, else [] (a single node)
   */
  peers?: string[];
  /** Groups to create, in addition to those in `config`; same name = these settings win. */
  groups?: EmbeddedGroupOptions[];
  /**
   * Any other configuration, in the YAML file's shape (config/jincache.example.yaml): `{ replication: { factor: 1 } }`.
   * The options above win over it. `log.level` defaults to "warn" here: a library should not
   * print a line per start-up step into its host's output.
   */
  config?: DeepPartialRaw;
}

/** A running embedded node. */
export interface EmbeddedNode {
  /** The node's id. */
  readonly id: string;
  /** Base URL of the node's client API, e.g. http://127.0.0.1:43117. */
  readonly url: string;
  /** The validated configuration it runs with. */
  readonly config: Config;
  /** The underlying node (table, groups, metrics). */
  readonly node: JincacheNode;
  /**
   * The routed key-value service (every call goes to the key's owner). Its keys are byte strings
   * (one char per byte: what Redis clients send); the methods below take text keys and convert.
   */
  readonly kv: KvService;
  /** Subscribe to cluster events ('join', 'leave', 'suspect', 'recover', 'table', 'migration', 'rebalance', ...); returns a disposer. */
  on: JincacheNode['on'];
  /** The value, or null when absent and the group's loader found nothing. Rejects with a JincacheError. */
  get(group: string, key: string): Promise<Buffer | null>;
  /** {@link get} decoded as UTF-8. */
  getString(group: string, key: string): Promise<string | null>;
  /** Store a value (a string as UTF-8); `ttlSeconds` > 0 sets an expiry. */
  put(group: string, key: string, value: Buffer | string, opts?: { ttlSeconds?: number }): Promise<void>;
  /** Remove a key; true when it existed. */
  delete(group: string, key: string): Promise<boolean>;
  /** Leave the cluster and close the listeners (the port is free once this resolves). Safe to call twice. */
  stop(): Promise<void>;
}

/** How often a picked free port is tried again when another process took it first. */
const PORT_ATTEMPTS = 3;

/**
 * Start a jincache node in this process. Rejects with a ConfigError for invalid settings and a
 * TypeError for contradictory options (port 0 with peers).
 */
export async function createNode(opts: CreateNodeOptions = {}): Promise<EmbeddedNode> {
  const base = (opts.config ?? {}) as DeepPartialRaw;
  const host = opts.host ?? base.server?.host ?? '127.0.0.1';
  // validate everything once up front, so a bad option fails before a port is picked
  const checked = buildConfig(base, opts, host, opts.port ?? base.server?.port ?? 0);
  const requested = checked.server.port;
  if (requested === 0 && checked.cluster.peers.length > 0) {
    throw new TypeError('createNode: peers need a fixed port (the other nodes must know it in advance); port 0 only works for a single node');
  }
  const loaders: Record<string, Loader> = {};
  for (const g of opts.groups ?? []) if (g.loader !== undefined) loaders[g.name] = toLoader(g.loader);

  let lastError: unknown;
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    // Port 0 is resolved here rather than by listen(0): the node advertises its address (and
    // derives its default id) before it listens, and an advertised ":0" would be unreachable.
    const config = requested === 0 ? buildConfig(base, opts, host, await freePort(host)) : checked;
    const node = new JincacheNode({ config, loaders });
    try {
      await node.start();
    } catch (e) {
      await node.stop().catch(() => {});
      lastError = e;
      if (requested === 0 && (e as NodeJS.ErrnoException)?.code === 'EADDRINUSE') continue;
      throw e;
    }
    return embedded(node, host);
  }
  throw lastError;
}

function buildConfig(base: DeepPartialRaw, opts: CreateNodeOptions, host: string, port: number | string): Config {
  const groups = [...((base.groups ?? []) as NonNullable<DeepPartialRaw['groups']>)];
  for (const g of opts.groups ?? []) {
    const raw = { name: g.name, ...(g.cacheBytes !== undefined ? { cache_bytes: g.cacheBytes } : {}) };
    const i = groups.findIndex((x) => x.name === g.name);
    if (i >= 0) groups[i] = { ...groups[i]!, ...raw };
    else groups.push(raw);
  }
  const explicit = {
    node: { id: opts.id },
    server: { host, port },
    cluster: { peers: opts.peers },
    groups,
    log: { level: base.log?.level ?? 'warn' },
  };
  return parseConfig(mergeRaw(base, explicit), { source: 'createNode' });
}

function embedded(node: JincacheNode, host: string): EmbeddedNode {
  const ports = node.ports();
  // with a separate API listener the client API is the second one (see JincacheNode.start)
  const apiPort = node.config.server.api_port !== undefined ? ports[1]! : ports[0]!;
  const urlHost = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const kv = node.kv;
  return {
    id: node.id,
    url: `http://${urlHost}:${apiPort}`,
    config: node.config,
    node,
    kv,
    on: (kind, handler) => node.on(kind, handler),
    async get(group, key) {
      return (await kv.get(group, keyFromText(key)))?.value ?? null;
    },
    async getString(group, key) {
      return (await kv.get(group, keyFromText(key)))?.value.toString('utf8') ?? null;
    },
    async put(group, key, value, opts = {}) {
      const ttl = opts.ttlSeconds;
      if (ttl !== undefined && !(Number.isFinite(ttl) && ttl > 0)) throw new TypeError(`put: ttlSeconds must be a number > 0. Got: ${String(ttl)}`);
      const body = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
      await kv.put(group, keyFromText(key), body, ttl === undefined ? {} : { ttlMs: Math.ceil(ttl * 1000) });
    },
    delete: (group, key) => kv.delete(group, keyFromText(key)),
    stop: () => node.stop(),
  };
}

/** Adapt a library loader (which may return a string) to the node's Loader (bytes or null). */
function toLoader(fn: LoaderFunction): Loader {
  return async (key, signal) => {
    // the node's keys are byte strings; the library's loader sees the text it was given
    const v = await fn(keyToText(key), signal);
    return typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
  };
}

/** A port that was free on `host` a moment ago (the OS picks it). */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.once('error', reject);
    s.listen({ host, port: 0, exclusive: true }, () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      s.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}
