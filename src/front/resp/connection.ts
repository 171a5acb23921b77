/**
 * Connection and server commands: PING, ECHO, QUIT, SELECT, AUTH, HELLO, RESET, ACL WHOAMI,
 * CLIENT, INFO, CONFIG, TIME, COMMAND. They touch the session and the listener, not keys.
 *
 * Replies and errors are Redis 7's (checked against redis-server 7.0 in connection.test.ts);
 * CLIENT SETINFO is Redis 7.2's, since clients send it at connect. What a command cannot know by
 * itself (the other connections, the counters, the settings) it reads from `env.listener`.
 */
import { commandReply } from './command-table.ts';
import { configGet, configSet } from './info.ts';
import { resetTransaction } from './transaction.ts';
import { array, bulk, error, integer, map, OK, simple, verbatim, type RespReply } from './writer.ts';
import {
  PONG,
  REDIS_VERSION,
  WRONGPASS,
  denied,
  guarded,
  notInteger,
  parseInteger,
  resetSession,
  syntaxError,
  wrongArity,
  type ClientView,
  type CommandEnv,
  type CommandSpec,
  type Result,
  type Session,
} from './session.ts';

const RESET = simple('RESET');

/** HELLO's reply: a map (flattened to an array in RESP2), in the protocol just chosen. */
function helloReply(env: CommandEnv, session: Session): RespReply {
  return map([
    [bulk('server'), bulk('redis')],
    [bulk('version'), bulk(REDIS_VERSION)],
    [bulk('proto'), integer(session.protocol)],
    [bulk('id'), integer(session.id)],
    [bulk('mode'), bulk(env.listener.facts().clusterEnabled ? 'cluster' : 'standalone')],
    [bulk('role'), bulk('master')],
    [bulk('modules'), array([])],
  ]);
}

/**
 * Redis's validateClientName: printable ASCII without spaces (`!` to `~`). The error for a
 * name; `attr` for SETINFO's (Redis 7.2: `LIB-NAME cannot contain ...`, as the client spelt it).
 */
function badName(name: Buffer, attr?: string): RespReply | null {
  if (!name.some((b) => b < 0x21 || b > 0x7e)) return null;
  return error(`ERR ${attr ?? 'Client names'} cannot contain spaces, newlines or special characters.`);
}

/** An empty name clears it, as in Redis. */
function nameOf(arg: Buffer): string | null {
  return arg.length === 0 ? null : arg.toString('latin1');
}

/** The reply of an unknown subcommand, e.g. `ERR unknown subcommand 'foo'. Try CLIENT HELP.` */
function unknownSubcommand(container: string, arg: Buffer): RespReply {
  return error(`ERR unknown subcommand '${arg.toString('utf8').slice(0, 128)}'. Try ${container} HELP.`);
}

/** Client types (CLIENT LIST TYPE, CLIENT KILL TYPE): every jincache client is `normal`. */
const CLIENT_TYPES = new Set(['normal', 'master', 'slave', 'replica', 'pubsub']);

/**
 * One line of CLIENT LIST / INFO, Redis 7.2's fields in its order. Fields for what jincache
 * does not have (databases, pub/sub, transactions kept elsewhere) hold Redis's values for a
 * client that uses none of it.
 */
export function clientLine(c: ClientView, now: number): string {
  const s = c.session;
  const qbuf = c.inputBytes();
  const omem = c.outputBytes();
  const secs = (since: number) => Math.max(0, Math.floor((now - since) / 1000));
  return (
    `id=${s.id} addr=${c.addr} laddr=${c.laddr} fd=${c.fd} name=${s.name ?? ''} age=${secs(c.connectedAt)} idle=${secs(c.lastInputAt())} ` +
    `flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=${qbuf} qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 ` +
    `omem=${omem} tot-mem=${qbuf + omem} events=${omem > 0 ? 'rw' : 'r'} cmd=${s.command} user=${s.user?.name ?? 'default'} ` +
    `redir=-1 resp=${s.protocol} lib-name=${s.libName ?? ''} lib-ver=${s.libVer ?? ''}`
  );
}

