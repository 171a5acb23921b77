/**
 * The project's fault proxy (test/helpers/fault-proxy.ts) as a process, to run inside a test
 * host's namespace in front of its node: this kernel has no netem, so delay and reordering come
 * from a relay on the path (NETNS-NOTES). The node advertises the relay's port to its peers, so
 * peer traffic to the node crosses the relay (and, being between host addresses, the host's nft
 * rules too); clients use the node's own port.
 *
 *   ip netns exec NS node test/netns/relay.ts --host 10.X.Y.11 --port 7001 --target 7000
 *
 * Control: one JSON FaultMode per line on stdin (e.g. {"mode":"delay","ms":200,"jitterMs":300});
 * it answers "ok" (or "error: ...") per line on stdout, and "ready" once it listens.
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { startFaultProxy, type FaultMode } from '../helpers/fault-proxy.ts';

const { values } = parseArgs({ options: { host: { type: 'string' }, port: { type: 'string' }, target: { type: 'string' } } });
const host = values.host;
const port = Number(values.port);
const target = Number(values.target);
if (host === undefined || !(port > 0) || !(target > 0)) {
  process.stderr.write('usage: relay.ts --host IP --port N --target N\n');
  process.exit(2);
}

const proxy = await startFaultProxy({ host, port, target });
process.stdout.write('ready\n');

const MODES = new Set(['pass', 'drop', 'delay', 'reset']);
createInterface({ input: process.stdin }).on('line', (line) => {
  try {
    const m = JSON.parse(line) as FaultMode;
    if (!MODES.has(m.mode)) throw new Error(`unknown mode ${JSON.stringify(m.mode)}`);
    if (m.mode === 'delay' && !(m.ms >= 0 && (m.jitterMs ?? 0) >= 0)) throw new Error(`delay needs ms >= 0 and jitterMs >= 0, got ${line}`);
    proxy.set(m);
    process.stdout.write('ok\n');
  } catch (e) {
    process.stdout.write(`error: ${(e as Error).message}\n`);
  }
});
// the harness closing stdin (or dying) ends the relay
process.stdin.on('end', () => void proxy.stop().then(() => process.exit(0)));
