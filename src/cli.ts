#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { startApp } from './app.js';
import { parseSettings } from './config/settings.js';
import { createLogger } from './util/log.js';

const USAGE = `usage: tslink serve

Serves the tslink Docker network plugin on a unix socket.
Settings come from the environment:
  TS_AUTHKEY     default auth key for networks without --opt tslink.authkey
  TS_DATA_DIR    state directory (default /var/lib/docker-plugins/tailscale)
  TS_PATH        directory holding the tailscale and tailscaled binaries
  TSLINK_SOCKET  plugin socket (default /run/docker/plugins/tslink.sock)
  LOG_LEVEL      fatal|error|warn|info|debug|trace (default info)
`;

async function main(): Promise<number> {
  const { positionals, values } = parseArgs({ allowPositionals: true, options: { help: { type: 'boolean', short: 'h' } } });
  if (values.help || positionals[0] !== 'serve' || positionals.length !== 1) {
    process.stderr.write(USAGE);
    return values.help ? 0 : 2;
  }
  const parsed = parseSettings(process.env);
  if (!parsed.ok) {
    process.stderr.write(`${parsed.message}\n`);
    return 2;
  }
  const settings = parsed.settings;
  const log = createLogger(settings.logLevel);
  // Node 20 ends the process on an unhandled rejection; every background task is tracked, so one
  // reaching here is a bug: log it loudly (tests fail on this line) and keep serving.
  process.on('unhandledRejection', (e) => log.error({ err: e instanceof Error ? e.stack : String(e) }, 'unhandled rejection'));
  const app = await startApp(settings, log);
  const stop = (signal: string): void => {
    // Endpoints and their host side stay: containers keep running across a plugin restart.
    log.info({ signal }, 'stopping');
    void app.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  return -1;
}

main().then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
