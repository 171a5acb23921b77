// Writes a run's figures: bench/results/latest.json (a plain JSON list of Figures, the format
// issue 8 fixes), bench/results/meta.json (machine, versions and per-scenario provenance), and
// the generated table in BENCHMARKS.md between the bench markers. Misses are shown as misses.

import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Figure } from './figure.ts';
import type { MachineInfo } from './machine.ts';

export const BEGIN_MARKER = '<!-- bench:begin -->';
export const END_MARKER = '<!-- bench:end -->';

/** The repository root (bench/lib/../..). */
export const REPO_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export type ScenarioStatus = 'ok' | 'skipped' | 'failed';

export interface ScenarioRecord {
  name: string;
  status: ScenarioStatus;
  /** Why it was skipped or failed; null when ok. */
  reason: string | null;
  /** Whether it ran in --quick mode (shorter, fewer rounds, noisier). */
  quick: boolean;
  /** ISO time the scenario finished. */
  date: string;
  durationSec: number;
  /** Commit of the measured code (and `+dirty` when the tree had changes). */
  commit: string | null;
  /** Names of the figures it produced. */
  figures: string[];
}

export interface ResultsMeta {
  /** ISO time of the last write. */
  updated: string;
  /** Machine and versions of the last run that wrote results. */
  machine: MachineInfo;
  /** Every scenario whose figures are in latest.json, or that was skipped/failed, in run order. */
  scenarios: ScenarioRecord[];
}

export interface WriteOptions {
  figures: Figure[];
  scenarios: ScenarioRecord[];
  machine: MachineInfo;
  /**
   * false (a full run): the files hold exactly this run. true (a run with --only): keep the
   * previous figures of scenarios that did not run, replace those of the ones that did.
   */
  merge: boolean;
  /** Default bench/results. */
  resultsDir?: string;
  /** Default BENCHMARKS.md at the repository root. */
  benchmarksMd?: string;
  /** Default new Date(). */
  now?: Date;
}

export interface Written {
  figures: Figure[];
  meta: ResultsMeta;
}

function readJson<T>(file: string): T | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return null;
  }
}

/** Merges this run into previous results (see WriteOptions.merge). Pure. */
export function mergeResults(
  prev: { figures: Figure[]; meta: ResultsMeta | null },
  run: { figures: Figure[]; scenarios: ScenarioRecord[]; machine: MachineInfo; now: Date },
): Written {
  const rerun = new Set(run.scenarios.map((s) => s.name));
  const prevScenarios = (prev.meta?.scenarios ?? []).filter((s) => !rerun.has(s.name));
  // Figures of scenarios that ran again are dropped even when the new run skipped or failed:
  // an old number must never stand in for a scenario that no longer works.
  const dropped = new Set<string>();
  for (const s of prev.meta?.scenarios ?? []) if (rerun.has(s.name)) for (const f of s.figures) dropped.add(f);
  const fresh = new Set(run.figures.map((f) => f.name));
  const kept = prev.figures.filter((f) => !dropped.has(f.name) && !fresh.has(f.name));
  const scenarios = [...prevScenarios, ...run.scenarios];
  return {
    figures: [...kept, ...run.figures],
    meta: { updated: run.now.toISOString(), machine: run.machine, scenarios },
  };
}

/** Writes latest.json, meta.json and the BENCHMARKS.md table; returns what was written. */
export function writeResults(opts: WriteOptions): Written {
  const dir = opts.resultsDir ?? join(REPO_DIR, 'bench', 'results');
  const md = opts.benchmarksMd ?? join(REPO_DIR, 'BENCHMARKS.md');
  const now = opts.now ?? new Date();
  mkdirSync(dir, { recursive: true });
  const latestFile = join(dir, 'latest.json');
  const metaFile = join(dir, 'meta.json');
  const run = { figures: opts.figures, scenarios: opts.scenarios, machine: opts.machine, now };
  const out = opts.merge
    ? mergeResults({ figures: readJson<Figure[]>(latestFile) ?? [], meta: readJson<ResultsMeta>(metaFile) }, run)
    : { figures: opts.figures, meta: { updated: now.toISOString(), machine: opts.machine, scenarios: opts.scenarios } };
  writeFileSync(latestFile, JSON.stringify(out.figures, null, 2) + '\n');
  writeFileSync(metaFile, JSON.stringify(out.meta, null, 2) + '\n');
  const doc = existsSync(md) ? readFileSync(md, 'utf8') : '# Benchmarks\n';
  writeFileSync(md, replaceBlock(doc, renderTable(out.figures, out.meta)));
  return out;
}

