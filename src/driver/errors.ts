/**
 * Errors a handler may answer with. The text reaches the person who ran `docker run` or
 * `docker network create` verbatim, so it always starts with `tslink:` and says what to do.
 */
export class DriverError extends Error {
  constructor(
    message: string,
    readonly statusCode: number,
  ) {
    super(message.startsWith('tslink:') ? message : `tslink: ${message}`);
  }
}

/** The request or the user's configuration is wrong: the user can fix it. */
export const invalid = (msg: string): DriverError => new DriverError(msg, 400);
/** The request names a network or endpoint this plugin does not know. */
export const notFound = (msg: string): DriverError => new DriverError(msg, 404);
/** Something on the host failed: not the user's mistake, but they need to know where to look. */
export const internal = (msg: string): DriverError => new DriverError(msg, 500);
