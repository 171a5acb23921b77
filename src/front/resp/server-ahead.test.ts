// A connection runs the commands after a write this node coordinates while that write waits for
// its acknowledgment (RespConnection.ahead): over a real socket, with a door whose writes of
// `near:` keys take effect at once and are acknowledged when the test says, and whose writes of
// `far:` keys (sent to another coordinator) take effect only then.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { GetResult } from '../../cluster/kv.ts';
import { decideWrite, type WriteOp, type WriteResult } from '../../cache/ops.ts';
import { LiveConfig } from '../../config/live.ts';
import { parseConfig } from '../../config/schema.ts';
import { Metrics } from '../../observe/metrics.ts';
import { JincacheError } from '../../core/errors.ts';
import { FrontDoor, type DoorKv } from '../door.ts';
import { RespServer } from './server.ts';

/** What a test releases: one write's acknowledgment (or its failure). */
interface Ack {
  key: string;
  release: (failure?: Error) => void;
}

class AckKv implements DoorKv {
  readonly data = new Map<string, Buffer>();
  /** Every call in the order it was made: `write k`, `get k`. */
  readonly calls: string[] = [];
  readonly acks: Ack[] = [];
  getLocal = (_g: string, key: string): GetResult | undefined => {
    if (!key.startsWith('near:')) return undefined;
    this.calls.push(`get ${key}`);
    const v = this.data.get(key);
    return v === undefined ? undefined : { value: v, expiresAt: 0, source: 'hit' };
  };
  writeLocal: DoorKv['writeLocal'] = () => undefined;
  appliesHere = (key: string): boolean => key.startsWith('near:');
  async get(_g: string, key: string): Promise<GetResult | null> {
    this.calls.push(`get ${key}`);
    const v = this.data.get(key);
    return v === undefined ? null : { value: v, expiresAt: 0, source: 'hit' };
  }
  write(_g: string, key: string, op: WriteOp): Promise<WriteResult> {
    this.calls.push(`write ${key}`);
    const apply = (): WriteResult => {
      const v = this.data.get(key);
      const d = decideWrite(v === undefined ? undefined : { value: v, expiresAt: 0, version: 1, partition: 0, type: 0 }, op, 0);
      if (d.change === 'value') this.data.set(key, d.value);
      return d.result;
    };
    // near: in effect now, acknowledged later; far: in effect once released
    const now = key.startsWith('near:') ? apply() : undefined;
    return new Promise((resolve, reject) => {
      this.acks.push({ key, release: (failure) => (failure !== undefined ? reject(failure) : resolve(now ?? apply())) });
    });
  }
  async count(): Promise<number> {
    return this.data.size;
  }
}

const kv = new AckKv();
const config = parseConfig({ cache: { group_name: 'g' } });
const server = new RespServer({
  door: new FrontDoor({ kv, live: new LiveConfig(config), metrics: new Metrics({ defaultMetrics: false }), clock: { now: () => Date.now() } }),
  port: 0,
});
let port = 0;

before(async () => {
  await server.start();
  port = server.address().port;
});
after(() => server.stop());

function command(...args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

/** A client socket and everything it has received so far. */
async function connect(): Promise<{ socket: net.Socket; received: () => string }> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let got = '';
  socket.on('data', (c: Buffer) => (got += c.toString('latin1')));
  return { socket, received: () => got };
}

/** Let the server read, run and write (a few turns of the event loop on real sockets). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 10));
}

function reset(): void {
  kv.data.clear();
  kv.calls.length = 0;
  kv.acks.length = 0;
}

test('the commands after a write applied here run before it is acknowledged; the replies keep their order', async () => {
  reset();
  const c = await connect();
  c.socket.write(command('SET', 'near:a', '1') + command('SET', 'near:b', '2') + command('GET', 'near:a'));
  await settle();
  assert.deepEqual(kv.calls, ['write near:a', 'write near:b', 'get near:a'], 'all three ran while the first write waits');
  assert.equal(c.received(), '', 'no reply before the first write is acknowledged');
  kv.acks[1]!.release();
  await settle();
  assert.equal(c.received(), '', 'the second acknowledgment does not overtake the first');
  kv.acks[0]!.release();
  await settle();
  assert.equal(c.received(), '+OK\r\n+OK\r\n$1\r\n1\r\n');
  c.socket.destroy();
});

test('a command that would not take effect at once waits for the acknowledgments before it runs', async () => {
  reset();
  const c = await connect();
  c.socket.write(command('SET', 'near:a', '1') + command('SET', 'far:x', '2'));
  await settle();
  assert.deepEqual(kv.calls, ['write near:a'], 'the write to another coordinator has not been sent');
  // input read while it waits (the parser's views of the waiting command end then)
  c.socket.write(command('INCR', 'near:n'));
  await settle();
  kv.acks[0]!.release();
  await settle();
  assert.deepEqual(kv.calls, ['write near:a', 'write far:x'], 'sent once the write before it was acknowledged');
  assert.equal(c.received(), '+OK\r\n');
  kv.acks[1]!.release();
  await settle();
  assert.match(c.received(), /^\+OK\r\n\+OK\r\n/, 'INCR ran after both');
  c.socket.destroy();
});

test('a write whose acknowledgment fails answers its error in its place', async () => {
  reset();
  const c = await connect();
  c.socket.write(command('SET', 'near:a', '1') + command('SET', 'near:b', '2') + command('GET', 'far:z'));
  await settle();
  kv.acks[0]!.release(new JincacheError('TIMEOUT', 'the disk of this node is behind'));
  kv.acks[1]!.release();
  await settle();
  assert.deepEqual(kv.calls, ['write near:a', 'write near:b', 'get far:z']);
  assert.equal(c.received(), '-TRYAGAIN the disk of this node is behind\r\n+OK\r\n$-1\r\n');
  c.socket.destroy();
});
