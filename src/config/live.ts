// The config in force on a node: the base (file and flags) with the valid live overrides from
// etcd `/jincache/config/{group}` applied (overrides.ts). Components read it on every use, or
// subscribe to its changes to adjust what they built from it (a group's budget, a breaker's
// threshold). Deleting an override falls back to the base, because the effective config is always
// recomputed from the base and the full current set of overrides.

import { isConfigError } from './errors.ts';
import { applyGroupOverrides, parseGroupOverride, type GroupOverride } from './overrides.ts';
import { resolveGroup, type Config, type ResolvedGroup } from './schema.ts';

export type ConfigListener = (next: Config, prev: Config) => void;

export type OverrideOutcome = { applied: true } | { applied: false; reason: string };

export class LiveConfig {
  /** The file and flags, never changed. */
  readonly base: Config;
  private config: Config;
  private readonly overrides: Record<string, GroupOverride> = {};
  private groups = new Map<string, ResolvedGroup>();
  private readonly listeners = new Set<ConfigListener>();

  constructor(base: Config) {
    this.base = base;
    this.config = base;
    this.resolve();
  }

  /** The effective config now. */
  current(): Config {
    return this.config;
  }

  /** A configured group's effective settings (undefined: not configured). O(1): read per request. */
  group(name: string): ResolvedGroup | undefined {
    return this.groups.get(name);
  }

  /** Call `listener` after every change; the disposer stops it. */
  subscribe(listener: ConfigListener): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  /**
   * Apply the override document of `group` (raw JSON text; null = the key was deleted). An
   * invalid one changes nothing and says why.
   */
  apply(group: string, raw: string | null): OverrideOutcome {
    const overrides = { ...this.overrides };
    let next: Config;
    try {
      if (raw === null) delete overrides[group];
      else overrides[group] = parseGroupOverride(raw, group);
      next = applyGroupOverrides(this.base, overrides);
    } catch (e) {
      return { applied: false, reason: isConfigError(e) ? e.message : (e as Error).message };
    }
    if (raw === null) delete this.overrides[group];
    else this.overrides[group] = overrides[group]!;
    const prev = this.config;
    this.config = next;
    this.resolve();
    for (const l of this.listeners) l(next, prev);
    return { applied: true };
  }

  private resolve(): void {
    const groups = new Map<string, ResolvedGroup>();
    for (const { name } of this.config.groups) groups.set(name, resolveGroup(this.config, name)!);
    this.groups = groups;
  }
}
