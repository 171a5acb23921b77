/**
 * The replies of every connection, written together once the event loop has run the input it
 * read this turn: what redis-server does before it sleeps (handleClientsWithPendingWrites).
 *
 * Why: a reply written the moment its input is handled wakes the client, and a client asleep
 * on another CPU costs a cross-CPU wake-up inside the write (perf: `_raw_spin_unlock_irqrestore`
 * under `sock_def_readable`, 12-24% of a request at pipeline 16). Writing each connection's
 * replies at the end of the turn, one after the other, lets a client woken by the first run
 * while we write the rest. At pipeline 16 (50 clients, 4 rounds against redis-server in the
 * same run) a SET's server CPU fell from 2.73 to 2.19 us and its rate from 0.42x to 0.52x of
 * redis-server's; a GET's from 0.53x to 0.70x (BENCHMARKS.md, sixth round).
 */

/** A connection with replies to write, as a WriteRound sees it. */
export interface RoundMember {
  /** Set while the connection is in a round; cleared by the round, or by a write made before it. */
  inRound: boolean;
  /** Write what is batched now. */
  flushRound(): void;
}

export class WriteRound {
  private pending: RoundMember[] = [];
  private spare: RoundMember[] = [];
  private armed = false;
  private readonly defer: (run: () => void) => void;

  /** `defer`: run at the end of this turn of the event loop. Default setImmediate (after the turn's I/O callbacks). */
  constructor(defer: (run: () => void) => void = defaultDefer) {
    this.defer = defer;
  }

  /** Have `m` write its replies at the end of this turn (once, however often it is added). */
  add(m: RoundMember): void {
    if (m.inRound) return;
    m.inRound = true;
    this.pending.push(m);
    if (this.armed) return;
    this.armed = true;
    this.defer(this.run);
  }

  /** Members added while the round writes (a write's callback may add one) wait for the next round. */
  private readonly run = (): void => {
    this.armed = false;
    const list = this.pending;
    this.pending = this.spare;
    for (let i = 0; i < list.length; i++) {
      const m = list[i]!;
      // a member written meanwhile (its batch filled, it closed) has inRound cleared already
      if (!m.inRound) continue;
      m.inRound = false;
      m.flushRound();
    }
    list.length = 0;
    this.spare = list;
  };
}

const defaultDefer = (run: () => void): void => void setImmediate(run);
