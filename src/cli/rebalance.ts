/**
 * `jincache rebalance [--strategy S] [--dry-run] [--node URL] [--json]`: ask a node to plan (and,
 * unless --dry-run, apply) a rebalance, then print the plan: the moves and each node's expected
 * load before and after.
 */
import { nodeAuth, nodeRequest, refusal, type NodeAuthFlags, type NodeResponse } from './request.ts';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from './exit.ts';
import { renderTable } from './status.ts';

export interface RebalanceFlags extends NodeAuthFlags {
  node: string;
  strategy?: string;
  dryRun?: boolean;
  json?: boolean;
}

interface Answer {
  strategy: string;
  dryRun: boolean;
  applied: boolean;
  ringVersion: number;
  moves: { partition: number; from: string; to: string }[];
  weights?: Record<string, number>;
  before: Record<string, number>;
  after: Record<string, number>;
  mean: number;
  withinThreshold: boolean;
  reason?: string;
}

export function formatPlan(a: Answer): string {
  const ids = Object.keys(a.before).sort();
  const rows = ids.map((id) => [
    id,
    (a.before[id] ?? 0).toFixed(3),
    (a.after[id] ?? 0).toFixed(3),
    String(a.moves.filter((m) => m.from === id).length),
    String(a.moves.filter((m) => m.to === id).length),
    a.weights?.[id] === undefined ? '-' : a.weights[id]!.toFixed(3),
  ]);
  const verdict = a.dryRun
    ? 'dry run: nothing changed'
    : a.applied
      ? `applied as partition table v${a.ringVersion}`
      : `not applied${a.reason ? `: ${a.reason}` : ''}`;
  return [
    `strategy ${a.strategy} · ${a.moves.length} partition moves · mean load ${a.mean.toFixed(3)} · ${a.withinThreshold ? 'within threshold after' : 'still outside threshold after'}`,
    verdict,
    '',
    renderTable(['NODE', 'LOAD NOW', 'LOAD AFTER', 'GIVES', 'TAKES', 'WEIGHT'], rows),
    '',
  ].join('\n');
}

export async function runRebalance(flags: RebalanceFlags): Promise<number> {
  const url = new URL('/cluster/rebalance', flags.node);
  let res: NodeResponse;
  try {
    res = await nodeRequest(url, {
      method: 'POST',
      body: { ...(flags.strategy ? { strategy: flags.strategy } : {}), dryRun: flags.dryRun === true },
      timeoutMs: 30_000,
      auth: nodeAuth(flags),
    });
  } catch (e) {
    process.stderr.write(`jincache rebalance: cannot reach ${url.origin}: ${(e as Error).message}\n`);
    return EXIT_FAILURE;
  }
  if (!res.ok) {
    process.stderr.write(`jincache rebalance: ${refusal(res, url)}\n`);
    return res.status === 400 ? EXIT_USAGE : EXIT_FAILURE;
  }
  const body = res.json<Answer>();
  process.stdout.write(flags.json ? `${JSON.stringify(body, null, 2)}\n` : formatPlan(body));
  return EXIT_OK;
}
