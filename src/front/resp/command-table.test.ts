import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RespClient, asWriterReply, startRedisServer, type RedisServer, type Reply } from '../../../test/helpers/redis-oracle.ts';
import { COMMAND_SPECS } from './command-specs.ts';
import { SUPPORTED, commandByName, commandDocs, commandInfo, commandReply, findCommand, keysOf, type CommandSpec } from './command-table.ts';
import { array, encodeAs, map, bulk, type RespProtocol, type RespReply } from './writer.ts';

const b = (...args: string[]): Buffer[] => args.map((a) => Buffer.from(a, 'latin1'));
const enc = (p: RespProtocol, r: RespReply): string => encodeAs(p, r).toString('latin1');

let redis: RedisServer;
const clients: Record<RespProtocol, RespClient> = {} as Record<RespProtocol, RespClient>;

before(async () => {
  redis = await startRedisServer();
  clients[2] = await RespClient.connect(redis.port);
  clients[3] = await RespClient.connect(redis.port);
  await clients[3].hello(3);
});
after(async () => {
  clients[2]?.close();
  clients[3]?.close();
  await redis?.stop();
});

/** Redis's reply to `args` in protocol `p`, as bytes, with its container subcommands cut to ours. */
async function theirs(p: RespProtocol, args: string[], keep?: CommandSpec): Promise<string> {
  if (keep === undefined || keep.subcommands.length === 0) return (await clients[p].callBytes(...args)).bytes.toString('latin1');
  // Edited in its RESP3 form (which keeps every distinction), then encoded for `p`.
  const reply = await clients[3].call(...args);
  return enc(p, onlyOurSubcommands(reply, keep, args[1]!.toLowerCase() === 'docs'));
}

/** A container's INFO or DOCS reply from Redis with only the subcommands jincache answers, in our order. */
function onlyOurSubcommands(r: Reply, spec: CommandSpec, docs: boolean): RespReply {
  const ours = spec.subcommands.map((s) => s.name);
  if (!docs) {
    assert.ok(r.type === 'array' && r.items[0]?.type === 'array');
    const info = r.items[0].items;
    const subs = info[9]!;
    assert.ok(subs.type === 'array');
    const byName = new Map(subs.items.map((s) => [s.type === 'array' && s.items[0]?.type === 'bulk' ? s.items[0].value.toString() : '', s]));
    const kept = ours.map((n) => byName.get(n) ?? assert.fail(`redis-server has no ${n}`));
    return array([array([...info.slice(0, 9).map(asWriterReply), array(kept.map(asWriterReply))])]);
  }
  assert.ok(r.type === 'map' && r.entries.length === 1);
  const [name, doc] = r.entries[0]!;
  assert.ok(doc.type === 'map');
  const entries = doc.entries.map(([k, v]): [RespReply, RespReply] => {
    if (k.type === 'bulk' && k.value.toString() === 'subcommands') {
      assert.ok(v.type === 'map');
      const byName = new Map(v.entries.map(([sk, sv]) => [sk.type === 'bulk' ? sk.value.toString() : '', sv]));
      return [asWriterReply(k), map(ours.map((n) => [bulk(n), asWriterReply(byName.get(n) ?? assert.fail(`no docs for ${n}`))]))];
    }
    return [asWriterReply(k), asWriterReply(v)];
  });
  return map([[asWriterReply(name), map(entries)]]);
}

const everySpec = COMMAND_SPECS.flatMap((c) => [c, ...c.subcommands]);

