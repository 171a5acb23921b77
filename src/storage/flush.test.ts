// FLUSHALL on disk, on a real LevelDB in a temp dir: the group's records go, its floor stays
// (meta 'floors'), and after a restart the store refuses what the flush dropped even when the
// records were still on disk (a crash between the floor and the removal).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GroupStore } from '../cache/store.ts';
import { LevelStorage } from './leveldb.ts';
import { Persister } from './persist.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const partitionOf = (): number => 0;
const open = async (dir: string): Promise<LevelStorage> => {
  const s = new LevelStorage({ path: dir, partitionOf, partitionCount: 16 });
  await s.open();
  return s;
};
const value = (s: string) => ({ value: Buffer.from(s), version: 0, expiresAt: 0 });

test('FLUSHALL: the records go, the floor stays, and a restart refuses what the flush dropped', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'jincache-flush-'));
  dirs.push(dir);
  let disk = await open(dir);
  let store = new GroupStore({ name: 'g', maxBytes: 1 << 20, partitionOf, clock: { now: () => Date.now() } });
  let p = new Persister({ storage: disk, flushIntervalMs: 1 });
  p.attach('g', store);
  store.apply('a', { ...value('1'), version: 10 });
  store.apply('b', { ...value('2'), version: 11 });
  await p.flush();
  assert.ok(await disk.get('g', 'a'));
  store.flush(20);
  store.apply('c', { ...value('3'), version: 21 }); // a write after the flush stays
  await p.flush();
  assert.equal(await disk.get('g', 'a'), undefined, 'flushed records removed from disk');
  assert.deepEqual([...(await disk.floors())], [['g', 20]]);
  // a record under the floor that survived on disk (a crash between floor and removal)
  await disk.writeBatch([{ group: 'g', key: 'zombie', partition: 0, value: Buffer.from('x'), version: 15, expiresAt: 0 }]);
  await p.stop();
  await disk.close();

  disk = await open(dir);
  store = new GroupStore({ name: 'g', maxBytes: 1 << 20, partitionOf, clock: { now: () => Date.now() } });
  p = new Persister({ storage: disk, flushIntervalMs: 1 });
  p.attach('g', store);
  await p.load();
  assert.equal(store.flushFloor, 20);
  assert.equal(store.get('zombie'), undefined, 'the floor refused it');
  assert.equal(store.get('c')?.value?.toString(), '3');
  assert.equal(store.apply('late', { ...value('old replica'), version: 19 }), false, 'a late write under the floor is refused');
  await p.stop();
  await disk.close();
});
