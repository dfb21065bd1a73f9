import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Poller } from '../../src/util/poller.js';

describe('poller', () => {
  it('does not lose work added while a tick that finds none is finishing', async () => {
    // The tick looks at the work, then takes a while (a mount table read) and says "none left":
    // work added meanwhile must still get a tick, or it waits forever (a namespace never "ready").
    const work: string[] = [];
    const done: string[] = [];
    let ticks = 0;
    const p = new Poller(1_000_000, async () => {
      ticks++;
      const seen = [...work];
      await sleep(20);
      for (const w of seen) done.push(work.splice(work.indexOf(w), 1)[0]!);
      return work.length > 0 && false; // answers from what it saw: nothing
    }, (e) => assert.fail(e));
    p.kick();
    await sleep(5);
    work.push('late');
    p.kick(); // during the tick
    await sleep(100);
    assert.deepEqual(done, ['late'], 'the late work was done by a tick of its own');
    assert.equal(ticks, 2);
    await p.stop();
  });

  it('stops: no tick after stop, and stop waits for the one under way', async () => {
    let ticks = 0;
    let inTick = false;
    const p = new Poller(5, async () => {
      ticks++;
      inTick = true;
      await sleep(30);
      inTick = false;
      return true;
    }, (e) => assert.fail(e));
    p.kick();
    await sleep(5);
    await p.stop();
    assert.equal(inTick, false, 'the tick under way finished before stop returned');
    const after = ticks;
    p.kick();
    await sleep(50);
    assert.equal(ticks, after);
  });
});
