// The placement marker of a LevelDB directory, on a real LevelDB in a temp dir: a new directory
// is marked at its first open; a directory an older jincache wrote (no marker, records under
// murmur3 partitions and UTF-8 keys) is re-partitioned by hash slot while loading, even when
// the load is interrupted; a marker naming another scheme is refused with one line.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { defaultHash, partitionOf as slotPartition } from '../core/placement/hash.ts';
import { isStorageError } from './errors.ts';
import { LEGACY_PLACEMENT, LevelStorage, PLACEMENT_SCHEME, STORAGE_FORMAT } from './leveldb.ts';
import { encodeRecord, metaKey, watermarkKey, encodeVersion } from './record.ts';

const PARTITIONS = 64;
const partitionOf = (key: string): number => slotPartition(key, PARTITIONS);
/** How jincache placed a text key before hash slots: murmur3 of its UTF-8 bytes, mod the count. */
const oldPartition = (text: string): number => defaultHash(text) % PARTITIONS;
const bytes = (text: string): string => Buffer.from(text, 'utf8').toString('latin1');

const dirs: string[] = [];
function freshDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'jincache-placement-'));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Text keys, one of them outside ASCII: the old build stored its UTF-8 bytes. */
const TEXT_KEYS = [...Array.from({ length: 300 }, (_, i) => `user:${i}`), 'ключ', '{tag}é'];

/**
 * A directory as the previous build left it (format 1, no placement meta): data keys
 * 'd' | group | 0 | u32BE murmur3 partition | UTF-8 key, a watermark per partition.
 */
async function writeOldDirectory(dir: string, group = 'g'): Promise<void> {
  const db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  const ops: Array<{ type: 'put'; key: Buffer; value: Buffer }> = [
    { type: 'put', key: metaKey('format'), value: Buffer.from('1') },
    { type: 'put', key: metaKey('partitions'), value: Buffer.from(String(PARTITIONS)) },
  ];
  TEXT_KEYS.forEach((text, i) => {
    const p = oldPartition(text);
    const key = Buffer.alloc(4);
    key.writeUInt32BE(p);
    ops.push({
      type: 'put',
      key: Buffer.concat([Buffer.from(`d${group}\0`), key, Buffer.from(text, 'utf8')]),
      value: encodeRecord({ value: Buffer.from(`v${i}`), version: i + 1, expiresAt: 0 }),
    });
    ops.push({ type: 'put', key: watermarkKey(group, p), value: encodeVersion(i + 1) });
  });
  await db.batch(ops);
  await db.close();
}

async function meta(dir: string, name: string): Promise<string | undefined> {
  const db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  try {
    return (await db.get(metaKey(name)))?.toString();
  } finally {
    await db.close();
  }
}

test('a new directory is marked with the placement scheme at its first open', async () => {
  const dir = freshDir();
  const s = new LevelStorage({ path: dir, partitionOf, partitionCount: PARTITIONS });
  await s.open();
  await s.writeBatch([{ group: 'g', key: 'k', value: Buffer.from('v'), version: 1, expiresAt: 0 }]);
  await s.close();
  assert.equal(await meta(dir, 'placement'), PLACEMENT_SCHEME);
  assert.equal(await meta(dir, 'format'), STORAGE_FORMAT);
  const again = new LevelStorage({ path: dir, partitionOf, partitionCount: PARTITIONS });
  await again.open();
  assert.equal((await again.load(() => {})).rekeyed, 0);
  await again.close();
});

