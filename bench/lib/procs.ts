// Child processes for the bench: started with their output in a log file (so a chatty server
// never costs the harness CPU or blocks on a full pipe), tracked by PID, and stopped by PID —
// on normal completion, on error, on Ctrl-C and on process exit.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface StartOptions {
  /** Short label used in logs and errors, e.g. `bare`, `n1`, `redis-server`. */
  name: string;
  command: string;
  args: readonly string[];
  /** Default: the harness's cwd. */
  cwd?: string;
  /** Default: the harness's environment. */
  env?: NodeJS.ProcessEnv;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Proc {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<ExitInfo>;
  /** True until the process has exited. */
  alive(): boolean;
  /** Last `bytes` of the process's combined stdout/stderr (default 4 KiB). */
  tail(bytes?: number): string;
  /** SIGTERM, then SIGKILL after `graceMs` (default 3000). Resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

export class ProcError extends Error {
  readonly code = 'BENCH_PROC';
  override name = 'ProcError';
}

export function isProcError(e: unknown): e is ProcError {
  return e instanceof ProcError;
}

// pid -> Proc for every child not yet known to have exited. The exit hook kills what is left.
const live = new Map<number, Proc>();
let logDir: string | null = null;
let cleanupInstalled = false;

function logDirectory(): string {
  logDir ??= mkdtempSync(join(tmpdir(), 'jincache-bench-'));
  return logDir;
}

/** Starts a child process and registers it for cleanup. Throws ProcError if spawn fails at once. */
export function startProcess(opts: StartOptions): Proc {
  installCleanup();
  const logFile = join(logDirectory(), `${opts.name}-${Date.now()}.log`);
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(opts.command, [...opts.args], {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', fd, fd],
    });
  } finally {
    // The child holds its own copy of the descriptor.
    closeSync(fd);
  }
  const pid = child.pid;
  if (pid === undefined) {
    throw new ProcError(`${opts.name}: could not start ${opts.command}`);
  }
  let done = false;
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => {
      done = true;
      live.delete(pid);
      resolve({ code, signal });
    });
    child.once('error', () => {
      // 'exit' may never come for a spawn error (ENOENT); settle here too.
      done = true;
      live.delete(pid);
      resolve({ code: null, signal: null });
    });
  });

  const proc: Proc = {
    name: opts.name,
    pid,
    logFile,
    exited,
    alive: () => !done,
    tail: (bytes = 4096) => readTail(logFile, bytes),
    stop: async (graceMs = 3000) => {
      if (done) return;
      signal(pid, 'SIGTERM');
      const t = sleep(graceMs).then(() => 'timeout' as const);
      if ((await Promise.race([exited, t])) === 'timeout') {
        signal(pid, 'SIGKILL');
        await exited;
      }
    },
  };
  live.set(pid, proc);
  return proc;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

function readTail(file: string, bytes: number): string {
  try {
    const size = statSync(file).size;
    const buf = readFileSync(file);
    return buf.subarray(Math.max(0, size - bytes)).toString('utf8');
  } catch {
    return '';
  }
}

/** Stops every child this harness started that is still running, in parallel. */
export async function stopAll(graceMs = 3000): Promise<void> {
  await Promise.all([...live.values()].map((p) => p.stop(graceMs)));
}

/** PIDs of children still running (for checks and reports). */
export function livePids(): number[] {
  return [...live.keys()];
}

/**
 * Installs, once, the handlers that stop children when the harness ends: a synchronous SIGKILL
 * of every live child on `exit` (nothing async can run there), and on SIGINT/SIGTERM a graceful
 * stopAll followed by exit 130/143.
 */
export function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.once('exit', (code) => {
    for (const pid of live.keys()) signal(pid, 'SIGKILL');
    // the children's logs are kept for a failed run (and with JINCACHE_KEEP_LOGS=1)
    if (logDir === null) return;
    if (code === 0 && process.env.JINCACHE_KEEP_LOGS !== '1') rmSync(logDir, { recursive: true, force: true });
    else process.stderr.write(`bench: child process logs in ${logDir}\n`);
  });
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(sig, () => {
      process.stderr.write(`\nbench: ${sig}, stopping ${live.size} child process(es)\n`);
      // Bounded: stopAll escalates to SIGKILL after 1 s.
      void stopAll(1000).finally(() => process.exit(code));
    });
  }
}

/** A port that was free a moment ago on 127.0.0.1 (listen on 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new ProcError('could not read a free port'));
        return;
      }
      srv.close(() => resolve(addr.port));
    });
  });
}

/** `n` distinct free ports. */
export async function freePorts(n: number): Promise<number[]> {
  const out = new Set<number>();
  for (let i = 0; out.size < n && i < n * 10; i++) out.add(await freePort());
  if (out.size < n) throw new ProcError(`could not find ${n} free ports`);
  return [...out];
}

export interface WaitOptions {
  /** Default 15000. */
  timeoutMs?: number;
  /** Poll interval, default 100 ms. */
  intervalMs?: number;
  /** When given, waiting fails at once if this process exits, with its log tail. */
  proc?: Proc;
}

async function pollUntil(what: string, check: () => Promise<boolean>, opts: WaitOptions): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const intervalMs = opts.intervalMs ?? 100;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (opts.proc && !opts.proc.alive()) {
      const info = await opts.proc.exited;
      throw new ProcError(
        `${opts.proc.name} exited (code ${info.code}, signal ${info.signal}) while waiting for ${what}\n` +
          `--- last output (${opts.proc.logFile}) ---\n${opts.proc.tail()}`,
      );
    }
    if (await check()) return;
    await sleep(intervalMs);
  }
  const tail = opts.proc ? `\n--- last output of ${opts.proc.name} (${opts.proc.logFile}) ---\n${opts.proc.tail()}` : '';
  throw new ProcError(`timed out after ${timeoutMs} ms waiting for ${what}${tail}`);
}

function canConnect(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** Waits until a TCP connection to host:port succeeds. */
export function waitForPort(port: number, opts: WaitOptions & { host?: string } = {}): Promise<void> {
  const host = opts.host ?? '127.0.0.1';
  return pollUntil(`${host}:${port} to accept connections`, () => canConnect(port, host), opts);
}

/** Waits until `GET url` answers with `status` (default 200). */
export function waitForHttp(url: string, opts: WaitOptions & { status?: number } = {}): Promise<void> {
  const want = opts.status ?? 200;
  return pollUntil(
    `${url} to answer ${want}`,
    async () => {
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        return res.status === want;
      } catch {
        return false;
      }
    },
    opts,
  );
}
