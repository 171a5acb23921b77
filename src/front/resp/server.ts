/**
 * The Redis-protocol listener (SPEC §1 and §6, `server.resp_port`): RESP2, and RESP3 after
 * HELLO 3, over TCP, each command mapped onto the node's KvService, which routes it to the key's
 * owner. The listener keeps the registry of its connections (CLIENT LIST / INFO / KILL see it
 * through `env.listener`) and its counters (INFO).
 *
 * One connection runs its commands one at a time, in arrival order, so replies come back in
 * request order; the next command starts as soon as the previous one resolved, without waiting
 * for the client (pipelining). Replies are gathered and written in corked bursts: at the end of
 * every run of buffered commands, when 64 KiB piled up, and on the next turn of the event loop
 * while a slow command is in flight, so earlier replies never wait for it.
 *
 * Back-pressure both ways: a connection stops executing while its socket has more than
 * `WRITE_HIGH_WATER` bytes unsent (a client that does not read its replies), and stops reading
 * while it is busy and `READ_PAUSE_BYTES` of input are already buffered.
 */
import net from 'node:net';
import tls from 'node:tls';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { systemClock, type Clock } from '../../core/types.ts';
import { OPEN_DEFAULT } from '../auth.ts';
import type { FrontDoor } from '../door.ts';
import type { ClientLimits, InputHolder } from '../../net/limits.ts';
import { CrossProtocolError, RespParser, isCrossProtocolError, type RespCommand } from './parser.ts';
import { ANSWERED, KvCall, WAIT, execute, executeCommand, failedCall } from './commands.ts';
import { infoSections, infoText, usedMemory } from './info.ts';
import {
  newSession,
  type ClientView,
  type CommandEnv,
  type KeyspaceStats,
  type Listener,
  type ListenerFacts,
  type ListenerStats,
  type Session,
} from './session.ts';
import { ReplyBatch, encode, error, type RespReply } from './writer.ts';
import type { ClusterView } from './cluster-view.ts';
import { WriteRound, type RoundMember } from './write-round.ts';
import { readIntoBuffer } from '../../net/user-buffer.ts';

/** The subset of a pino logger this listener uses. */
export interface RespLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const silentLogger: RespLogger = { debug() {}, info() {}, warn() {}, error() {} };

export interface RespServerOptions {
  /** The front door; commands address its default group. */
  door: FrontDoor;
  /** Interface to bind. Default "127.0.0.1". */
  host?: string;
  /** TCP port; 0 picks a free one (see address()). */
  port: number;
  /** Extra `field: value` lines for INFO, shown under `# Jincache`. Default none. */
  info?: () => Record<string, string | number>;
  /**
   * The default group's keys in the whole cluster, how many have a TTL and their average TTL
   * left in ms (INFO keyspace `db0:keys=..,expires=..,avg_ttl=..`). INFO waits for it at most
   * a second, then leaves db0 out. Default: the door's count, with expires and avg_ttl 0.
   */
  keyspace?: () => Promise<KeyspaceStats>;
  /** Bytes the default group may hold on this node (CONFIG GET maxmemory, INFO maxmemory). Default 0 (Redis: no limit). */
  maxmemory?: () => number;
  /** The names of the configured users (CLIENT KILL USER refuses others). Default: `default` and the users connected now. */
  users?: () => readonly string[];
  /**
   * Whether this listener answers the Redis Cluster protocol: HELLO and INFO say `cluster` mode,
   * INFO `cluster_enabled:1`, CONFIG GET cluster-enabled `yes`, SELECT of another db refused as
   * Redis Cluster refuses it. Default: whether `cluster` is given.
   */
  clusterEnabled?: boolean;
  /** Default silent. */
  logger?: RespLogger;
  /** How long stop() lets a command in flight finish before connections are destroyed. Default 5000 ms. */
  requestTimeoutMs?: number;
  /** Connections beyond this are refused with `-ERR max number of clients reached`. Default 10000; with `limits`, theirs. */
  maxConnections?: number;
  /**
   * Bounds shared with the node's other client listeners (SPEC §8): connections, the input all
   * clients hold together, each client's unread output, idle time. Default: `maxConnections` only.
   */
  limits?: ClientLimits;
  /** Time source for deadlines, TTL and uptime. Default the system clock. */
  clock?: Clock;
  /** The Redis Cluster view of the cluster (CLUSTER commands, redirects). Default none: cluster support disabled. */
  cluster?: ClusterView;
  /**
   * The node's clock, held while a connection runs a burst of commands (core/held-clock.ts):
   * the commands of one burst read the time once, re-read every CLOCK_REFRESH_COMMANDS commands
   * and before anything awaits. Default none: every read is the clock's own.
   */
  clockHold?: ClockHold;
  /** TLS (SPEC §7 `tls`): the certificate, and for client certificates the CA and requestCert. Default: plain TCP. */
  tls?: tls.SecureContextOptions & { requestCert?: boolean; rejectUnauthorized?: boolean };
}

