// Shared pieces of the tailscale/tailscaled TEST DOUBLE. Never shipped in a product build.
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const VERSION = '1.90.0-double';

/**
 * Parses flags the way Go's flag package does: -f, --f, -f=v, --f v; booleans take no separate
 * value (only -f=true|false); parsing stops at the first non-flag argument or at "--".
 * spec: { name: 'string' | 'bool' | 'int' | 'duration' }. Aliases map to their canonical name.
 */
export function parseFlags(args, spec, aliases = {}) {
  const values = {};
  let i = 0;
  for (; i < args.length; i++) {
    const a = args[i];
    if (a === '--') { i++; break; }
    if (!a.startsWith('-') || a === '-') break;
    const body = a.replace(/^--?/, '');
    const eq = body.indexOf('=');
    let name = eq >= 0 ? body.slice(0, eq) : body;
    name = aliases[name] ?? name;
    const type = spec[name];
    if (!type) throw new FlagError(`flag provided but not defined: -${eq >= 0 ? body.slice(0, eq) : body}`);
    let value;
    if (type === 'bool') {
      const v = eq >= 0 ? body.slice(eq + 1) : 'true';
      if (!['true', 'false', '1', '0', 't', 'f', 'TRUE', 'FALSE', 'True', 'False'].includes(v)) throw new FlagError(`invalid boolean value "${v}" for -${name}: parse error`);
      value = ['true', '1', 't', 'TRUE', 'True'].includes(v);
    } else {
      if (eq >= 0) value = body.slice(eq + 1);
      else if (i + 1 < args.length) value = args[++i];
      else throw new FlagError(`flag needs an argument: -${name}`);
      if (type === 'int' && !/^-?\d+$/.test(value)) throw new FlagError(`invalid value "${value}" for flag -${name}: parse error`);
      if (type === 'int') value = Number(value);
      if (type === 'duration' && parseDuration(value) === undefined) throw new FlagError(`invalid value "${value}" for flag -${name}: parse error`);
    }
    values[name] = value;
  }
  return { values, rest: args.slice(i) };
}

export class FlagError extends Error {}

export function parseDuration(s) {
  if (s === '0') return 0;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(s);
  if (!m) return undefined;
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2]];
}

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

export const DNS_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
export const TAG = /^tag:[A-Za-z][A-Za-z0-9-]*$/;
