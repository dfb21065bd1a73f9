import type { Duplex } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { DriverError, invalid, type ErrorCode } from './errors.js';
import { joinProblems } from '../config/messages.js';
import type { Driver } from './driver.js';
import type { Logger } from '../util/log.js';
import { scrubSecrets } from '../util/log.js';
import { schemas } from './protocol.js';
import type * as P from './protocol.js';

export const CONTENT_TYPE = 'application/vnd.docker.plugins.v1+json';
/** Docker's largest body is a CreateNetwork with its --opt set: a few KiB. */
export const BODY_LIMIT = 256 * 1024;
/** Docker keeps a handful of connections; anything past this is not Docker. */
export const MAX_CONNECTIONS = 256;
/** A whole request (headers and body) must arrive within this; a slow sender is cut off. */
export const REQUEST_TIMEOUT_MS = 10_000;
/** An idle connection Docker keeps open: closed after this long without a request, or this long idle between requests. */
const CONNECTION_TIMEOUT_MS = 120_000;
const KEEP_ALIVE_TIMEOUT_MS = 10_000;

const ajv = new Ajv({ allErrors: true, coerceTypes: false, useDefaults: false, strict: true, allowUnionTypes: true });

function describe(errors: ErrorObject[] | null | undefined): string {
  return joinProblems(
    (errors ?? []).map((e) => {
      const where = (e.instancePath || '(body)').slice(0, 200);
      if (e.keyword === 'required') return `${where === '(body)' ? '' : where + '/'}${String(e.params['missingProperty'])} is missing`;
      return `${where} ${e.message ?? 'is invalid'}`;
    }),
  );
}

/** A whole HTTP answer for a socket the HTTP parser gave up on: still JSON `{"Err"}`. */
function rawAnswer(status: number, reason: string, err: string): string {
  const body = JSON.stringify({ Err: err, Code: 'TSLINK_REQUEST_INVALID' });
  return `HTTP/1.1 ${status} ${reason}\r\ncontent-type: ${CONTENT_TYPE}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
}

type Handler = (body: never) => Promise<unknown> | unknown;

/** The plugin protocol over HTTP: JSON in, JSON out, every failure a `{"Err"}` a person can act on. */
export function buildServer(driver: Driver, log: Logger, observe: (url: string, status: number, seconds: number) => void = () => undefined): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: BODY_LIMIT,
    return503OnClosing: false,
    requestTimeout: REQUEST_TIMEOUT_MS,
    connectionTimeout: CONNECTION_TIMEOUT_MS,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    clientErrorHandler: answerClientError,
  });
  app.server.maxConnections = MAX_CONNECTIONS;
  app.server.headersTimeout = REQUEST_TIMEOUT_MS;
  parseEveryBodyAsJson(app);
  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('content-type', CONTENT_TYPE);
    return payload;
  });
  app.addHook('onResponse', async (req, reply) => {
    log.debug({ call: req.url.slice(0, 100), status: reply.statusCode, ms: Number(reply.elapsedTime.toFixed(2)) }, 'plugin call');
    // The matched route, never the raw path: an unknown path adds no new metrics series.
    observe(req.routeOptions.url ?? 'other', reply.statusCode, reply.elapsedTime / 1000);
  });
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    const { status, text, code } = errorAnswer(err, req.url, log);
    if (status >= 400 && status < 500) log.warn({ call: req.url.slice(0, 100), status, code, err: scrubSecrets(text) }, 'request refused');
    void reply.code(status).send({ Err: scrubSecrets(text), Code: code });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ Err: `tslink: ${req.method} ${req.url.slice(0, 100)} is not a call this network plugin answers`, Code: 'TSLINK_NOT_FOUND' });
  });
  addRoutes(app, driver);
  return app;
}

/** Malformed HTTP, oversized headers (431), a slow sender: answered in the protocol's own form. */
function answerClientError(err: Error & { code?: string }, socket: Duplex): void {
  if (!socket.writable) return void socket.destroy();
  const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
  const timeout = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
  const [status, reason] = tooLarge ? [431, 'Request Header Fields Too Large'] : timeout ? [408, 'Request Timeout'] : [400, 'Bad Request'];
  const what = tooLarge ? 'the request headers are too large' : timeout ? `the request did not arrive within ${REQUEST_TIMEOUT_MS / 1000} s` : 'the request is not valid HTTP';
  socket.end(rawAnswer(status, reason, `tslink: ${what}; Docker never sends that, so check what is calling the plugin socket`));
}

/** Docker sends JSON under several content types (and sometimes none): every body is parsed as JSON. */
function parseEveryBodyAsJson(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, {});
    try {
      done(null, JSON.parse(text));
    } catch (e) {
      done(invalid(`tslink: the request body is not valid JSON (${(e as Error).message.slice(0, 200)})`), undefined);
    }
  });
}

/** The status, text and code of a failed call. */
function errorAnswer(err: Error & { statusCode?: number; code?: string }, url: string, log: Logger): { status: number; text: string; code: ErrorCode } {
  if (err instanceof DriverError) {
    if (err.code === 'TSLINK_STATE_FAILED') log.error({ call: url, err: err.message }, 'state write failed');
    return { status: err.statusCode, text: err.message, code: err.code };
  }
  if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return { status: 413, text: `tslink: the request body is larger than ${BODY_LIMIT} bytes; Docker never sends that much, so check what is calling the plugin socket`, code: 'TSLINK_REQUEST_INVALID' };
  }
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
    return { status: err.statusCode, text: `tslink: bad request to ${url.slice(0, 100)}: ${err.message.slice(0, 500)}`, code: 'TSLINK_REQUEST_INVALID' };
  }
  log.error({ call: url, err: scrubSecrets(err.stack ?? err.message) }, 'handler failed');
  return { status: 500, text: `tslink: internal error in ${url}: ${err.message.slice(0, 500)}; the plugin's log has details`, code: 'TSLINK_INTERNAL' };
}

