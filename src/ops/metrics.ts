import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DockerEvent, WatcherState } from '../docker/events.js';
import type { NodeState, NodeStatus } from '../node/status.js';

/** What the gauges show, read at scrape time by whoever serves the scrape. */
export interface MetricSnapshot {
  watcher: WatcherState;
  /** Every endpoint's current state. */
  endpointStates: readonly NodeState[];
}

/**
 * The plugin's Prometheus metrics (prom-client), all `tslink_`-prefixed with units in their names.
 * Labels never carry container or endpoint IDs: their number is bounded by the code, not by use.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly events = new Counter({ name: 'tslink_docker_events_total', help: 'Docker events handled, by type, action and outcome (ok, failed)', labelNames: ['type', 'action', 'outcome'], registers: [this.registry] });
  private readonly dropped = new Counter({ name: 'tslink_docker_events_dropped_total', help: 'Docker events dropped because the queue was full (a repair listing makes up for them)', registers: [this.registry] });
  private readonly reconnects = new Counter({ name: 'tslink_docker_event_stream_reconnects_total', help: 'times the Docker event stream was reopened', registers: [this.registry] });
  private readonly starts = new Counter({ name: 'tslink_tailscaled_starts_total', help: 'tailscaled processes started', registers: [this.registry] });
  private readonly restarts = new Counter({ name: 'tslink_tailscaled_restarts_total', help: 'tailscaled processes restarted after they exited', registers: [this.registry] });
  private readonly crashLoops = new Counter({ name: 'tslink_tailscaled_crash_loops_total', help: 'nodes marked failed after a crash loop', registers: [this.registry] });
  private readonly requests = new Histogram({
    name: 'tslink_driver_request_duration_seconds',
    help: 'time to answer each plugin protocol call, by call and status',
    labelNames: ['call', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  private readonly joinToRunning = new Histogram({
    name: 'tslink_join_to_running_seconds',
    help: 'time from an endpoint\'s Join to its node running',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  private readonly repairs = new Counter({ name: 'tslink_repair_passes_total', help: 'repair passes (a full container listing), by outcome', labelNames: ['outcome'], registers: [this.registry] });
  private readonly repairFixes = new Counter({ name: 'tslink_repair_fixes_total', help: 'endpoints removed by repair passes because their container is gone', registers: [this.registry] });
  private readonly gcRemoved = new Counter({ name: 'tslink_gc_removed_total', help: 'files and directories no endpoint used any more, removed by garbage collection', registers: [this.registry] });

  private readonly queueDepth = new Gauge({ name: 'tslink_docker_event_queue_depth', help: 'Docker events waiting to be handled', registers: [this.registry] });
  private readonly streamConnected = new Gauge({ name: 'tslink_docker_event_stream_connected', help: '1 while the Docker event stream is open', registers: [this.registry] });
  private readonly lastEventAge = new Gauge({ name: 'tslink_docker_last_event_age_seconds', help: 'seconds since the last Docker event arrived (-1: none yet)', registers: [this.registry] });
  private readonly endpoints = new Gauge({ name: 'tslink_endpoints', help: 'endpoints by the state of their node', labelNames: ['state'], registers: [this.registry] });

  /**
   * Counters only: what they count is told to them. What gauges show is given at each scrape
   * (`text`), so the metrics need none of the parts they describe and are built before them.
   */
  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'tslink_' });
    // prom-client names three gauges with a counter's _total suffix; promtool (and Prometheus'
    // naming rules) refuse that, and they say little about a plugin: left out.
    for (const name of ['active_handles_total', 'active_requests_total', 'active_resources_total']) this.registry.removeSingleMetric(`tslink_nodejs_${name}`);
  }

  /** The exposition text, with the gauges set from what is true now. */
  async text(now: MetricSnapshot): Promise<string> {
    this.queueDepth.set(now.watcher.queued);
    this.streamConnected.set(now.watcher.connected ? 1 : 0);
    this.lastEventAge.set(now.watcher.lastEventAgeMs === null ? -1 : now.watcher.lastEventAgeMs / 1000);
    this.endpoints.reset();
    const counts = new Map<string, number>();
    for (const state of now.endpointStates) counts.set(state, (counts.get(state) ?? 0) + 1);
    for (const [state, n] of counts) this.endpoints.set({ state }, n);
    return this.registry.metrics();
  }

  eventHandled(e: DockerEvent, ok: boolean): void {
    // Type and action come from a fixed filter (docker/events.ts WATCHED_EVENTS): bounded labels.
    this.events.inc({ type: e.Type, action: e.Action.split(':')[0] ?? e.Action, outcome: ok ? 'ok' : 'failed' });
  }

  eventDropped(): void {
    this.dropped.inc();
  }

  streamReconnecting(): void {
    this.reconnects.inc();
  }

  /** A protocol call answered; unknown paths are counted as one label value, never their text. */
  request(url: string, status: number, seconds: number): void {
    const call = /^\/(Plugin\.Activate|NetworkDriver\.[A-Za-z]{1,40})$/.test(url) ? url.slice(1) : 'other';
    this.requests.observe({ call, status: String(status) }, seconds);
  }

  /** A node's status changed from `prev` to `next`. */
  nodeStatus(prev: NodeStatus | undefined, next: NodeStatus, joinedAt?: string): void {
    if (next.state === 'starting' && prev?.state !== 'starting') this.starts.inc();
    if (prev && next.restarts > prev.restarts) this.restarts.inc(next.restarts - prev.restarts);
    // The supervisor says when it calls crashes a loop (supervisor.ts onExit); its words may change.
    if (next.crashLoop && !prev?.crashLoop) this.crashLoops.inc();
    if (next.state === 'running' && prev?.state !== 'running' && joinedAt) this.joinToRunning.observe(Math.max(0, (Date.now() - Date.parse(joinedAt)) / 1000));
  }

  repairPass(ok: boolean, removedEndpoints: number, removedFiles: number): void {
    this.repairs.inc({ outcome: ok ? 'ok' : 'failed' });
    if (removedEndpoints) this.repairFixes.inc(removedEndpoints);
    if (removedFiles) this.gcRemoved.inc(removedFiles);
  }
}
