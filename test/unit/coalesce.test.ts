import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { coalesce } from '../../src/util/coalesce.js';
import { RwGate } from '../../src/util/rw-gate.js';

function gate(): { wait: Promise<void>; open(): void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('coalescing and gating runs', () => {
  it('serves twenty callers with two runs', async () => {
    let runs = 0;
    const g = gate();
    const sync = coalesce(async () => {
      runs++;
      if (runs === 1) await g.wait;
    });
    const all = Array.from({ length: 20 }, () => sync());
    g.open();
    await Promise.all(all);
    assert.equal(runs, 2);
  });

  it('runs shared work side by side and exclusive work alone, holding back shared work that arrives meanwhile', async () => {
    const rw = new RwGate();
    const log: string[] = [];
    const [a, b, x] = [gate(), gate(), gate()];
    const sa = rw.shared(async () => { log.push('a in'); await a.wait; log.push('a out'); });
    const sb = rw.shared(async () => { log.push('b in'); await b.wait; log.push('b out'); });
    const ex = rw.alone(async () => { log.push('x in'); await x.wait; log.push('x out'); });
    const sc = rw.shared(async () => { log.push('c in'); });
    await tick();
    assert.deepEqual(log, ['a in', 'b in'], 'the exclusive work waits for both, and the late shared work waits for it');
    a.open();
    await sa;
    await tick();
    assert.ok(!log.includes('x in'));
    b.open();
    await sb;
    await tick();
    assert.equal(log.at(-1), 'x in');
    x.open();
    await Promise.all([ex, sc]);
    assert.deepEqual(log, ['a in', 'b in', 'a out', 'b out', 'x in', 'x out', 'c in']);
  });

  it('frees the gate when the work fails', async () => {
    const rw = new RwGate();
    await assert.rejects(rw.alone(async () => { throw new Error('boom'); }));
    await assert.rejects(rw.shared(async () => { throw new Error('boom'); }));
    assert.equal(await rw.alone(async () => 1), 1);
    assert.equal(await rw.shared(async () => 2), 2);
  });
});
