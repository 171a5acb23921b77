import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Group } from '../../cache/group.ts';
import { partitionOf } from '../../core/placement/hash.ts';
import { addNode, createTable, encodeTable, type PartitionTable } from '../../core/placement/table.ts';
import type { Clock, NodeId, NodeInfo } from '../../core/types.ts';
import { HybridClock } from '../../core/version.ts';
import { JincacheError } from '../../core/errors.ts';
import type { CallMeta, PeerCaller } from '../../peer/client.ts';
import { MigrateBatch, MigrateReady, MigrateVerify, type MigrateReadyRequest } from '../../peer/messages.ts';
import type { MessageMeta, PeerMessage } from '../../peer/protocol.ts';
import type { PeerServer } from '../../peer/server.ts';
import { MigrationReceiver } from './receiver.ts';
import { NO_EXPIRY } from '../../cache/ops.ts';
import { LocalData } from '../local-data.ts';
import { applyBatch } from './batch.ts';
import { Executor, localChecksum, partitionChecksum, type DiskSource, type SourceRecord } from './executor.ts';
import { copyMoves } from './plan.ts';
import { parseMigration, serializeMigration, type Migration } from './record.ts';

const clock: Clock = { now: () => 1_000_000 };
const P = 64;
const silent = { info: () => {}, warn: () => {} };

function local(): LocalData {
  const g = new Group({ name: 'g', maxBytes: 1 << 26, clock, partitionOf: (k) => partitionOf(k, P) });
  return new LocalData({ groups: new Map([['g', g]]), hlc: new HybridClock(clock), clock });
}

function joinMigration(): { from: PartitionTable; target: PartitionTable; m: Migration } {
  const from = createTable([{ id: 'a', weight: 1 }], { partitionCount: P, replicationFactor: 1, clock });
  const target = addNode(from, { id: 'b', weight: 1 }, { replicationFactor: 1, clock });
  const doc = { id: 'm1-test', kind: 'prepare' as const, state: 'running' as const, fromVersion: from.version, from: encodeTable(from), target: encodeTable(target), createdAt: 1, updatedAt: 1 };
  return { from, target, m: parseMigration(serializeMigration(doc)) };
}

/**
 * A peer for one receiver, in process: batches applied with applyBatch, verify answered with
 * the receiver's sums. Batch answers come back in a shuffled order (several in flight).
 */
function fakePeer(target: LocalData, hooks: { beforeVerify?: () => void; failBatches?: number } = {}): { peers: PeerCaller; batches: () => number; records: () => number; verifies: () => number; readies: MigrateReadyRequest[] } {
  const readies: MigrateReadyRequest[] = [];
  let batches = 0;
  let records = 0;
  let verifies = 0;
  let fail = hooks.failBatches ?? 0;
  const peers: PeerCaller = {
    async call<Req, Res>(message: PeerMessage<Req, Res>, _address: string, req: Req, _meta: CallMeta): Promise<Res> {
      if (message.name === MigrateReady.name) {
        readies.push(req as MigrateReadyRequest);
        return undefined as Res;
      }
      if (message.name === MigrateBatch.name) {
        batches++;
        await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 5)));
        if (fail > 0) {
          fail--;
          throw new JincacheError('PEER_UNAVAILABLE', 'busy');
        }
        const out = await applyBatch((req as { batch: Buffer }).batch, target, { maxRecords: 1e6, maxValueBytes: 1e6 });
        records += out.received;
        return out as Res;
      }
      if (message.name === MigrateVerify.name) {
        verifies++;
        hooks.beforeVerify?.();
        const sums: [number, number][] = [];
        for (const p of (req as { partitions: number[] }).partitions) {
          const c = await partitionChecksum(target, p, undefined);
          sums.push([c.count, c.sum]);
        }
        return { sums } as Res;
      }
      throw new JincacheError('NOT_FOUND', `no peer message ${message.name}`);
    },
  };
  return { peers, batches: () => batches, records: () => records, verifies: () => verifies, readies };
}

function executor(src: LocalData, peers: PeerCaller, batchBytes: number, disk?: DiskSource): Executor {
  const members = new Map<NodeId, NodeInfo>([['b', { id: 'b', address: 'http://b', status: 'active', weight: 1, last_seen: 0 } as NodeInfo]]);
  return new Executor({
    self: 'a',
    local: src,
    client: peers,
    member: (id) => members.get(id),
    settings: () => ({ batchSize: 100_000, batchBytes, concurrency: 3, requestTimeoutMs: 2000 }),
    onProgress: () => {},
    logger: silent,
    ...(disk !== undefined ? { disk } : {}),
  });
}

async function finished(ex: Executor, id: string): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    const job = ex.active().find((j) => j.id === id);
    if (job?.finished === true) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error('job did not finish');
}

