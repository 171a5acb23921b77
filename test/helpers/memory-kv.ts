/**
 * A Map-backed cluster for tests of the front door and the RESP server: the DoorKv a node's Router
 * is, on one map, running the real command engine (cache/engine) for Exec as a coordinator does.
 * Every call is recorded in `seen`; `failWith` makes every call throw (a peer timing out).
 */
import type { GetResult } from '../../src/cluster/kv.ts';
import { decideWrite, type WriteOp, type WriteResult } from '../../src/cache/ops.ts';
import type { DoorKv } from '../../src/front/door.ts';
import { ENGINE, watchOf } from '../../src/cache/engine/index.ts';
import { STRING } from '../../src/cache/engine/types.ts';
import type { Reply } from '../../src/cache/reply.ts';

export interface MemoryEntry {
  value: Buffer;
  expiresAt: number;
  type?: number;
}

export interface SeenCall {
  call: 'get' | 'write' | 'exec';
  key: string;
  op?: WriteOp;
  deadline?: number;
}

type ExecArgs = Parameters<NonNullable<DoorKv['exec']>>[1];

export class MemoryKv implements DoorKv {
  readonly data = new Map<string, MemoryEntry>();
  readonly seen: SeenCall[] = [];
  /** Each key's last write, deletes included (what WATCH compares). */
  readonly versions = new Map<string, number>();
  failWith: Error | null = null;
  getLocal: DoorKv['getLocal'] = () => undefined;
  writeLocal: DoorKv['writeLocal'] = () => undefined;
  private version = 1;

  /** The time expiry is judged by. */
  clock: () => number = Date.now;

  private readonly maxValueBytes: number;

  /** `maxValueBytes`: the engine's value size limit. */
  constructor(maxValueBytes = 512 * 1024 * 1024) {
    this.maxValueBytes = maxValueBytes;
  }

  /** How many calls of a kind were made. */
  calls(call: SeenCall['call']): number {
    let n = 0;
    for (const s of this.seen) if (s.call === call) n++;
    return n;
  }

  /** The error a call on `key` throws, if any. */
  protected fault(_key: string): Error | null {
    return this.failWith;
  }

  private live(key: string): MemoryEntry | undefined {
    const err = this.fault(key);
    if (err) throw err;
    const e = this.data.get(key);
    if (e && e.expiresAt !== 0 && e.expiresAt <= this.clock()) {
      this.data.delete(key);
      return undefined;
    }
    return e;
  }

  async get(_group: string, key: string, opts: { deadline: number }): Promise<GetResult | null> {
    this.seen.push({ call: 'get', key, deadline: opts.deadline });
    const e = this.live(key);
    return e ? { value: e.value, expiresAt: e.expiresAt, source: 'hit', ...(e.type ? { type: e.type } : {}) } : null;
  }

  async write(_group: string, key: string, op: WriteOp, opts: { deadline: number }): Promise<WriteResult> {
    this.seen.push({ call: 'write', key, op, deadline: opts.deadline });
    const e = this.live(key);
    const d = decideWrite(e === undefined ? undefined : { ...e, version: 1, partition: 0, type: 0 }, op, this.clock());
    if (d.change === 'value') this.data.set(key, { value: d.value, expiresAt: d.expiresAt });
    else if (d.change === 'delete') this.data.delete(key);
    if (d.change !== 'none') this.versions.set(key, ++this.version);
    return d.result;
  }

  async count(): Promise<number> {
    if (this.failWith) throw this.failWith;
    let n = 0;
    for (const key of [...this.data.keys()]) if (this.live(key)) n++;
    return n;
  }

  /** The real command engine over the map, as a coordinator runs it. */
  async exec(_group: string, req: ExecArgs): Promise<Reply> {
    this.seen.push({ call: 'exec', key: req.key });
    const view = {
      get: (key: string) => {
        const e = this.live(key);
        return e === undefined ? undefined : { type: (e.type ?? STRING) as 0 | 1, value: e.value, expiresAt: e.expiresAt, version: this.versions.get(key) ?? 0 };
      },
      version: (key: string) => this.versions.get(key) ?? 0,
    };
    const ctx = { now: this.clock(), maxValueBytes: this.maxValueBytes, protocol: req.protocol ?? 2 };
    // no command: what WATCH records, as Router.exec answers it
    if (!req.transaction && req.commands.length === 0) {
      return { type: 'array', items: req.keys.map((k) => {
        const w = watchOf(k, view, ctx);
        return { type: 'array', items: [{ type: 'integer', value: w.version }, { type: 'integer', value: w.live ? 1 : 0 }] };
      }) };
    }
    const out = req.transaction ? ENGINE.executeTransaction(req.commands, view, ctx, req.watched) : ENGINE.execute(req.commands[0]!, view, ctx);
    for (const c of out.changes) {
      this.versions.set(c.key, ++this.version);
      if (c.value === null) this.data.delete(c.key);
      else this.data.set(c.key, { value: c.value, expiresAt: c.expiresAt, type: c.type });
    }
    return out.reply;
  }
}
