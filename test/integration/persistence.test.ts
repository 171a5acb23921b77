// Persistence on a REAL LevelDB (classic-level) in a temp dir: round trip of 10k writes through
// GroupStore + Persister, restart into a smaller store with read-through, partition drops, dead
// record purge, re-keying after a partition-count change, and crash safety: a child process
// writes and acknowledges records, is killed with SIGKILL, and everything it had acknowledged
// more than a flush interval (plus a generous margin) before the kill must be on disk.
//
// When JINCACHE_PERSIST_CHILD is set this file is the crash child instead of a test file.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { ENTRY_OVERHEAD_BYTES, GroupStore, type StoredEntry } from '../../src/cache/store.ts';
import { partitionOf as hashPartition } from '../../src/core/placement/hash.ts';
import { HybridClock } from '../../src/core/version.ts';
import { isStorageError } from '../../src/storage/errors.ts';
import { LevelStorage, type PersistRecord } from '../../src/storage/leveldb.ts';
import { Persister } from '../../src/storage/persist.ts';
import { NodeStorage } from '../../src/storage/node-storage.ts';
import { Group } from '../../src/cache/group.ts';
import { LocalData } from '../../src/cluster/local-data.ts';
import { NO_EXPIRY } from '../../src/cache/ops.ts';
import { dataKey, encodeRecord } from '../../src/storage/record.ts';

const PARTITIONS = 64;
const partitionOf = (key: string): number => hashPartition(key, PARTITIONS);

class FakeClock {
  t = 1_700_000_000_000;
  now(): number {
    return this.t;
  }
}

if (process.env['JINCACHE_PERSIST_CHILD'] !== undefined) {
  await crashChild(process.env['JINCACHE_PERSIST_CHILD']);
} else {
  registerTests();
}

/** Child: write records k0, k1, ... acknowledging each after the store applied it, until killed. */
async function crashChild(dir: string): Promise<void> {
  const storage = new LevelStorage({ path: dir, partitionOf });
  await storage.open();
  // report what reached LevelDB: batches are in key order of writing, so the largest index is enough
  const target = Object.create(storage) as LevelStorage;
  target.writeBatch = async (records: readonly PersistRecord[]) => {
    await storage.writeBatch(records);
    let max = -1;
    for (const r of records) max = Math.max(max, Number(r.key.slice(1)));
    process.stdout.write(`durable ${max}\n`);
  };
  const store = new GroupStore({ name: 'g', maxBytes: 256 << 20, clock: { now: () => Date.now() }, partitionOf });
  const p = new Persister({ storage: target, flushIntervalMs: 5 });
  p.attach('g', store);
  const value = Buffer.alloc(100, 7);
  // bounded: the parent kills us long before this ends
  for (let i = 0; i < 500_000; i++) {
    store.apply(`k${i}`, { value, version: i + 1, expiresAt: 0 });
    // as a node's write path does: wait while the disk is behind, then acknowledge
    const behind = p.backpressure();
    if (behind !== undefined) await behind;
    process.stdout.write(`ack ${i}\n`);
    if (i % 50 === 49) await yieldToLoop();
  }
  await p.stop();
  await storage.close();
}

