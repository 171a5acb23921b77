import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePromText, sampleValue, isPromTextParseError } from './promtext.ts';

test('parses types, labels with escapes and special values', () => {
  const p = parsePromText(
    [
      '# HELP x_total Things.',
      '# TYPE x_total counter',
      'x_total{a="1",b="q\\"uote\\\\ \\nnl"} 3',
      'y 1.5e-3',
      'z{le="+Inf"} +Inf',
      'w NaN',
      '',
    ].join('\n'),
  );
  assert.equal(p.types.get('x_total'), 'counter');
  assert.equal(p.help.get('x_total'), 'Things.');
  assert.equal(sampleValue(p, 'x_total', { a: '1', b: 'q"uote\\ \nnl' }), 3);
  assert.equal(sampleValue(p, 'y'), 0.0015);
  assert.equal(sampleValue(p, 'z'), Infinity);
  assert.ok(Number.isNaN(sampleValue(p, 'w')));
  assert.throws(() => sampleValue(p, 'nope'), /found 0/);
});

test('malformed lines are reported with their line number', () => {
  assert.throws(
    () => parsePromText('ok 1\nbad{a="1" 2'),
    (e: unknown) => isPromTextParseError(e) && e.line === 2,
  );
  assert.throws(() => parsePromText('x abc'), /bad sample value/);
});
