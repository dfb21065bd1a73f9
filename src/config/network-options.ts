/**
 * Network options (`docker network create --opt tslink.*`). Auth keys must have no surrounding
 * whitespace; unknown keys are named without their values (a typo such as `tslink.autkey` would
 * otherwise print the key).
 */
import { HIDDEN, type Parsed, type Report, failed, reporter, show, showKey, showUrl, suggestion, textOf } from './messages.js';
import { DEFAULT_MTU, MAX_MTU, MIN_MTU } from './mtu.js';
import { ROUTING_KEYS, ROUTING_PARSERS, type Routing, networkRoutingProblems } from './routing.js';
import { LABEL_PREFIX, boolParser, reportedTags, valueLengthProblem } from './values.js';
/** Routing options (routing.ts): the exit node, LAN access and route acceptance bind every node; the rest are defaults. */
export interface NetworkConfig extends Routing {
  /** A secret. Absent when the plugin's TS_AUTHKEY is to be used. */
  authKey?: string;
  /** When set, every node on the network gets exactly these tags (see `effectiveTags`). */
  tags?: string[];
  loginServer?: string;
  ephemeral: boolean;
  /** Labels an image carries may configure this network's nodes (off: only `docker run -l` and Compose labels do). */
  imageLabels?: boolean;
  /** Tailnet names resolve in the network's containers (a container's tslink.magicdns overrides it). */
  magicDns?: boolean;
  mtu: number;
}

export const MTU_OPTION = 'com.docker.network.driver.mtu';
export const KNOWN_NETWORK_OPTIONS: readonly string[] = ['tslink.authkey', 'tslink.tags', 'tslink.loginserver', 'tslink.ephemeral', 'tslink.image-labels', 'tslink.magicdns', ...ROUTING_KEYS];


/** Why a `file:` key cannot work, per place a key is given. */
const FILE_KEY_WHY = {
  option:
    'the key must be given as the value itself: Docker hands the plugin only the text of the option, and the plugin cannot read files on the machine that runs docker network create',
  env: 'tslink reads no key files: the key must be the value itself (tslink hands it to tailscale through a root-only file of its own)',
} as const;

/** Why an auth key (network option or TS_AUTHKEY) is unusable, or undefined. Never quotes it. */
export function authKeyProblem(value: string, where: keyof typeof FILE_KEY_WHY): string | undefined {
  if (value === '') return 'it is empty';
  if (/\s/.test(value)) return 'it contains whitespace; a Tailscale auth key is one word like tskey-auth-... (check for a stray space or line break from copy and paste)';
  if (value.toLowerCase().startsWith('file:')) return `it starts with file:, but ${FILE_KEY_WHY[where]}`;
  return undefined;
}

/** The missing-key message, naming the plugin as the user must type it: `tslink:latest` when managed. */
function noKeyError(managed: boolean): string {
  const name = managed ? 'tslink:latest' : 'tslink';
  const fallback = managed
    ? `set a default for all networks with \`docker plugin disable ${name} && docker plugin set ${name} TS_AUTHKEY=tskey-auth-... && docker plugin enable ${name}\``
    : 'set a default for all networks in the TS_AUTHKEY environment variable of the plugin process';
  return `tslink: this network has no auth key: give one with \`docker network create -d ${name} --opt tslink.authkey=tskey-auth-... <network>\`, or ${fallback}`;
}

type OptionParser = (value: string, config: NetworkConfig, report: Report) => void;

