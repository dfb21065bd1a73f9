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
    connectionTimeout: 120_000,
    keepAliveTimeout: 10_000,
    // Malformed HTTP, oversized headers (431), a slow sender: answered in the protocol's own form.
    clientErrorHandler: (err: Error & { code?: string }, socket) => {
      if (!socket.writable) return socket.destroy();
      const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
      const timeout = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
      const [status, reason] = tooLarge ? [431, 'Request Header Fields Too Large'] : timeout ? [408, 'Request Timeout'] : [400, 'Bad Request'];
      const what = tooLarge ? 'the request headers are too large' : timeout ? `the request did not arrive within ${REQUEST_TIMEOUT_MS / 1000} s` : 'the request is not valid HTTP';
      socket.end(rawAnswer(status, reason, `tslink: ${what}; Docker never sends that, so check what is calling the plugin socket`));
    },
  });
  app.server.maxConnections = MAX_CONNECTIONS;
  app.server.headersTimeout = REQUEST_TIMEOUT_MS;

  // Docker sends JSON under several content types (and sometimes none): parse every body as JSON.
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
    let status: number;
    let text: string;
    let code: ErrorCode = 'TSLINK_REQUEST_INVALID';
    if (err instanceof DriverError) {
      status = err.statusCode;
      text = err.message;
      code = err.code;
      if (code === 'TSLINK_STATE_FAILED') log.error({ call: req.url, err: text }, 'state write failed');
    } else if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      status = 413;
      text = `tslink: the request body is larger than ${BODY_LIMIT} bytes; Docker never sends that much, so check what is calling the plugin socket`;
    } else if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      status = err.statusCode;
      text = `tslink: bad request to ${req.url.slice(0, 100)}: ${err.message.slice(0, 500)}`;
    } else {
      status = 500;
      text = `tslink: internal error in ${req.url}: ${err.message.slice(0, 500)}; the plugin's log has details`;
      code = 'TSLINK_INTERNAL';
      log.error({ call: req.url, err: scrubSecrets(err.stack ?? err.message) }, 'handler failed');
    }
    if (status >= 400 && status < 500) log.warn({ call: req.url.slice(0, 100), status, code, err: scrubSecrets(text) }, 'request refused');
    void reply.code(status).send({ Err: scrubSecrets(text), Code: code });
  });

  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ Err: `tslink: ${req.method} ${req.url.slice(0, 100)} is not a call this network plugin answers`, Code: 'TSLINK_NOT_FOUND' });
  });

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

  return app;
}
