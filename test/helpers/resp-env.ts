/**
 * The listener side of a RESP CommandEnv for unit tests: connections that are plain objects
 * (a killed one records it), facts and counters given by the test. What server.ts provides for
 * real, without sockets, so command tests can check CLIENT, CONFIG and INFO replies exactly.
 */
import type { ClientView, KeyspaceStats, Listener, ListenerFacts, ListenerStats, Session } from '../../src/front/resp/session.ts';

export interface TestClient extends ClientView {
  /** Set by kill(). */
  killed: boolean;
  inputHeld: number;
  outputHeld: number;
  lastInput: number;
}

/** A connection for `session`, connected at `connectedAt` (ms) from `addr`. */
export function testClient(session: Session, opts: Partial<Pick<ClientView, 'addr' | 'laddr' | 'fd' | 'connectedAt'>> = {}): TestClient {
  const c: TestClient = {
    session,
    addr: opts.addr ?? `127.0.0.1:${50000 + session.id}`,
    laddr: opts.laddr ?? '127.0.0.1:6380',
    fd: opts.fd ?? 8 + session.id,
    connectedAt: opts.connectedAt ?? 0,
    killed: false,
    inputHeld: 0,
    outputHeld: 0,
    lastInput: opts.connectedAt ?? 0,
    lastInputAt: () => c.lastInput,
    inputBytes: () => c.inputHeld,
    outputBytes: () => c.outputHeld,
    kill: () => {
      c.killed = true;
    },
  };
  return c;
}

export const TEST_FACTS: ListenerFacts = {
  host: '127.0.0.1',
  port: 6380,
  maxClients: 10000,
  idleTimeoutMs: 0,
  outputBufferBytes: 64 * 1024 * 1024,
  maxValueBytes: 16 * 1024 * 1024,
  maxmemory: 64 * 1024 * 1024,
  clusterEnabled: false,
};

export interface TestListener extends Listener {
  /** The open connections (a test adds and removes them). */
  readonly open: TestClient[];
  factsNow: ListenerFacts;
  statsNow: ListenerStats;
  /** CONFIG RESETSTAT calls. */
  resets: number;
}

export function testListener(opts: { clients?: TestClient[]; facts?: Partial<ListenerFacts>; users?: readonly string[] } = {}): TestListener {
  const l: TestListener = {
    open: opts.clients ?? [],
    factsNow: { ...TEST_FACTS, ...opts.facts },
    statsNow: {
      startedAt: 0,
      connectedClients: 0,
      connectionsReceived: 0,
      rejectedConnections: 0,
      commandsProcessed: 0,
      opsPerSec: 0,
      netInputBytes: 0,
      netOutputBytes: 0,
      errorReplies: 0,
      maxInputBuffer: 0,
      maxOutputBuffer: 0,
    },
    resets: 0,
    clients: () => l.open.filter((c) => !c.killed),
    client: (id) => l.open.find((c) => c.session.id === id && !c.killed),
    users: () => opts.users ?? ['default'],
    facts: () => l.factsNow,
    stats: () => l.statsNow,
    resetStats: () => {
      l.resets++;
    },
  };
  return l;
}

/** A keyspace() for tests: fixed figures. */
export function fixedKeyspace(stats: KeyspaceStats): () => Promise<KeyspaceStats> {
  return async () => stats;
}
