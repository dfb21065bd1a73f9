import { shortId } from '../util/short-id.js';
import { fullJitterDelay } from '../util/backoff.js';
import type { Logger } from '../util/log.js';
import type { OpenEventStream } from './api.js';

/** The event types and actions tslink asks Docker for (WATCHED_EVENTS): no other reaches a handler. */
const WATCHED_TYPES = ['container', 'network'] as const;
const WATCHED_ACTIONS = ['create', 'start', 'kill', 'die', 'destroy', 'connect', 'disconnect'] as const;
export type DockerEventType = (typeof WATCHED_TYPES)[number];
export type DockerEventAction = (typeof WATCHED_ACTIONS)[number];

export interface DockerEvent {
  Type: DockerEventType;
  Action: DockerEventAction;
  Actor: { ID: string; Attributes?: Record<string, string> };
  time?: number;
  timeNano?: number;
}

export interface WatcherOptions {
  minBackoffMs: number;
  maxBackoffMs: number;
  queueSize: number;
  random?: () => number;
}

/** What the watcher tells its owner; every one optional. */
export interface WatcherCallbacks {
  /** A stream opened (the owner re-lists containers then: events may have been missed). */
  connected?(): void;
  /** The stream ended or failed; the next attempt comes after `delayMs`. */
  disconnected?(delayMs: number): void;
  /** The queue was full and this event was dropped (a repair listing makes up for it). */
  dropped?(e: DockerEvent): void;
  /** An event was handled (`ok` false: its handler threw). */
  handled?(e: DockerEvent, ok: boolean): void;
}

export interface WatcherState {
  connected: boolean;
  lastEventAgeMs: number | null;
  processed: number;
  dropped: number;
  reconnects: number;
  queued: number;
}

/** The stream's filter (docker/api.ts): Docker sends only these, which DockerEvent's types name. */
export const WATCHED_EVENTS: { type: DockerEventType[]; event: DockerEventAction[] } = {
  type: [...WATCHED_TYPES],
  event: [...WATCHED_ACTIONS],
};

/** Nanosecond timestamps exceed 2^53; keep the since-cursor exact as "s.nnnnnnnnn". */
export function sinceCursor(timeNano: number | bigint | undefined, time: number | undefined): string | undefined {
  if (timeNano !== undefined) {
    const n = BigInt(timeNano);
    return `${n / 1_000_000_000n}.${(n % 1_000_000_000n).toString().padStart(9, '0')}`;
  }
  return time !== undefined ? String(time) : undefined;
}

/**
 * Follows Docker's event stream for the life of the plugin. A dropped stream is reopened with
 * jittered backoff from the last processed event, so nothing that happened meanwhile is lost;
 * a bounded queue keeps a slow handler from stalling the stream or growing memory without end.
 */
export class EventsWatcher {
  private readonly queue: DockerEvent[] = [];
  /** The queue's handler while it runs (one at a time, in order). */
  private draining?: Promise<void>;
  /** The stream loop, from start to stop. */
  private running?: Promise<void>;
  private stopped = false;
  private abort?: AbortController;
  private cursor?: string;
  private lastEventAt?: number;
  private attempt = 0;
  private readonly counts = { processed: 0, dropped: 0, reconnects: 0 };
  private connected = false;
  private wake?: () => void;

  constructor(
    private readonly open: OpenEventStream,
    private readonly handle: (e: DockerEvent) => Promise<void>,
    private readonly log: Logger,
    private readonly opts: WatcherOptions,
    private readonly on: WatcherCallbacks = {},
  ) {}

  start(since?: string): void {
    this.cursor = since;
    this.running = this.loop().catch((e: Error) => this.log.error({ err: e.message }, 'docker event loop failed'));
  }

  /** Closes the stream; resolves once the loop has ended and every queued event was handled. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.abort?.abort();
    this.wake?.();
    await this.running;
    await this.draining;
  }

  state(): WatcherState {
    return {
      connected: this.connected,
      lastEventAgeMs: this.lastEventAt === undefined ? null : Date.now() - this.lastEventAt,
      queued: this.queue.length,
      ...this.counts,
    };
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      this.abort = new AbortController();
      try {
        const stream = await this.open(this.cursor, this.abort.signal, WATCHED_EVENTS);
        this.connected = true;
        this.attempt = 0;
        this.log.info({ since: this.cursor ?? 'now' }, 'docker events stream open');
        this.on.connected?.();
        await this.consume(stream);
        if (!this.stopped) this.log.warn('docker events stream ended');
      } catch (e) {
        if (!this.stopped) this.log.warn({ err: (e as Error).message }, 'docker events stream failed');
      }
      this.connected = false;
      if (this.stopped) break;
      const delay = fullJitterDelay(this.attempt++, this.opts.minBackoffMs, this.opts.maxBackoffMs, this.opts.random);
      this.counts.reconnects++;
      this.on.disconnected?.(delay);
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, delay).unref();
      });
    }
  }

  private consume(stream: NodeJS.ReadableStream): Promise<void> {
    return new Promise((resolve) => {
      let buf = '';
      const finish = (): void => {
        stream.removeAllListeners('data');
        resolve();
      };
      stream.on('data', (chunk: Buffer | string) => {
        buf += chunk.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) this.accept(line);
        }
      });
      stream.once('end', finish);
      stream.once('close', finish);
      stream.once('error', finish);
    });
  }

  private accept(line: string): void {
    let ev: DockerEvent;
    try {
      ev = JSON.parse(line) as DockerEvent;
    } catch {
      this.log.warn({ line: line.slice(0, 200) }, 'unparseable docker event ignored');
      return;
    }
    if (this.queue.length >= this.opts.queueSize) {
      this.counts.dropped++;
      // The reconciler repairs what a dropped event would have told us.
      if (this.counts.dropped === 1 || this.counts.dropped % 100 === 0) {
        this.log.warn({ dropped: this.counts.dropped, queueSize: this.opts.queueSize }, 'docker event queue full: dropping events');
      }
      this.on.dropped?.(ev);
    } else {
      this.queue.push(ev);
    }
    this.lastEventAt = Date.now();
    this.draining ??= this.drain().finally(() => (this.draining = undefined));
  }

  private async drain(): Promise<void> {
    let ev: DockerEvent | undefined;
    while ((ev = this.queue.shift())) {
      try {
        await this.handle(ev);
        this.on.handled?.(ev, true);
      } catch (e) {
        this.log.error({ event: `${ev.Type} ${ev.Action}`, id: shortId(ev.Actor.ID), err: (e as Error).message }, 'event handler failed');
        this.on.handled?.(ev, false);
      }
      // Resume from what was handled: on reconnect Docker replays from here (inclusive), and
      // handlers are idempotent, so a replay costs a little work and never loses an event.
      this.cursor = sinceCursor(ev.timeNano, ev.time) ?? this.cursor;
      this.counts.processed++;
    }
  }

  /** Resolves once every queued event has been handled (tests, orderly shutdown). */
  async idle(): Promise<void> {
    while (this.draining) await this.draining;
  }
}
