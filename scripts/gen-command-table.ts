#!/usr/bin/env node
// Writes src/front/resp/command-specs.ts: what a real redis-server 7 answers to COMMAND INFO and
// COMMAND DOCS for every command (and subcommand) in command-table.ts's SUPPORTED, turned into
// CommandSpec values. Run it after changing SUPPORTED or moving to another Redis:
//
//   node scripts/gen-command-table.ts
//
// command-table.test.ts asks redis-server again and compares every reply, so a stale file fails.
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { RespClient, showReply, startRedisServer, type Reply } from '../test/helpers/redis-oracle.ts';
import { SUPPORTED } from '../src/front/resp/command-table.ts';
import type { CommandArg, CommandDocs, CommandSpec, KeySpec } from '../src/front/resp/command-types.ts';

const OUT = resolve(import.meta.dirname, '../src/front/resp/command-specs.ts');

function fail(what: string, r: Reply): never {
  throw new Error(`unexpected ${what}: ${showReply(r).slice(0, 300)}`);
}
function str(r: Reply | undefined): string {
  if (r?.type === 'bulk') return r.value.toString('latin1');
  if (r?.type === 'simple') return r.value;
  return fail('string', r ?? { type: 'null', wire: '_' });
}
function int(r: Reply | undefined): number {
  return r?.type === 'integer' ? r.value : fail('integer', r ?? { type: 'null', wire: '_' });
}
function list(r: Reply | undefined): readonly Reply[] {
  if (r?.type === 'array' || r?.type === 'set') return r.items;
  return fail('array or set', r ?? { type: 'null', wire: '_' });
}
function obj(r: Reply | undefined): Map<string, Reply> {
  if (r?.type !== 'map') return fail('map', r ?? { type: 'null', wire: '_' });
  return new Map(r.entries.map(([k, v]) => [str(k), v]));
}

function keySpec(r: Reply): KeySpec {
  const m = obj(r);
  const bs = obj(m.get('begin_search'));
  const bsSpec = obj(bs.get('spec'));
  const fk = obj(m.get('find_keys'));
  const fkSpec = obj(fk.get('spec'));
  const bsType = str(bs.get('type'));
  const fkType = str(fk.get('type'));
  return {
    ...(m.has('notes') ? { notes: str(m.get('notes')) } : {}),
    flags: list(m.get('flags')).map(str),
    beginSearch: bsType === 'index' ? { type: 'index', index: int(bsSpec.get('index')) }
      : bsType === 'keyword' ? { type: 'keyword', keyword: str(bsSpec.get('keyword')), startFrom: int(bsSpec.get('startfrom')) }
      : { type: 'unknown' },
    findKeys: fkType === 'range' ? { type: 'range', lastKey: int(fkSpec.get('lastkey')), keyStep: int(fkSpec.get('keystep')), limit: int(fkSpec.get('limit')) }
      : fkType === 'keynum' ? { type: 'keynum', keyNumIndex: int(fkSpec.get('keynumidx')), firstKey: int(fkSpec.get('firstkey')), keyStep: int(fkSpec.get('keystep')) }
      : { type: 'unknown' },
  };
}

function arg(r: Reply): CommandArg {
  const m = obj(r);
  return {
    name: str(m.get('name')),
    type: str(m.get('type')),
    ...(m.has('key_spec_index') ? { keySpecIndex: int(m.get('key_spec_index')) } : {}),
    ...(m.has('token') ? { token: str(m.get('token')) } : {}),
    ...(m.has('summary') ? { summary: str(m.get('summary')) } : {}),
    ...(m.has('since') ? { since: str(m.get('since')) } : {}),
    ...(m.has('deprecated_since') ? { deprecatedSince: str(m.get('deprecated_since')) } : {}),
    ...(m.has('flags') ? { flags: list(m.get('flags')).map(str) } : {}),
    ...(m.has('arguments') ? { arguments: list(m.get('arguments')).map(arg) } : {}),
  };
}

const KNOWN_DOC_FIELDS = new Set(['summary', 'since', 'group', 'complexity', 'doc_flags', 'deprecated_since', 'replaced_by', 'history', 'arguments', 'subcommands']);

function docs(r: Reply): CommandDocs {
  const m = obj(r);
  for (const k of m.keys()) if (!KNOWN_DOC_FIELDS.has(k)) throw new Error(`COMMAND DOCS field ${k} is not modelled`);
  return {
    ...(m.has('summary') ? { summary: str(m.get('summary')) } : {}),
    ...(m.has('since') ? { since: str(m.get('since')) } : {}),
    group: str(m.get('group')),
    ...(m.has('complexity') ? { complexity: str(m.get('complexity')) } : {}),
    ...(m.has('doc_flags') ? { docFlags: list(m.get('doc_flags')).map(str) } : {}),
    ...(m.has('deprecated_since') ? { deprecatedSince: str(m.get('deprecated_since')) } : {}),
    ...(m.has('replaced_by') ? { replacedBy: str(m.get('replaced_by')) } : {}),
    ...(m.has('history') ? { history: list(m.get('history')).map((h) => [str(list(h)[0]), str(list(h)[1])] as const) } : {}),
    ...(m.has('arguments') ? { arguments: list(m.get('arguments')).map(arg) } : {}),
  };
}

async function spec(client: RespClient, name: string, subs: readonly string[]): Promise<CommandSpec> {
  const info = await client.call('COMMAND', 'INFO', name);
  const entry = list(info)[0];
  if (entry === undefined || entry.type === 'null') throw new Error(`redis-server does not know ${name}`);
  const f = list(entry);
  const doc = obj(await client.call('COMMAND', 'DOCS', name)).get(name);
  if (doc === undefined) throw new Error(`redis-server has no docs for ${name}`);
  const subcommands: CommandSpec[] = [];
  for (const sub of subs) subcommands.push(await spec(client, `${name}|${sub}`, []));
  return {
    name: str(f[0]),
    arity: int(f[1]),
    flags: list(f[2]).map(str),
    firstKey: int(f[3]),
    lastKey: int(f[4]),
    step: int(f[5]),
    aclCategories: list(f[6]).map(str),
    tips: list(f[7]).map(str),
    keySpecs: list(f[8]).map(keySpec),
    docs: docs(doc),
    subcommands,
  };
}

const redis = await startRedisServer();
try {
  const client = await RespClient.connect(redis.port);
  await client.hello(3);
  const specs: CommandSpec[] = [];
  for (const [name, subs] of Object.entries(SUPPORTED)) specs.push(await spec(client, name, subs ?? []));
  client.close();
  const body = specs.map((s) => `  ${JSON.stringify(s)},`).join('\n');
  writeFileSync(
    OUT,
    `// Generated by scripts/gen-command-table.ts from redis-server ${redis.version}: COMMAND INFO and
// COMMAND DOCS of every command in command-table.ts's SUPPORTED. Do not edit: regenerate.
import type { CommandSpec } from './command-types.ts';

export const COMMAND_SPECS: readonly CommandSpec[] = [
${body}
];
`,
  );
  console.log(`wrote ${specs.length} commands (${specs.reduce((n, s) => n + s.subcommands.length, 0)} subcommands) to ${OUT}`);
} finally {
  await redis.stop();
}
