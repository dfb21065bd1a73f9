// Shared pieces of the tailscale/tailscaled TEST DOUBLE. Never shipped in a product build.
// The contract it enforces, with the real sources it follows, is test/double/README.md.
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The one Tailscale release the double stands in for (README.md, "Pinned version"). */
export const VERSION = '1.102.5';
/** What the real binary reports as its long version (`status --json` Version); ours says what it is. */
export const LONG_VERSION = `${VERSION}-ttestdouble-gtestdouble`;
/** ipn.DefaultControlURL (ipn/prefs.go:41 at v1.94.2). */
export const DEFAULT_CONTROL_URL = 'https://controlplane.tailscale.com';
/** ipn.IsLoginServerSynonym (ipn/prefs.go:51-53). */
export const isLoginServerSynonym = (u) => u === 'https://login.tailscale.com' || u === 'https://controlplane.tailscale.com';

/** The prefix of every refusal that is the double's own, stricter than the real binary. */
export const DOUBLE_SAYS = 'tailscale test double';

// ---------------------------------------------------------------------------------------------
// Go's flag package, as Tailscale's binaries use it (Go src/flag/flag.go, FlagSet.parseOne).

export class FlagError extends Error {}
/** -h / -help: Go prints the usage and Parse returns flag.ErrHelp. */
export class HelpRequested extends Error {}

const BOOL_TRUE = ['1', 't', 'T', 'TRUE', 'true', 'True'];
const BOOL_FALSE = ['0', 'f', 'F', 'FALSE', 'false', 'False'];

/** strconv.ParseBool; undefined when s is not a boolean. */
export function goParseBool(s) {
  if (BOOL_TRUE.includes(s)) return true;
  if (BOOL_FALSE.includes(s)) return false;
  return undefined;
}

/** strconv.underscoreOK. */
function underscoreOK(s) {
  let saw = '^';
  let i = 0;
  if (s.length >= 1 && (s[0] === '-' || s[0] === '+')) s = s.slice(1);
  let hex = false;
  if (s.length >= 2 && s[0] === '0' && 'box'.includes(s[1].toLowerCase())) {
    i = 2;
    saw = '0';
    hex = s[1].toLowerCase() === 'x';
  }
  for (; i < s.length; i++) {
    const c = s[i];
    if ((c >= '0' && c <= '9') || (hex && c.toLowerCase() >= 'a' && c.toLowerCase() <= 'f')) {
      saw = '0';
      continue;
    }
    if (c === '_') {
      if (saw !== '0') return false;
      saw = '_';
      continue;
    }
    if (saw === '_') return false;
    saw = '!';
  }
  return saw !== '_';
}

/**
 * strconv.ParseUint(s, base, 64): { value: bigint } or { err: 'parse error' | 'value out of range' }
 * (the texts Go's flag package reports for numeric flags).
 */
export function goParseUint(s, base = 0) {
  const s0 = s;
  if (s === '') return { err: 'parse error' };
  const base0 = base === 0;
  if (base0) {
    base = 10;
    if (s[0] === '0') {
      const p = s.length >= 3 ? s[1].toLowerCase() : '';
      if (p === 'b') { base = 2; s = s.slice(2); }
      else if (p === 'o') { base = 8; s = s.slice(2); }
      else if (p === 'x') { base = 16; s = s.slice(2); }
      else { base = 8; s = s.slice(1); }
    }
  }
  const max = (1n << 64n) - 1n;
  let n = 0n;
  let underscores = false;
  for (const c of s) {
    if (c === '_' && base0) { underscores = true; continue; }
    const d = /[0-9]/.test(c) ? c.charCodeAt(0) - 48 : /[a-z]/i.test(c) ? c.toLowerCase().charCodeAt(0) - 87 : 99;
    if (d >= base) return { err: 'parse error' };
    n = n * BigInt(base) + BigInt(d);
    if (n > max) return { err: 'value out of range' };
  }
  if (underscores && !underscoreOK(s0)) return { err: 'parse error' };
  return { value: n };
}

