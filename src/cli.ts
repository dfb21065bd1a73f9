#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { startApp } from './app.js';
import { SETTINGS, parseSettings, settingsUsage } from './config/settings.js';
import { formatStatus, readStatus, statusExitCode } from './ops/status-cli.js';
import { createLogger } from './util/log.js';

const DEFAULT_DATA_DIR = SETTINGS.find((s) => s.env === 'TS_DATA_DIR')!.default!;

const USAGE = `usage: tslink serve
       tslink status [--json] [--data-dir DIR]

serve   serves the tslink Docker network plugin on a unix socket.
status  shows every endpoint's node (problems first, with hints), from the running plugin's
        operations socket in the data directory, or from its status files when it is down.
        Exit code 0: all running; 1: some are not; 2: nothing could be read.
        --data-dir defaults to TS_DATA_DIR, then ${DEFAULT_DATA_DIR}.

Settings come from the environment (a managed plugin: docker plugin set tslink:latest NAME=value):
${settingsUsage()}
`;

async function serve(): Promise<number> {
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
    // A close that fails still ends the process (Docker restarts a managed plugin; a unit its service).
    void app.close().then(
      () => process.exit(0),
      (e: Error) => {
        log.error({ err: e.message }, 'close failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  return -1;
}

async function status(json: boolean, dataDir: string): Promise<number> {
  let report;
  try {
    report = await readStatus(dataDir);
  } catch (e) {
    process.stderr.write(`tslink: cannot read the plugin's status from ${dataDir} (${(e as Error).message}); give --data-dir the plugin's data directory\n`);
    return 2;
  }
  process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : `${formatStatus(report)}\n`);
  return statusExitCode(report);
}

async function main(): Promise<number> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: { help: { type: 'boolean', short: 'h' }, json: { type: 'boolean' }, 'data-dir': { type: 'string' } },
  });
  const [command, ...rest] = positionals;
  if (values.help || rest.length || (command !== 'serve' && command !== 'status')) {
    process.stderr.write(USAGE);
    return values.help ? 0 : 2;
  }
  if (command === 'status') return status(values.json ?? false, values['data-dir'] ?? (process.env['TS_DATA_DIR'] || DEFAULT_DATA_DIR));
  return serve();
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
