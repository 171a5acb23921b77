import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { browserRefusal } from './api.ts';

const req = (method: string, headers: Record<string, string>) => ({ method, headers });

describe('browserRefusal', () => {
  test('a PUT, DELETE or POST a page of another site sent is refused; same-origin and non-browser ones pass', () => {
    for (const m of ['PUT', 'DELETE', 'POST']) {
      assert.match(browserRefusal(req(m, { host: 'cache:7000', 'sec-fetch-site': 'cross-site' }), true) ?? '', /another site/);
      assert.match(browserRefusal(req(m, { host: 'cache:7000', 'sec-fetch-site': 'same-site' }), true) ?? '', /another site/);
      assert.match(browserRefusal(req(m, { host: 'cache:7000', origin: 'https://evil.example' }), true) ?? '', /another origin/);
      assert.match(browserRefusal(req(m, { host: 'cache:7000', origin: 'null' }), true) ?? '', /opaque origin/);
      assert.equal(browserRefusal(req(m, { host: 'cache:7000', origin: 'http://cache:7000', 'sec-fetch-site': 'same-origin' }), true), undefined);
      assert.equal(browserRefusal(req(m, { host: 'cache:7000' }), true), undefined); // curl, client libraries
    }
  });

  test('reads are never refused for their origin (a page cannot read the answer without CORS)', () => {
    assert.equal(browserRefusal(req('GET', { host: 'cache:7000', 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' }), true), undefined);
  });

  test('a node without credentials answers loopback names and IP addresses only (DNS rebinding)', () => {
    for (const host of ['127.0.0.1:7000', 'localhost:7000', 'localhost', '[::1]:7000', '10.1.2.3', 'app.localhost:80']) {
      assert.equal(browserRefusal(req('GET', { host }), false), undefined, host);
    }
    for (const host of ['evil.example', 'evil.example:7000', '127.0.0.1.evil.example']) {
      assert.match(browserRefusal(req('GET', { host }), false) ?? '', /DNS rebinding/, host);
    }
    assert.equal(browserRefusal(req('GET', { host: 'evil.example' }), true), undefined, 'with credentials the name is the operator\'s business');
  });
});
