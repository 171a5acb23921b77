// Durations and sizes as operators write them in YAML and on the command line ("5s", "64MiB"),
// turned into the plain numbers the code uses (milliseconds, bytes).
//
// Both parsers are strict on purpose: a config value that is silently read as something else
// (a "5 minutes" read as 5 ms, "64MB" read as 64 MiB) is worse than a start-up error. Results
// must be whole milliseconds / bytes, so "1.5s" is fine but "0.0001s" is rejected rather than
// rounded to something the operator did not write.

const unitErrorBrand = Symbol.for('jincache.UnitError');

/** A duration or size that could not be read. `allowed` says what would have been accepted. */
export class UnitError extends Error {
  readonly code = 'UNIT_INVALID';
  readonly [unitErrorBrand] = true;
  /** Which kind of quantity was expected. */
  readonly kind: 'duration' | 'size';
  /** The rejected input, as given. */
  readonly value: unknown;
  /** What would have been accepted, phrased to follow "is invalid: " (e.g. "expected a duration like 500ms, 5s or 2m"). */
  readonly allowed: string;

  constructor(kind: 'duration' | 'size', value: unknown, allowed: string) {
    super(`invalid ${kind} ${showValue(value)}: ${allowed}`);
    this.name = 'UnitError';
    this.kind = kind;
    this.value = value;
    this.allowed = allowed;
  }
}

export function isUnitError(e: unknown): e is UnitError {
  return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[unitErrorBrand] === true;
}

/** The text every duration error uses, so messages read the same everywhere. */
export const DURATION_ALLOWED = 'expected a duration like 500ms, 5s or 2m';
/** The text every size error uses. */
export const SIZE_ALLOWED = 'expected a size like 512KiB, 64MiB or 1GiB';

const MS_PER: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

// Binary units are what memory budgets are usually meant in; the decimal ones exist because
// people write "64MB" and deserve to get 64·10^6 rather than a silent 64·2^20.
const BYTES_PER: Readonly<Record<string, number>> = {
  b: 1,
  kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12,
  kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
};

const NUMBER_WITH_UNIT = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-zA-Z]*)\s*$/;

/**
 * Milliseconds from "500ms", "5s", "2m", "1h", "1.5s" or a plain number of milliseconds
 * (a number, or a string of digits such as a CLI flag gives). Throws {@link UnitError}.
 */
export function parseDuration(v: string | number): number {
  return parseQuantity(v, 'duration', DURATION_ALLOWED, (unit) => (unit === '' ? 1 : MS_PER[unit]));
}

/**
 * Bytes from "100B", "512KiB", "64MiB", "1GiB", "64MB" (decimal: 10^6) or a plain number of
 * bytes. Units are case-insensitive. Throws {@link UnitError}.
 */
export function parseSize(v: string | number): number {
  return parseQuantity(v, 'size', SIZE_ALLOWED, (unit) => (unit === '' ? 1 : BYTES_PER[unit.toLowerCase()]));
}

function parseQuantity(
  v: unknown,
  kind: 'duration' | 'size',
  allowed: string,
  unitFactor: (unit: string) => number | undefined,
): number {
  let amount: number;
  let factor: number;
  if (typeof v === 'number') {
    amount = v;
    factor = 1;
  } else if (typeof v === 'string') {
    const m = NUMBER_WITH_UNIT.exec(v);
    const f = m ? unitFactor(m[2] ?? '') : undefined;
    if (!m || f === undefined) throw new UnitError(kind, v, allowed);
    amount = Number(m[1]);
    factor = f;
  } else {
    throw new UnitError(kind, v, allowed);
  }
  const unitName = kind === 'duration' ? 'milliseconds' : 'bytes';
  if (!Number.isFinite(amount) || amount < 0) {
    throw new UnitError(kind, v, `${allowed} (not negative)`);
  }
  const exact = amount * factor;
  // Binary floating point turns "1.1s" into 1100.0000000000002; accept that, but not a value
  // that is really fractional ("0.5ms", "0.1KiB").
  const whole = Math.round(exact);
  if (Math.abs(exact - whole) > 1e-6 * Math.max(1, exact)) {
    throw new UnitError(kind, v, `${allowed} (a whole number of ${unitName})`);
  }
  if (whole > Number.MAX_SAFE_INTEGER) throw new UnitError(kind, v, `${allowed} (too large)`);
  return whole;
}

const DURATION_UNITS: ReadonlyArray<readonly [string, number]> = [['h', 3_600_000], ['m', 60_000], ['s', 1_000]];

/**
 * A readable duration that {@link parseDuration} reads back to the same number:
 * 1500 → "1.5s", 300000 → "5m", 90000 → "1.5m", 61000 → "61s", 250 → "250ms".
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (!Number.isInteger(ms) || ms < 0) return `${ms}ms`;
  for (const [unit, size] of DURATION_UNITS) {
    // Use the unit only when the value is exact within three decimals of it.
    if (ms >= size && ((ms % size) * 1000) % size === 0) return `${trimDecimals(ms / size, 3)}${unit}`;
  }
  return `${ms}ms`;
}

const BINARY_UNITS: ReadonlyArray<readonly [string, number]> = [['TiB', 2 ** 40], ['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]];
const DECIMAL_UNITS: ReadonlyArray<readonly [string, number]> = [['TB', 1e12], ['GB', 1e9], ['MB', 1e6], ['KB', 1e3]];

/**
 * A readable size that {@link parseSize} reads back to the same number:
 * 67108864 → "64MiB", 1536 → "1.5KiB", 1000000 → "1MB", 100 → "100B".
 */
export function formatSize(bytes: number): string {
  if (!Number.isFinite(bytes)) return String(bytes);
  if (!Number.isInteger(bytes) || bytes < 0) return `${bytes}B`;
  for (const [unit, size] of BINARY_UNITS) {
    if (bytes >= size && ((bytes % size) * 100) % size === 0) return `${trimDecimals(bytes / size, 2)}${unit}`;
  }
  for (const [unit, size] of DECIMAL_UNITS) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return `${bytes}B`;
}

function trimDecimals(x: number, digits: number): string {
  return x.toFixed(digits).replace(/\.?0+$/, '');
}

/** How a rejected value is quoted in one-line messages: strings in quotes, the rest as JSON. */
export function showValue(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  let text: string;
  try {
    text = JSON.stringify(v) ?? String(v);
  } catch {
    text = String(v);
  }
  // Keep the message one line and short even for a whole mapping in the wrong place.
  text = text.replace(/[\r\n]+/g, ' ');
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
