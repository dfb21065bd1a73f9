import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Closers } from '../../src/util/closers.js';
import { captureLogger } from './fakes.js';

describe('closers', () => {
  it('close in reverse order of pushing, once, and a failing one does not stop the rest', async () => {
    const { log, lines } = captureLogger();
    const c = new Closers(log);
    const order: string[] = [];
    c.push('a', () => order.push('a'));
    c.push('b', async () => {
      order.push('b');
      throw new Error('boom');
    });
    c.push('c', () => order.push('c'));
    await Promise.all([c.close(), c.close()]);
    assert.deepEqual(order, ['c', 'b', 'a']);
    assert.equal(lines.filter((l) => (JSON.parse(l) as { what?: string }).what === 'b').length, 1, 'the failure is reported');
  });
});