test('a join streams every moving partition in pipelined batches and verifies each by checksum', async () => {
  const { from, target, m } = joinMigration();
  const src = local();
  const dst = local();
  for (let i = 0; i < 3000; i++) src.write('g', `key-${i}`, { op: 'set', value: Buffer.alloc(100, i % 256), expiry: NO_EXPIRY });
  for (let i = 0; i < 200; i++) src.write('g', `key-${i * 7}`, { op: 'del' });
  const peer = fakePeer(dst);
  const ex = executor(src, peer.peers, 64 * 1024);
  ex.sync([m], from);
  await finished(ex, m.id);
  const moving = copyMoves(from, target).map((mv) => mv.partition);
  assert.ok(moving.length > 0 && moving.length < P);
  assert.ok(peer.batches() >= 3, `${peer.batches()} batches`);
  const progress = ex.active()[0]!.progress;
  let sent = 0;
  for (const p of moving) {
    assert.deepEqual(localChecksum(dst, p), localChecksum(src, p), `partition ${p}`);
    const st = progress.partitions.find((x) => x.partition === p)!;
    assert.equal(st.state, 'done');
    assert.equal(st.verified, true);
    sent += st.entriesDone;
  }
  // tombstones travel too (a delete is not resurrected at the receiver)
  const moved = [...src.groups.get('g')!.store.partitions()].filter((p) => moving.includes(p));
  let held = 0;
  for (const p of moved) held += src.groups.get('g')!.store.partitionKeyCount(p);
  assert.equal(sent, held);
  // the receiver was told what was coming, before the first batch
  assert.deepEqual(peer.readies, [{ migration: m.id, expected: [{ group: 'g', entries: held }] }]);
  // partitions that stay put were not sent
  for (let p = 0; p < P; p++) if (!moving.includes(p)) assert.equal(dst.groups.get('g')!.store.partitionKeyCount(p), 0);
  ex.stop();
});

test('a write racing the copy (also forwarded to the receiver) is verified by summing again, not by copying again', async () => {
  const { from, target, m } = joinMigration();
  const moving = new Set(copyMoves(from, target).map((mv) => mv.partition));
  const src = local();
  const dst = local();
  for (let i = 0; i < 2000; i++) src.write('g', `key-${i}`, { op: 'set', value: Buffer.from(`v${i}`), expiry: NO_EXPIRY });
  let raced = 0;
  const peer = fakePeer(dst, {
    // after the batches and before the check: a newer write lands at the owner and, through the
    // router's extra replicas, at the receiver; the sums of what was sent no longer match
    beforeVerify: () => {
      if (raced > 0) return;
      for (let i = 0; i < 2000; i++) {
        if (!moving.has(partitionOf(`key-${i}`, P))) continue;
        const w = src.write('g', `key-${i}`, { op: 'set', value: Buffer.from('newer'), expiry: NO_EXPIRY });
        dst.apply([w.record!]);
        raced = i;
        return;
      }
    },
    failBatches: 2, // and two batch answers fail first: retried
  });
  const ex = executor(src, peer.peers, 16 * 1024);
  ex.sync([m], from);
  await finished(ex, m.id);
  const sent = peer.records();
  for (const st of ex.active()[0]!.progress.partitions) {
    assert.equal(st.state, 'done');
    assert.equal(st.verified, true, `partition ${st.partition}`);
    assert.deepEqual(localChecksum(dst, st.partition), localChecksum(src, st.partition));
  }
  assert.equal(dst.record('g', `key-${raced}`)?.value?.toString(), 'newer');
  let held = 0;
  for (const p of moving) held += src.groups.get('g')!.store.partitionKeyCount(p);
  assert.equal(sent, held, 'nothing was copied twice');
  ex.stop();

  // a receiver that lost part of a batch: the partition is copied again and ends verified
  const dst2 = local();
  let dropped = false;
  const lossy = fakePeer(dst2, {
    beforeVerify: () => {
      if (dropped) return;
      dropped = true;
      for (const p of moving) if (dst2.groups.get('g')!.store.dropPartition(p) > 0) return;
    },
  });
  const ex2 = executor(src, lossy.peers, 16 * 1024);
  ex2.sync([m], from);
  await finished(ex2, m.id);
  assert.ok(dropped);
  assert.ok(lossy.records() > sent, `the lost partition was sent again (${lossy.records()} records, one copy is ${sent})`);
  for (const st of ex2.active()[0]!.progress.partitions) {
    assert.equal(st.verified, true, `partition ${st.partition}`);
    assert.deepEqual(localChecksum(dst2, st.partition), localChecksum(src, st.partition));
  }
  ex2.stop();
});