function clientList(env: CommandEnv, args: Buffer[]): RespReply {
  const now = env.clock.now();
  let chosen: ClientView[];
  if (args.length === 2) {
    chosen = [...env.listener.clients()];
  } else if (args.length === 4 && lower(args[2]!) === 'type') {
    const type = lower(args[3]!);
    if (!CLIENT_TYPES.has(type)) return error(`ERR Unknown client type '${args[3]!.toString('utf8')}'`);
    chosen = type === 'normal' ? [...env.listener.clients()] : [];
  } else if (args.length > 3 && lower(args[2]!) === 'id') {
    chosen = [];
    for (const a of args.slice(3)) {
      const id = parseInteger(a);
      if (id === null) return error('ERR Invalid client ID');
      const c = env.listener.client(id);
      if (c !== undefined) chosen.push(c);
    }
  } else {
    return syntaxError;
  }
  return verbatim(chosen.map((c) => `${clientLine(c, now)}\n`).join(''));
}

/**
 * CLIENT KILL, as Redis 7.0's clientKillCommand: the old form `CLIENT KILL ip:port` (answers OK
 * or `No such client`, and may kill the caller), or filters ID, TYPE, ADDR, LADDR, USER, SKIPME
 * (answers the number killed; SKIPME yes by default). The caller's own connection is closed
 * after this reply; the others at once.
 */
function clientKill(env: CommandEnv, session: Session, args: Buffer[]): RespReply {
  const refused = denied(session, 'admin', 'client|kill');
  if (refused !== undefined) return refused;
  let id: number | null = null;
  let type: string | null = null;
  let addr: string | null = null;
  let laddr: string | null = null;
  let user: string | null = null;
  let skipme = true;
  const oldForm = args.length === 3;
  if (oldForm) {
    addr = args[2]!.toString('latin1');
    skipme = false; // with the old form a client may kill itself
  } else {
    for (let i = 2; i < args.length; i += 2) {
      const opt = lower(args[i]!);
      const value = args[i + 1];
      if (value === undefined) return syntaxError;
      const text = value.toString('latin1');
      if (opt === 'id') {
        const n = parseInteger(value);
        if (n === null || n < 1) return error('ERR client-id should be greater than 0');
        id = n;
      } else if (opt === 'type') {
        type = text.toLowerCase();
        if (!CLIENT_TYPES.has(type)) return error(`ERR Unknown client type '${value.toString('utf8')}'`);
      } else if (opt === 'addr') {
        addr = text;
      } else if (opt === 'laddr') {
        laddr = text;
      } else if (opt === 'user') {
        if (!env.listener.users().includes(value.toString('utf8'))) return error(`ERR No such user '${value.toString('utf8')}'`);
        user = value.toString('utf8');
      } else if (opt === 'skipme') {
        const yn = text.toLowerCase();
        if (yn !== 'yes' && yn !== 'no') return syntaxError;
        skipme = yn === 'yes';
      } else {
        return syntaxError;
      }
    }
  }
  const victims: ClientView[] = [];
  for (const c of env.listener.clients()) {
    if (addr !== null && c.addr !== addr) continue;
    if (laddr !== null && c.laddr !== laddr) continue;
    if (type !== null && type !== 'normal') continue;
    if (id !== null && c.session.id !== id) continue;
    if (user !== null && (c.session.user?.name ?? 'default') !== user) continue;
    if (skipme && c.session === session) continue;
    victims.push(c);
  }
  for (const c of victims) {
    if (c.session === session) session.quit = true;
    else c.kill();
  }
  if (oldForm) return victims.length === 0 ? error('ERR No such client') : OK;
  return integer(victims.length);
}

function lower(b: Buffer): string {
  return b.toString('latin1').toLowerCase();
}

