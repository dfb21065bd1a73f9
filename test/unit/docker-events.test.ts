import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { EventsWatcher, sinceCursor, type DockerEvent } from '../../src/docker/events.js';
import { fullJitterDelay } from '../../src/util/backoff.js';
import { captureLogger } from './fakes.js';

const ev = (id: string, timeNano: bigint, action = 'create'): string =>
  JSON.stringify({ Type: 'container', Action: action, Actor: { ID: id, Attributes: {} }, time: Number(timeNano / 1_000_000_000n), timeNano: Number(timeNano) }) + '\n';

/** A Docker whose event stream the test controls: every open is recorded with its `since`. */
function fakeDocker() {
  const opens: (string | undefined)[] = [];
  const streams: PassThrough[] = [];
  let failNext = 0;
  return {
    opens,
    streams,
    failOpens(n: number) {
      failNext = n;
    },
    open: async (since: string | undefined): Promise<NodeJS.ReadableStream> => {
      opens.push(since);
      if (failNext > 0) {
        failNext--;
        throw new Error('connect ENOENT /var/run/docker.sock');
      }
      const s = new PassThrough();
      streams.push(s);
      return s;
    },
  };
}

const until = async (cond: () => boolean, ms = 2000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met');
    await new Promise((r) => setTimeout(r, 2));
  }
};

describe('backoff', () => {
  it('stays within [min, min(max, min*2^n)] and reaches the cap', () => {
    for (let n = 0; n < 20; n++) {
      for (const r of [0, 0.5, 0.999]) {
        const d = fullJitterDelay(n, 250, 30_000, () => r);
        assert.ok(d >= 250 && d <= Math.min(30_000, 250 * 2 ** n), `n=${n} r=${r} d=${d}`);
      }
    }
    assert.equal(fullJitterDelay(30, 250, 30_000, () => 0.999), 29_970);
  });
});

describe('events watcher', () => {
  it('keeps nanosecond cursors exact', () => {
    assert.equal(sinceCursor(1700000000123456789n, undefined), '1700000000.123456789');
    assert.equal(sinceCursor(1700000000000000007n, undefined), '1700000000.000000007');
    assert.equal(sinceCursor(undefined, 1700000000), '1700000000');
  });

  it('handles events in order, split across chunks', async () => {
    const d = fakeDocker();
    const seen: string[] = [];
    const w = new EventsWatcher(d.open, async (e: DockerEvent) => void seen.push(e.Actor.ID), captureLogger().log, { minBackoffMs: 1, maxBackoffMs: 5, queueSize: 10 });
    w.start();
    await until(() => d.streams.length === 1);
    const line = ev('a', 1_000_000_000_000n) + ev('b', 1_000_000_000_001n);
    d.streams[0]!.write(line.slice(0, 30));
    d.streams[0]!.write(line.slice(30));
    await until(() => seen.length === 2);
    assert.deepEqual(seen, ['a', 'b']);
    assert.equal(w.state().processed, 2);
    assert.equal(w.state().connected, true);
    w.stop();
  });

  it('reconnects with backoff and asks for what it missed since the last handled event', async () => {
    const d = fakeDocker();
    const seen: string[] = [];
    let connects = 0;
    const w = new EventsWatcher(d.open, async (e) => void seen.push(e.Actor.ID), captureLogger().log, { minBackoffMs: 1, maxBackoffMs: 4, queueSize: 10 }, { connected: () => connects++ });
    w.start();
    await until(() => d.streams.length === 1);
    d.streams[0]!.write(ev('a', 5_000_000_000_123n));
    await until(() => seen.length === 1);
    d.failOpens(3);
    d.streams[0]!.end();
    await until(() => d.streams.length === 2);
    assert.deepEqual(d.opens, [undefined, '5000.000000123', '5000.000000123', '5000.000000123', '5000.000000123']);
    assert.equal(w.state().reconnects, 4);
    assert.equal(connects, 2, 'each successful open is announced (the cache re-lists then)');
    // Docker replays from `since` inclusive: the repeated event is handled again, harmlessly.
    d.streams[1]!.write(ev('a', 5_000_000_000_123n) + ev('c', 5_000_000_000_200n));
    await until(() => seen.length === 3);
    assert.deepEqual(seen, ['a', 'a', 'c']);
    w.stop();
  });

  it('drops, counts and reports when the queue is full, never blocking the stream', async () => {
    const d = fakeDocker();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const seen: string[] = [];
    const dropped: string[] = [];
    const { log, lines } = captureLogger();
    const w = new EventsWatcher(d.open, async (e) => {
      await gate;
      seen.push(e.Actor.ID);
    }, log, { minBackoffMs: 1, maxBackoffMs: 4, queueSize: 3 }, { dropped: (e: DockerEvent) => dropped.push(e.Actor.ID) });
    w.start();
    await until(() => d.streams.length === 1);
    for (let i = 0; i < 10; i++) d.streams[0]!.write(ev(`e${i}`, BigInt(i + 1)));
    await until(() => w.state().dropped === 6);
    // e0 is being handled, e1..e3 queued, e4..e9 dropped.
    assert.deepEqual(dropped, ['e4', 'e5', 'e6', 'e7', 'e8', 'e9']);
    assert.ok(lines.some((l) => l.includes('docker event queue full')));
    release();
    await w.idle();
    assert.deepEqual(seen, ['e0', 'e1', 'e2', 'e3']);
    w.stop();
  });

  it('survives a handler that throws and garbage lines', async () => {
    const d = fakeDocker();
    const seen: string[] = [];
    const w = new EventsWatcher(d.open, async (e) => {
      if (e.Actor.ID === 'bad') throw new Error('boom');
      seen.push(e.Actor.ID);
    }, captureLogger().log, { minBackoffMs: 1, maxBackoffMs: 4, queueSize: 10 });
    w.start();
    await until(() => d.streams.length === 1);
    d.streams[0]!.write('{not json\n' + ev('bad', 1n) + ev('ok', 2n));
    await until(() => seen.length === 1);
    assert.deepEqual(seen, ['ok']);
    w.stop();
  });
});