/** strconv.ParseInt(s, 0, 64). */
export function goParseInt(s) {
  if (s === '') return { err: 'parse error' };
  const neg = s[0] === '-';
  const body = s[0] === '-' || s[0] === '+' ? s.slice(1) : s;
  const r = goParseUint(body, 0);
  if (r.err) return r;
  if (r.value > (neg ? 1n << 63n : (1n << 63n) - 1n)) return { err: 'value out of range' };
  return { value: neg ? -r.value : r.value };
}

const DURATION_UNITS = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** time.ParseDuration, in milliseconds; undefined when Go would refuse it. */
export function goParseDuration(s) {
  let neg = false;
  if (s !== '' && (s[0] === '-' || s[0] === '+')) {
    neg = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') return undefined;
  let total = 0;
  while (s !== '') {
    if (!(s[0] === '.' || (s[0] >= '0' && s[0] <= '9'))) return undefined;
    const m = /^(\d*)(?:\.(\d*))?/.exec(s);
    const pre = m[1] !== '';
    const post = m[2] !== undefined && m[2] !== '';
    if (!pre && !post) return undefined;
    s = s.slice(m[0].length);
    let i = 0;
    while (i < s.length && s[i] !== '.' && !(s[i] >= '0' && s[i] <= '9')) i++;
    if (i === 0) return undefined; // missing unit
    const unit = DURATION_UNITS[s.slice(0, i)];
    if (unit === undefined) return undefined; // unknown unit
    s = s.slice(i);
    total += Number(`${m[1] || '0'}.${m[2] ?? '0'}`) * unit;
  }
  if (total * 1e6 > 2 ** 63 - 1) return undefined; // overflow
  return neg ? -total : total;
}

/** strconv.Quote (what Go's %q prints for a string). */
export function goQuote(s) {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0);
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (c >= 0x20 && c < 0x7f) out += ch;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\x07') out += '\\a';
    else if (ch === '\b') out += '\\b';
    else if (ch === '\f') out += '\\f';
    else if (ch === '\v') out += '\\v';
    else if (c < 0x80) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else if (/\p{C}|\p{Z}/u.test(ch) && ch !== ' ') out += c > 0xffff ? `\\U${c.toString(16).padStart(8, '0')}` : `\\u${c.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

/** strconv.QuoteRune of one byte (what Go's %q prints for a byte). */
export function goQuoteByte(b) {
  const ch = String.fromCodePoint(b);
  if (ch === "'" || ch === '\\') return `'\\${ch}'`;
  if (b >= 0x20 && b < 0x7f) return `'${ch}'`;
  const named = { 7: 'a', 8: 'b', 12: 'f', 10: 'n', 13: 'r', 9: 't', 11: 'v' }[b];
  if (named) return `'\\${named}'`;
  if (b < 0x20 || b === 0x7f) return `'\\x${b.toString(16).padStart(2, '0')}'`;
  if (b <= 0xa0 || b === 0xad) return `'\\u${b.toString(16).padStart(4, '0')}'`;
  return `'${ch}'`;
}

/** Go's %q of a []string: ["a" "b"]. */
export const goQuoteList = (xs) => `[${xs.map(goQuote).join(' ')}]`;

/**
 * Parses flags the way Go's FlagSet.Parse does (single or double dash, `-f=v` or `-f v`, booleans
 * take a value only after `=`, parsing stops at the first non-flag argument or after `--`).
 *
 * defs: { name: { type, set?, contract? } }, type one of
 *   'string' | 'func' (any value), 'bool' (flag.BoolVar: "parse error"), 'strbool' (a custom bool
 *   flag whose Set returns strconv's own error), 'notfalse' (only "true"), 'uint' | 'int' (base 0,
 *   64 bits), 'duration', 'port' (tailscaled's flagtype.PortValue), 'value' (set(v) returns an
 *   error text or undefined).
 * opts.noDup: Tailscale's CLI wraps every flag so that a second use fails (cli.go:177-188).
 * Returns { values, seen: [names in order], rest }; throws FlagError or HelpRequested.
 */
export function parseGoFlags(args, defs, opts = {}) {
  const values = {};
  const seen = [];
  let i = 0;
  for (; i < args.length; i++) {
    const s = args[i];
    if (s.length < 2 || s[0] !== '-') break;
    let minuses = 1;
    if (s[1] === '-') {
      minuses = 2;
      if (s.length === 2) { i++; break; }
    }
    let name = s.slice(minuses);
    if (name.length === 0 || name[0] === '-' || name[0] === '=') throw new FlagError(`bad flag syntax: ${s}`);
    let hasValue = false;
    let value = '';
    const eq = name.indexOf('=', 1);
    if (eq > 0) {
      value = name.slice(eq + 1);
      hasValue = true;
      name = name.slice(0, eq);
    }
    const def = Object.hasOwn(defs, name) ? defs[name] : undefined;
    if (!def) {
      if (name === 'help' || name === 'h') throw new HelpRequested();
      throw new FlagError(`flag provided but not defined: -${name}`);
    }
    const isBool = ['bool', 'strbool', 'notfalse'].includes(def.type);
    if (!isBool && !hasValue) {
      if (i + 1 < args.length) {
        hasValue = true;
        value = args[++i];
      } else throw new FlagError(`flag needs an argument: -${name}`);
    }
    const fail = (err) => {
      if (!isBool) return new FlagError(`invalid value ${goQuote(value)} for flag -${name}: ${err}`);
      return hasValue ? new FlagError(`invalid boolean value ${goQuote(value)} for -${name}: ${err}`) : new FlagError(`invalid boolean flag ${name}: ${err}`);
    };
    if (opts.noDup && seen.includes(name)) throw fail('flag provided multiple times');
    const v = hasValue ? value : 'true';
    let parsed;
    switch (def.type) {
      case 'bool':
        parsed = goParseBool(v);
        if (parsed === undefined) throw fail('parse error');
        break;
      case 'strbool':
        parsed = goParseBool(v);
        if (parsed === undefined) throw fail(`strconv.ParseBool: parsing ${goQuote(v)}: invalid syntax`);
        break;
      case 'notfalse':
        if (v !== 'true') throw fail("unsupported value; only 'true' is allowed");
        parsed = true;
        break;
      case 'uint': {
        const r = goParseUint(v);
        if (r.err) throw fail(r.err);
        parsed = r.value;
        break;
      }
      case 'int': {
        const r = goParseInt(v);
        if (r.err) throw fail(r.err);
        parsed = r.value;
        break;
      }
      case 'duration':
        parsed = goParseDuration(v);
        if (parsed === undefined) throw fail('parse error');
        break;
      case 'port': {
        if (v === '') throw fail("can't be the empty string");
        if (v.includes(':')) throw fail('expecting just a port number, without a colon');
        const r = goParseUint(v, 10);
        if (r.err) throw fail('not a valid number');
        if (r.value > 65535n) throw fail('out of range for port number');
        parsed = Number(r.value);
        break;
      }
      case 'value': {
        const err = def.set(v);
        if (err) throw fail(err);
        parsed = v;
        break;
      }
      default:
        parsed = v;
    }
    values[name] = parsed;
    seen.push(name);
  }
  return { values, seen, rest: args.slice(i) };
}

// ---------------------------------------------------------------------------------------------
// Tailscale's validators (byte-wise, as Go's are).

const isAlpha = (b) => (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
const isAlnum = (b) => isAlpha(b) || (b >= 0x30 && b <= 0x39);

/** dnsname.ValidLabel (util/dnsname/dnsname.go:99-120): an error text or undefined. */
export function validLabel(label) {
  const b = Buffer.from(label, 'utf8');
  if (b.length === 0) return 'empty DNS label';
  if (b.length > 63) return `${goQuote(label)} is too long, max length is 63 bytes`;
  if (!isAlnum(b[0])) return `${goQuote(label)} is not a valid DNS label: must start with a letter or number`;
  if (!isAlnum(b[b.length - 1])) return `${goQuote(label)} is not a valid DNS label: must end with a letter or number`;
  for (let i = 1; i < b.length - 1; i++) {
    if (!isAlnum(b[i]) && b[i] !== 0x2d) return `${goQuote(label)} is not a valid DNS label: contains invalid character ${goQuoteByte(b[i])}`;
  }
  return undefined;
}

/** dnsname.ValidHostname (dnsname.go:219-231, with ToFQDN at :23-65). */
export function validHostname(hostname) {
  let s = hostname;
  if (s === '' || s === '.') return validLabel('');
  if (s[0] === '.') s = s.slice(1);
  let total = Buffer.byteLength(s);
  if (s.endsWith('.')) s = s.slice(0, -1);
  else total += 1;
  if (total > 254) return `${goQuote(s)} is too long to be a DNS name`;
  const labels = s.split('.');
  for (const l of labels.slice(0, -1)) {
    if (Buffer.byteLength(l) === 0 || Buffer.byteLength(l) > 63) return `${goQuote(l)} is not a valid DNS label`;
  }
  for (const l of labels) {
    const err = validLabel(l);
    if (err) return err;
  }
  return undefined;
}

/** tailcfg.CheckTag (tailcfg/tailcfg.go:706-726). */
export function checkTag(tag) {
  if (!tag.startsWith('tag:')) return "tags must start with 'tag:'";
  const b = Buffer.from(tag.slice(4), 'utf8');
  if (b.length === 0) return 'tag names must not be empty';
  if (!isAlpha(b[0])) return "tag names must start with a letter, after 'tag:'";
  for (const c of b) if (!isAlnum(c) && c !== 0x2d) return 'tag names can only contain numbers, letters, or dashes';
  return undefined;
}

/** tailcfg.ServiceName.Validate (tailcfg/tailcfg.go:961-970). */
export function validateServiceName(sn) {
  if (!sn.startsWith('svc:')) return `${goQuote(sn)} is not a valid service name: must start with 'svc:'`;
  if (sn === 'svc:') return `${goQuote(sn)} is not a valid service name: must not be empty after the 'svc:' prefix`;
  return validLabel(sn.slice(4));
}

/** validAppCap (cmd/tailscale/cli/serve_v2.go:110), in JavaScript's spelling. */
export const APP_CAP = /^([\p{L}\p{N}-]+\.)+[\p{L}\p{N}-]+\/[\p{L}\p{N}\-/]+$/u;

/** acceptAppCapsFlag.Set (serve_v2.go:113-126): an error text or undefined. */
export function checkAppCaps(value) {
  if (value === '') return undefined;
  for (const raw of value.split(',')) {
    const cap = raw.trim();
    if (!APP_CAP.test(cap)) return `${goQuote(cap)} does not match the form {domain}/{name}, where domain must be a fully qualified domain name`;
  }
  return undefined;
}

/** Go's path.Clean for the absolute paths serve's cleanURLPath gives it. */
export function goCleanPath(p) {
  const out = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  return `/${out.join('/')}`;
}

// ---------------------------------------------------------------------------------------------
// State, records and faults.

export const sha256 = (s) => createHash('sha256').update(s).digest('hex');

/** A stable 100.64.0.0/10 address from the state directory. */
export function addressFor(stateKey) {
  const h = createHash('sha256').update(stateKey).digest();
  return `100.${64 + (h[0] % 64)}.${h[1]}.${1 + (h[2] % 254)}`;
}

export function readJson(file, fallback) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return fallback;
  }
}

export function writeJson(file, value) {
  const tmp = `${file}.tmp${process.pid}`;
  writeFileSync(tmp, JSON.stringify(value, null, 2), { mode: 0o600 });
  renameSync(tmp, file);
}

/** Appends one record of what the double was told; keys appear only as hashes. */
export function record(stateDir, entry) {
  if (!stateDir) return;
  appendFileSync(join(stateDir, 'double-calls.jsonl'), JSON.stringify({ time: new Date().toISOString(), ...entry }) + '\n', { mode: 0o600 });
}

export function fault(stateDir) {
  if (!stateDir) return {};
  const f = join(stateDir, 'double-fault.json');
  return existsSync(f) ? readJson(f, {}) : {};
}