/** Replaces the text between the markers (appending markers and block when absent). Pure. */
export function replaceBlock(doc: string, block: string): string {
  const b = doc.indexOf(BEGIN_MARKER);
  const e = doc.indexOf(END_MARKER);
  const wrapped = `${BEGIN_MARKER}\n${block.trimEnd()}\n${END_MARKER}`;
  if (b === -1 || e === -1 || e < b) {
    return `${doc.trimEnd()}\n\n${wrapped}\n`;
  }
  return doc.slice(0, b) + wrapped + doc.slice(e + END_MARKER.length);
}

/** A number for the table: thousands separators for big values, 3 significant digits for small. */
export function fmtNum(x: number): string {
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toLocaleString('en-US');
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  if (a === 0) return '0';
  return x.toPrecision(3);
}

export function fmtRatio(r: number | null): string {
  return r === null ? '—' : `${r >= 10 ? r.toFixed(1) : r.toFixed(2)}x`;
}

function verdict(pass: boolean | null): string {
  if (pass === null) return 'reported';
  return pass ? 'pass' : '**MISS**';
}

/** The markdown between the markers. Pure. */
export function renderTable(figures: readonly Figure[], meta: ResultsMeta): string {
  const m = meta.machine;
  const lines: string[] = [];
  const misses = figures.filter((f) => f.pass === false).length;
  const passes = figures.filter((f) => f.pass === true).length;
  lines.push(
    `_Generated by \`npm run bench\` on ${meta.updated}; do not edit by hand._`,
    '',
    `**Machine:** ${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB RAM, ${m.os}. ` +
      `**Versions:** jincache ${m.jincache ?? '?'} (code ${m.commit ?? 'outside git'}${m.dirty ? ', uncommitted changes' : ''}), ` +
      `Node ${m.node}, redis-server ${m.redis ?? 'not installed'}, autocannon ${m.autocannon ?? '?'}.`,
    '',
    `**${figures.length} figures: ${passes} pass, ${misses} miss, ${figures.length - passes - misses} reported without a target.**`,
    '',
    '| figure | unit | ours | peer | ratio | target | result |',
    '|---|---|---:|---:|---:|---|---|',
  );
  for (const f of figures) {
    lines.push(
      `| \`${f.name}\` | ${f.unit} | ${fmtNum(f.ours)} | ${f.peer === null ? '—' : fmtNum(f.peer)} | ` +
        `${fmtRatio(f.ratio)} | ${f.target ?? '—'} | ${verdict(f.pass)} |`,
    );
  }
  if (figures.length === 0) lines.push('| _(no figures yet)_ | | | | | | |');
  lines.push('', '**Scenarios:**', '');
  for (const s of meta.scenarios) {
    const mode = s.quick ? 'quick' : 'full';
    const commit = s.commit ?? 'no commit';
    const base = `- \`${s.name}\`: ${s.status}, ${mode} run, ${s.date}, code ${commit}, ${s.durationSec.toFixed(0)} s`;
    lines.push(s.reason === null ? base : `${base} — ${oneLine(s.reason)}`);
  }
  if (meta.scenarios.length === 0) lines.push('- _(none run yet)_');
  return lines.join('\n');
}

function oneLine(s: string): string {
  const first = s.split('\n')[0] ?? '';
  return first.length > 200 ? `${first.slice(0, 200)}…` : first;
}
