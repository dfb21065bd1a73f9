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

  it('doubles its wait up to maxEveryMs when asked', async () => {
    const at: number[] = [];
    const t0 = Date.now();
    await waitUntil(() => (at.push(Date.now() - t0), at.length === 6 ? true : undefined), { timeoutMs: 5_000, everyMs: 20, maxEveryMs: 40 });
    const gaps = at.slice(1).map((t, i) => t - at[i]!);
    // Waits of 20, 40, 40, 40, 40 ms: 180 ms in all, where doubling without the cap takes 620.
    assert.ok(gaps[0]! >= 19 && gaps.slice(1).every((g) => g >= 39), `gaps ${gaps.join(', ')}`);
    assert.ok(at[5]! < 500, `the cap holds: ${at[5]} ms`);
  });
});