function registerTests(): void {
  const root = mkdtempSync(join(tmpdir(), 'jincache-persist-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  let n = 0;
  const freshDir = (): string => join(root, `db${n++}`);

  test('10k writes through GroupStore survive close and reopen: values, tombstones, versions, expiry, watermarks', async () => {
    const dir = freshDir();
    const clock = new FakeClock();
    const hlc = new HybridClock(clock);
    const ttl = 60_000;
    const mk = (): GroupStore => new GroupStore({ name: 'g', maxBytes: 64 << 20, clock, partitionOf, tombstoneTtlMs: ttl });

    const storage = new LevelStorage({ path: dir, partitionOf, clock, tombstoneTtlMs: ttl });
    await storage.open();
    const store = mk();
    const p = new Persister({ storage, clock, tombstoneTtlMs: ttl });
    p.attach('g', store);
    // a fixed pseudo-random mix: overwrites, deletes, TTLs (some expire before the reopen)
    let seed = 42;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const keys = new Set<string>();
    const marks = new Map<number, number>();
    for (let i = 0; i < 10_000; i++) {
      const key = `key:${Math.floor(rnd() * 7000)}`;
      keys.add(key);
      const r = rnd();
      const version = hlc.next();
      const rec =
        r < 0.1
          ? { value: null, version, expiresAt: 0 }
          : { value: Buffer.from(`v${i}:${'x'.repeat(i % 90)}`), version, expiresAt: r < 0.2 ? clock.t + 1000 : r < 0.3 ? clock.t + 3_600_000 : 0 };
      assert.equal(store.apply(key, rec), true);
      marks.set(partitionOf(key), version);
      if (i % 1000 === 999) {
        clock.t += 1; // versions move with time too
        await yieldToLoop(); // let the timer-driven flushes run as in a real node
      }
    }
    await p.stop();
    assert.equal(p.stats().failures, 0);
    assert.ok(p.stats().flushes >= 2, `group commit made several batches (${p.stats().flushes})`);
    const high = storage.highWatermark();
    await storage.close();
    await assert.rejects(storage.writeBatch([]), (e: unknown) => isStorageError(e) && e.code === 'STORAGE_CLOSED');

    clock.t += 2000; // the short TTLs are now expired, on both sides
    const storage2 = new LevelStorage({ path: dir, partitionOf, clock, tombstoneTtlMs: ttl });
    await storage2.open();
    assert.equal(storage2.highWatermark(), high);
    assert.equal(high, Math.max(...marks.values()));
    for (const [part, v] of marks) assert.equal(storage2.watermark('g', part), v, `watermark of partition ${part}`);
    const store2 = mk();
    const p2 = new Persister({ storage: storage2, clock, tombstoneTtlMs: ttl });
    p2.attach('g', store2);
    const loaded = await p2.load();
    assert.equal(loaded.perGroup['g']?.truncated, false);
    let tombstones = 0;
    for (const key of keys) {
      const a: StoredEntry | undefined = store.peek(key);
      const b: StoredEntry | undefined = store2.peek(key);
      if (a?.value === null && b?.value === null) {
        // GroupStore records a loaded delete with a fresh forget time (it has no way to take one):
        // never earlier than the original, so a restart only keeps tombstones longer. The disk
        // keeps the original.
        tombstones++;
        assert.deepEqual({ ...b, expiresAt: 0 }, { ...a, expiresAt: 0 }, key);
        assert.ok(b.expiresAt >= a.expiresAt && b.expiresAt <= clock.t + ttl, key);
        if (tombstones <= 200) {
          // on disk: the delete with its original forget time, or the value that expired since
          const d = (await storage2.get('g', key))!;
          if (d.value === null) assert.equal(d.expiresAt, a.expiresAt, key);
          else assert.ok(d.expiresAt !== 0 && d.expiresAt <= clock.t && d.version === a.version, key);
        }
        continue;
      }
      assert.deepEqual(b, a, key);
    }
    assert.ok(tombstones > 500, `tombstones compared (${tombstones})`);
    assert.deepEqual(store2.stats().entries, store.stats().entries);
    await p2.stop();
    await storage2.close();
  });

  test('restart into a smaller store: the rest stays on disk and is read through; older late writes lose to it', async () => {
    const dir = freshDir();
    const storage = new LevelStorage({ path: dir, partitionOf });
    await storage.open();
    const recs: PersistRecord[] = [];
    for (let i = 0; i < 2000; i++) recs.push({ group: 'g', key: `k${i}`, value: Buffer.alloc(100, i % 256), version: 1000 + i, expiresAt: 0 });
    await storage.writeBatch(recs);
    await storage.close();

    const storage2 = new LevelStorage({ path: dir, partitionOf });
    await storage2.open();
    const clock = new FakeClock();
    const budget = 500 * ('k1000'.length + 100 + ENTRY_OVERHEAD_BYTES);
    const store = new GroupStore({ name: 'g', maxBytes: budget, clock, partitionOf });
    const p = new Persister({ storage: storage2, clock });
    p.attach('g', store);
    const r = await p.load();
    assert.equal(r.perGroup['g']?.truncated, true);
    // keys k0..k1999 vary in length, so a few more than 500 fit
    assert.ok(store.stats().entries >= 490 && store.stats().entries <= 520, `${store.stats().entries} loaded`);
    let fromDisk = 0;
    for (let i = 0; i < 2000; i++) {
      const e = await p.readThrough('g', `k${i}`);
      assert.equal(e?.version, 1000 + i, `k${i}`);
      assert.deepEqual(e?.value, Buffer.alloc(100, i % 256));
    }
    fromDisk = p.stats().diskHits;
    assert.ok(fromDisk >= 1500, `${fromDisk} read through`);
    // the store holds ~500 now; a late replica older than disk for an evicted key must not win
    const evicted = Array.from({ length: 2000 }, (_, i) => `k${i}`).find((k) => store.peek(k) === undefined)!;
    store.apply(evicted, { value: Buffer.from('stale'), version: 1, expiresAt: 0 });
    await p.flush();
    assert.equal((await storage2.get('g', evicted))?.version, 1000 + Number(evicted.slice(1)));
    assert.notEqual(store.peek(evicted)?.version, 1);
    await p.stop();
    await storage2.close();
  });

  test('partitionRecords reads one partition from disk, evicted entries included, above a version', async () => {
    const dir = freshDir();
    const clock = new FakeClock();
    const storage = new LevelStorage({ path: dir, partitionOf, clock });
    await storage.open();
    const one = 'k100'.length + 10 + ENTRY_OVERHEAD_BYTES;
    const store = new GroupStore({ name: 'g', maxBytes: one * 20, clock, partitionOf });
    const p = new Persister({ storage, clock });
    p.attach('g', store);
    for (let i = 0; i < 500; i++) store.apply(`k${i}`, { value: Buffer.alloc(10, i % 256), version: i + 1, expiresAt: 0 });
    store.apply('k7', { value: null, version: 1000, expiresAt: 0 });
    await p.flush();
    const part = partitionOf('k7');
    const expected = Array.from({ length: 500 }, (_, i) => `k${i}`).filter((k) => partitionOf(k) === part);
    assert.ok(store.partitionKeyCount(part) < expected.length, 'memory lost some to eviction');
    const got = [];
    for await (const r of storage.partitionRecords('g', part)) got.push(r);
    assert.deepEqual(got.map((r) => r.key).sort(), [...expected].sort());
    assert.equal(got.find((r) => r.key === 'k7')?.value, null);
    const newer = [];
    for await (const r of storage.partitionRecords('g', part, { minVersion: 250 })) newer.push(r.version);
    assert.deepEqual(newer.sort((a, b) => a - b), got.map((r) => r.version).filter((v) => v > 250).sort((a, b) => a - b));
    await p.stop();
    await storage.close();
  });

  test('dropped partitions leave the disk; dead records are purged at load', async () => {
    const dir = freshDir();
    const clock = new FakeClock();
    const storage = new LevelStorage({ path: dir, partitionOf, clock, tombstoneTtlMs: 1000 });
    await storage.open();
    const store = new GroupStore({ name: 'g', maxBytes: 1 << 20, clock, partitionOf, tombstoneTtlMs: 1000 });
    const p = new Persister({ storage, clock, tombstoneTtlMs: 1000 });
    p.attach('g', store);
    for (let i = 0; i < 300; i++) store.apply(`k${i}`, { value: Buffer.from(`v${i}`), version: i + 1, expiresAt: i % 10 === 0 ? clock.t + 10 : 0 });
    store.apply('k1', { value: null, version: 1000, expiresAt: 0 });
    const gone = partitionOf('k2');
    const inGone = Array.from({ length: 300 }, (_, i) => `k${i}`).filter((k) => partitionOf(k) === gone);
    assert.ok(inGone.length > 0);
    store.dropPartition(gone);
    await p.stop();
    assert.equal(storage.watermark('g', gone), 0);
    for (const k of inGone) assert.equal(await storage.get('g', k), undefined, k);
    assert.equal(await storage.get('g', 'k1').then((r) => r?.value), null, 'tombstone on disk');
    await storage.close();

    clock.t += 5000; // tombstones forgotten, TTL values expired for longer than the tombstone TTL
    const storage2 = new LevelStorage({ path: dir, partitionOf, clock, tombstoneTtlMs: 1000 });
    await storage2.open();
    const seen: string[] = [];
    const r = await storage2.load((rec) => void seen.push(rec.key));
    const dead = 1 + Array.from({ length: 30 }, (_, i) => `k${i * 10}`).filter((k) => k !== 'k1' && partitionOf(k) !== gone).length;
    assert.equal(r.purged, dead);
    assert.equal(seen.length, 300 - inGone.length - dead);
    assert.equal(await storage2.get('g', 'k1'), undefined, 'purged for good');
    await storage2.close();
  });

  test('a changed partition count re-keys records and rebuilds watermarks; another format refuses to open', async () => {
    const dir = freshDir();
    const s1 = new LevelStorage({ path: dir, partitionOf, partitionCount: PARTITIONS });
    await s1.open();
    await s1.writeBatch(Array.from({ length: 500 }, (_, i) => ({ group: 'g', key: `k${i}`, value: Buffer.from(`v${i}`), version: i + 1, expiresAt: 0 })));
    await s1.close();
    const of16 = (key: string): number => hashPartition(key, 16);
    const s2 = new LevelStorage({ path: dir, partitionOf: of16, partitionCount: 16 });
    await s2.open();
    assert.equal(s2.highWatermark(), 0, 'watermarks discarded');
    const got = new Map<string, number>();
    const r = await s2.load((rec) => void got.set(rec.key, rec.partition));
    assert.equal(r.records, 500);
    assert.ok(r.rekeyed > 300, `${r.rekeyed} moved`);
    for (const [k, part] of got) assert.equal(part, of16(k));
    assert.equal(s2.highWatermark(), 500);
    assert.equal((await s2.get('g', 'k42'))?.value?.toString(), 'v42');
    await s2.close();
    const s3 = new LevelStorage({ path: dir, partitionOf: of16, partitionCount: 16 });
    await s3.open();
    const again = await s3.load(() => {});
    assert.equal(again.rekeyed, 0);
    assert.equal(again.records, 500);
    await s3.close();

    // a database from another format version
    const { ClassicLevel } = await import('classic-level');
    const dir2 = freshDir();
    const raw = new ClassicLevel<Buffer, Buffer>(dir2, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await raw.put(Buffer.from('mformat'), Buffer.from('99'));
    await raw.put(dataKey('g', 0, 'x'), encodeRecord({ value: null, version: 1, expiresAt: 0 }));
    await raw.close();
    const s4 = new LevelStorage({ path: dir2 });
    await assert.rejects(s4.open(), (e: unknown) => isStorageError(e) && e.code === 'STORAGE_FORMAT');
  });

  test('NodeStorage: puts, deletes, expires and applied batches through LocalData survive a restart; the clock moves past them', async () => {
    const dir = join(root, 'node-{id}');
    const clock = new FakeClock();
    const boot = async () => {
      const groups = new Map([
        ['default', new Group({ name: 'default', maxBytes: 8 << 20, clock, partitionOf })],
        ['sessions', new Group({ name: 'sessions', maxBytes: 8 << 20, clock, partitionOf })],
      ]);
      const hlc = new HybridClock(clock);
      const ns = new NodeStorage({ path: dir, nodeId: 'n1', groups, partitionOf, partitionCount: PARTITIONS, hlc, clock });
      const summary = await ns.start();
      return { groups, hlc, ns, summary, local: new LocalData({ groups, hlc, clock }) };
    };
    const a = await boot();
    assert.equal(a.summary.records, 0);
    assert.ok(a.ns.path.endsWith('node-n1'));
    a.local.write('default', 'p1', { op: 'set', value: Buffer.from('one'), expiry: NO_EXPIRY });
    a.local.write('default', 'p2', { op: 'set', value: Buffer.from('two'), expiry: { kind: 'in', ms: 60_000 } });
    a.local.write('default', 'gone', { op: 'set', value: Buffer.from('x'), expiry: NO_EXPIRY });
    a.local.write('default', 'gone', { op: 'del' });
    a.local.write('default', 'p1', { op: 'expire', expiry: { kind: 'in', ms: 120_000 } });
    // replication / migration batch from a peer, with versions ahead of this node's clock
    const ahead = (clock.t + 3_600_000) * 1024;
    assert.equal(a.local.apply([
      { group: 'sessions', key: 's1', value: Buffer.from('peer'), version: ahead, expiresAt: 0 },
      { group: 'sessions', key: 's2', value: null, version: ahead + 1, expiresAt: 0 },
    ]), 2);
    await a.ns.flush();
    assert.equal(a.ns.stats().pending, 0);
    await a.ns.stop();
    await a.ns.stop(); // idempotent

    const b = await boot();
    assert.equal(b.summary.records, 5);
    assert.equal(b.summary.highWatermark, ahead + 1);
    assert.ok(b.hlc.next() > ahead + 1, 'new versions beat every persisted one');
    assert.deepEqual(b.local.cached('default', 'p1'), { value: Buffer.from('one'), source: 'hit', expiresAt: clock.t + 120_000 });
    assert.equal(b.local.cached('default', 'p2')?.expiresAt, clock.t + 60_000);
    assert.equal(b.local.record('default', 'gone')?.value, null, 'the delete survived as a tombstone');
    assert.equal(b.local.cached('sessions', 's1')?.value.toString(), 'peer');
    assert.equal(b.local.record('sessions', 's2')?.version, ahead + 1);
    assert.ok(b.ns.catchUpFrom('sessions', partitionOf('s1')) > 0);
    b.local.write('sessions', 's1', { op: 'set', value: Buffer.from('newer'), expiry: NO_EXPIRY }); // buffered: partitionRecords flushes first
    const disk = [];
    for await (const r of b.ns.partitionRecords('sessions', partitionOf('s1'))) if (r.key === 's1') disk.push(r.value?.toString());
    assert.deepEqual(disk, ['newer']);
    const empty = Array.from({ length: PARTITIONS }, (_, i) => i).find((i) => i !== partitionOf('s1') && i !== partitionOf('s2'))!;
    assert.equal(b.ns.catchUpFrom('sessions', empty), 0, 'nothing of it on disk: send all');
    await b.ns.stop();
  });

  test('crash safety: after SIGKILL every record acknowledged before the last flush interval is on disk', async (t) => {
    const dir = freshDir();
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url)], {
      env: { ...process.env, JINCACHE_PERSIST_CHILD: dir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const ackAt: number[] = []; // index -> when the parent received the ack
    let durable = -1;
    let buf = '';
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let killedAt = 0;
    let firstAck: number | undefined;
    const killed = new Promise<void>((resolve, reject) => {
      const guard = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`child did not get far enough in 30 s (acks ${ackAt.length}, durable ${durable}): ${stderr}`));
      }, 30_000);
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        const lines = buf.split('\n');
        buf = lines.pop()!;
        const now = performance.now();
        for (const line of lines) {
          if (line.startsWith('ack ')) ackAt[Number(line.slice(4))] = now;
          else if (line.startsWith('durable ')) durable = Math.max(durable, Number(line.slice(8)));
        }
        // kill mid-stream, while writes are still flowing (the child writes up to 500k)
        firstAck ??= now;
        if (killedAt === 0 && now - firstAck >= 800) {
          killedAt = performance.now();
          child.kill('SIGKILL');
          clearTimeout(guard);
          resolve();
        }
      });
      child.once('exit', (code, signal) => {
        if (killedAt === 0) {
          clearTimeout(guard);
          reject(new Error(`child exited early (${code ?? signal}): ${stderr}`));
        }
      });
    });
    try {
      await killed;
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    }
    assert.equal(child.signalCode, 'SIGKILL');

    const storage = new LevelStorage({ path: dir, partitionOf });
    await storage.open(); // LevelDB replays its log after the crash
    const high = storage.highWatermark();
    const onDisk = new Set<number>();
    await storage.load((r) => {
      assert.deepEqual(r.value, Buffer.alloc(100, 7));
      assert.equal(r.version, Number(r.key.slice(1)) + 1);
      onDisk.add(Number(r.key.slice(1)));
    });
    await storage.close();
    // batches are atomic and applied in order: what survived is a prefix
    const count = onDisk.size;
    for (let i = 0; i < count; i++) assert.ok(onDisk.has(i), `k${i} missing although ${count} records survived`);
    // watermarks are persisted lazily: they may lag the data after a crash, never lead it
    assert.ok(high > 0 && high <= count, `high watermark ${high} within the ${count} versions on disk`);
    assert.ok(durable >= 0 && count > durable, `everything reported durable (up to ${durable}) survived (${count})`);
    // the durability window is 5 ms; 250 ms of margin covers a loaded 2-core machine and the pipe
    const cutoff = killedAt - 250;
    let mustHave = -1;
    for (let i = 0; i < ackAt.length; i++) if ((ackAt[i] ?? Infinity) <= cutoff) mustHave = i;
    assert.ok(mustHave > 1000, `enough acknowledged well before the kill to check (${mustHave})`);
    t.diagnostic(`acked ${ackAt.length}, reported durable up to k${durable}, on disk ${count}, required up to k${mustHave}, watermark ${high}`);
    assert.ok(count > mustHave, `acknowledged up to k${mustHave} at least 250 ms before the kill, but only ${count} records on disk`);
  });
}
