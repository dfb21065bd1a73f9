import Fastify, { type FastifyInstance } from 'fastify';
import type { WatcherState } from '../docker/events.js';
import type { EndpointView } from './endpoint-view.js';
import type { Metrics } from './metrics.js';
import { type OpsAuth, opsAuthHook } from './ops-auth.js';

/** The operations socket's name in the data directory (`tslink status` reads it). */
export const OPS_SOCKET = 'tslink-ops.sock';

/** A scraper or two and an operator: anything past this many connections is refused. */
export const OPS_MAX_CONNECTIONS = 64;
/** Every route is a GET: a body is never needed. */
export const OPS_BODY_LIMIT = 1024;
/** A whole request must arrive within this; an idle kept-alive connection is closed after OPS_KEEP_ALIVE_MS. */
export const OPS_REQUEST_TIMEOUT_MS = 10_000;
export const OPS_KEEP_ALIVE_MS = 5_000;

/** With containers on tslink networks, this long without a Docker event reads as degraded. */
export const QUIET_EVENTS_MS = 5 * 60_000;

export interface OpsSources {
  metrics: Metrics;
  endpoints(): EndpointView[];
  watcher(): WatcherState;
  /** The first repair pass (a full listing after start) has run. */
  recovered(): boolean;
}

export type Health = 'healthy' | 'degraded' | 'unhealthy';

export interface Readiness {
  ready: boolean;
  health: Health;
  checks: { state: string; recovery: string; events: string };
}

/** What /readyz answers: ready once state is loaded, recovery ran and the event stream is open. */
export function readiness(src: Pick<OpsSources, 'watcher' | 'recovered'>, endpointCount: number): Readiness {
  const w = src.watcher();
  const quiet = w.connected && endpointCount > 0 && (w.lastEventAgeMs === null || w.lastEventAgeMs > QUIET_EVENTS_MS);
  const health: Health = !w.connected ? 'unhealthy' : quiet ? 'degraded' : 'healthy';
  const checks = {
    state: 'loaded',
    recovery: src.recovered() ? 'done' : 'pending: the first container listing has not run yet',
    events: !w.connected
      ? `unhealthy: the Docker event stream is down (${w.reconnects} reconnects so far)`
      : quiet
        ? `degraded: no Docker event for over ${QUIET_EVENTS_MS / 60_000} min while containers exist`
        : 'healthy',
  };
  return { ready: src.recovered() && w.connected, health, checks };
}

/**
 * The operations listener: health, readiness, endpoints and metrics, apart from the plugin
 * socket (Docker's), so a scraper or an operator never queues behind a Join. With `auth` (the
 * TCP side) every route but /healthz needs the bearer token; without it (the unix socket, which
 * its file mode guards) none does.
 */
export function buildOpsServer(src: OpsSources, opts: { auth?: OpsAuth } = {}): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: OPS_BODY_LIMIT,
    connectionTimeout: 30_000,
    requestTimeout: OPS_REQUEST_TIMEOUT_MS,
    keepAliveTimeout: OPS_KEEP_ALIVE_MS,
  });
  app.server.maxConnections = OPS_MAX_CONNECTIONS;
  app.server.headersTimeout = OPS_REQUEST_TIMEOUT_MS;
  if (opts.auth) app.addHook('onRequest', opsAuthHook(opts.auth));
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const r = readiness(src, src.endpoints().length);
    return reply.code(r.ready ? 200 : 503).send(r);
  });
  app.get('/v1/endpoints', async () => ({ endpoints: src.endpoints() }));
  app.get<{ Params: { id: string } }>('/v1/endpoints/:id', async (req, reply) => {
    const id = req.params.id;
    const found = src.endpoints().filter((e) => e.endpoint === id || (id.length >= 12 && e.endpoint.startsWith(id)) || e.containerName === id || e.hostname === id);
    if (found.length !== 1) return reply.code(404).send({ error: found.length ? `${id} names ${found.length} endpoints; give more of the ID` : `no endpoint ${id}` });
    return found[0];
  });
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', src.metrics.registry.contentType);
    return src.metrics.text({ watcher: src.watcher(), endpointStates: src.endpoints().map((e) => e.state) });
  });
  return app;
}
