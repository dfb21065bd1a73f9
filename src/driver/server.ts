import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { DriverError, invalid } from './errors.js';
import type { Driver } from './driver.js';
import type { Logger } from '../util/log.js';
import { scrubSecrets } from '../util/log.js';
import { schemas } from './protocol.js';
import type * as P from './protocol.js';

export const CONTENT_TYPE = 'application/vnd.docker.plugins.v1+json';
export const BODY_LIMIT = 1024 * 1024;

const ajv = new Ajv({ allErrors: true, coerceTypes: false, useDefaults: false, strict: true, allowUnionTypes: true });

function describe(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? [])
    .map((e) => {
      const where = e.instancePath || '(body)';
      if (e.keyword === 'required') return `${where === '(body)' ? '' : where + '/'}${String(e.params['missingProperty'])} is missing`;
      return `${where} ${e.message ?? 'is invalid'}`;
    })
    .join('; ');
}

type Handler = (body: never) => Promise<unknown> | unknown;

/** The plugin protocol over HTTP: JSON in, JSON out, every failure a `{"Err"}` a person can act on. */
export function buildServer(driver: Driver, log: Logger): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: BODY_LIMIT, return503OnClosing: false });

  // Docker sends JSON under several content types (and sometimes none): parse every body as JSON.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, {});
    try {
      done(null, JSON.parse(text));
    } catch (e) {
      done(invalid(`tslink: the request body is not valid JSON (${(e as Error).message})`), undefined);
    }
  });

  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('content-type', CONTENT_TYPE);
    return payload;
  });

  app.addHook('onResponse', async (req, reply) => {
    log.debug({ call: req.url, status: reply.statusCode, ms: Number(reply.elapsedTime.toFixed(2)) }, 'plugin call');
  });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    let status: number;
    let text: string;
    if (err instanceof DriverError) {
      status = err.statusCode;
      text = err.message;
    } else if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      status = 413;
      text = `tslink: the request body is larger than ${BODY_LIMIT} bytes; Docker never sends that much, so check what is calling the plugin socket`;
    } else if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      status = err.statusCode;
      text = `tslink: bad request to ${req.url}: ${err.message}`;
    } else {
      status = 500;
      text = `tslink: internal error in ${req.url}: ${err.message}; the plugin's log has details`;
      log.error({ call: req.url, err: scrubSecrets(err.stack ?? err.message) }, 'handler failed');
    }
    if (status >= 400 && status < 500) log.warn({ call: req.url, status, err: scrubSecrets(text) }, 'request refused');
    void reply.code(status).send({ Err: scrubSecrets(text) });
  });

  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ Err: `tslink: ${req.method} ${req.url} is not a call this network plugin answers` });
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
