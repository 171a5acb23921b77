import { EXIT_FAILURE, EXIT_OK } from './exit.ts';

import { nodeAuth, nodeRequest, refusal, type NodeAuthFlags, type NodeResponse } from './request.ts';

export interface StatusFlags extends NodeAuthFlags {
  node: string;
  json?: boolean;
}

interface ClusterNode {
  id: string;
  address: string;
  status: string;
  zone?: string | null;
  health?: string;
  weight?: number;
  loadScore?: number;
  partitionsOwned?: number;
  partitionsReplica?: number;
}

interface ClusterInfo {
  self: string;
  ringVersion: number;
  leader: string | null;
  partitionCount: number;
  replicationFactor: number;
  nodes: ClusterNode[];
  partitions?: { underReplicated?: number };
}

/** Fetch a node's /cluster summary; throws with a readable message when unreachable. */
export async function fetchCluster(node: string, auth: NodeAuthFlags = {}): Promise<ClusterInfo> {
  const url = new URL('/cluster', node);
  let res: NodeResponse;
  try {
    res = await nodeRequest(url, { timeoutMs: 5000, auth: nodeAuth(auth) });
  } catch (e) {
    throw new Error(`cannot reach ${url.origin}: ${(e as Error).message}`);
  }
  if (!res.ok) throw new Error(refusal(res, url));
  return res.json<ClusterInfo>();
}

/** Render rows as an aligned text table. */
export function renderTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function formatStatus(info: ClusterInfo): string {
  // a zone column only for clusters that use zones
  const zoned = info.nodes.some((n) => typeof n.zone === 'string');
  const rows = info.nodes.map((n) => [
    n.id + (n.id === info.leader ? ' *' : ''),
    n.address,
    ...(zoned ? [n.zone ?? '-'] : []),
    n.status,
    n.health ?? '-',
    n.weight === undefined ? '-' : n.weight.toFixed(2),
    n.loadScore === undefined ? '-' : n.loadScore.toFixed(2),
    String(n.partitionsOwned ?? 0),
    String(n.partitionsReplica ?? 0),
  ]);
  const head = `ring version ${info.ringVersion} · ${info.partitionCount} partitions · replication factor ${info.replicationFactor}` +
    (info.partitions?.underReplicated ? ` · ${info.partitions.underReplicated} under-replicated` : '');
  const zones = new Set(info.nodes.map((n) => n.zone).filter((z) => typeof z === 'string')).size;
  return `${head}${zoned ? ` · ${zones} zones` : ''}\n\n${renderTable(['NODE', 'ADDRESS', ...(zoned ? ['ZONE'] : []), 'STATUS', 'HEALTH', 'WEIGHT', 'LOAD', 'PARTITIONS', 'REPLICAS'], rows)}\n`;
}

export async function runStatus(flags: StatusFlags): Promise<number> {
  let info: ClusterInfo;
  try {
    info = await fetchCluster(flags.node, flags);
  } catch (e) {
    process.stderr.write(`jincache status: ${(e as Error).message}\n`);
    return EXIT_FAILURE;
  }
  process.stdout.write(flags.json ? `${JSON.stringify(info, null, 2)}\n` : formatStatus(info));
  return EXIT_OK;
}
