// Redis protocol with security on (issue 14): redis-benchmark GET/SET at pipeline 16 against
// jincache and redis-server, each configured the same way, in three modes measured in this run:
// plain, with a password (AUTH), and with TLS (certificates made by openssl here). The figure of
// each secure mode is its ratio (jincache / redis-server); its target is 0.8x of the plain
// ratio measured in the same run: turning security on may cost jincache at most a fifth more of
// its standing against Redis than it costs Redis.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { Figure } from '../lib/figure.ts';
import { figure, median } from '../lib/figure.ts';
import { ensureRedis } from '../lib/deps.ts';
import { requireJincache, startNode } from '../lib/jincache.ts';
import { freePorts, startProcess, waitForPort, type Proc } from '../lib/procs.ts';
import type { ScenarioOptions } from '../lib/scenario.ts';
import { makeCerts } from '../../test/helpers/certs.ts';
import { redisBenchmark, type BenchLine } from './redis.ts';

const PIPELINE = 16;
const QUICK = { n: { ours: 100_000, peer: 300_000 }, rounds: 2 };
const FULL = { n: { ours: 300_000, peer: 1_000_000 }, rounds: 4 };
const PASSWORD = 'bench-password';

type ModeName = 'plain' | 'auth' | 'tls';

export async function prepare(opts: ScenarioOptions): Promise<void> {
  ensureRedis(opts.log);
}

export async function run(opts: ScenarioOptions): Promise<Figure[]> {
  const log = opts.log ?? (() => {});
  requireJincache();
  ensureRedis(log);
  const mode = opts.quick ? QUICK : FULL;
  const certs = makeCerts(['server']);
  const leaf = certs.leaf('server');
  const dir = mkdtempSync(join(tmpdir(), 'jincache-bench-secure-'));
  const started: Proc[] = [];
  const ratios = new Map<ModeName, number[]>();
  const rps = new Map<ModeName, { ours: number[]; peer: number[] }>();
  try {
    for (const m of ['plain', 'auth', 'tls'] as const) {
      opts.signal?.throwIfAborted();
      const [redisPort, nodePort, respPort] = (await freePorts(3)) as [number, number, number];
      const redisArgs = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
      const cfg: Record<string, unknown> = { log: { level: 'warn' } };
      let clientArgs: string[] = [];
      if (m === 'auth') {
        redisArgs.push('--port', String(redisPort), '--requirepass', PASSWORD);
        cfg.auth = { requirepass: PASSWORD };
        clientArgs = ['-a', PASSWORD];
      } else if (m === 'tls') {
        redisArgs.push('--port', '0', '--tls-port', String(redisPort), '--tls-cert-file', leaf.cert, '--tls-key-file', leaf.key, '--tls-ca-cert-file', certs.ca, '--tls-auth-clients', 'no');
        cfg.tls = { cert_file: leaf.cert, key_file: leaf.key };
        clientArgs = ['--tls', '--cacert', certs.ca];
      } else {
        redisArgs.push('--port', String(redisPort));
      }
      const file = join(dir, `${m}.yaml`);
      writeFileSync(file, stringify(cfg));
      const redis = startProcess({ name: `redis-server-${m}`, command: 'redis-server', args: redisArgs, cwd: tmpdir() });
      started.push(redis);
      await waitForPort(redisPort, { proc: redis });
      const node = await startNode({ id: 'n1', port: nodePort, respPort }, { readyTimeoutMs: 15_000, extraArgs: ['--config', file], https: m === 'tls' });
      started.push(node.proc);
      const r: { ours: number[]; peer: number[] } = { ours: [], peer: [] };
      const ratio: number[] = [];
      for (let i = 0; i < mode.rounds; i++) {
        opts.signal?.throwIfAborted();
        const ours = await redisBenchmark(respPort, mode.n.ours, PIPELINE, clientArgs);
        const peer = await redisBenchmark(redisPort, mode.n.peer, PIPELINE, clientArgs);
        const both = (x: Map<string, BenchLine>) => (x.get('GET')!.rps + x.get('SET')!.rps) / 2;
        r.ours.push(both(ours));
        r.peer.push(both(peer));
        ratio.push(both(ours) / both(peer));
        log(`  ${m} round ${i + 1}/${mode.rounds}: jincache ${Math.round(both(ours))} | redis ${Math.round(both(peer))} req/s (GET+SET mean)`);
      }
      rps.set(m, r);
      ratios.set(m, ratio);
      await Promise.all(started.splice(0).map((p) => p.stop()));
    }
    const plain = median(ratios.get('plain')!);
    return (['plain', 'auth', 'tls'] as const).map((m) =>
      figure({
        name: `redis.sec.${m}.p${PIPELINE}.rps`,
        unit: 'req/s',
        ours: median(rps.get(m)!.ours),
        peer: median(rps.get(m)!.peer),
        ratio: median(ratios.get(m)!),
        ...(m === 'plain' ? {} : { target: { kind: 'ratio>=' as const, value: Math.round(0.8 * plain * 1000) / 1000 } }),
      }),
    );
  } finally {
    await Promise.all(started.map((p) => p.stop()));
    certs.remove();
  }
}
