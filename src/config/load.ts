// Reading the YAML file and layering command-line overrides on it.
//
// Precedence: CLI flag > file > default. Overrides are merged as RAW values ("5s", "8002")
// before validation, so a flag is checked by exactly the rules a file value is, and the one
// validation pass reports a bad flag with the same one-line message as a bad file key.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type YAMLModule from 'yaml';

/** The YAML parser, loaded when a file is read: a node started from flags alone never needs it. */
let yamlModule: typeof YAMLModule | undefined;
function yaml(): typeof YAMLModule {
  yamlModule ??= createRequire(import.meta.url)('yaml') as typeof YAMLModule;
  return yamlModule;
}
import { ConfigError } from './errors.ts';
import { isPlainObject, setOwn } from './fields.ts';
import type { Config, DeepPartialRaw } from './schema.ts';
import { parseConfig } from './schema.ts';

// The error type belongs with the loader for callers (the CLI imports both from here).
export { ConfigError, isConfigError } from './errors.ts';
export type { ConfigProblem } from './errors.ts';
export type { Config, DeepPartialRaw } from './schema.ts';

export interface LoadConfigOptions {
  /** YAML file to read; default none (defaults plus overrides only). */
  file?: string;
  /** Raw values that win over the file, e.g. `{ server: { port: '8002' } }`; undefined leaves are ignored. */
  overrides?: DeepPartialRaw;
}

/**
 * The validated configuration from `file` (if any) with `overrides` on top. Throws
 * {@link ConfigError} with a one-line message on a missing or unreadable file, a YAML syntax
 * error (with its line), or any invalid or unknown key.
 */
export function loadConfig(opts: LoadConfigOptions = {}): Config {
  const fromFile = opts.file !== undefined ? readYamlFile(opts.file) : {};
  const merged = mergeRaw(fromFile, opts.overrides ?? {});
  return parseConfig(merged, opts.file !== undefined ? { file: opts.file } : {});
}

/** Parsed YAML of `file`, `{}` for an empty file. Throws ConfigError. */
export function readYamlFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const allowed = code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a directory, expected a YAML file' : `cannot read the file (${code ?? String(e)})`;
    throw new ConfigError({ kind: 'file', path: '', value: file, allowed, file });
  }
  return parseYaml(text, file);
}

/** Parsed YAML text; `{}` when empty. `file` only labels errors. Throws ConfigError. */
export function parseYaml(text: string, file?: string): unknown {
  // parseDocument collects errors instead of throwing, so the first one can be reported with
  // its line; uniqueKeys (the default) makes a key given twice an error, not a silent override.
  // (prettyErrors is what fills in linePos; its code frame is cut off below to keep one line.)
  const doc = yaml().parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const err = doc.errors[0];
  if (err) {
    const line = err.linePos?.[0]?.line;
    const detail = (err.message.split('\n')[0] ?? err.code).replace(/ at line \d+, column \d+:?$/, '');
    throw syntaxError(detail, file, line);
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    // Unresolved aliases and alias bombs surface only here.
    throw syntaxError(e instanceof Error ? e.message : String(e), file, undefined);
  }
  if (value === null || value === undefined) return {};
  if (!isPlainObject(value)) {
    throw new ConfigError({ kind: 'value', path: '', value, allowed: 'expected a mapping of keys (server:, cache:, ...) at the top of the file', ...(file !== undefined ? { file } : {}) });
  }
  return value;
}

function syntaxError(detail: string, file: string | undefined, line: number | undefined): ConfigError {
  return new ConfigError({
    kind: 'syntax',
    path: '',
    value: file,
    allowed: `invalid YAML: ${detail}`,
    ...(file !== undefined ? { file } : {}),
    ...(line !== undefined ? { line } : {}),
  });
}

/**
 * `override` deep-merged over `base`, neither modified: mappings merge key by key; lists and
 * scalars replace; `undefined` in `override` keeps the base value (an unset CLI flag).
 */
export function mergeRaw(base: unknown, override: unknown): unknown {
  if (override === undefined) return base;
  if (!isPlainObject(base) || !isPlainObject(override)) return override;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(override)) {
    if (v === undefined) continue;
    setOwn(out, k, mergeRaw(Object.hasOwn(base, k) ? base[k] : undefined, v));
  }
  return out;
}
