/**
 * The failure detector's I/O half against in-process peers (FakeNetwork): how it reports a peer
 * that is starting, what it concludes from timeouts, and that a timeout this node's own pause
 * explains counts for nothing.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { JincacheError } from '../../core/errors.ts';
import type { NodeInfo } from '../../core/types.ts';
import { createLogger } from '../../observe/logger.ts';
import { Ping, Record } from '../../peer/messages.ts';
import { PeerServer } from '../../peer/server.ts';
import { FakeNetwork } from '../../peer/testing.ts';
import type { Members } from '../membership.ts';
import { Peers } from '../peers.ts';
import { FailureDetector } from './detector.ts';

const info = (id: string): NodeInfo => ({ id, address: `mem://${id}`, status: 'active', last_seen: 0 });

function members(self: string, all: NodeInfo[]): Members {
  return { self, member: (id) => all.find((m) => m.id === id), list: () => all, onChange: () => () => {} };
}

/** Let the pings in flight through the fake network (a few turns of the event loop). */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
}

test('a peer that never answered is starting, not failing: no WARN and starting=true until its first answer', async () => {
  let now = 1_000_000;
  const clock = { now: () => now };
  const lines: { level: number; msg: string }[] = [];
  const logger = createLogger({
    pretty: false,
    level: 'debug',
    destination: new Writable({
      write(chunk, _enc, done) {
        for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
        done();
      },
    }),
  });
  const net = new FakeNetwork();
  const all = [info('a'), info('b')];
  const serverB = new PeerServer();
  new FailureDetector({ self: 'b', clock, client: net, members: members('b', all), server: serverB });
  net.attach('mem://b', serverB);
  const transitions: string[] = [];
  const detector = new FailureDetector({
    self: 'a',
    clock,
    client: net,
    members: members('a', all),
    server: new PeerServer(),
    heartbeatIntervalMs: 1000,
    // breakers run on real time: keep them closed, this test is about the classifier's reports
    breaker: { minimumRps: 1e6, consecutiveFailures: 1e6 },
    logger,
    onTransition: (id, from, to, starting) => transitions.push(`${id} ${from}->${to}${starting ? ' (starting)' : ''}`),
  });
  detector.setMembers(all);
  const beat = async (): Promise<void> => {
    now += 1000;
    detector.heartbeat();
    await settle();
  };

  // b is still starting: its port refuses
  net.down.add('mem://b');
  await beat();
  await beat();
  // it starts
  net.down.delete('mem://b');
  await beat();
  assert.deepEqual(transitions, ['b healthy->down (starting)', 'b down->healthy (starting)']);
  assert.deepEqual(lines.filter((l) => l.level >= 40), [], 'no WARN for a peer that was starting');
  assert.ok(!lines.some((l) => l.msg === 'peer health changed'), 'nor an info line');

  // now it has answered: losing it is a failure, and coming back a recovery
  net.down.add('mem://b');
  await beat();
  net.down.delete('mem://b');
  await beat();
  await beat();
  assert.deepEqual(transitions.slice(2), ['b healthy->down', 'b down->healthy']);
  const changed = lines.filter((l) => l.msg === 'peer health changed').map((l) => l.level);
  assert.deepEqual(changed, [40, 30], 'a WARN when it went down, an info line when it came back');
});

function pair(stalledSince?: (t: number) => boolean) {
  const net = new FakeNetwork();
  const infos: NodeInfo[] = ['a', 'b'].map((id) => ({ id, address: id, status: 'active', last_seen: 0 }));
  const members: Members = { self: 'a', member: (id) => infos.find((m) => m.id === id), list: () => infos, onChange: () => () => {} };
  const server = new PeerServer();
  net.attach('a', server);
  const remote = new PeerServer();
  new FailureDetector({ self: 'b', clock: { now: () => Date.now() }, client: net, members: { ...members, self: 'b' }, server: remote });
  net.attach('b', remote);
  const detector = new FailureDetector({ self: 'a', clock: { now: () => Date.now() }, client: net, members, server, pingTimeoutMs: 20, ...(stalledSince !== undefined ? { stalledSince } : {}) });
  detector.setMembers(infos);
  /** One request to b that times out (b hangs), through the detector as the router sends it. */
  const timeout = (): Promise<unknown> => detector.call('b', () => net.call(Ping, 'b', undefined, { from: 'a', deadline: Date.now() + 20 })).catch((e: unknown) => e);
  const peers = new Peers({ client: net, members, tableVersion: () => 1, breakers: detector });
  return { net, detector, timeout, remote, peers };
}

