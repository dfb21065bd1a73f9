import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { miscountsConcurrentDeletes } from '../../src/docker/engine-quirks.js';
import { ReplySpacer } from '../../src/util/reply-spacer.js';

describe('engine quirks', () => {
  it('spaces deletes on engines before 28.1 and on versions it cannot read', () => {
    for (const v of ['20.10.24+dfsg1', '24.0.7', '27.5.1', '28.0.4', 'dev', '']) assert.equal(miscountsConcurrentDeletes(v), true, v);
    for (const v of ['28.1.0', '28.5.2+dfsg4', '29.0.0']) assert.equal(miscountsConcurrentDeletes(v), false, v);
  });
});

describe('reply spacer', () => {
  it('lets concurrent callers through one at a time, at least the gap apart', async () => {
    const s = new ReplySpacer(25);
    const times: number[] = [];
    await Promise.all(Array.from({ length: 5 }, () => s.wait().then(() => times.push(Date.now()))));
    times.sort((a, b) => a - b);
    for (let i = 1; i < times.length; i++) assert.ok(times[i]! - times[i - 1]! >= 24, `gap ${i}: ${times[i]! - times[i - 1]!} ms`);
  });

  it('lets everyone through at once with no gap: no timer is involved', async () => {
    const s = new ReplySpacer(0);
    let through = 0;
    for (let i = 0; i < 50; i++) void s.wait().then(() => through++);
    await Promise.resolve();
    assert.equal(through, 50);
    s.setGap(10);
    assert.equal(s.gap, 10);
  });
});
