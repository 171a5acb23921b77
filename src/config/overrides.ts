// Live per-group overrides (SPEC §4 `/jincache/config/{group}`, issue 3 item 4).
//
// The local YAML file stays the base. Each etcd key holds one JSON document of overrides for
// one group; a node validates it with `parseGroupOverride` and recomputes its effective config
// as `applyGroupOverrides(base, allCurrentOverrides)` — always from the base, never
// cumulatively, so deleting an override key restores the file's value. An invalid document
// throws ConfigError; the caller logs it and keeps the config it had.
//
// Scope. Most fields are per group and land on that group's entry in `Config.groups`, where
// `resolveGroup` picks them up over the global values. Two fields are cluster-wide by nature —
// a peer's circuit breaker and the rebalancer are shared by all groups — so they are accepted
// only in the document of the default group (`cache.group_name`) and written to the global
// `fault_tolerance.circuit_threshold` / `rebalance.threshold`.

import { z } from 'zod';
import { ConfigError } from './errors.ts';
import { dropNulls, duration, int, num, problemsFromIssues, size } from './fields.ts';
import type { Config, GroupConfig } from './schema.ts';

const groupOverrideSchema = z.strictObject({
  /** The group's byte budget, e.g. "128MiB". Per group. */
  cache_bytes: size().optional(),
  /** Share of the group's bytes for the hot cache of values owned elsewhere, 0 <= x < 1 (0 turns it off). Per group. */
  hot_cache_fraction: num({ min: 0, max: 1, maxExclusive: true }).optional(),
  /** Timeout of peer requests for this group's keys, e.g. "5s" (raise it when the owner's loader is slow). Per group. */
  request_timeout: duration({ positive: true }).optional(),
  /** Retries of a failed peer request for this group's keys, 0..10. Per group. */
  max_retries: int(0, 10).optional(),
  /** Failure ratio that opens a peer's circuit breaker, 0 < x <= 1. Cluster-wide: default group's document only. */
  circuit_threshold: num({ min: 0, max: 1, minExclusive: true }).optional(),
  /** Load imbalance (fraction of the mean) that triggers a rebalance, 0 < x <= 1. Cluster-wide: default group's document only. */
  rebalance_threshold: num({ min: 0, max: 1, minExclusive: true }).optional(),
  /** Timeout of the group's HTTP origin loader, e.g. "2s". Per group; the group must have a loader. */
  loader_timeout: duration({ positive: true }).optional(),
  /** TTL given to entries stored without one, e.g. "10m". Per group. */
  ttl_default: duration({ positive: true }).optional(),
});

/** One group's live overrides; durations in ms and sizes in bytes once parsed. Every field optional. */
export type GroupOverride = z.output<typeof groupOverrideSchema>;
/** The JSON a `/jincache/config/{group}` key may hold: durations and sizes as "5s" / "64MiB" or numbers. */
export type RawGroupOverride = z.input<typeof groupOverrideSchema>;

/** The override fields that apply to the whole cluster rather than one group. */
export const CLUSTER_WIDE_OVERRIDE_FIELDS = ['circuit_threshold', 'rebalance_threshold'] as const;

/** Names of every accepted override field (for `jincache config set` help and completion). */
export const GROUP_OVERRIDE_FIELDS = Object.keys(groupOverrideSchema.shape) as (keyof GroupOverride)[];

function sourceOf(group: string | undefined): string {
  return group === undefined ? 'config override' : `config override for group ${JSON.stringify(group)}`;
}

/**
 * Validates the JSON text of one override document. `group` only labels the error message.
 * A null field counts as not set. Throws {@link ConfigError} naming the field.
 */
export function parseGroupOverride(json: string, group?: string): GroupOverride {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    const detail = e instanceof Error ? e.message : String(e);
    throw new ConfigError({ kind: 'syntax', path: '', value: json, allowed: `invalid JSON: ${detail}`, source: sourceOf(group) });
  }
  return validateGroupOverride(raw, group);
}

