/**
 * `jincache config get|set KEY [VALUE]`: live per-group overrides at `/jincache/config/{group}`.
 *
 *   jincache config get scores                       the group's override JSON ({} when none)
 *   jincache config get scores.cache_bytes           one field
 *   jincache config set scores '{"cache_bytes":"32MiB"}'   replace the group's overrides
 *   jincache config set scores.cache_bytes 32MiB     set one field, keep the others
 *   jincache config set scores.cache_bytes           (no value) remove that field
 *
 * Every write is validated first (the same rules the nodes apply); an invalid one changes nothing
 * and exits 2.
 */
import { isConfigError } from '../config/errors.ts';
import { parseGroupOverride } from '../config/overrides.ts';
import { createEtcdClient } from '../discovery/etcd-client.ts';
import { etcdAccess, type EtcdAuthFlags } from './request.ts';
import { EtcdConfigWatcher } from '../discovery/etcd-config.ts';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from './exit.ts';

export interface ConfigFlags extends EtcdAuthFlags {
  etcd: string[];
  prefix: string;
  json?: boolean;
}

function splitKey(key: string): { group: string; field: string | undefined } {
  const dot = key.indexOf('.');
  return dot < 0 ? { group: key, field: undefined } : { group: key.slice(0, dot), field: key.slice(dot + 1) };
}

/** A field value from the command line: JSON when it parses (numbers, booleans), else the string. */
function parseValue(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

export async function runConfig(action: string, key: string, value: string | undefined, flags: ConfigFlags): Promise<number> {
  if (action !== 'get' && action !== 'set') {
    process.stderr.write(`jincache config: unknown action "${action}": expected get or set\n`);
    return EXIT_USAGE;
  }
  const { group, field } = splitKey(key);
  if (group === '' || field === '') {
    process.stderr.write(`jincache config: key "${key}" is invalid: expected GROUP or GROUP.FIELD\n`);
    return EXIT_USAGE;
  }
  let access: ReturnType<typeof etcdAccess>;
  try {
    access = etcdAccess(flags);
  } catch (e) {
    process.stderr.write(`jincache config: ${(e as Error).message}\n`);
    return EXIT_USAGE;
  }
  const client = createEtcdClient({ endpoints: flags.etcd, dialTimeoutMs: 5000, ...access });
  const store = new EtcdConfigWatcher({ client, prefix: flags.prefix });
  try {
    const currentRaw = await store.get(group);
    const current = currentRaw === null ? {} : (JSON.parse(currentRaw) as Record<string, unknown>);
    if (action === 'get') {
      const out = field === undefined ? current : current[field];
      if (field !== undefined && out === undefined) {
        process.stderr.write(`jincache config: ${group} has no override for ${field}\n`);
        return EXIT_FAILURE;
      }
      process.stdout.write(`${JSON.stringify(out, null, flags.json ? 0 : 2)}\n`);
      return EXIT_OK;
    }
    let next: Record<string, unknown>;
    if (field === undefined) {
      if (value === undefined) {
        process.stderr.write('jincache config set GROUP needs a JSON object value\n');
        return EXIT_USAGE;
      }
      try {
        next = JSON.parse(value) as Record<string, unknown>;
      } catch {
        process.stderr.write(`jincache config: value is not JSON: ${value}\n`);
        return EXIT_USAGE;
      }
    } else {
      next = { ...current };
      if (value === undefined) delete next[field];
      else next[field] = parseValue(value);
    }
    const text = JSON.stringify(next);
    try {
      parseGroupOverride(text, group);
    } catch (e) {
      process.stderr.write(`jincache config: ${isConfigError(e) ? e.message : (e as Error).message}; nothing changed\n`);
      return EXIT_USAGE;
    }
    await store.set(group, text);
    process.stdout.write(`${group}: ${text}\n`);
    return EXIT_OK;
  } catch (e) {
    process.stderr.write(`jincache config: ${(e as Error).message}\n`);
    return EXIT_FAILURE;
  } finally {
    await store.stop().catch(() => {});
    client.close();
  }
}