test('data an older jincache wrote is re-partitioned by hash slot while loading', async () => {
  const dir = freshDir();
  await writeOldDirectory(dir);
  assert.equal(await meta(dir, 'placement'), undefined);
  const s = new LevelStorage({ path: dir, partitionOf, partitionCount: PARTITIONS });
  await s.open();
  assert.equal(s.highWatermark(), 0, 'the old watermarks are discarded');
  const seen = new Map<string, number>();
  const r = await s.load((rec) => void seen.set(rec.key, rec.partition));
  assert.equal(r.records, TEXT_KEYS.length);
  // murmur3 and CRC16 slots agree on a partition for about 1 key in 64
  assert.ok(r.rekeyed > TEXT_KEYS.length * 0.9, `${r.rekeyed} moved`);
  for (const text of TEXT_KEYS) assert.equal(seen.get(bytes(text)), partitionOf(bytes(text)), text);
  // the UTF-8 keys read back as their byte strings, where the front ends now look them up
  assert.equal((await s.get('g', bytes('ключ')))?.value?.toString(), `v${TEXT_KEYS.indexOf('ключ')}`);
  assert.equal((await s.get('g', bytes('{tag}é')))?.partition, partitionOf('tag'));
  assert.equal(s.highWatermark(), TEXT_KEYS.length, 'watermarks rebuilt from the records');
  await s.close();
  assert.equal(await meta(dir, 'placement'), PLACEMENT_SCHEME, 'marked once every record moved');

  const again = new LevelStorage({ path: dir, partitionOf, partitionCount: PARTITIONS });
  await again.open();
  const r2 = await again.load(() => {});
  assert.deepEqual([r2.records, r2.rekeyed], [TEXT_KEYS.length, 0]);
  assert.equal(again.highWatermark(), TEXT_KEYS.length);
  await again.close();
});

test('a migration cut short (no load, or a crash) is redone at the next start', async () => {
  const dir = freshDir();
  await writeOldDirectory(dir);
  const first = new LevelStorage({ path: dir, partitionOf, partitionCount: PARTITIONS });
  await first.open();
  await first.close(); // stopped before load(): nothing moved
  assert.equal(await meta(dir, 'placement'), undefined, 'not marked before the records moved');
  const second = new LevelStorage({ path: dir, partitionOf, partitionCount: PARTITIONS });
  await second.open();
  const r = await second.load(() => {});
  assert.ok(r.rekeyed > TEXT_KEYS.length * 0.9);
  await second.close();
});

test('a group the loader skips (its store is full) is still re-partitioned', async () => {
  const dir = freshDir();
  await writeOldDirectory(dir, 'a');
  await writeOldDirectory(dir, 'b');
  const s = new LevelStorage({ path: dir, partitionOf, partitionCount: PARTITIONS });
  await s.open();
  let handed = 0;
  const r = await s.load((rec) => {
    handed++;
    return rec.group === 'a' ? 'skip-group' : undefined;
  });
  assert.equal(handed, 1 + TEXT_KEYS.length, 'one record of a, every record of b');
  assert.ok(r.rekeyed > 2 * TEXT_KEYS.length * 0.9, `${r.rekeyed} moved`);
  for (const text of TEXT_KEYS) assert.ok((await s.get('a', bytes(text))) !== undefined, `a/${text} where the slot puts it`);
  await s.close();
});

test('a directory placed by a scheme this build does not know is refused with one line', async () => {
  const dir = freshDir();
  const db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  await db.put(metaKey('format'), Buffer.from('1'));
  await db.put(metaKey('placement'), Buffer.from('rendezvous'));
  await db.close();
  const s = new LevelStorage({ path: dir, partitionOf, partitionCount: PARTITIONS });
  await assert.rejects(s.open(), (e: unknown) => {
    assert.ok(isStorageError(e) && e.code === 'STORAGE_PLACEMENT');
    assert.ok(!e.message.includes('\n'));
    assert.match(e.message, new RegExp(`data in ${dir} was placed by "rendezvous".*start with an empty storage.path`));
    return true;
  });
  assert.equal(s.isOpen(), false);
});

test('old data without a way to place keys (no partitionOf) is refused rather than left misplaced', async () => {
  const dir = freshDir();
  await writeOldDirectory(dir);
  const s = new LevelStorage({ path: dir });
  await assert.rejects(s.open(), (e: unknown) => isStorageError(e) && e.code === 'STORAGE_PLACEMENT' && e.message.includes(`"${LEGACY_PLACEMENT}"`));
});
