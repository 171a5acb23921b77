// The one error type configuration problems surface as. Start-up prints `message` and exits, so
// the message is a single line that names the key, the bad value and what would be accepted;
// callers that route on the problem use the fields, never the text.

import { showValue } from './units.ts';

const configErrorBrand = Symbol.for('jincache.ConfigError');

/** One thing wrong with a configuration. */
export interface ConfigProblem {
  /** Dotted key path, arrays indexed: "fault_tolerance.request_timeout", "groups[1].loader.url"; "" for the whole file. */
  readonly path: string;
  /** The offending value as written (before unit conversion); for file errors the file name. */
  readonly value: unknown;
  /** What would have been accepted, phrased to follow "is invalid: ". */
  readonly allowed: string;
  /**
   * - `value`: the key is known, its value is not acceptable
   * - `unknown_key`: a key the schema does not know (typo protection)
   * - `file`: the file cannot be read
   * - `syntax`: the file is not valid YAML (or an override is not valid JSON)
   */
  readonly kind: 'value' | 'unknown_key' | 'file' | 'syntax';
}

export interface ConfigErrorOptions extends ConfigProblem {
  /** Prefix naming where the config came from; default "config". */
  readonly source?: string;
  /** The YAML file involved, when there is one. */
  readonly file?: string;
  /** 1-based line in `file`, for syntax errors. */
  readonly line?: number;
  /** Further problems found in the same validation pass; the message only counts them. */
  readonly others?: readonly ConfigProblem[];
}

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  readonly [configErrorBrand] = true;
  /** Dotted key path of the (first) problem, e.g. "fault_tolerance.request_timeout". */
  readonly path: string;
  /** The rejected value as written. */
  readonly value: unknown;
  /** What would have been accepted. */
  readonly allowed: string;
  readonly kind: ConfigProblem['kind'];
  readonly file: string | undefined;
  readonly line: number | undefined;
  /** Every problem found in the pass, this one first, so a caller can list them all. */
  readonly problems: readonly ConfigProblem[];

  constructor(o: ConfigErrorOptions) {
    super(formatMessage(o));
    this.name = 'ConfigError';
    this.path = o.path;
    this.value = o.value;
    this.allowed = o.allowed;
    this.kind = o.kind;
    this.file = o.file;
    this.line = o.line;
    const first: ConfigProblem = { path: o.path, value: o.value, allowed: o.allowed, kind: o.kind };
    this.problems = [first, ...(o.others ?? [])];
  }
}

export function isConfigError(e: unknown): e is ConfigError {
  return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[configErrorBrand] === true;
}

function formatMessage(o: ConfigErrorOptions): string {
  const source = o.source ?? 'config';
  const more = o.others?.length ? ` (and ${o.others.length} more problem${o.others.length === 1 ? '' : 's'})` : '';
  const where = [o.file, o.line !== undefined ? `line ${o.line}` : undefined].filter((x) => x !== undefined).join(' ');
  let text: string;
  switch (o.kind) {
    case 'file':
      text = `${source}: ${where || showValue(o.value)}: ${o.allowed}`;
      break;
    case 'syntax':
      text = `${source}: ${where ? `${where}: ` : ''}${o.allowed}`;
      break;
    case 'unknown_key':
      text = `${source}: ${o.path} = ${showValue(o.value)} is not a known key: ${o.allowed}`;
      break;
    case 'value':
      text = `${source}: ${o.path || '(top level)'} = ${showValue(o.value)} is invalid: ${o.allowed}`;
      break;
    default: {
      const impossible: never = o.kind;
      throw new Error(`unknown config problem kind ${String(impossible)}`);
    }
  }
  // One line, whatever a value or a parser message contained.
  return (text + more).replace(/\s*[\r\n]+\s*/g, ' ');
}

/** "a.b[2].c" from ["a", "b", 2, "c"]. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out;
}
