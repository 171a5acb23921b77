/**
 * Give back the memory a node's start-up used and no longer needs (issue 18, idle RSS).
 *
 * Starting a node compiles some 330 modules and builds its tables; much of what that allocates
 * survives a scavenge or two, so V8 grows the young generation from 1 MiB to 16 MiB (10 MiB of
 * it resident) and keeps the freed old-space pages pooled for reuse. Nothing of that is returned
 * while the node is idle: V8's memory reducer only starts after a mark-compact, and a start-up
 * whose old space stays under its first limit has none. One memory-reducing full GC (the
 * "last resort" flavour a process near its heap limit gets) shrinks the young generation back,
 * compacts the old space and unmaps the free pages: 11 MiB of an idle node's 90 MiB on Node 24.
 * Under load the young generation grows again as V8 sees fit, so throughput is unchanged.
 *
 * Only the `serve` command does this, once its node has started: a program that embeds a
 * JincacheNode keeps its own heap policy. V8 offers the collection only through the `gc`
 * function of `--expose-gc`; the flag is on just long enough to take that function from a
 * throwaway context, so no script of the node sees a global `gc`. On a V8 that does not know
 * the options it is a plain full GC, which shrinks the young generation without unmapping.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type GcFunction = (options?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async'; flavor?: 'regular' | 'last-resort' }) => void;

export function releaseStartupMemory(): void {
  setFlagsFromString('--expose-gc');
  let gc: GcFunction;
  try {
    gc = runInNewContext('gc') as GcFunction;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
  gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}
