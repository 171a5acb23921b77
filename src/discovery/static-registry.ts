import type { NodeInfo } from '../core/types.ts';
import type { Disposer, MembershipListener, Registry } from './registry.ts';

/**
 * Static discovery (`--peers`): the membership is the configured list and never changes.
 * Every node derives the same partition table from the same sorted list, so they agree without
 * talking to each other.
 */
export class StaticRegistry implements Registry {
  private current: NodeInfo[];

  /** `peers` should include this node; start() adds it if it is missing. */
  constructor(peers: readonly NodeInfo[]) {
    this.current = sortById(peers);
  }

  async start(self: NodeInfo): Promise<void> {
    this.current = sortById([...this.current.filter((m) => m.id !== self.id), self]);
  }

  async stop(): Promise<void> {}

  async update(self: NodeInfo): Promise<void> {
    await this.start(self);
  }

  members(): readonly NodeInfo[] {
    return this.current;
  }

  onChange(_listener: MembershipListener): Disposer {
    return () => {};
  }
}

/** Parse `--peers` entries: "id=http://host:port" or "http://host:port" (id = "host:port"), each optionally with "?zone=z". */
export function parsePeers(entries: readonly string[], now: number): NodeInfo[] {
  return entries
    .filter((e) => e.trim() !== '')
    .map((entry) => {
      // an "=" inside the URL (after "://" or in "?zone=") is not the id's
      const first = entry.indexOf('=');
      const scheme = entry.indexOf('://');
      const query = entry.indexOf('?');
      const eq = first > 0 && (scheme < 0 || first < scheme) && (query < 0 || first < query) ? first : -1;
      const id = eq > 0 ? entry.slice(0, eq).trim() : undefined;
      const raw = (eq > 0 ? entry.slice(eq + 1) : entry).trim();
      const withScheme = /^https?:\/\//.test(raw) ? raw : `http://${raw}`;
      let url: URL;
      try {
        url = new URL(withScheme);
      } catch {
        throw new TypeError(`peer "${entry}" is not a URL: expected id=http://host:port or http://host:port`);
      }
      if (url.port === '') throw new TypeError(`peer "${entry}" has no port: expected id=http://host:port`);
      const address = `${url.protocol}//${url.host}`;
      const zone = url.searchParams.get('zone');
      return { id: id ?? url.host, address, status: 'active' as const, last_seen: now, ...(zone !== null && zone !== '' ? { zone } : {}) };
    });
}

function sortById(list: readonly NodeInfo[]): NodeInfo[] {
  return [...list].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
