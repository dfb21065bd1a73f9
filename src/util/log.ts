import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

// Paths that may carry a secret anywhere in a log object. pino drops them before serialising,
// so a careless `log.info({ network })` cannot leak a key.
const REDACT_PATHS = [
  'authKey',
  '*.authKey',
  '*.*.authKey',
  'key',
  '*.key',
  'TS_AUTHKEY',
  '*.TS_AUTHKEY',
  '*["tslink.authkey"]',
  '*.*["tslink.authkey"]',
  '*.*.*["tslink.authkey"]',
];

// A key has a body of letters and digits after its kind; help text's own placeholder
// (`tskey-auth-...`) has none and stays readable.
// headscale's pre-auth keys are `hskey-auth-<body>` (v0.28+), masked the same way.
const KEY_PATTERN = /(ts|hs)key-(?!(?:auth|client|api|webhook)-(?![A-Za-z0-9]))(?:[a-z]+-)?[A-Za-z0-9]{4,}[A-Za-z0-9_\-?=&.]*/g;

/** Masks anything shaped like a Tailscale key inside free text (CLI output, error messages). */
export function scrubSecrets(text: string, extra: readonly string[] = []): string {
  let out = text.replace(KEY_PATTERN, (_m, kind: string) => `${kind}key-[redacted]`);
  for (const s of extra) if (s.length >= 4) out = out.split(s).join('[redacted]');
  return out;
}

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  const opts: LoggerOptions = {
    level,
    base: { app: 'tslink' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    hooks: {
      // Messages and string fields can quote CLI output; scrub key-shaped text there too.
      logMethod(args, method) {
        const scrubbed = args.map((a) => (typeof a === 'string' ? scrubSecrets(a) : a));
        method.apply(this, scrubbed as Parameters<typeof method>);
      },
    },
  };
  return destination ? pino(opts, destination as pino.DestinationStream) : pino(opts);
}
