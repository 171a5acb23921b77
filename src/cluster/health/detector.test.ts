import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import type { NodeInfo } from '../../core/types.ts';
import { createLogger } from '../../observe/logger.ts';
import { PeerServer } from '../../peer/server.ts';
import { FakeNetwork } from '../../peer/testing.ts';
import type { Members } from '../membership.ts';
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