/** What RespServerOptions.clockHold needs of a HeldClock. */
export interface ClockHold {
  hold(): void;
  refresh(): void;
  release(): void;
}

/** A held clock is read again after this many commands of one burst (bounds how old a reading gets). */
const CLOCK_REFRESH_COMMANDS = 16;
/** Above this many unsent reply bytes a connection stops executing until the socket drains. */
const WRITE_HIGH_WATER = 1024 * 1024;
/** A busy connection stops reading once this much input is buffered. */
const READ_PAUSE_BYTES = 256 * 1024;
/** The size of the read buffer plain TCP connections share: what Node reads into by default (64 KiB). */
const READ_BUFFER_BYTES = 64 * 1024;
/** Replies are written as soon as this much is gathered. */
const FLUSH_BYTES = 64 * 1024;
/** Most replies held back behind writes still waiting for their acknowledgment (see RespConnection.ahead). */
const MAX_AHEAD = 512;
/** How long a closing connection may take to deliver its last reply before it is destroyed. */
const CLOSE_GRACE_MS = 1000;
/** INFO's keyspace line waits this long for a cluster-wide count; INFO must stay fast. */
const INFO_COUNT_BUDGET_MS = 1000;
/** instantaneous_ops_per_sec: commands counted once a second, the rate over the last few. */
const OPS_SAMPLE_MS = 1000;
const OPS_SAMPLES = 5;
/** A cross-protocol attack is logged at most this often (each closed all the same). */
const SECURITY_LOG_EVERY_MS = 60_000;

/** What INFO stats counts; CONFIG RESETSTAT zeroes it. */
interface Counters {
  connectionsReceived: number;
  commandsProcessed: number;
  rejectedConnections: number;
  netInputBytes: number;
  netOutputBytes: number;
  errorReplies: number;
}

function zeroCounters(): Counters {
  return { connectionsReceived: 0, commandsProcessed: 0, rejectedConnections: 0, netInputBytes: 0, netOutputBytes: 0, errorReplies: 0 };
}

export class RespServer {
  private readonly door: FrontDoor;
  private readonly host: string;
  private readonly port: number;
  private readonly requestTimeoutMs: number;
  private readonly maxConnections: number;
  private readonly limits: ClientLimits | undefined;
  private readonly extraInfo: (() => Record<string, string | number>) | undefined;
  private readonly log: RespLogger;
  private readonly clock: Clock;
  private readonly env: CommandEnv;

  private readonly keyspaceOf: () => Promise<KeyspaceStats>;
  private readonly maxmemory: () => number;
  private readonly userNames: (() => readonly string[]) | undefined;
  private readonly clusterEnabled: boolean;

  private server: net.Server | tls.Server | null = null;
  /** TLS: raw sockets whose handshake has not completed (destroyed on stop). */
  private readonly handshaking = new Set<net.Socket>();
  private readonly tls: RespServerOptions['tls'];
  private readonly clockHold: ClockHold | undefined;
  /** Live connections by client id, oldest first; each removes itself on close. */
  private readonly open = new Map<number, RespConnection>();
  /** Every connection's replies, written together at the end of each turn. */
  private readonly round = new WriteRound();
  /**
   * Where every plain TCP connection's input is read (readIntoBuffer): a connection's parser
   * copies each read out of it before the next read of any connection.
   */
  private readonly readBuffer = Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
  private nextClientId = 1;
  private startedAt = 0;
  private readonly counters: Counters = zeroCounters();
  /** New every start, as Redis's run_id. */
  private readonly runId = randomBytes(20).toString('hex');
  /** The most used_memory INFO has seen. */
  private memoryPeak = 0;
  /** commandsProcessed once a second, oldest first (instantaneous_ops_per_sec). */
  private readonly opsSamples: { at: number; commands: number }[] = [];
  private sampler: NodeJS.Timeout | null = null;
  private securityLoggedAt = -Infinity;
  private securitySuppressed = 0;

