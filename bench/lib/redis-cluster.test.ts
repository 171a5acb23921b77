import { test } from 'node:test';
import assert from 'node:assert/strict';
import { which } from './deps.ts';
import { livePids } from './procs.ts';
import {
  RedisCluster,
  RespError,
  benchKeyList,
  benchKeys,
  crc16,
  encodeCommand,
  fixedValue,
  keySlot,
  parseClusterNodes,
  parseInfo,
  parseReply,
  respCall,
} from './redis-cluster.ts';

test('crc16 is CRC16-XMODEM and keySlot matches Redis (CLUSTER KEYSLOT)', () => {
  assert.equal(crc16(Buffer.from('123456789')), 0x31c3);
  // Values from redis-server 7's CLUSTER KEYSLOT.
  assert.equal(keySlot('foo'), 12182);
  assert.equal(keySlot('bar'), 5061);
  assert.equal(keySlot('{user1000}.following'), keySlot('{user1000}.followers'));
  assert.equal(keySlot('{user1000}.following'), keySlot('user1000'));
  // An empty tag hashes the whole key.
  assert.equal(keySlot('{}foo'), crc16(Buffer.from('{}foo')) % 16384);
});

test('bench keys spread over every slot', () => {
  const seen = new Set(benchKeys(100_000).map(keySlot));
  assert.ok(seen.size > 16_000, `only ${seen.size} slots used`);
  assert.equal(fixedValue(100).length, 100);
});

test('parseReply handles every RESP2 type and partial input', () => {
  assert.deepEqual(parseReply(Buffer.from('+OK\r\n')), { value: 'OK', next: 5 });
  assert.deepEqual(parseReply(Buffer.from(':42\r\n')), { value: 42, next: 5 });
  assert.deepEqual(parseReply(Buffer.from('$-1\r\n')), { value: null, next: 5 });
  assert.deepEqual(parseReply(Buffer.from('*2\r\n$3\r\nfoo\r\n:1\r\n')), { value: ['foo', 1], next: 17 });
  const e = parseReply(Buffer.from('-ERR bad\r\n'));
  assert.ok(e !== null && e.value instanceof RespError && e.value.message === 'ERR bad');
  assert.equal(parseReply(Buffer.from('$5\r\nab')), null);
  assert.equal(parseReply(Buffer.from('*2\r\n:1\r\n')), null);
  assert.equal(parseReply(Buffer.from('+OK')), null);
  assert.equal(encodeCommand(['SET', 'k', Buffer.from('v')]).toString(), '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n');
});

test('parseClusterNodes and parseInfo', () => {
  const text = [
    'a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460 [5461->-b2]',
    'b2 127.0.0.1:7001@17001 master - 0 1 2 connected 5461-10922 12000',
    'c3 127.0.0.1:7002@17002 slave a1 0 1 1 connected',
    'd4 127.0.0.1:7003@17003 master,fail - 0 1 3 disconnected',
  ].join('\n');
  const rows = parseClusterNodes(text);
  assert.equal(rows.length, 4);
  assert.deepEqual(rows[0], { id: 'a1', port: 7000, flags: ['myself', 'master'], masterId: null, connected: true, slots: [[0, 5460]] });
  assert.deepEqual(rows[1]!.slots, [[5461, 10922], [12000, 12000]]);
  assert.equal(rows[2]!.masterId, 'a1');
  assert.equal(rows[3]!.connected, false);
  const info = parseInfo('# Memory\r\nused_memory:1024\r\nused_memory_human:1.00K\r\n');
  assert.equal(info.get('used_memory'), '1024');
  assert.equal(info.has('# Memory'), false);
});

test('a real 3-master Redis Cluster: create, load over all slots, add a master, rebalance, stop by PID', { skip: which('redis-server') === null ? 'redis-server not installed' : false, timeout: 60_000 }, async () => {
  const c = await RedisCluster.start({ masters: 3, nodeTimeoutMs: 2000 });
  const pids = c.nodes.map((n) => n.proc.pid);
  try {
    const keys = benchKeys(3000);
    const stats = await c.load(keys, fixedValue(100));
    assert.equal(stats.ok, 3000);
    assert.equal(await c.totalKeys(), 3000);
    const masters = (await c.topology()).filter((r) => r.flags.includes('master'));
    assert.equal(masters.length, 3);
    for (const m of masters) assert.ok((await c.dbsize(m.port)) > 500, 'every master holds a share');
    assert.equal(await respCall(c.nodes[0]!.port, ['PING']), 'PONG');
    const fresh = await c.addEmptyMaster();
    assert.equal(await c.dbsize(fresh.port), 0);
    const r = await c.rebalance();
    assert.ok(r.seconds > 0);
    const moved = await c.dbsize(fresh.port);
    assert.ok(moved > 300 && moved < 1500, `new master holds ${moved} of 3000`);
    assert.equal(await c.totalKeys(), 3000);
  } finally {
    await c.stop();
  }
  for (const pid of pids) assert.ok(!livePids().includes(pid));
});

test('benchKeyList makes the keys of benchKeys on demand', () => {
  const list = benchKeyList(1234);
  const keys = benchKeys(1234);
  assert.equal(list.length, 1234);
  for (const i of [0, 1, 999, 1233]) assert.equal(list.at(i), keys[i]);
  assert.equal(list.at(1234), undefined);
  assert.equal(benchKeyList(10_000_001).at(10_000_000), 'bench:10000000');
});