/** As {@link parseGroupOverride}, for an already-parsed value (e.g. from `jincache config set`). */
export function validateGroupOverride(raw: unknown, group?: string): GroupOverride {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError({ kind: 'value', path: '', value: raw, allowed: `expected a JSON object with some of ${GROUP_OVERRIDE_FIELDS.join(', ')}`, source: sourceOf(group) });
  }
  const input = dropNulls(raw);
  const r = groupOverrideSchema.safeParse(input);
  if (r.success) return r.data;
  const [first, ...others] = problemsFromIssues(r.error.issues, input, groupOverrideSchema);
  if (!first) throw new Error('config override: validation failed without an issue');
  throw new ConfigError({ ...first, others, source: sourceOf(group) });
}

/**
 * A new Config with `o` applied to group `group`; `base` is never modified (nested objects
 * that change are copied). Throws {@link ConfigError} — and changes nothing — when the group is
 * not configured, when `loader_timeout` is set for a group without a loader, or when a
 * cluster-wide field is set for a group other than `cache.group_name`.
 */
export function applyGroupOverride(base: Config, group: string, o: GroupOverride): Config {
  const index = base.groups.findIndex((g) => g.name === group);
  const source = sourceOf(group);
  if (index < 0) {
    throw new ConfigError({ kind: 'value', path: 'group', value: group, allowed: `expected a configured group: ${base.groups.map((g) => g.name).join(', ')}`, source });
  }
  const current = base.groups[index] as GroupConfig;
  const isDefault = group === base.cache.group_name;
  for (const field of CLUSTER_WIDE_OVERRIDE_FIELDS) {
    if (o[field] !== undefined && !isDefault) {
      throw new ConfigError({
        kind: 'value',
        path: field,
        value: o[field],
        allowed: `${field} is cluster-wide: set it in the override of the default group ${JSON.stringify(base.cache.group_name)}`,
        source,
      });
    }
  }
  if (o.loader_timeout !== undefined && !current.loader) {
    throw new ConfigError({ kind: 'value', path: 'loader_timeout', value: o.loader_timeout, allowed: 'expected no loader_timeout: this group has no loader', source });
  }

  const next: GroupConfig = { ...current };
  if (o.cache_bytes !== undefined) next.cache_bytes = o.cache_bytes;
  if (o.hot_cache_fraction !== undefined) next.hot_cache_fraction = o.hot_cache_fraction;
  if (o.request_timeout !== undefined) next.request_timeout = o.request_timeout;
  if (o.max_retries !== undefined) next.max_retries = o.max_retries;
  if (o.ttl_default !== undefined) next.ttl_default = o.ttl_default;
  if (current.loader) next.loader = { ...current.loader, ...(o.loader_timeout !== undefined ? { timeout: o.loader_timeout } : {}) };

  const groups = base.groups.slice();
  groups[index] = next;
  const out: Config = { ...base, groups };
  // Copy a section only when it changes, so an unchanged Config shares them with `base`.
  if (o.circuit_threshold !== undefined) out.fault_tolerance = { ...base.fault_tolerance, circuit_threshold: o.circuit_threshold };
  if (o.rebalance_threshold !== undefined) out.rebalance = { ...base.rebalance, threshold: o.rebalance_threshold };
  // load.capacity.storage_bytes is deliberately left alone: it may have been set explicitly,
  // and capacity describes the machine, not the budget an operator just changed.
  return out;
}

/**
 * `base` with every group's overrides applied, in the order given. The caller passes the full
 * current set each time (from the etcd prefix), so a removed override falls back to `base`.
 * Throws the first ConfigError; on a throw nothing is applied.
 */
export function applyGroupOverrides(base: Config, overrides: Readonly<Record<string, GroupOverride>>): Config {
  let c = base;
  for (const [group, o] of Object.entries(overrides)) c = applyGroupOverride(c, group, o);
  return c;
}