  constructor(opts: RespServerOptions) {
    this.door = opts.door;
    this.tls = opts.tls;
    this.clockHold = opts.clockHold;
    this.host = opts.host ?? '127.0.0.1';
    this.port = opts.port;
    if (!Number.isInteger(this.port) || this.port < 0 || this.port > 65535) {
      throw new RangeError(`port must be an integer in 0..65535. Got: ${opts.port}`);
    }
    this.requestTimeoutMs = positiveInt('requestTimeoutMs', opts.requestTimeoutMs ?? 5000);
    this.limits = opts.limits;
    this.maxConnections = opts.limits?.maxClients ?? positiveInt('maxConnections', opts.maxConnections ?? 10000);
    this.extraInfo = opts.info;
    this.log = opts.logger ?? silentLogger;
    this.clock = opts.clock ?? systemClock;
    this.keyspaceOf = opts.keyspace ?? (async () => ({ keys: await this.door.count('resp', OPEN_DEFAULT, this.door.defaultGroup), expires: 0, avgTtl: 0 }));
    this.maxmemory = opts.maxmemory ?? (() => 0);
    this.userNames = opts.users;
    this.clusterEnabled = opts.clusterEnabled ?? opts.cluster !== undefined;
    this.env = {
      door: this.door,
      group: this.door.defaultGroup,
      clock: this.clock,
      info: (sections) => this.infoText(sections),
      // INFO itself is permission-checked where the command is dispatched
      keyspace: () => this.keyspaceOf(),
      listener: this.listener,
      ...(opts.cluster !== undefined ? { cluster: opts.cluster } : {}),
    };
  }

  /** What commands see of this listener (CLIENT, CONFIG, INFO). */
  private readonly listener: Listener = {
    clients: () => this.open.values(),
    client: (id) => this.open.get(id),
    users: () => this.userNames?.() ?? ['default', ...new Set([...this.open.values()].flatMap((c) => (c.session.user ? [c.session.user.name] : [])))],
    facts: () => this.facts(),
    stats: () => this.stats(),
    resetStats: () => {
      Object.assign(this.counters, zeroCounters());
      this.opsSamples.length = 0;
    },
  };

  private facts(): ListenerFacts {
    return {
      host: this.host,
      port: this.address().port,
      maxClients: this.maxConnections,
      idleTimeoutMs: this.limits?.idleTimeoutMs ?? 0,
      outputBufferBytes: this.limits?.outputBufferBytes ?? 0,
      maxValueBytes: this.door.maxValueBytes(),
      maxmemory: this.maxmemory(),
      clusterEnabled: this.clusterEnabled,
    };
  }

  private stats(): ListenerStats {
    let maxIn = 0;
    let maxOut = 0;
    for (const c of this.open.values()) {
      maxIn = Math.max(maxIn, c.inputBytes());
      maxOut = Math.max(maxOut, c.outputBytes());
    }
    const c = this.counters;
    const first = this.opsSamples[0];
    const now = this.clock.now();
    const opsPerSec = first !== undefined && now > first.at ? ((c.commandsProcessed - first.commands) * 1000) / (now - first.at) : 0;
    return {
      startedAt: this.startedAt,
      connectedClients: this.open.size,
      connectionsReceived: c.connectionsReceived,
      rejectedConnections: c.rejectedConnections,
      commandsProcessed: c.commandsProcessed,
      opsPerSec: Math.max(0, opsPerSec),
      netInputBytes: c.netInputBytes,
      netOutputBytes: c.netOutputBytes,
      errorReplies: c.errorReplies,
      maxInputBuffer: maxIn,
      maxOutputBuffer: maxOut,
    };
  }

  private sampleOps(): void {
    this.opsSamples.push({ at: this.clock.now(), commands: this.counters.commandsProcessed });
    if (this.opsSamples.length > OPS_SAMPLES) this.opsSamples.shift();
  }

  /**
   * A client spoke HTTP to this port (parser.ts: CrossProtocolError): it is closed without a
   * reply. Logged as Redis logs it, but at most once a minute: a hostile page can open many.
   */
  private securityWarning(client: number, remote: string, err: CrossProtocolError): void {
    const now = this.clock.now();
    if (now - this.securityLoggedAt < SECURITY_LOG_EVERY_MS) {
      this.securitySuppressed++;
      return;
    }
    this.log.warn({ client, remote, line: err.line, ...(this.securitySuppressed > 0 ? { alsoSinceLastLog: this.securitySuppressed } : {}) }, err.message);
    this.securityLoggedAt = now;
    this.securitySuppressed = 0;
  }

  /** Parser limits: one value plus slack for framing; a request may carry many values (MSET). */
  private parserOptions() {
    const maxBulkBytes = Math.max(this.door.maxValueBytes(), this.door.maxKeyBytes('resp')) + 1024;
    return {
      maxBulkBytes,
      maxArrayLength: 65536,
      maxInlineBytes: 64 * 1024,
      maxBufferedBytes: Math.max(16 * 1024 * 1024, 4 * maxBulkBytes),
    };
  }

