import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { waitUntil } from '../../src/util/wait-until.js';

describe('waitUntil', () => {
  it('answers the first value the check gives', async () => {
    let n = 0;
    assert.equal(await waitUntil(() => (++n === 3 ? 'ready' : undefined), { timeoutMs: 1000, everyMs: 1 }), 'ready');
    assert.equal(n, 3);
  });

  it('gives up at the deadline with undefined, having checked at least once', async () => {
    let n = 0;
    const t0 = Date.now();
    assert.equal(await waitUntil(() => (n++, false), { timeoutMs: 50, everyMs: 10 }), undefined);
    assert.ok(n >= 2 && Date.now() - t0 >= 50);
  });

  it('stops when its signal aborts', async () => {
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 20);
    const t0 = Date.now();
    assert.equal(await waitUntil(() => undefined, { timeoutMs: 10_000, everyMs: 5, signal: ctl.signal }), undefined);
    assert.ok(Date.now() - t0 < 1000);
  });
});