function clientCommand(env: CommandEnv, session: Session, args: Buffer[]): Result {
  const sub = lower(args[1]!);
  const need = (n: number): RespReply | null => (args.length === n ? null : wrongArity(`client|${sub}`));
  switch (sub) {
    case 'id':
    case 'info':
    case 'list':
    case 'setname':
    case 'getname':
    case 'kill':
    case 'reply':
    case 'no-evict':
    case 'setinfo':
      session.command = `client|${sub}`;
      break;
    default:
      return unknownSubcommand('CLIENT', args[1]!);
  }
  switch (sub) {
    case 'id':
      return need(2) ?? integer(session.id);
    case 'info': {
      const bad = need(2);
      if (bad) return bad;
      const me = env.listener.client(session.id);
      return verbatim(me === undefined ? '' : `${clientLine(me, env.clock.now())}\n`);
    }
    case 'list':
      return clientList(env, args);
    case 'setname': {
      const bad = need(3) ?? badName(args[2]!);
      if (bad) return bad;
      session.name = nameOf(args[2]!);
      return OK;
    }
    case 'getname':
      return need(2) ?? bulk(session.name);
    case 'kill':
      return args.length < 3 ? wrongArity('client|kill') : clientKill(env, session, args);
    case 'reply': {
      const bad = need(3);
      if (bad) return bad;
      const mode = lower(args[2]!);
      if (mode === 'on') {
        session.replies = 'on';
        return OK;
      }
      if (mode !== 'off' && mode !== 'skip') return syntaxError;
      // OFF and SKIP have no reply of their own: the server drops the OK returned here
      if (mode === 'off') session.replies = 'off';
      else if (session.replies !== 'off') session.replies = 'skip-next';
      return OK;
    }
    case 'no-evict': {
      // accepted: jincache evicts no client for memory (only for limits.max_input_buffer_bytes)
      const bad = need(3);
      if (bad) return bad;
      const mode = lower(args[2]!);
      return mode === 'on' || mode === 'off' ? OK : syntaxError;
    }
    case 'setinfo': {
      const bad = need(4);
      if (bad) return bad;
      const attr = lower(args[2]!);
      if (attr !== 'lib-name' && attr !== 'lib-ver') return error(`ERR Unrecognized option '${args[2]!.toString('utf8')}'`);
      const invalid = badName(args[3]!, args[2]!.toString('utf8'));
      if (invalid) return invalid;
      if (attr === 'lib-name') session.libName = nameOf(args[3]!);
      else session.libVer = nameOf(args[3]!);
      return OK;
    }
    default:
      throw new Error(`impossible: CLIENT ${sub} has no body`);
  }
}

function configCommand(env: CommandEnv, session: Session, args: Buffer[]): Result {
  const sub = lower(args[1]!);
  const text = (from: number) => args.slice(from).map((a) => a.toString('utf8'));
  switch (sub) {
    case 'get': {
      session.command = 'config|get';
      if (args.length < 3) return wrongArity('config|get');
      return map(configGet(text(2), env.listener.facts()).map(([k, v]) => [bulk(k), bulk(v)]));
    }
    case 'set': {
      session.command = 'config|set';
      if (args.length < 4) return wrongArity('config|set');
      const refused = denied(session, 'admin', 'config|set');
      if (refused !== undefined) return refused;
      const failed = configSet(text(2), env.listener.facts());
      return failed === null ? OK : error(failed);
    }
    case 'resetstat': {
      session.command = 'config|resetstat';
      if (args.length !== 2) return wrongArity('config|resetstat');
      const refused = denied(session, 'admin', 'config|resetstat');
      if (refused !== undefined) return refused;
      env.listener.resetStats();
      return OK;
    }
    default:
      return unknownSubcommand('CONFIG', args[1]!);
  }
}

/**
 * HELLO [protover [AUTH user pass] [SETNAME name]], as Redis 7.0's helloCommand: options are
 * checked first (NOPROTO for a version other than 2 or 3, the name's characters), then the
 * credentials, then the name is set and the protocol switched; the reply is in the new protocol.
 */
function helloCommand(env: CommandEnv, session: Session, args: Buffer[]): Result {
  let version: 2 | 3 | null = null;
  let auth: { user: string; password: string } | undefined;
  let name: Buffer | undefined;
  if (args.length >= 2) {
    const v = parseInteger(args[1]!);
    if (v === null) return error('ERR Protocol version is not an integer or out of range');
    if (v !== 2 && v !== 3) return error('NOPROTO unsupported protocol version');
    version = v;
  }
  for (let i = 2; i < args.length; i++) {
    const opt = lower(args[i]!);
    const more = args.length - 1 - i;
    if (opt === 'auth' && more >= 2) {
      auth = { user: args[i + 1]!.toString('utf8'), password: args[i + 2]!.toString('utf8') };
      i += 2;
    } else if (opt === 'setname' && more >= 1) {
      name = args[++i]!;
      const bad = badName(name);
      if (bad) return bad;
    } else {
      return error(`ERR Syntax error in HELLO option '${args[i]!.toString('utf8')}'`);
    }
  }
  const reply = (): RespReply => {
    if (name !== undefined) session.name = nameOf(name);
    if (version !== null) session.protocol = version;
    return helloReply(env, session);
  };
  if (auth === undefined) {
    return session.user === null
      ? error('NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time')
      : reply();
  }
  // as Redis: without passwords the default user has none, so any password passes for it
  if (!env.door.authRequired) return auth.user === 'default' ? reply() : WRONGPASS;
  const creds = auth;
  return guarded(async () => {
    const who = await env.door.authenticate(creds.user, creds.password);
    if (who === undefined) return WRONGPASS;
    session.user = who;
    return reply();
  });
}

