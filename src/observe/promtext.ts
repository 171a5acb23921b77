/**
 * A small parser for the Prometheus text exposition format (version 0.0.4), enough for tests and
 * tools to read `GET /metrics`: samples with labels and values, plus the declared TYPE and HELP.
 * Not a full implementation: no timestamps or exemplars are kept.
 */

export interface Sample {
  /** Series name as written, e.g. `jincache_request_duration_seconds_bucket`. */
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface ParsedMetrics {
  samples: Sample[];
  /** Metric family name -> declared type (counter, gauge, histogram, summary, untyped). */
  types: Map<string, string>;
  help: Map<string, string>;
}

export class PromTextParseError extends Error {
  readonly code = 'E_PROM_TEXT';
  readonly line: number;
  constructor(line: number, message: string) {
    super(`line ${line}: ${message}`);
    this.name = 'PromTextParseError';
    this.line = line;
  }
}

export function isPromTextParseError(e: unknown): e is PromTextParseError {
  return e instanceof PromTextParseError;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;

function parseValue(text: string): number {
  switch (text) {
    case '+Inf':
      return Number.POSITIVE_INFINITY;
    case '-Inf':
      return Number.NEGATIVE_INFINITY;
    case 'NaN':
    case 'Nan': // what prom-client writes for NaN
      return Number.NaN;
    default:
      return Number(text);
  }
}

export function parsePromText(text: string): ParsedMetrics {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').trim();
    const lineNo = i + 1;
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)\s*(.*)$/.exec(line);
      if (m?.[1] === 'TYPE') types.set(m[2] ?? '', m[3] ?? '');
      else if (m?.[1] === 'HELP') help.set(m[2] ?? '', m[3] ?? '');
      continue;
    }
    const nameMatch = NAME.exec(line);
    if (!nameMatch) throw new PromTextParseError(lineNo, `expected a metric name: ${line}`);
    const name = nameMatch[0];
    let pos = name.length;
    const labels: Record<string, string> = {};
    if (line[pos] === '{') {
      pos++;
      for (;;) {
        while (line[pos] === ' ' || line[pos] === ',') pos++;
        if (line[pos] === '}') {
          pos++;
          break;
        }
        const lm = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(line.slice(pos));
        if (!lm) throw new PromTextParseError(lineNo, `bad label at column ${pos + 1}: ${line}`);
        pos += lm[0].length;
        let value = '';
        for (;;) {
          const ch = line[pos];
          if (ch === undefined) throw new PromTextParseError(lineNo, `unterminated label value: ${line}`);
          pos++;
          if (ch === '"') break;
          if (ch === '\\') {
            const esc = line[pos++];
            value += esc === 'n' ? '\n' : (esc ?? '');
          } else {
            value += ch;
          }
        }
        labels[lm[1] ?? ''] = value;
      }
    }
    const rest = line.slice(pos).trim().split(/\s+/);
    const value = parseValue(rest[0] ?? '');
    if (rest[0] === undefined || rest[0] === '' || (Number.isNaN(value) && !/^NaN?$/i.test(rest[0]))) {
      throw new PromTextParseError(lineNo, `bad sample value: ${line}`);
    }
    samples.push({ name, labels, value });
  }
  return { samples, types, help };
}

/** Samples of one series name whose labels include every given label. */
export function findSamples(parsed: ParsedMetrics, name: string, labels: Record<string, string> = {}): Sample[] {
  return parsed.samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
}

/** The value of the single sample matching name and labels; throws when there is none or several. */
export function sampleValue(parsed: ParsedMetrics, name: string, labels: Record<string, string> = {}): number {
  const found = findSamples(parsed, name, labels);
  if (found.length !== 1) {
    throw new Error(`expected one sample ${name}${JSON.stringify(labels)}, found ${found.length}`);
  }
  return (found[0] as Sample).value;
}