  start(): Promise<void> {
    if (this.server) return Promise.reject(new Error('RespServer already started'));
    const server =
      this.tls !== undefined
        ? tls.createServer({ ...this.tls, allowHalfOpen: true }, (socket) => this.accept(socket))
        : // paused: readIntoBuffer takes the socket over before it reads anything
          net.createServer({ noDelay: true, allowHalfOpen: true, pauseOnConnect: true }, (socket) => this.accept(socket));
    // a failed TLS handshake (no client certificate, a wrong CA) is the client's problem, not ours
    server.on('tlsClientError', (err, socket) => {
      this.log.debug({ err: err.message }, 'resp TLS handshake failed');
      socket.destroy();
    });
    if (this.tls !== undefined) {
      // sockets before their handshake (a load balancer's TCP check connects and closes): with
      // allowHalfOpen one closed by its peer is never destroyed by itself, and would hold close()
      server.on('connection', (raw: net.Socket) => {
        this.handshaking.add(raw);
        raw.once('close', () => this.handshaking.delete(raw));
        raw.once('end', () => {
          if (this.handshaking.has(raw)) raw.destroy();
        });
      });
      // past the handshake the TLS socket owns it (it is in `open`): matched by its remote end
      (server as tls.Server).on('secureConnection', (s: tls.TLSSocket) => {
        for (const raw of this.handshaking) {
          if (raw.remotePort === s.remotePort && raw.remoteAddress === s.remoteAddress) this.handshaking.delete(raw);
        }
      });
    }
    this.server = server;
    this.startedAt = this.clock.now();
    this.sampleOps();
    this.sampler = setInterval(() => this.sampleOps(), OPS_SAMPLE_MS);
    this.sampler.unref();
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => {
        this.server = null;
        reject(err);
      };
      server.once('error', onError);
      server.listen(this.port, this.host, () => {
        server.off('error', onError);
        server.on('error', (err) => this.log.error({ err }, 'resp listener error'));
        this.log.info(this.address(), 'resp listener started');
        resolve();
      });
    });
  }

  /**
   * Stop accepting, let every connection finish the command it is running and deliver its
   * replies, then close them (destroyed after a short grace if a client does not let go).
   */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    if (this.sampler) clearInterval(this.sampler);
    this.sampler = null;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const raw of this.handshaking) raw.destroy();
    this.handshaking.clear();
    // The server reports closed before its sockets emit 'close'; wait for those too, so
    // connections() is 0 once stop() resolves.
    const conns = [...this.open.values()];
    for (const conn of conns) conn.shutdown();
    // A command stuck past its deadline must not hold stop() forever.
    const force = setTimeout(() => {
      for (const conn of this.open.values()) conn.destroy();
    }, this.requestTimeoutMs + CLOSE_GRACE_MS);
    try {
      await closed;
      await Promise.all(conns.map((c) => c.closed));
    } finally {
      clearTimeout(force);
    }
    this.log.info({}, 'resp listener stopped');
  }

  /** Serve new connections with renewed certificates (SIGHUP); open connections keep theirs. */
  setSecureContext(options: tls.SecureContextOptions): void {
    if (this.server instanceof tls.Server) this.server.setSecureContext(options);
  }

  address(): { host: string; port: number } {
    const a = this.server?.address();
    if (a && typeof a === 'object') return { host: a.address, port: a.port };
    return { host: this.host, port: this.port };
  }

  connections(): number {
    return this.open.size;
  }

  private accept(accepted: net.Socket): void {
    this.counters.connectionsReceived++;
    if (this.limits !== undefined ? !this.limits.admit() : this.open.size >= this.maxConnections) {
      this.counters.rejectedConnections++;
      accepted.on('error', () => {});
      accepted.end(encode(error('ERR max number of clients reached')));
      accepted.resume(); // input read and dropped: unread input would make the close a reset
      setTimeout(() => accepted.destroy(), CLOSE_GRACE_MS).unref();
      return;
    }
    // a plain TCP connection reads into the server's one read buffer (net/user-buffer.ts)
    const socket =
      this.tls === undefined ? (readIntoBuffer(accepted, this.readBuffer, (n) => conn.onData(this.readBuffer, n), { allowHalfOpen: true }) ?? accepted) : accepted;
    // Redis's tcp-keepalive default: find dead peers that never send FIN.
    socket.setKeepAlive(true, 300_000);
    socket.setNoDelay(true);
    const id = this.nextClientId++;
    const session = newSession(id, this.door.anonymous());
    const conn: RespConnection = new RespConnection({
      socket,
      env: this.env,
      session,
      parser: new RespParser({ ...this.parserOptions(), authRequired: session.user === null }),
      log: this.log,
      counters: this.counters,
      clock: this.clock,
      clockHold: this.clockHold,
      round: this.round,
      authRequired: this.door.authRequired,
      ...(this.limits !== undefined ? { limits: this.limits } : {}),
      onCrossProtocol: (err) => this.securityWarning(id, conn.addr, err),
      onClose: () => {
        this.limits?.leave();
        this.open.delete(id);
        this.log.debug({ client: id }, 'resp client disconnected');
      },
    });
    this.open.set(id, conn);
    // an accepted socket used as it is (TLS, or readIntoBuffer declined) delivers 'data' from now on
    if (socket === accepted) accepted.resume();
    this.log.debug({ client: id, remote: conn.addr }, 'resp client connected');
  }

  private async infoText(args: string[]): Promise<string> {
    const sections = infoSections(args);
    const keyspace = sections.has('keyspace') ? await within(this.keyspaceOf(), INFO_COUNT_BUDGET_MS) : null;
    const memory = process.memoryUsage();
    this.memoryPeak = Math.max(this.memoryPeak, usedMemory(memory));
    let extra: Record<string, string | number> = {};
    try {
      extra = this.extraInfo?.() ?? {};
    } catch (err) {
      this.log.warn({ err }, 'resp INFO provider failed');
    }
    return infoText({
      sections,
      facts: this.facts(),
      stats: this.stats(),
      now: this.clock.now(),
      runId: this.runId,
      process: {
        pid: process.pid,
        memory,
        peakMemory: this.memoryPeak,
        cpu: process.cpuUsage(),
        totalSystemMemory: os.totalmem(),
        os: `${os.type()} ${os.release()} ${os.arch()}`,
        executable: process.execPath,
      },
      keyspace,
      jincache: { group: this.door.defaultGroup, ...extra },
    });
  }
}