describe('FailureDetector', () => {
  test('timeouts in a row make a peer unusable (suspected, breaker open)', async () => {
    const { net, detector, timeout } = pair(() => false);
    net.hung.add('b');
    for (let i = 0; i < 3; i++) assert.ok((await timeout()) instanceof JincacheError);
    assert.equal(detector.usable('b'), false);
    assert.equal(detector.health('b'), 'suspected');
  });

  test('a call that timed out across this node\'s own pause is not held against the peer', async () => {
    // this node was stopped while the calls were in flight: every one of them times out
    const { net, detector, timeout } = pair(() => true);
    net.hung.add('b');
    for (let i = 0; i < 3; i++) {
      const e = await timeout();
      assert.ok(e instanceof JincacheError && e.code === 'TIMEOUT', 'the caller still gets the timeout');
    }
    assert.equal(detector.health('b'), 'healthy', 'no failure counted');
    assert.equal(detector.breaker('b'), 'closed');
    assert.equal(detector.usable('b'), true, 'right after the pause the peer is still where writes and reads go');
  });

  test('a request read late (its deadline passed while this node was paused) is not sent, and not held against the peer', async () => {
    const { net, detector, peers } = pair(() => false);
    net.hung.add('b'); // sent, each would time out at once
    const codes: string[] = [];
    for (let i = 0; i < 3; i++) await peers.call(Record, 'b', { group: 'g', key: 'k' }, Date.now() - 1).catch((e: JincacheError) => codes.push(e.code));
    assert.deepEqual(codes, ['TIMEOUT', 'TIMEOUT', 'TIMEOUT']);
    assert.equal(net.calls.length, 0, 'nothing sent');
    assert.equal(detector.usable('b'), true);
  });

  test('a peer that refuses because it does not trust its copy (NOT_SERVING) is up: still usable, so writes are replicated to it rather than hinted', async () => {
    const { detector, peers, remote } = pair(() => false);
    remote.handle(Record, () => {
      throw new JincacheError('NOT_SERVING', 'this node is recovering after a pause: its copy may lack writes');
    });
    const codes: string[] = [];
    for (let i = 0; i < 3; i++) await peers.call(Record, 'b', { group: 'g', key: 'k' }, Date.now() + 100).catch((e: JincacheError) => codes.push(e.code));
    assert.deepEqual(codes, ['NOT_SERVING', 'NOT_SERVING', 'NOT_SERVING'], 'every refusal came from b: its breaker stayed closed');
    assert.equal(detector.health('b'), 'healthy');
    assert.equal(detector.breaker('b'), 'closed');
    assert.equal(detector.usable('b'), true);
  });
});

/**
 * Detectors a and b (heartbeat 500 ms, breakers kept closed) on one fake network and one clock
 * (`clock.t`, ms): both serve Ping at mem://a and mem://b.
 */
function pingPair() {
  const clock = { t: 1_000_000, now: () => clock.t };
  const net = new FakeNetwork();
  const all = [info('a'), info('b')];
  const breaker = { minimumRps: 1e6, consecutiveFailures: 1e6 };
  const detector = (self: string): FailureDetector => {
    const server = new PeerServer();
    net.attach(`mem://${self}`, server);
    const d = new FailureDetector({ self, clock, client: net, members: members(self, all), server, heartbeatIntervalMs: 500, breaker });
    d.setMembers(all);
    return d;
  };
  return { a: detector('a'), b: detector('b'), net, clock };
}

test('nextPingFrom: waits for the peer\'s next heartbeat here, at most until the deadline; at once for a peer that has not pinged lately', async () => {
  const { a, b, clock } = pingPair();

  // b never pinged a: nothing to wait for
  let done = false;
  await a.nextPingFrom('b', clock.t + 10_000).then(() => (done = true));
  assert.ok(done);

  // b pings a: a later wait ends with b's next heartbeat, not before
  b.heartbeat();
  await settle();
  clock.t += 100;
  done = false;
  const wait = a.nextPingFrom('b', clock.t + 10_000).then(() => (done = true));
  await settle();
  assert.equal(done, false, 'no heartbeat from b yet');
  clock.t += 500;
  b.heartbeat();
  await settle();
  await wait;
  assert.ok(done, 'b\'s next heartbeat was answered');

  // the deadline bounds it (real timers: a short one)
  const started = Date.now();
  await a.nextPingFrom('b', clock.t + 30);
  assert.ok(Date.now() - started >= 25, 'waited for the deadline');

  // b has not pinged for more than two intervals: at once
  clock.t += 1100;
  const t = Date.now();
  await a.nextPingFrom('b', clock.t + 10_000);
  assert.ok(Date.now() - t < 20);
});

test('nextPingFrom: a peer that turned down (no process) is not waited for, until it pings again (restarted)', async () => {
  const { a, b, net, clock } = pingPair();
  a.heartbeat();
  b.heartbeat();
  await settle();
  // b is killed: its port refuses, a sees it down
  net.down.add('mem://b');
  clock.t += 600;
  a.heartbeat();
  await settle();
  assert.equal(a.health('b'), 'down');
  assert.equal(a.isDown('b'), true);
  const t = Date.now();
  await a.nextPingFrom('b', clock.t + 10_000);
  assert.ok(Date.now() - t < 20, 'a dead peer is not waited for');
  // b restarts and pings a: it is back, a wait is for its next heartbeat again
  net.down.delete('mem://b');
  clock.t += 100;
  b.heartbeat();
  await settle();
  assert.equal(a.isDown('b'), false, 'up again from its first ping, before a pings it');
  let done = false;
  const wait = a.nextPingFrom('b', clock.t + 10_000).then(() => (done = true));
  await settle();
  assert.equal(done, false, 'waits: b pinged since it turned down');
  clock.t += 500;
  b.heartbeat();
  await settle();
  await wait;
  assert.ok(done);
});
