/**
 * The operations listener's TCP side is authenticated (issue 22): every route but /healthz needs
 * `Authorization: Bearer <token>`, the token being the file `ops-token` in the data directory
 * (mode 0600, made at start when absent). The unix socket needs none: its file mode guards it.
 * The token is never logged, never quoted in an answer, never part of status output.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { writeFileAtomic } from '../util/atomic-file.js';

/** The token's file name in the data directory. */
export const OPS_TOKEN_FILE = 'ops-token';
/** The routes a caller without the token may use: a liveness probe must work without secrets. */
export const OPEN_ROUTES: ReadonlySet<string> = new Set(['/healthz']);
/** What a token file may hold (trimmed): printable ASCII without blanks, 16 to 1024 characters. */
const TOKEN_TEXT = /^[\x21-\x7e]{16,1024}$/;
/** A token file larger than this is no token (and is not read whole). */
const MAX_TOKEN_FILE = 4096;

export interface OpsToken {
  token: string;
  /** The file, as this process sees it. */
  file: string;
  /** Made at this start (absent before). */
  created: boolean;
  /** Its mode was wider than 0600 and was narrowed. */
  narrowed: boolean;
}

/**
 * The token from `<dataDir>/ops-token`, made when absent: 32 random bytes in hex, written
 * atomically with mode 0600. A file of the wrong kind or content is an error naming the file
 * (never its content), so the TCP listener never opens with a token nobody meant.
 */
export async function loadOpsToken(dataDir: string): Promise<OpsToken> {
  const file = join(dataDir, OPS_TOKEN_FILE);
  const unusable = (why: string): Error =>
    new Error(`tslink: the operations token file ${file} ${why}; delete it and tslink makes a new one at start, or write 16-1024 printable characters without blanks into it (mode 0600)`);
  let fh;
  try {
    // No following a link, no waiting on a FIFO: only a regular file is read.
    fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw unusable('is a symbolic link');
    if (code !== 'ENOENT') throw e;
    const token = randomBytes(32).toString('hex');
    await writeFileAtomic(file, token, 0o600);
    return { token, file, created: true, narrowed: false };
  }
  let token: string;
  let narrowed: boolean;
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw unusable('is not a regular file');
    if (st.size > MAX_TOKEN_FILE) throw unusable(`is ${st.size} bytes long`);
    narrowed = (st.mode & 0o077) !== 0;
    if (narrowed) await fh.chmod(0o600);
    token = (await fh.readFile('utf8')).trim();
  } finally {
    await fh.close();
  }
  if (!TOKEN_TEXT.test(token)) throw unusable(token === '' ? 'is empty' : 'holds no usable token');
  return { token, file, created: false, narrowed };
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/**
 * Whether an Authorization header carries the token. Both sides are hashed first, so the
 * comparison is over equal lengths and in constant time whatever was sent.
 */
export function bearerMatches(expectedDigest: Buffer, header: string | undefined): boolean {
  const m = /^Bearer[ \t]+([\x21-\x7e]+)[ \t]*$/i.exec(header ?? '');
  const same = timingSafeEqual(digest(m?.[1] ?? ''), expectedDigest);
  return m !== null && same;
}

export interface OpsAuth {
  token: string;
  /** Where a person finds the token, as told in a refusal (the host's path for a managed plugin). */
  where: string;
}

/** A Fastify onRequest hook: 401 with where the token is, unless the route is open or the token matches. */
export function opsAuthHook(auth: OpsAuth): (req: FastifyRequest, reply: FastifyReply) => Promise<unknown> {
  const expected = digest(auth.token);
  return async (req, reply) => {
    if (OPEN_ROUTES.has(req.routeOptions.url ?? '')) return undefined;
    const header = req.headers.authorization;
    if (bearerMatches(expected, header)) return undefined;
    const what = header === undefined ? 'this listener needs the header "Authorization: Bearer <token>"' : 'the bearer token is wrong';
    return reply
      .code(401)
      .header('www-authenticate', 'Bearer realm="tslink"')
      .send({ error: `tslink: ${what}; the token is in ${auth.where} (readable by root only); /healthz needs no token` });
  };
}

/** Where the token file is, as the person reading a refusal or the log finds it. */
export function tokenWhere(file: string, managed: boolean): string {
  return managed ? `${OPS_TOKEN_FILE} in the plugin's data mount (/var/lib/docker-plugins/tailscale/${OPS_TOKEN_FILE} on the host by default; ${file} inside the plugin)` : file;
}