/** `p`'s value, or null when it fails or takes longer than `ms`. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), ms);
  });
  try {
    return await Promise.race([p.catch(() => null), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

interface ConnectionDeps {
  socket: net.Socket;
  env: CommandEnv;
  session: Session;
  parser: RespParser;
  log: RespLogger;
  counters: Counters;
  clock: Clock;
  clockHold: ClockHold | undefined;
  /** Whether the node requires a password: the parser's pre-AUTH limits follow the session's user. */
  authRequired: boolean;
  limits?: ClientLimits;
  /** Where the connection's replies are written at the end of each turn. */
  round: WriteRound;
  /** The client spoke HTTP: it is being closed without a reply (the server logs it). */
  onCrossProtocol: (err: CrossProtocolError) => void;
  onClose: () => void;
}

/** `ip:port`, `[ip]:port` for IPv6, as Redis writes client addresses. */
function formatAddress(ip: string | undefined, port: number | undefined): string {
  const host = ip ?? '?';
  return `${host.includes(':') ? `[${host}]` : host}:${port ?? 0}`;
}

/** A command named POST or `Host:` (any case): what Redis's securityWarningCommand refuses. */
function isHttpCommand(cmd: RespCommand): boolean {
  const at = cmd.start(0);
  const b = cmd.buf;
  const n = cmd.length(0);
  const is = (word: string) => {
    for (let i = 0; i < n; i++) if ((b[at + i]! | 0x20) !== word.charCodeAt(i)) return false;
    return true;
  };
  return n === 4 ? is('post') : n === 5 && b[at + 4] === 0x3a /* : */ && is('host:');
}

/**
 * One client. State: `running` while the command loop is active (at most one loop, so commands
 * never overlap); `draining` while waiting for the socket to take unsent replies; `closing` once
 * QUIT, a protocol error, CLIENT KILL of itself or shutdown ended it: nothing more is executed.
 *
 * Each reply is encoded in the protocol the session has once its command returned (HELLO's own
 * reply in the new one), and written only while the session's CLIENT REPLY mode lets it.
 */