describe('the table is what redis-server 7 says', () => {
  it('holds exactly the supported commands and subcommands', () => {
    assert.deepEqual(COMMAND_SPECS.map((c) => c.name), Object.keys(SUPPORTED));
    for (const c of COMMAND_SPECS) assert.deepEqual(c.subcommands.map((s) => s.name), (SUPPORTED[c.name] ?? []).map((s) => `${c.name}|${s}`));
  });

  it('COMMAND INFO name: the same bytes in RESP2 and RESP3, for every command and subcommand', async () => {
    for (const spec of everySpec) {
      for (const p of [2, 3] as const) {
        const ours = enc(p, commandReply(b('COMMAND', 'INFO', spec.name)));
        assert.equal(ours, await theirs(p, ['COMMAND', 'INFO', spec.name], spec), `COMMAND INFO ${spec.name} in RESP${p}`);
      }
    }
  });

  it('COMMAND DOCS name: the same bytes in RESP2 and RESP3, for every command and subcommand', async () => {
    for (const spec of everySpec) {
      for (const p of [2, 3] as const) {
        const ours = enc(p, commandReply(b('COMMAND', 'DOCS', spec.name)));
        assert.equal(ours, await theirs(p, ['COMMAND', 'DOCS', spec.name], spec), `COMMAND DOCS ${spec.name} in RESP${p}`);
      }
    }
  });

  it('several names, unknown names, case and errors answer as Redis does', async () => {
    const cases: string[][] = [
      ['COMMAND', 'INFO', 'GET', 'nosuchcommand', 'Client|Id'],
      ['COMMAND', 'DOCS', 'get', 'nosuchcommand', 'ttl'],
      ['COMMAND', 'DOCS', 'nosuchcommand'],
      ['COMMAND', 'NOPE'],
      ['COMMAND', 'COUNT', 'x'],
      ['COMMAND', 'GETKEYS'],
      ['COMMAND', 'GETKEYS', 'get'],
      ['COMMAND', 'GETKEYS', 'nosuchcommand', 'x'],
      ['COMMAND', 'GETKEYS', 'ping', 'x'],
      ['COMMAND', 'GETKEYS', 'client', 'id'],
      ['COMMAND', 'GETKEYS', 'get', 'a', 'b'],
      ['COMMAND', 'GETKEYS', 'MSET', 'a', '1', 'b', '2'],
      ['COMMAND', 'GETKEYS', 'mset', 'a', '1', 'b'],
      ['COMMAND', 'GETKEYS', 'scan', '0'],
    ];
    for (const args of cases) {
      for (const p of [2, 3] as const) assert.equal(enc(p, commandReply(b(...args))), await theirs(p, args), `${args.join(' ')} in RESP${p}`);
    }
  });

  it('COMMAND GETKEYS and keysOf find the keys Redis finds, for random arguments to every command', async () => {
    const word = fc.oneof(fc.constantFrom('k1', '{t}k2', 'EX', 'PX', 'GET', 'NX', 'XX', 'MATCH', 'COUNT', 'TYPE', 'REPLACE', 'DB', 'WITHVALUES', '0', '1', '2', '-1', 'x'), fc.string({ maxLength: 3 }));
    for (const spec of everySpec.filter((s) => s.keySpecs.length > 0)) {
      const parts = spec.name.split('|');
      const lists = fc.sample(fc.array(word, { maxLength: Math.abs(spec.arity) + 3 }), { numRuns: 25, seed: spec.name.length });
      for (const rest of lists) {
        const args = ['COMMAND', 'GETKEYS', ...parts, ...rest];
        const mine = commandReply(b(...args));
        assert.equal(enc(2, mine), await theirs(2, args), args.join(' '));
        if (mine.type === 'array' && mine.items !== null) {
          const positions = keysOf(b(...parts, ...rest)) ?? [];
          assert.deepEqual(positions.map((i) => [...parts, ...rest][i]), mine.items.map((r) => (r.type === 'bulk' ? r.value!.toString() : '?')));
        }
      }
    }
  });
});

describe('lookups', () => {
  it('findCommand picks the subcommand a container runs, or the container for an unknown one', () => {
    assert.equal(findCommand(b('CLIENT', 'SetName', 'x'))?.name, 'client|setname');
    assert.equal(findCommand(b('client', 'pause', '1'))?.name, 'client');
    assert.equal(findCommand(b('client'))?.name, 'client');
    assert.equal(findCommand(b('get', 'k'))?.name, 'get');
    assert.equal(findCommand(b('lpush', 'k', 'v')), undefined);
    assert.equal(commandByName('CLUSTER|KEYSLOT')?.arity, 3);
  });

  it('keysOf gives key positions for slot checks', () => {
    assert.deepEqual(keysOf(b('MSET', 'a', '1', 'b', '2')), [1, 3]);
    assert.deepEqual(keysOf(b('COPY', 'a', 'b', 'REPLACE')), [1, 2]);
    assert.deepEqual(keysOf(b('EXISTS', 'a', 'a')), [1, 2]);
    assert.deepEqual(keysOf(b('PING')), []);
    assert.deepEqual(keysOf(b('cluster', 'keyslot', 'x')), []);
    assert.deepEqual(keysOf(b('nosuch', 'x')), []);
    assert.deepEqual(keysOf(b('MSET', 'a')), []); // wrong arity: the command's own error comes first
  });

  it('COMMAND and COMMAND COUNT cover the table', () => {
    const all = commandReply(b('COMMAND'));
    assert.ok(all.type === 'array' && all.items !== null);
    assert.equal(all.items.length, COMMAND_SPECS.length);
    assert.deepEqual(commandReply(b('command', 'count')), { type: 'integer', value: COMMAND_SPECS.length });
    assert.equal(enc(3, commandReply(b('COMMAND', 'INFO', 'get'))), enc(3, array([commandInfo(COMMAND_SPECS[0]!)])));
    assert.equal(commandDocs(COMMAND_SPECS[0]!).type, 'map');
  });
});
