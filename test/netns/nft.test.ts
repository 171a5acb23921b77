/** Fault plans and their nft text, and the lab's address arithmetic (pure; no namespace needed). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isolate, loss, oneWay, plan, renderHeal, renderHost, split, TABLE } from './nft.ts';
import { overlaps, parseCidr, pickSubnet } from './lab.ts';

const addrOf = new Map([
  ['n1', '10.1.1.11'],
  ['n2', '10.1.1.12'],
  ['n3', '10.1.1.13'],
  ['e1', '10.1.1.10'],
]);

test('isolating a host drops its packets both ways, on both sides', () => {
  const p = plan(isolate('n2', ['n1', 'n3']), addrOf);
  assert.deepEqual([...p.get('n2')!.inDrop].sort(), ['10.1.1.11', '10.1.1.13']);
  assert.deepEqual([...p.get('n2')!.outDrop].sort(), ['10.1.1.11', '10.1.1.13']);
  assert.deepEqual([...p.get('n1')!.inDrop], ['10.1.1.12']);
  assert.deepEqual([...p.get('n1')!.outDrop], ['10.1.1.12']);
  // n1 and n3 still talk to each other
  assert.ok(!p.get('n1')!.outDrop.has('10.1.1.13'));
  assert.equal(p.get('e1'), undefined);
});

test('a one-way drop only touches one direction', () => {
  const p = plan(oneWay(['n1'], ['n2']), addrOf);
  assert.deepEqual([...p.get('n1')!.outDrop], ['10.1.1.12']);
  assert.equal(p.get('n1')!.inDrop.size, 0);
  assert.deepEqual([...p.get('n2')!.inDrop], ['10.1.1.11']);
  assert.equal(p.get('n2')!.outDrop.size, 0);
});

test('a split is the union of drops between its sides, and never within a side', () => {
  const p = plan(split(['n1', 'e1'], ['n2', 'n3']), addrOf);
  assert.deepEqual([...p.get('n1')!.inDrop].sort(), ['10.1.1.12', '10.1.1.13']);
  assert.deepEqual([...p.get('e1')!.outDrop].sort(), ['10.1.1.12', '10.1.1.13']);
  assert.deepEqual([...p.get('n3')!.inDrop].sort(), ['10.1.1.10', '10.1.1.11']);
  assert.ok(!p.get('n2')!.inDrop.has('10.1.1.13'));
});

test('loss is applied on the receiving side only, so it does not compound', () => {
  const p = plan(loss('n1', ['n2'], 20), addrOf);
  assert.deepEqual([...p.get('n1')!.inLoss.get(20)!], ['10.1.1.12']);
  assert.deepEqual([...p.get('n2')!.inLoss.get(20)!], ['10.1.1.11']);
  assert.equal(p.get('n1')!.outDrop.size, 0);
  const text = renderHost(p.get('n1')!);
  assert.match(text, /ip saddr \{ 10\.1\.1\.12 \} numgen random mod 100 < 20 drop/);
});

test('the rendered script replaces the whole table atomically', () => {
  const text = renderHost(plan(isolate('n2', ['n1']), addrOf).get('n2')!);
  const lines = text.split('\n');
  assert.equal(lines[0], `table inet ${TABLE}`);
  assert.equal(lines[1], `delete table inet ${TABLE}`);
  assert.match(text, /chain input \{\n\s+type filter hook input priority 0; policy accept;\n\s+ip saddr \{ 10\.1\.1\.11 \} drop\n/);
  assert.match(text, /chain output \{\n\s+type filter hook output priority 0; policy accept;\n\s+ip daddr \{ 10\.1\.1\.11 \} drop\n/);
  assert.equal(renderHeal(), `table inet ${TABLE}\ndelete table inet ${TABLE}\n`);
});

test('bad plans name the bad value', () => {
  assert.throws(() => plan(isolate('n9', ['n1']), addrOf), /unknown host "n9"/);
  assert.throws(() => plan(loss('n1', ['n2'], 0), addrOf), /integer in 1\.\.100, got 0/);
  assert.throws(() => plan(loss('n1', ['n2'], 12.5), addrOf), /got 12\.5/);
});

test('CIDR overlap', () => {
  assert.deepEqual(parseCidr('10.1.2.3/24'), [((10 << 24) | (1 << 16) | (2 << 8)) >>> 0, 24]);
  assert.ok(overlaps('10.0.0.0/8', '10.200.3.0/24'));
  assert.ok(overlaps('10.200.3.77', '10.200.3.0/24'));
  assert.ok(!overlaps('10.200.4.0/24', '10.200.3.0/24'));
  assert.ok(overlaps('0.0.0.0/0', '192.0.2.0/24'));
  assert.throws(() => parseCidr('10.1.2/24'), /not an IPv4 address/);
});

test('pickSubnet never returns a subnet that overlaps a used network', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 200, max: 249 }), fc.integer({ min: 0, max: 255 })), { maxLength: 200 }), fc.integer(), (used, seed) => {
      let x = seed >>> 0;
      const random = (): number => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32);
      const nets = used.map(([a, b]) => `10.${a}.${b}.0/24`);
      const s = pickSubnet([...nets, 'default', '192.0.2.0/24'], random);
      assert.ok(!nets.some((n) => overlaps(n, `${s}.0/24`)), s);
    }),
  );
  assert.throws(() => pickSubnet(['10.0.0.0/8']), /no free/);
});