class RespConnection implements ClientView, RoundMember {
  private readonly socket: net.Socket;
  private readonly env: CommandEnv;
  readonly session: Session;
  private readonly parser: RespParser;
  private readonly log: RespLogger;
  private readonly counters: Counters;
  private readonly clock: Clock;
  private readonly clockHold: ClockHold | undefined;
  /** Whether this connection holds clockHold now, and the commands run since its last reading. */
  private holding = false;
  private sinceReading = 0;
  private readonly authRequired: boolean;
  private readonly onCrossProtocol: (err: CrossProtocolError) => void;
  private readonly limits: ClientLimits | undefined;
  readonly addr: string;
  readonly laddr: string;
  readonly fd: number;
  readonly connectedAt: number;
  private lastInput: number;
  /** This connection's unparsed input, as the shared input budget counts it. */
  private readonly input: InputHolder = { bytes: 0, evict: () => this.evicted() };
  private readonly batch = new ReplyBatch();
  /** Reused slot for a GET or SET waiting on the KvService (see KvCall). */
  private readonly call = new KvCall();
  /**
   * The replies, in order, of commands run while a write before them waits for its
   * acknowledgment. A SET this node coordinates takes effect at once and then waits for its
   * replicas; the commands after it on the connection that also take effect at once (a local
   * GET, another such SET) run meanwhile, so a pipeline's writes reach the replicas together
   * (one request per peer and turn, cluster/replica-batch.ts) instead of one round trip each.
   * Any other command waits for these replies first (KvCall.ahead, WAIT): commands still take
   * effect in the order they were sent, and replies go out in that order.
   */
  private readonly ahead: Promise<RespReply>[] = [];
  private running = false;
  private draining = false;
  private closing = false;
  private isClosed = false;
  /** Resolves once the socket emitted 'close'. */
  readonly closed: Promise<void>;
  private paused = false;
  /** RoundMember: this connection's replies are due at the end of this turn (WriteRound). */
  inRound = false;
  private readonly round: WriteRound;
  private graceTimer: NodeJS.Timeout | null = null;

