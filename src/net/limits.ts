/**
 * Bounds that hold for all client connections together (SPEC §8), shared by the HTTP API and the
 * Redis listener: how many connections may be open, and how many bytes of input they may hold
 * unparsed (a partial command, a body still arriving). Exceeding a bound costs the offending
 * client its connection, never the node's other clients: when the input budget overflows, the
 * connection holding the most input is closed, so a few greedy clients cannot push out the many
 * small ones.
 */

/** A connection (or request body) holding input. */
export interface InputHolder {
  /** Bytes it holds now. */
  bytes: number;
  /** Close it: it holds the most input when the budget overflowed. */
  evict(): void;
}

export interface ClientLimitsOptions {
  maxClients: number;
  maxInputBytes: number;
  /** Counted in /metrics: which limit turned a client away. */
  onRefused?: (limit: 'max_clients' | 'input_buffer' | 'output_buffer' | 'idle_timeout') => void;
  /** Bytes of replies one client may leave unread before it is disconnected. Default 64 MiB. */
  outputBufferBytes?: number;
  /** Close a client connection idle this long (ms); 0: never. Default 0. */
  idleTimeoutMs?: number;
}

export class ClientLimits {
  readonly maxClients: number;
  readonly maxInputBytes: number;
  readonly outputBufferBytes: number;
  readonly idleTimeoutMs: number;
  private readonly onRefused: ClientLimitsOptions['onRefused'];
  private clients = 0;
  private inputBytes = 0;
  private readonly holders = new Set<InputHolder>();

  constructor(opts: ClientLimitsOptions) {
    if (!(Number.isInteger(opts.maxClients) && opts.maxClients >= 1)) throw new RangeError(`maxClients must be an integer >= 1. Got: ${opts.maxClients}`);
    if (!(opts.maxInputBytes >= 1)) throw new RangeError(`maxInputBytes must be >= 1. Got: ${opts.maxInputBytes}`);
    this.maxClients = opts.maxClients;
    this.maxInputBytes = opts.maxInputBytes;
    this.onRefused = opts.onRefused;
    this.outputBufferBytes = opts.outputBufferBytes ?? 64 * 1024 * 1024;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 0;
  }

  /** A client was closed by a per-connection limit (its output buffer, its idle time). */
  closed(limit: 'output_buffer' | 'idle_timeout'): void {
    this.onRefused?.(limit);
  }

  /** A client connection opens: false when it would be one too many (refuse it). */
  admit(): boolean {
    if (this.clients >= this.maxClients) {
      this.onRefused?.('max_clients');
      return false;
    }
    this.clients++;
    return true;
  }

  /** An admitted connection closed. */
  leave(): void {
    if (this.clients > 0) this.clients--;
  }

  /** Open client connections. */
  connections(): number {
    return this.clients;
  }

  /** Input held by all clients, bytes. */
  input(): number {
    return this.inputBytes;
  }

  /**
   * `holder` now holds `bytes`. When the total passes the budget, the holders with the most
   * input are evicted until it fits (possibly `holder` itself). Returns false when `holder` was
   * evicted.
   */
  hold(holder: InputHolder, bytes: number): boolean {
    if (bytes === holder.bytes) return true;
    this.inputBytes += bytes - holder.bytes;
    holder.bytes = bytes;
    // A holder stays listed at 0 bytes until release(): a connection holds input and then none
    // at every request, and adding and deleting it each time rehashed the Set (perf, pipeline 1).
    // One holding nothing is never the largest while the total is over the budget.
    if (bytes > 0) this.holders.add(holder);
    let survived = true;
    while (this.inputBytes > this.maxInputBytes && this.holders.size > 0) {
      let largest: InputHolder | undefined;
      for (const h of this.holders) if (largest === undefined || h.bytes > largest.bytes) largest = h;
      this.release(largest!);
      this.onRefused?.('input_buffer');
      if (largest === holder) survived = false;
      largest!.evict();
    }
    return survived;
  }

  /** `holder` holds nothing any more (its input was parsed, or it closed). */
  release(holder: InputHolder): void {
    if (!this.holders.delete(holder)) return;
    this.inputBytes -= holder.bytes;
    holder.bytes = 0;
  }
}
