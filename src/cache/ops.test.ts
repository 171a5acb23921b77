import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decideWrite, type Expiry, type ValueDecision, type WriteOp } from './ops.ts';
import type { StoredEntry } from './store.ts';

const expiry: fc.Arbitrary<Expiry> = fc.oneof(
  fc.constant<Expiry>({ kind: 'none' }),
  fc.constant<Expiry>({ kind: 'keep' }),
  fc.integer({ min: -5, max: 1000 }).map((ms): Expiry => ({ kind: 'in', ms })),
  fc.integer({ min: 0, max: 3000 }).map((ms): Expiry => ({ kind: 'at', ms })),
);
const op: fc.Arbitrary<WriteOp> = fc.oneof(
  fc.record({ op: fc.constant('set' as const), value: fc.uint8Array({ maxLength: 4 }).map((a) => Buffer.from(a)), expiry, cond: fc.constantFrom(undefined, 'nx' as const, 'xx' as const) }),
  fc.constant<WriteOp>({ op: 'del' }),
  fc.record({ op: fc.constant('expire' as const), expiry }),
);
const live: fc.Arbitrary<StoredEntry | undefined> = fc.option(
  fc.record({ value: fc.constant(Buffer.from('v')), version: fc.integer({ min: 1, max: 9 }), expiresAt: fc.constantFrom(0, 1500, 2500), partition: fc.constant(0), type: fc.constant(0) }),
  { nil: undefined },
);

test('property: decideWrite into a reused decision decides exactly as into a new one', () => {
  const into: ValueDecision = { change: 'value', value: Buffer.alloc(0), expiresAt: -1, result: { applied: false, existed: false } };
  fc.assert(
    fc.property(live, op, fc.integer({ min: 1000, max: 2000 }), fc.option(fc.integer({ min: 1, max: 500 }), { nil: undefined }), (held, write, now, ttl) => {
      const fresh = decideWrite(held, write, now, ttl);
      const reused = decideWrite(held, write, now, ttl, into);
      assert.deepEqual({ ...reused }, { ...fresh });
      // only a stored value is written into it
      if (reused === into) assert.equal(fresh.change, 'value');
    }),
    { numRuns: 500 },
  );
});