  constructor(deps: ConnectionDeps) {
    this.socket = deps.socket;
    this.env = deps.env;
    this.session = deps.session;
    this.parser = deps.parser;
    this.log = deps.log;
    this.counters = deps.counters;
    this.clock = deps.clock;
    this.clockHold = deps.clockHold;
    this.authRequired = deps.authRequired;
    this.onCrossProtocol = deps.onCrossProtocol;
    this.limits = deps.limits;
    this.round = deps.round;
    const socket = this.socket;
    this.addr = formatAddress(socket.remoteAddress, socket.remotePort);
    this.laddr = formatAddress(socket.localAddress, socket.localPort);
    // a TCP socket's descriptor (libuv's handle); a TLS socket's is not reachable: -1
    const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
    this.fd = typeof fd === 'number' ? fd : -1;
    this.connectedAt = this.lastInput = this.clock.now();
    const idleMs = this.limits?.idleTimeoutMs ?? 0;
    if (idleMs > 0) {
      // Redis's `timeout`: a client that sends nothing for this long is closed (not one waiting on a command)
      socket.setTimeout(idleMs, () => {
        if (this.running) return;
        this.limits?.closed('idle_timeout');
        this.log.debug({ client: this.session.id }, 'resp client idle: closed');
        socket.destroy();
      });
    }
    let markClosed: () => void = () => {};
    this.closed = new Promise((resolve) => (markClosed = resolve));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => {
      if (!this.draining) return;
      this.draining = false;
      this.pump();
    });
    socket.on('error', (err) => this.log.debug({ err, client: this.session.id }, 'resp client socket error'));
    socket.on('close', () => {
      this.isClosed = true;
      this.limits?.release(this.input);
      if (this.graceTimer) clearTimeout(this.graceTimer);
      deps.onClose();
      markClosed();
    });
    // A client that half-closes still gets its replies; then the socket ends.
    socket.on('end', () => {
      // A running or draining loop checks readableEnded itself once it runs out of input.
      if (!this.running && !this.draining) this.finish();
    });
  }

  /** Server stop: finish the current command, deliver replies, close. */
  shutdown(): void {
    if (this.isClosed) return;
    if (this.running) {
      this.closing = true; // the loop closes after its current command
    } else {
      this.finish();
    }
  }

  destroy(): void {
    this.socket.destroy();
  }

  // ---- ClientView (CLIENT LIST, INFO, KILL) ----

  lastInputAt(): number {
    return this.lastInput;
  }

  inputBytes(): number {
    return this.parser.bufferedBytes;
  }

  outputBytes(): number {
    return this.socket.writableLength + this.batch.byteLength;
  }

  kill(): void {
    this.closing = true;
    this.socket.destroy();
  }

  /** Input: chunk[0, length), copied out now (a read buffer is shared with other connections). */
  onData(chunk: Buffer, length = chunk.length): void {
    this.counters.netInputBytes += length;
    this.lastInput = this.clock.now();
    if (this.closing) return; // discarded: we are only waiting for the peer to close
    this.parser.feed(chunk, length);
    if (this.limits !== undefined && !this.limits.hold(this.input, this.parser.bufferedBytes)) return;
    if (this.running || this.draining) {
      if (this.parser.bufferedBytes >= READ_PAUSE_BYTES && !this.paused) {
        this.paused = true;
        this.socket.pause();
      }
      return;
    }
    this.pump();
  }

  private pump(): void {
    if (this.running || this.isClosed) return;
    this.running = true;
    void this.loop();
  }

  /** Execute buffered commands in order until input runs out, the socket is full, or we close. */
  private async loop(): Promise<void> {
    try {
      while (!this.closing && !this.isClosed) {
        if (this.socket.writableLength + this.batch.byteLength > WRITE_HIGH_WATER) {
          this.flush();
          if (this.socket.writableLength > WRITE_HIGH_WATER) {
            this.draining = true; // 'drain' restarts the loop
            return;
          }
        }
        const kind = this.parser.nextCommand();
        if (kind === 'incomplete') {
          if (this.ahead.length === 0) break;
          // input ran out with replies held back: deliver them, then look for more input
          this.unholdClock();
          if (!(await this.settleAhead())) return;
          continue;
        }
        if (this.ahead.length > 0 && kind === 'error') {
          this.unholdClock();
          if (!(await this.settleAhead())) return;
        }
        if (kind === 'error') {
          const err = this.parser.error;
          if (isCrossProtocolError(err)) {
            this.crossProtocol(err);
            return;
          }
          const reason = err?.message ?? 'Protocol error';
          this.log.debug({ client: this.session.id, reason }, 'resp protocol error');
          this.answer(error(`ERR ${reason}`));
          this.closing = true;
          break;
        }
        const cmd = this.parser.command;
        // POST and Host: sent as multibulk (the parser flags them only inline)
        const nameLength = cmd.length(0);
        if ((nameLength === 4 || nameLength === 5) && isHttpCommand(cmd)) {
          this.crossProtocol(new CrossProtocolError(cmd.buf.toString('latin1', cmd.start(0), cmd.end(0))));
          return;
        }
        this.counters.commandsProcessed++;
        this.holdClock();
        // The command's arguments are views of the parser's storage, used only synchronously
        // here: the parser is not touched again until the command's reply is in.
        this.call.ahead = this.ahead.length > 0;
        // a GET hit may write its reply straight into the batch: only when it is next in line
        this.call.sink = !this.call.ahead && this.session.replies === 'on' ? this.batch : undefined;
        let result = executeCommand(this.env, this.session, cmd, this.call);
        if (result === ANSWERED) {
          // answered in the batch already (a GET: no auth, quit or error to account for)
          if (this.batch.byteLength >= FLUSH_BYTES) this.flush();
          continue;
        }
        if (result === WAIT) {
          // Not run: it takes effect only after the held-back writes are acknowledged. Input
          // read meanwhile ends the parser's views of it: it runs on copies of its arguments.
          const args = cmd.copies();
          this.unholdClock();
          if (!(await this.settleAhead())) return;
          this.holdClock();
          result = execute(this.env, this.session, args);
        }
        let reply: RespReply;
        if (this.ahead.length > 0 || (result === null && this.call.applied)) {
          // behind a held-back write, or one itself: its reply waits its turn, the next command runs now
          let r: Promise<RespReply>;
          if (result === null) {
            const { pending, map } = this.call;
            this.call.pending = null;
            r = (pending as Promise<unknown>).then(map, failedCall);
          } else {
            r = Promise.resolve(result);
          }
          this.ahead.push(r);
          if (this.ahead.length >= MAX_AHEAD) {
            this.unholdClock();
            if (!(await this.settleAhead())) return;
          }
          continue;
        }
        if (result !== null && !(result instanceof Promise)) {
          reply = result;
        } else {
          // While this command waits (on the network, maybe), the replies before it go out on
          // the next turn of the event loop. Only armed when there are such replies: a lone
          // command (pipeline 1) costs no timer.
          if (!this.batch.empty) this.round.add(this);
          this.unholdClock();
          if (result !== null) {
            reply = await result;
          } else {
            // A GET or SET waiting on the KvService: await its promise directly.
            const { pending, map } = this.call;
            this.call.pending = null;
            try {
              reply = map(await pending);
            } catch (err) {
              reply = failedCall(err);
            }
          }
          if (this.isClosed) return;
        }
        this.answer(reply);
        if (this.authRequired) this.parser.authRequired = this.session.user === null;
        if (this.session.quit) this.closing = true;
      }
      // closing (shutdown, CLIENT KILL of itself): the writes already applied still get their replies
      this.unholdClock();
      if (this.ahead.length > 0 && !(await this.settleAhead())) return;
    } catch (err) {
      // execute() never throws; this is a bug, not a client error. Drop the connection, not the node.
      this.log.error({ err, client: this.session.id }, 'resp connection failed');
      this.socket.destroy();
      return;
    } finally {
      this.unholdClock();
      this.running = false;
    }
    this.limits?.hold(this.input, this.parser.bufferedBytes);
    if (this.isClosed) return;
    if (this.closing || this.socket.readableEnded) {
      this.finish();
    } else {
      // written with every other connection's once this turn's input is handled (WriteRound)
      if (!this.batch.empty) this.round.add(this);
      if (this.paused) {
        this.paused = false;
        this.socket.resume();
      }
    }
  }

  /**
   * Before a command: hold the clock for this burst (one reading for its commands), or count
   * the command, taking a new reading every CLOCK_REFRESH_COMMANDS.
   */
  private holdClock(): void {
    const c = this.clockHold;
    if (c === undefined) return;
    if (!this.holding) {
      c.hold();
      this.holding = true;
      this.sinceReading = 0;
    } else if (++this.sinceReading >= CLOCK_REFRESH_COMMANDS) {
      c.refresh();
      this.sinceReading = 0;
    }
  }

  /** Before anything awaits, and when the burst ends: what runs meanwhile reads the clock itself. */
  private unholdClock(): void {
    if (!this.holding) return;
    this.holding = false;
    this.clockHold!.release();
  }

  /**
   * Answer the held-back replies (ahead) in order as they come in. False when the connection
   * closed meanwhile.
   */
  private async settleAhead(): Promise<boolean> {
    // the replies before the first held-back one go out on the next turn, as for any wait
    if (!this.batch.empty) this.round.add(this);
    for (let i = 0; i < this.ahead.length; i++) {
      const reply = await this.ahead[i]!;
      if (this.isClosed) return false;
      this.answer(reply);
    }
    this.ahead.length = 0;
    if (this.authRequired) this.parser.authRequired = this.session.user === null;
    return true;
  }

  /** A command's reply: encoded in the session's protocol now, written if CLIENT REPLY lets it. */
  private answer(r: RespReply): void {
    if (r.type === 'error') this.counters.errorReplies++;
    const s = this.session;
    if (s.replies === 'on') {
      if (s.protocol !== this.batch.protocol) this.batch.protocol = s.protocol;
      this.batch.push(r);
      if (this.batch.byteLength >= FLUSH_BYTES) this.flush();
    } else if (s.replies === 'skip-next') {
      s.replies = 'skip'; // CLIENT REPLY SKIP has no reply; the next command's is dropped
    } else if (s.replies === 'skip') {
      s.replies = 'on';
    }
  }

  /** An HTTP request (or POST / Host: as a command): closed at once, nothing answered or run. */
  private crossProtocol(err: CrossProtocolError): void {
    this.onCrossProtocol(err);
    this.closing = true;
    this.socket.destroy();
  }

  /** RoundMember: the round's turn to write this connection's replies. */
  flushRound(): void {
    try {
      this.flush();
    } catch (err) {
      // a bug, not a client error: drop the connection, not the round's other members
      this.log.error({ err, client: this.session.id }, 'resp connection failed');
      this.socket.destroy();
    }
  }

  private flush(): void {
    this.inRound = false; // written now: a round it is in skips it
    if (this.batch.empty || this.isClosed || this.socket.writableEnded) return;
    this.counters.netOutputBytes += this.batch.byteLength;
    const chunks = this.batch.take();
    if (chunks.length === 1) {
      this.socket.write(chunks[0]!);
    } else {
      this.socket.cork();
      for (const c of chunks) this.socket.write(c);
      this.socket.uncork();
    }
    // Nothing left unwritten: every chunk's write callback has run, so by the stream contract
    // the socket (plain or TLS) keeps none of them, and the batch may write over its scratch.
    if (this.socket.writableLength === 0) this.batch.reuse();
    // Redis's client-output-buffer-limit: a client that lets this much pile up unread is dropped
    if (this.limits !== undefined && this.socket.writableLength > this.limits.outputBufferBytes) {
      this.limits.closed('output_buffer');
      this.log.warn({ client: this.session.id, unsent: this.socket.writableLength }, 'resp client output buffer over the limit: closed');
      this.socket.destroy();
    }
  }

  /** The input budget of all clients overflowed and this connection held the most: drop it. */
  private evicted(): void {
    this.log.warn({ client: this.session.id, bytes: this.parser.bufferedBytes }, 'resp client closed: it held the most input when the input buffer of all clients filled up');
    this.closing = true;
    this.socket.destroy();
  }

  /**
   * Deliver what is pending and close. Input keeps being read (and dropped) until the peer
   * closes: closing with unread input makes the kernel send RST, which can destroy the last
   * reply (the protocol error text) before the client reads it.
   */
  private finish(): void {
    if (this.isClosed || this.socket.writableEnded) return;
    this.closing = true;
    this.flush();
    this.socket.end();
    this.paused = false;
    this.socket.resume();
    this.graceTimer = setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS);
    this.graceTimer.unref();
  }
}

function positiveInt(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v <= 0) throw new RangeError(`${name} must be a positive integer. Got: ${v}`);
  return v;
}
