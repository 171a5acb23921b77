import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { createLogger, nullLogger } from './logger.ts';

/** Collects everything written to a stream; resolves after the writes queued so far have landed. */
function sink(): { stream: PassThrough; text: () => Promise<string> } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return {
    stream,
    text: async () => {
      // pino-pretty pipes through a Transform: give it a couple of turns to flush.
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      return Buffer.concat(chunks).toString('utf8');
    },
  };
}

test('JSON lines by default with nodeId and level filtering', async () => {
  const out = sink();
  const log = createLogger({ pretty: false, nodeId: 'node-7', level: 'info', destination: out.stream });
  log.debug('hidden');
  log.info({ group: 'scores' }, 'hello');
  log.error({ err: Object.assign(new Error('boom'), { code: 'E_X' }) }, 'failed');
  const lines = (await out.text()).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines.length, 2);
  const [info, error] = lines;
  assert.equal(info?.msg, 'hello');
  assert.equal(info?.nodeId, 'node-7');
  assert.equal(info?.group, 'scores');
  assert.equal(info?.level, 30);
  assert.equal(typeof info?.time, 'string');
  const err = error?.err as Record<string, unknown>;
  assert.equal(err.message, 'boom');
  assert.equal(err.code, 'E_X');
  assert.match(String(err.stack), /boom/);
});

test('pretty output is human-readable, not JSON', async () => {
  const out = sink();
  const log = createLogger({ pretty: true, nodeId: 'node-2', destination: out.stream });
  log.warn({ peer: 'node-3' }, 'peer is slow');
  const text = await out.text();
  assert.match(text, /WARN/);
  assert.match(text, /\[node-2\] peer is slow/);
  // one line per entry, the fields after the message
  assert.match(text, /\[node-2\] peer is slow \{"peer":"node-3"\}\n$/);
  assert.equal(text.trim().split('\n').length, 1);
  assert.throws(() => JSON.parse(text.trim()));
  assert.doesNotMatch(text, /\x1b\[/, 'no colour codes when writing to a caller stream');
});

test('bad level is rejected naming the value', () => {
  assert.throws(() => createLogger({ level: 'loud' }), /Got: "loud"/);
});

test('child loggers carry bindings; nullLogger is silent', async () => {
  const out = sink();
  const log = createLogger({ pretty: false, destination: out.stream }).child({ component: 'ring' });
  log.info('x');
  const line = JSON.parse((await out.text()).trim()) as Record<string, unknown>;
  assert.equal(line.component, 'ring');
  assert.equal(line.nodeId, undefined);
  assert.equal(nullLogger.isLevelEnabled('fatal'), false);
  nullLogger.error('nothing happens');
});