test('a stopped migration stops sending', async () => {
  const { from, m } = joinMigration();
  const src = local();
  for (let i = 0; i < 5000; i++) src.write('g', `key-${i}`, { op: 'set', value: Buffer.alloc(200), expiry: NO_EXPIRY });
  const peer = fakePeer(local());
  const ex = executor(src, peer.peers, 8 * 1024);
  ex.sync([m], from);
  await new Promise((r) => setTimeout(r, 20));
  ex.sync([], from); // the record ended: the job is aborted
  const seen = peer.batches();
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(peer.batches() <= seen + 3, `sent ${peer.batches() - seen} batches after the stop (at most the window in flight)`);
  assert.equal(ex.active().length, 0);
});

test('a persistent source whose memory lost entries streams them from disk', async () => {
  const { from, target, m } = joinMigration();
  const moving = new Set(copyMoves(from, target).map((mv) => mv.partition));
  // "disk": every record, tombstones included; memory holds none of them (evicted)
  const disk = new Map<number, SourceRecord[]>();
  for (let i = 0; i < 1500; i++) {
    const key = `key-${i}`;
    const p = partitionOf(key, P);
    let list = disk.get(p);
    if (list === undefined) disk.set(p, (list = []));
    list.push(i % 10 === 0 ? { key, value: null, version: 500 + i, expiresAt: 9e15 } : { key, value: Buffer.from(`v${i}`), version: 500 + i, expiresAt: 0 });
  }
  const source: DiskSource = (_group, p) =>
    (async function* () {
      for (const r of disk.get(p) ?? []) yield r;
    })();
  const dst = local();
  const peer = fakePeer(dst);
  const ex = executor(local(), peer.peers, 16 * 1024, source);
  ex.sync([m], from);
  await finished(ex, m.id);
  for (const st of ex.active()[0]!.progress.partitions) {
    assert.equal(st.state, 'done');
    assert.equal(st.verified, true, `partition ${st.partition}`);
  }
  for (const [p, list] of disk) {
    for (const r of list) {
      const got = dst.record('g', r.key);
      if (!moving.has(p)) assert.equal(got, undefined);
      else assert.deepEqual([got?.value ?? null, got?.version], [r.value, r.version], r.key);
    }
  }
  ex.stop();
});

test('the receiver sizes a group for what every source announced, once per source', async () => {
  const dst = local();
  for (let i = 0; i < 100; i++) dst.write('g', `have-${i}`, { op: 'set', value: Buffer.from('v'), expiry: NO_EXPIRY });
  const handlers = new Map<string, (req: unknown, meta: MessageMeta) => unknown>();
  const server = { handle: (m: { name: string }, h: (req: unknown, meta: MessageMeta) => unknown) => void handlers.set(m.name, h) } as unknown as PeerServer;
  new MigrationReceiver({ local: dst, groups: dst.groups, partitionOf: (k) => partitionOf(k, P), partitionCount: () => P, maxValueBytes: () => 1 << 20, accepting: () => true, server });
  const ready = (from: string, entries: number): unknown => handlers.get(MigrateReady.name)!({ migration: 'm1-test', expected: [{ group: 'g', entries }, { group: 'nope', entries: 5 }] }, { from, table: undefined, deadline: Date.now() + 1000 });
  const buckets = (): number => dst.groups.get('g')!.store.indexStats().buckets;
  const before = buckets();
  ready('a', 100_000);
  ready('a', 100_000); // asked again: nothing more
  assert.ok(buckets() * 3 >= 100_100 * 4 && buckets() * 3 < 2 * 100_100 * 4, `${buckets()} buckets for 100,100 keys`);
  ready('b', 100_000);
  assert.ok(buckets() * 3 >= 200_100 * 4 && buckets() * 3 < 2 * 200_100 * 4, `${buckets()} buckets for 200,100 keys`);
  assert.ok(before < buckets());
  // a body from a node before MigrateReady carried one: nothing reserved, still ready
  const other = local();
  const h2 = new Map<string, (req: unknown, meta: MessageMeta) => unknown>();
  new MigrationReceiver({ local: other, groups: other.groups, partitionOf: (k) => partitionOf(k, P), partitionCount: () => P, maxValueBytes: () => 1 << 20, accepting: () => true, server: { handle: (m: { name: string }, h: (req: unknown, meta: MessageMeta) => unknown) => void h2.set(m.name, h) } as unknown as PeerServer });
  const b0 = other.groups.get('g')!.store.indexStats().buckets;
  h2.get(MigrateReady.name)!(MigrateReady.decodeRequest(Buffer.alloc(0)), { from: 'a', table: undefined, deadline: Date.now() + 1000 });
  assert.equal(other.groups.get('g')!.store.indexStats().buckets, b0);
});
