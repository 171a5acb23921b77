import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Authenticator, httpCredentials } from './auth.ts';

const auth = (a: Partial<ConstructorParameters<typeof Authenticator>[0]> = {}, files: Record<string, string> = {}) =>
  new Authenticator({ users: [], public_metrics: false, ...a } as ConstructorParameters<typeof Authenticator>[0], (p) => {
    const v = files[p];
    if (v === undefined) throw new Error(`no file ${p}`);
    return v;
  });

describe('Authenticator', () => {
  test('no password: nothing required', () => {
    assert.equal(auth().required, false);
  });

  test('requirepass is the password of "default", allowed everything', async () => {
    const a = auth({ requirepass: 's3cret' });
    assert.equal(a.required, true);
    const p = await a.check('default', 's3cret');
    assert.equal(p?.name, 'default');
    for (const perm of ['read', 'write', 'admin'] as const) assert.equal(p?.can(perm), true);
    assert.equal(await a.check('default', 's3cre'), undefined);
    assert.equal(await a.check('default', 's3cret '), undefined);
    assert.equal(await a.check('nobody', 's3cret'), undefined);
  });

  test('named users get their permissions only; a password_file is read through the reader', async () => {
    const a = auth({ users: [
      { name: 'reader', password: 'r', permissions: ['read'] },
      { name: 'ops', password_file: '/run/secrets/ops', permissions: ['read', 'write', 'admin'] },
    ] } as never, { '/run/secrets/ops': 'from-file' });
    const r = await a.check('reader', 'r');
    assert.equal(r?.can('read'), true);
    assert.equal(r?.can('write'), false);
    assert.equal(r?.can('admin'), false);
    assert.equal((await a.check('ops', 'from-file'))?.can('admin'), true);
    assert.deepEqual(a.userNames().sort(), ['ops', 'reader']);
  });

  test('an unreadable password_file stops start-up naming it', () => {
    assert.throws(() => auth({ users: [{ name: 'x', password_file: '/nope', permissions: ['read'] }] } as never), /no file \/nope/);
  });

  test('a credential that passed is remembered: the second check does not run scrypt', async () => {
    const a = auth({ requirepass: 'pw' });
    await a.check('default', 'pw');
    const t = performance.now();
    for (let i = 0; i < 200; i++) assert.ok(await a.check('default', 'pw'));
    assert.ok(performance.now() - t < 200, '200 remembered checks take far less than 200 scrypt runs');
  });

  test('a flood of wrong passwords is bounded: the excess fails at once, a right one still passes after', async () => {
    const a = auth({ requirepass: 'pw' });
    const flood = await Promise.all(Array.from({ length: 400 }, (_, i) => a.check('default', `wrong${i}`)));
    assert.ok(flood.every((x) => x === undefined));
    assert.equal((await a.check('default', 'pw'))?.name, 'default');
  });

  test('property: a check passes exactly when the password is the configured one', async () => {
    const a = auth({ requirepass: 'correct horse' });
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 20 }), async (pw) => {
        assert.equal((await a.check('default', pw)) !== undefined, pw === 'correct horse');
      }),
      { numRuns: 40 },
    );
  });
});

describe('httpCredentials', () => {
  test('Bearer is the default user; Basic carries user:password (empty user = default)', () => {
    assert.deepEqual(httpCredentials('Bearer abc'), { user: 'default', password: 'abc' });
    assert.deepEqual(httpCredentials('bearer abc'), { user: 'default', password: 'abc' });
    const b = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;
    assert.deepEqual(httpCredentials(b('ops:p:w')), { user: 'ops', password: 'p:w' });
    assert.deepEqual(httpCredentials(b(':pw')), { user: 'default', password: 'pw' });
  });

  test('absent or malformed: undefined', () => {
    for (const h of [undefined, '', 'Bearer', 'Bearer ', 'Digest x', `Basic ${Buffer.from('nocolon').toString('base64')}`]) {
      assert.equal(httpCredentials(h), undefined, String(h));
    }
  });
});