/** TIME: seconds and microseconds of the clock, as two bulk strings. */
function timeReply(now: number): RespReply {
  const ms = Math.floor(now);
  return array([bulk(String(Math.floor(ms / 1000))), bulk(String((ms % 1000) * 1000))]);
}

export const CONNECTION_COMMANDS: Record<string, CommandSpec> = {
  ping: {
    perm: 'user',
    arity: -1,
    flags: ['fast'],
    keys: [0, 0, 0],
    // Copies: a large reply is written by reference, after the parser may have reused the bytes.
    run: (_env, _s, args) => (args.length > 2 ? wrongArity('ping') : args.length === 2 ? bulk(Buffer.from(args[1]!)) : PONG),
  },
  echo: { perm: 'user', arity: 2, flags: ['fast'], keys: [0, 0, 0], run: (_env, _s, args) => bulk(Buffer.from(args[1]!)) },
  time: { perm: 'user', arity: 1, flags: ['fast'], keys: [0, 0, 0], run: (env) => timeReply(env.clock.now()) },
  info: {
    perm: 'read',
    arity: -1,
    flags: ['loading', 'stale'],
    keys: [0, 0, 0],
    // a verbatim string in RESP3, a bulk in RESP2, as Redis 7 sends it
    run: (env, _s, args) => guarded(async () => verbatim(await env.info(args.slice(1).map((a) => a.toString('utf8').toLowerCase())))),
  },
  quit: {
    perm: 'open',
    arity: -1,
    flags: ['fast'],
    keys: [0, 0, 0],
    run(_env, session) {
      session.quit = true;
      return OK;
    },
  },
  reset: {
    perm: 'open',
    arity: 1,
    flags: ['fast'],
    keys: [0, 0, 0],
    run(env, session) {
      resetTransaction(session); // a MULTI in progress is discarded, every WATCH forgotten
      resetSession(session, env.door.anonymous());
      return RESET;
    },
  },
  select: {
    perm: 'user',
    arity: 2,
    flags: ['fast', 'loading', 'stale'],
    keys: [0, 0, 0],
    run(env, _s, args) {
      const db = parseInteger(args[1]!);
      if (db === null) return notInteger;
      if (db === 0) return OK;
      // One keyspace: the default group is db 0.
      return error(env.listener.facts().clusterEnabled ? 'ERR SELECT is not allowed in cluster mode' : 'ERR DB index is out of range');
    },
  },
  auth: {
    perm: 'open',
    arity: -2,
    flags: ['fast', 'noscript', 'loading', 'stale'],
    keys: [0, 0, 0],
    run(env, session, args) {
      if (args.length > 3) return syntaxError;
      const user = args.length === 3 ? args[1]!.toString('utf8') : 'default';
      const password = args[args.length - 1]!.toString('utf8');
      if (!env.door.authRequired) {
        // as Redis: the default user has no password, so any password passes for it
        if (args.length === 2) return error('ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?');
        return user === 'default' ? OK : WRONGPASS;
      }
      return guarded(async () => {
        const who = await env.door.authenticate(user, password);
        if (who === undefined) return WRONGPASS;
        session.user = who;
        return OK;
      });
    },
  },
  acl: {
    perm: 'user',
    arity: -2,
    flags: ['noscript', 'loading', 'stale'],
    keys: [0, 0, 0],
    run(_env, session, args) {
      const sub = lower(args[1]!);
      if (sub === 'whoami') {
        session.command = 'acl|whoami';
        return args.length === 2 ? bulk(session.user!.name) : wrongArity('acl|whoami');
      }
      return unknownSubcommand('ACL', args[1]!);
    },
  },
  client: { perm: 'user', arity: -2, flags: ['loading', 'stale'], keys: [0, 0, 0], run: clientCommand },
  config: { perm: 'user', arity: -2, flags: ['loading', 'stale'], keys: [0, 0, 0], run: configCommand },
  hello: { perm: 'open', arity: -1, flags: ['fast', 'noscript', 'loading', 'stale'], keys: [0, 0, 0], run: helloCommand },
  // COMMAND, COUNT, INFO, DOCS, GETKEYS: Redis 7's own descriptions (command-table.ts)
  command: { perm: 'user', arity: -1, flags: ['loading', 'stale'], keys: [0, 0, 0], run: (_env, _s, args) => commandReply(args) },
};
