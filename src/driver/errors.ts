import { StateWriteError } from '../state/store.js';
/**
 * Errors a handler may answer with. The text reaches the person who ran `docker run` or
 * `docker network create` verbatim, so it always starts with `tslink:` and says what to do. The
 * code is stable (tests and tools match it); the wording may improve.
 */
export type ErrorCode =
  | 'TSLINK_REQUEST_INVALID'
  | 'TSLINK_LABEL_INVALID'
  | 'TSLINK_OPTION_INVALID'
  | 'TSLINK_NETWORK_UNSUPPORTED'
  | 'TSLINK_NETWORK_CONFLICT'
  | 'TSLINK_NOT_FOUND'
  | 'TSLINK_HOST_FAILED'
  | 'TSLINK_STATE_FAILED'
  | 'TSLINK_INTERNAL';

export class DriverError extends Error {
  constructor(
    message: string,
    readonly statusCode: number,
    readonly code: ErrorCode,
  ) {
    super(message.startsWith('tslink:') ? message : `tslink: ${message}`);
  }
}

/** The request or the user's configuration is wrong: the user can fix it. */
export const invalid = (msg: string, code: ErrorCode = 'TSLINK_REQUEST_INVALID'): DriverError => new DriverError(msg, 400, code);
/** The request names a network or endpoint this plugin does not know. */
export const notFound = (msg: string): DriverError => new DriverError(msg, 404, 'TSLINK_NOT_FOUND');
/** The request contradicts what exists (the same ID with other settings). */
export const conflict = (msg: string): DriverError => new DriverError(msg, 409, 'TSLINK_NETWORK_CONFLICT');
/** Something on the host failed: not the user's mistake, but they need to know where to look. */
export const internal = (msg: string, code: ErrorCode = 'TSLINK_HOST_FAILED'): DriverError => new DriverError(msg, 500, code);

/**
 * A record the disk refused (StateWriteError) as a protocol error, so the server knows no
 * storage errors: the store's message (it says where, and what to check), code TSLINK_STATE_FAILED.
 */
export const stateFailed = (e: unknown): never => {
  throw e instanceof StateWriteError ? internal(e.message, 'TSLINK_STATE_FAILED') : e;
};
