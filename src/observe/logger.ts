/**
 * Structured logging for jincache (pino).
 *
 * JSON lines by default, so logs can be shipped and queried; human-readable (pino-pretty) only
 * when a person is watching a terminal. pino-pretty is used as an in-process stream rather than
 * a worker-thread transport: a transport resolves its target by module path inside a worker,
 * which breaks under Node's type stripping and in the child processes of the local cluster.
 */
import { pino } from 'pino';
import type { Logger, LevelWithSilent } from 'pino';
import { createRequire } from 'node:module';
import type PinoPretty from 'pino-pretty';

/** pino-pretty, loaded for a pretty logger only (a terminal): a node logging JSON never needs it. */
const pinoPretty = (options: PinoPretty.PrettyOptions): PinoPretty.PrettyStream => (createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty)(options);

export type { Logger };

/** Levels accepted by createLogger, most to least verbose, plus 'silent'. */
export const LOG_LEVELS: readonly LevelWithSilent[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export interface LoggerOptions {
  /** Minimum level written. Default 'info'. One of LOG_LEVELS. */
  level?: string;
  /** Added to every line as `nodeId`, so the merged output of a cluster can be told apart. Default: none. */
  nodeId?: string;
  /** Human-readable output via pino-pretty. Default: process.stdout.isTTY (JSON when piped or in CI). */
  pretty?: boolean;
  /** Where lines go. Default: standard output (file descriptor 1). */
  destination?: NodeJS.WritableStream;
}

export function isLogLevel(value: string): value is LevelWithSilent {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? 'info';
  if (!isLogLevel(level)) {
    throw new TypeError(`log level must be one of ${LOG_LEVELS.join(', ')}. Got: ${JSON.stringify(level)}`);
  }
  const pretty = opts.pretty ?? process.stdout.isTTY === true;
  const options: pino.LoggerOptions = {
    level,
    // pid and hostname are pino's defaults; nodeId is what matters when several nodes share a host.
    base: opts.nodeId === undefined ? { pid: process.pid } : { pid: process.pid, nodeId: opts.nodeId },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Errors passed as `{ err }` keep their stack and code.
    serializers: { err: pino.stdSerializers.err },
  };
  if (pretty) {
    const stream = pinoPretty({
      // Colour only when writing to a terminal ourselves; a caller's stream gets plain text.
      colorize: opts.destination === undefined && process.stdout.isTTY === true,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: opts.nodeId === undefined ? 'pid,hostname' : 'pid,hostname,nodeId',
      // Shows "[node-1]" before each message when nodeId is set.
      messageFormat: opts.nodeId === undefined ? false : '[{nodeId}] {msg}',
      hideObject: false,
      // one line per entry: a terminal shows a start-up as a few lines, not a page of fields
      singleLine: true,
      ...(opts.destination === undefined ? { destination: 1, sync: true } : { destination: opts.destination }),
    });
    return pino(options, stream);
  }
  return opts.destination === undefined ? pino(options) : pino(options, opts.destination);
}

/** A logger that writes nothing, for tests and library users who bring no logger. */
export const nullLogger: Logger = pino({ level: 'silent' });