/** Every call of the protocol, each body checked against its schema first. */
function addRoutes(app: FastifyInstance, driver: Driver): void {
  const route = (name: string, schema: object, handler: Handler): void => {
    const validate: ValidateFunction = ajv.compile(schema);
    app.post(`/${name}`, async (req: FastifyRequest) => {
      const body = req.body ?? {};
      if (!validate(body)) {
        throw invalid(`tslink: invalid ${name} request: ${describe(validate.errors)}`);
      }
      return (await handler(body as never)) ?? {};
    });
  };

  route('Plugin.Activate', schemas.Any, () => ({ Implements: ['NetworkDriver'] }));
  route('NetworkDriver.GetCapabilities', schemas.Any, () => driver.capabilities());
  route('NetworkDriver.CreateNetwork', schemas.CreateNetwork, (b: P.CreateNetworkRequest) => driver.createNetwork(b));
  route('NetworkDriver.DeleteNetwork', schemas.Network, (b: P.NetworkRequest) => driver.deleteNetwork(b));
  // Global-scope (Swarm) calls: tslink is local-scope today, so there is nothing to allocate.
  route('NetworkDriver.AllocateNetwork', schemas.Network, () => ({ Options: {} }));
  route('NetworkDriver.FreeNetwork', schemas.Network, () => ({}));
  route('NetworkDriver.CreateEndpoint', schemas.CreateEndpoint, (b: P.CreateEndpointRequest) => driver.createEndpoint(b));
  route('NetworkDriver.DeleteEndpoint', schemas.Endpoint, (b: P.EndpointRequest) => driver.deleteEndpoint(b));
  route('NetworkDriver.EndpointOperInfo', schemas.Endpoint, (b: P.EndpointRequest) => driver.operInfo(b));
  route('NetworkDriver.Join', schemas.Join, (b: P.JoinRequest) => driver.join(b));
  route('NetworkDriver.Leave', schemas.Endpoint, (b: P.EndpointRequest) => driver.leave(b));
  route('NetworkDriver.DiscoverNew', schemas.Discover, () => ({}));
  route('NetworkDriver.DiscoverDelete', schemas.Discover, () => ({}));
  // Published ports (-p) are not a tslink feature (tslink.serve.* is); nothing to program.
  route('NetworkDriver.ProgramExternalConnectivity', schemas.Endpoint, () => ({}));
  route('NetworkDriver.RevokeExternalConnectivity', schemas.Endpoint, () => ({}));
}
