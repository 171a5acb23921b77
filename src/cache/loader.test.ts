import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { percentEncodeKey, httpLoader, isLoaderError, LoaderError } from './loader.ts';
import { keyFromText } from '../core/keys.ts';

// A real origin on loopback, on a port of its own.
const seen: string[] = [];
let base = '';
const server = http.createServer((req, res) => {
  const url = req.url ?? '';
  seen.push(url);
  if (url.startsWith('/v/')) {
    res.end(`value:${decodeURIComponent(url.slice(3))}`);
  } else if (url.startsWith('/q?')) {
    res.end(new URL(url, 'http://x').searchParams.get('k') ?? '');
  } else if (url === '/missing') {
    res.statusCode = 404;
    res.end('no such key');
  } else if (url === '/broken') {
    res.statusCode = 500;
    res.end('boom');
  } else if (url === '/big-declared') {
    res.end(Buffer.alloc(2000, 1)); // content-length: 2000
  } else if (url === '/big-chunked') {
    // no content-length: the limit must be enforced while reading
    for (let i = 0; i < 20; i++) res.write(Buffer.alloc(100, 2));
    res.end();
  } else if (url === '/exact') {
    res.end(Buffer.alloc(1000, 3));
  } else if (url === '/empty') {
    res.end();
  } else if (url === '/slow') {
    // never answers: the loader's deadline must fire (the socket is closed in after())
  } else {
    res.statusCode = 400;
    res.end();
  }
});

before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const live = () => new AbortController().signal;

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  assert.fail('expected a rejection');
}

test('200 gives the body; the key (a byte string) is URL-encoded into every {key}', async () => {
  const load = httpLoader(`${base}/v/{key}`);
  assert.equal((await load('plain', live()))?.toString(), 'value:plain');
  const odd = 'a/b c?d&é#';
  // keys reach loaders as byte strings: a text key's UTF-8 bytes, percent-encoded as a browser would
  assert.equal((await load(keyFromText(odd), live()))?.toString(), `value:${odd}`);
  assert.equal(seen.at(-1), `/v/${encodeURIComponent(odd)}`);
  // a binary key: every byte that is not unreserved as %XX
  assert.equal(percentEncodeKey('\u00ff\u0000a-_.~'), '%FF%00a-_.~');
  const q = httpLoader(`${base}/q?k={key}&again={key}`);
  assert.equal((await q('x&y=1', live()))?.toString(), 'x&y=1');
  assert.equal(seen.at(-1), '/q?k=x%26y%3D1&again=x%26y%3D1');
  assert.deepEqual(await httpLoader(`${base}/{key}`)('empty', live()), Buffer.alloc(0));
});

test('404 gives null', async () => {
  assert.equal(await httpLoader(`${base}/{key}`)('missing', live()), null);
});

test('other statuses are LoaderErrors with the origin status', async () => {
  const err = await rejection(httpLoader(`${base}/{key}`)('broken', live()));
  assert.ok(isLoaderError(err));
  assert.equal(err.code, 'LOADER_FAILED');
  assert.equal(err.kind, 'status');
  assert.equal(err.originStatus, 500);
});

test('bodies above maxBytes are refused, declared or streamed; exactly maxBytes is fine', async () => {
  const load = httpLoader(`${base}/{key}`, { maxBytes: 1000 });
  for (const key of ['big-declared', 'big-chunked']) {
    const err = await rejection(load(key, live()));
    assert.ok(isLoaderError(err), key);
    assert.equal(err.kind, 'too_large', key);
  }
  assert.equal((await load('exact', live()))?.length, 1000);
});

test('a silent origin times out as a LoaderError', async () => {
  const err = await rejection(httpLoader(`${base}/{key}`, { timeoutMs: 100 })('slow', live()));
  assert.ok(isLoaderError(err));
  assert.equal(err.kind, 'timeout');
});

test("the caller's abort passes its reason through, not a LoaderError", async () => {
  const ac = new AbortController();
  const p = httpLoader(`${base}/{key}`)('slow', ac.signal);
  const reason = new Error('client went away');
  ac.abort(reason);
  assert.equal(await rejection(p), reason);
});

test('an unreachable origin is a network LoaderError', async () => {
  // a port that was free a moment ago: nothing listens there
  const probe = http.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const err = await rejection(httpLoader(`http://127.0.0.1:${port}/{key}`)('k', live()));
  assert.ok(err instanceof LoaderError);
  assert.equal(err.kind, 'network');
});

test('bad templates and options are refused at construction, naming the value', () => {
  assert.throws(() => httpLoader('http://origin/no-placeholder'), /\{key\}.*no-placeholder/);
  assert.throws(() => httpLoader('ftp://origin/{key}'), /http\(s\)/);
  assert.throws(() => httpLoader('/relative/{key}'), /absolute/);
  assert.throws(() => httpLoader('http://origin/{key}', { timeoutMs: 0 }), /timeoutMs.*Got: 0/);
  assert.throws(() => httpLoader('http://origin/{key}', { maxBytes: -1 }), /maxBytes.*Got: -1/);
});