const NETWORK_OPTIONS: Record<string, OptionParser> = {
  'tslink.authkey': (value, config, report) => {
    const problem = authKeyProblem(value, 'option');
    if (problem) report(`${problem}; e.g. --opt tslink.authkey=tskey-auth-..., or leave the option out to use the plugin's TS_AUTHKEY`);
    else config.authKey = value;
  },
  'tslink.tags': (value, config, report) => {
    const tags = reportedTags(value, report);
    if (tags) config.tags = tags;
  },
  'tslink.loginserver': (value, config, report) => {
    const v = value.trim();
    let url: URL | undefined;
    try {
      url = new URL(v);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:') || url.hostname === '') {
      report('not an http:// or https:// URL; give the control server URL, e.g. https://headscale.example.com');
    } else if (url.username !== '' || url.password !== '') {
      report('the URL contains credentials (user:password@); give the URL alone, e.g. https://headscale.example.com: nodes log in with the auth key');
    } else config.loginServer = v;
  },
  'tslink.ephemeral': boolParser<NetworkConfig>('must be true or false', (config, b) => (config.ephemeral = b)),
  'tslink.image-labels': boolParser<NetworkConfig>('must be true (an image\'s tslink.* labels may configure nodes) or false (the default: they may not)', (config, b) => (config.imageLabels = b)),
  'tslink.magicdns': boolParser<NetworkConfig>('must be true (tailnet names resolve in the containers, the default) or false; a container\'s own tslink.magicdns label overrides it', (config, b) => (config.magicDns = b)),
  ...ROUTING_PARSERS,
};

function parseMtu(raw: unknown, report: Report): number | undefined {
  const text = typeof raw === 'number' || typeof raw === 'string' ? String(raw).trim() : '';
  const n = /^[0-9]{1,6}$/.test(text) ? Number(text) : NaN;
  if (n >= MIN_MTU && n <= MAX_MTU) return n;
  report(`must be a whole number from ${MIN_MTU} to ${MAX_MTU} (the default is ${DEFAULT_MTU})`);
  return undefined;
}

function showOptionValue(key: string, raw: unknown): string {
  if (key === 'tslink.authkey') return HIDDEN;
  if (key === 'tslink.loginserver') return showUrl(textOf(raw));
  return show(textOf(raw));
}

/**
 * Hides an auth key in every message, whatever other value happened to hold it. Keys shorter
 * than 8 characters are left alone: hiding them would mangle ordinary words of the messages.
 */
export function scrubKey(errors: string[], key: unknown, where: string): string[] {
  if (typeof key !== 'string' || key.trim().length < 8) return errors;
  return errors.map((e) => {
    let out = e;
    for (const secret of new Set([key, key.trim()])) out = out.split(secret).join(HIDDEN);
    return out.includes(key.trim()) ? `tslink: ${where} is invalid, but its message would reveal the auth key; check the values given` : out;
  });
}

/**
 * A network's configuration from its `--opt` map (`com.docker.network.generic`), which also
 * holds `com.docker.network.driver.mtu` when given. Other non-`tslink.` options are ignored.
 * `envAuthKeyPresent`: the plugin has TS_AUTHKEY, so the network may go without a key.
 * `managed`: the plugin runs as a managed plugin (messages name it `tslink:latest`).
 */
export function parseNetworkOptions(
  generic: Readonly<Record<string, unknown>> | null | undefined,
  ctx: { envAuthKeyPresent: boolean; managed?: boolean },
): Parsed<'config', NetworkConfig> {
  const options = generic ?? {};
  const errors: string[] = [];
  const config: NetworkConfig = { ephemeral: false, mtu: DEFAULT_MTU };
  for (const key of Object.keys(options).sort()) {
    const raw = options[key];
    const report = reporter(errors, 'option', key, showOptionValue(key, raw));
    if (key === MTU_OPTION) {
      const mtu = parseMtu(raw, report);
      if (mtu !== undefined) config.mtu = mtu;
      continue;
    }
    if (!key.toLowerCase().startsWith(LABEL_PREFIX)) continue;
    const parser = NETWORK_OPTIONS[key];
    if (!parser) errors.push(`tslink: unknown option ${showKey(key)}${suggestion(key, KNOWN_NETWORK_OPTIONS)}; the tslink options are ${KNOWN_NETWORK_OPTIONS.join(', ')} (and ${MTU_OPTION})`);
    else if (typeof raw !== 'string') report('must be text');
    else {
      const tooLong = valueLengthProblem(raw, 'option');
      if (tooLong) report(tooLong);
      else parser(raw, config, report);
    }
  }
  errors.push(...networkRoutingProblems(config));
  if (!Object.hasOwn(options, 'tslink.authkey') && !ctx.envAuthKeyPresent) errors.push(noKeyError(ctx.managed ?? false));
  return errors.length ? failed(scrubKey(errors, options['tslink.authkey'], 'a network option')) : { ok: true, config };
}

