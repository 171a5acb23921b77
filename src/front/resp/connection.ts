/**
 * Connection and server commands: PING, ECHO, QUIT, SELECT, AUTH, HELLO, ACL, CLIENT, INFO,
 * COMMAND. They touch the session, not keys.
 */
import { commandReply } from './command-table.ts';
import { array, bulk, error, integer, NULL_BULK, OK, simple, type RespReply } from './writer.ts';
import {
  NOAUTH,
  PONG,
  REDIS_VERSION,
  WRONGPASS,
  guarded,
  notInteger,
  parseInteger,
  syntaxError,
  wrongArity,
  type CommandSpec,
  type Session,
} from './session.ts';

function helloReply(session: Session): RespReply {
  return array([
    bulk('server'), bulk('redis'),
    bulk('version'), bulk(REDIS_VERSION),
    bulk('proto'), integer(2),
    bulk('id'), integer(session.id),
    bulk('mode'), bulk('standalone'),
    bulk('role'), bulk('master'),
    bulk('modules'), array([]),
  ]);
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
  info: {
    perm: 'read',
    arity: -1,
    flags: ['loading', 'stale'],
    keys: [0, 0, 0],
    run: (env, _s, args) =>
      guarded(async () => bulk(await env.info(args.slice(1).map((a) => a.toString('utf8').toLowerCase())))),
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
  select: {
    perm: 'user',
    arity: 2,
    flags: ['fast', 'loading', 'stale'],
    keys: [0, 0, 0],
    run(_env, _s, args) {
      const db = parseInteger(args[1]!);
      if (db === null) return notInteger;
      // One keyspace: the default group is db 0.
      return db === 0 ? OK : error('ERR DB index is out of range');
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
      const sub = args[1]!.toString('utf8').toLowerCase();
      if (sub === 'whoami') return args.length === 2 ? bulk(session.user!.name) : wrongArity('acl|whoami');
      return error(`ERR unknown subcommand '${args[1]!.toString('utf8')}'. Try ACL HELP.`);
    },
  },
  client: {
    perm: 'user',
    arity: -2,
    flags: ['loading', 'stale'],
    keys: [0, 0, 0],
    run(_env, session, args) {
      const sub = args[1]!.toString('utf8').toLowerCase();
      const need = (n: number): RespReply | null => (args.length === n ? null : wrongArity(`client|${sub}`));
      switch (sub) {
        case 'setname': {
          const bad = need(3);
          if (bad) return bad;
          const name = args[2]!;
          if (name.some((b) => b < 0x21 || b > 0x7e)) {
            return error('ERR Client names cannot contain spaces, newlines or special characters.');
          }
          session.name = name.length === 0 ? null : name.toString('latin1');
          return OK;
        }
        case 'getname':
          return need(2) ?? bulk(session.name);
        case 'setinfo':
          return need(4) ?? OK;
        case 'id':
          return need(2) ?? integer(session.id);
        default:
          return error(`ERR unknown subcommand '${args[1]!.toString('utf8')}'. Try CLIENT HELP.`);
      }
    },
  },
  hello: {
    perm: 'open',
    arity: -1,
    flags: ['fast', 'noscript', 'loading', 'stale'],
    keys: [0, 0, 0],
    run(env, session, args) {
      let auth: { user: string; password: string } | undefined;
      let name: string | undefined;
      if (args.length >= 2) {
        const version = parseInteger(args[1]!);
        if (version === null) return error('ERR Protocol version is not an integer or out of range');
        // RESP2 only: clients that offer RESP3 (ioredis 6 does by default) fall back on NOPROTO.
        if (version !== 2) return error('NOPROTO sorry, this protocol version is not supported.');
        for (let i = 2; i < args.length; i++) {
          const opt = args[i]!.toString('latin1').toUpperCase();
          if (opt === 'AUTH' && i + 2 < args.length) auth = { user: args[++i]!.toString('utf8'), password: args[++i]!.toString('utf8') };
          else if (opt === 'SETNAME' && i + 1 < args.length) name = args[++i]!.toString('latin1');
          else return error(`ERR Syntax error in HELLO option '${args[i]!.toString('utf8')}'`);
        }
      }
      const reply = (): RespReply => {
        if (name !== undefined) session.name = name;
        return helloReply(session);
      };
      if (auth === undefined) {
        return session.user === null
          ? error('NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time')
          : reply();
      }
      if (!env.door.authRequired) return auth.user === 'default' ? reply() : WRONGPASS;
      const creds = auth;
      return guarded(async () => {
        const who = await env.door.authenticate(creds.user, creds.password);
        if (who === undefined) return WRONGPASS;
        session.user = who;
        return reply();
      });
    },
  },
  // COMMAND, COUNT, INFO, DOCS, GETKEYS: Redis 7's own descriptions (command-table.ts)
  command: { perm: 'user', arity: -1, flags: ['loading', 'stale'], keys: [0, 0, 0], run: (_env, _s, args) => commandReply(args) },

};
