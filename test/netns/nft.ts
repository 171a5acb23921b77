/**
 * Network faults as nftables rulesets, one per test host (pure: text in, text out).
 *
 * Every fault is a set of packet drops the kernel applies inside a host's namespace, in a table of
 * our own (`inet jincache_fault`) with an input and an output chain:
 *
 *   drop     packets from host A to host B never arrive (A's output and B's input both drop
 *            them, so either side alone would be enough; both makes a half-applied plan harmless)
 *   loss     the same, for `percent` of the packets: `numgen random mod 100 < N drop` (100: a drop)
 *
 * The harness's own traffic (clients and checks in the root namespace, on the bridge's address)
 * is never matched: a rule names host addresses only. Building blocks compose, so a split of
 * nodes and etcd members is the union of the drops between its two sides.
 *
 *   const rules = renderRules(plan([isolate('n2', others)]), addrOf);  // Map host -> ruleset
 *
 * Applying a ruleset replaces the table in one nft transaction (`table t` + `delete table t` +
 * the new table), so a host never sees half of a plan; healing deletes the table.
 */

export const TABLE = 'jincache_fault';

/** One directed fault between hosts (by name). */
export type Fault =
  | { kind: 'drop'; from: readonly string[]; to: readonly string[] }
  | { kind: 'loss'; from: readonly string[]; to: readonly string[]; percent: number };

/** Drop everything between `host` and each of `others`, both ways. */
export function isolate(host: string, others: readonly string[]): Fault[] {
  return split([host], others);
}

/** Drop everything between the two sides, both ways (a partition: each side still talks within itself). */
export function split(a: readonly string[], b: readonly string[]): Fault[] {
  return [
    { kind: 'drop', from: a, to: b },
    { kind: 'drop', from: b, to: a },
  ];
}

/** Packets from `from` to `to` are dropped; the other direction passes. */
export function oneWay(from: readonly string[], to: readonly string[]): Fault[] {
  return [{ kind: 'drop', from, to }];
}

/** `percent` of the packets between `host` and each of `others` are lost, both ways. */
export function loss(host: string, others: readonly string[], percent: number): Fault[] {
  return [
    { kind: 'loss', from: [host], to: others, percent },
    { kind: 'loss', from: others, to: [host], percent },
  ];
}

/** Per host: the addresses whose packets its input drops, and those its output drops. */
export interface HostRules {
  inDrop: Set<string>;
  outDrop: Set<string>;
  /** percent -> source addresses (loss is applied on the receiving side only, so it does not compound) */
  inLoss: Map<number, Set<string>>;
}

/** The rules each host needs for `faults` (hosts and peers by name; every name must be in `addrOf`). */
export function plan(faults: readonly Fault[], addrOf: ReadonlyMap<string, string>): Map<string, HostRules> {
  const out = new Map<string, HostRules>();
  const rulesOf = (host: string): HostRules => {
    let r = out.get(host);
    if (r === undefined) out.set(host, (r = { inDrop: new Set(), outDrop: new Set(), inLoss: new Map() }));
    return r;
  };
  const addr = (host: string): string => {
    const a = addrOf.get(host);
    if (a === undefined) throw new RangeError(`nft plan: unknown host "${host}" (known: ${[...addrOf.keys()].join(', ')})`);
    return a;
  };
  for (const f of faults) {
    if (f.kind === 'loss' && !(Number.isInteger(f.percent) && f.percent >= 1 && f.percent <= 100)) {
      throw new RangeError(`nft plan: loss percent must be an integer in 1..100, got ${f.percent}`);
    }
    for (const from of f.from) {
      for (const to of f.to) {
        if (from === to) continue;
        if (f.kind === 'drop' || f.percent === 100) {
          rulesOf(from).outDrop.add(addr(to));
          rulesOf(to).inDrop.add(addr(from));
        } else {
          addTo(rulesOf(to).inLoss, f.percent, addr(from));
        }
      }
    }
  }
  return out;
}

function addTo(m: Map<number, Set<string>>, k: number, v: string): void {
  let s = m.get(k);
  if (s === undefined) m.set(k, (s = new Set()));
  s.add(v);
}

/** The nft script that installs `r` as the host's whole fault table (replacing any earlier one). */
export function renderHost(r: HostRules): string {
  const set = (s: ReadonlySet<string>): string => `{ ${[...s].sort(compareAddr).join(', ')} }`;
  const input: string[] = [];
  const output: string[] = [];
  if (r.inDrop.size > 0) input.push(`ip saddr ${set(r.inDrop)} drop`);
  for (const [pct, s] of [...r.inLoss].sort((a, b) => a[0] - b[0])) input.push(`ip saddr ${set(s)} numgen random mod 100 < ${pct} drop`);
  if (r.outDrop.size > 0) output.push(`ip daddr ${set(r.outDrop)} drop`);
  return [
    // `table` creates it when missing, so the delete cannot fail: one atomic replace
    `table inet ${TABLE}`,
    `delete table inet ${TABLE}`,
    `table inet ${TABLE} {`,
    `  chain input {`,
    `    type filter hook input priority 0; policy accept;`,
    ...input.map((l) => `    ${l}`),
    `  }`,
    `  chain output {`,
    `    type filter hook output priority 0; policy accept;`,
    ...output.map((l) => `    ${l}`),
    `  }`,
    `}`,
    '',
  ].join('\n');
}

/** The nft script that removes every fault from a host. */
export function renderHeal(): string {
  return `table inet ${TABLE}\ndelete table inet ${TABLE}\n`;
}

function compareAddr(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 4; i++) if (pa[i] !== pb[i]) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}
