import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { freePort, freePorts, isProcError, livePids, startProcess, stopAll, waitForHttp, waitForPort } from './procs.ts';

const idle = ['-e', 'process.stdout.write("up\\n"); setInterval(() => {}, 1000)'];

test('a started process is tracked by PID, logs to a file, and stops', async () => {
  const p = startProcess({ name: 'idle', command: process.execPath, args: idle });
  assert.ok(livePids().includes(p.pid));
  for (let i = 0; i < 100 && !/up/.test(p.tail()); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(p.tail(), /up/);
  assert.equal(p.alive(), true);
  await p.stop();
  assert.equal(p.alive(), false);
  assert.ok(!livePids().includes(p.pid));
});

test('stop escalates to SIGKILL when SIGTERM is ignored', async () => {
  const p = startProcess({ name: 'stubborn', command: process.execPath, args: ['-e', 'process.on("SIGTERM", () => {}); setInterval(() => {}, 1000)'] });
  await new Promise((r) => setTimeout(r, 300)); // let it install the handler
  const t0 = Date.now();
  await p.stop(300);
  assert.equal((await p.exited).signal, 'SIGKILL');
  assert.ok(Date.now() - t0 < 3000);
});

test('waiting fails at once, with the output, when the process exits', async () => {
  const p = startProcess({ name: 'dies', command: process.execPath, args: ['-e', 'console.error("boom"); process.exit(3)'] });
  await assert.rejects(waitForPort(1, { proc: p, timeoutMs: 5000 }), (e) => isProcError(e) && /code 3/.test(e.message) && /boom/.test(e.message));
});

test('free ports, waitForPort and waitForHttp', async () => {
  const ports = await freePorts(3);
  assert.equal(new Set(ports).size, 3);
  const port = await freePort();
  await assert.rejects(waitForPort(port, { timeoutMs: 200 }), isProcError);
  const srv = createServer((_, res) => res.writeHead(204).end());
  await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
  try {
    await waitForPort(port, { timeoutMs: 2000 });
    await waitForHttp(`http://127.0.0.1:${port}/`, { status: 204, timeoutMs: 2000 });
  } finally {
    srv.close();
    srv.closeAllConnections();
  }
});

test('stopAll leaves nothing running', async () => {
  startProcess({ name: 'a', command: process.execPath, args: idle });
  startProcess({ name: 'b', command: process.execPath, args: idle });
  await stopAll();
  assert.deepEqual(livePids(), []);
});
