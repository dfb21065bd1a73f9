/** What labels and network options share: their key prefix, and the grammars of DNS labels, tags, booleans, ports. */
import { MAX_PROBLEMS, type Report, show } from './messages.js';

/** Every label and option key tslink reads starts with this, in any letter case. */
export const LABEL_PREFIX = 'tslink.';

/**
 * Longest value of a `tslink.*` label or option. Docker takes far longer ones (a label value of
 * 64 KiB and more), but the longest tslink value a person writes (a tag list, a serve rule with
 * its options) is a few hundred characters; anything past this is refused before it is parsed,
 * so no hostile value costs more than this much work (issue 22).
 */
export const MAX_VALUE = 4096;

/** Why a value is too long to parse, or undefined. */
export function valueLengthProblem(value: string, kind: 'label' | 'option'): string | undefined {
  return value.length > MAX_VALUE ? `it is ${value.length} characters long; a tslink ${kind} value may be at most ${MAX_VALUE}` : undefined;
}

export const DNS_LABEL_RULE = '1-63 letters, digits and hyphens, not starting or ending with a hyphen';

/** Why `s` is not a DNS label, or undefined when it is one. */
export function dnsLabelProblem(s: string): string | undefined {
  if (s === '') return 'it is empty';
  if (s.length > 63) return `it is ${s.length} characters long, the limit is 63`;
  const bad = /[^A-Za-z0-9-]/.exec(s);
  if (bad) return `${show(bad[0])} is not allowed`;
  if (s.startsWith('-') || s.endsWith('-')) return 'it starts or ends with a hyphen';
  return undefined;
}

export const isDnsLabel = (s: string): boolean => dnsLabelProblem(s) === undefined;

const TAGS_RULE = 'write comma-separated tag:<name> items, each name a letter followed by letters, digits or hyphens, e.g. tag:web,tag:prod';

/** Why one item of a tag list is not a tag, or undefined when it is one. */
function tagProblem(item: string): string | undefined {
  if (item === '') return 'there is an empty item (two commas in a row, or a comma at an end)';
  if (!item.startsWith('tag:')) return `${show(item)} does not start with tag:`;
  const name = item.slice('tag:'.length);
  if (name === '') return `${show(item)} has no name after tag:`;
  if (!/^[A-Za-z]/.test(name)) return `${show(item)} does not start its name with a letter`;
  const bad = /[^A-Za-z0-9-]/.exec(name);
  if (bad) return `${show(item)} contains ${show(bad[0])}, which a tag name cannot hold`;
  return undefined;
}

/**
 * A comma-separated list: items trimmed, deduplicated in order, one problem per bad item. Past
 * MAX_PROBLEMS - 1 bad items (a flood of commas) the rest are only counted, in one more problem.
 */
export function parseList(value: string, opts: { empty: string; noun: string; item: (item: string) => { value: string } | { problem: string } }): { items: string[]; problems: string[] } {
  if (value.trim() === '') return { items: [], problems: [opts.empty] };
  const items = new Set<string>();
  const problems: string[] = [];
  let untold = 0;
  for (const item of value.split(',').map((t) => t.trim())) {
    const r = opts.item(item);
    if ('problem' in r && problems.length >= MAX_PROBLEMS - 1) untold++;
    else if ('problem' in r) problems.push(r.problem);
    else items.add(r.value);
  }
  if (untold) problems.push(`and ${untold} more items are not ${opts.noun} either`);
  return { items: [...items], problems };
}

/** A comma-separated tag list: items trimmed, deduplicated in order; one problem per bad item. */
export function parseTagList(value: string): { tags: string[]; problems: string[] } {
  const r = parseList(value, {
    empty: 'it is empty; give at least one tag, or leave it out',
    noun: 'tags',
    item: (item) => {
      const problem = tagProblem(item);
      return problem ? { problem: `${problem}; ${TAGS_RULE}` } : { value: item };
    },
  });
  return { tags: r.items, problems: r.problems };
}

export function parseBool(value: string): boolean | undefined {
  const v = value.trim().toLowerCase();
  return v === 'true' ? true : v === 'false' ? false : undefined;
}

/** A label's or option's parser for true/false: `refusal` says what each means when it is neither. */
export const boolParser = <T>(refusal: string, set: (into: T, b: boolean) => void) => (value: string, into: T, report: Report): void => {
  const b = parseBool(value);
  if (b === undefined) report(refusal);
  else set(into, b);
};

/** A port: 1-65535, decimal, no sign or leading zeros. */
export function parsePort(text: string): number | undefined {
  if (!/^[1-9][0-9]{0,4}$/.test(text)) return undefined;
  const n = Number(text);
  return n <= 65535 ? n : undefined;
}

/** A tag list for a parser's draft: the tags, or undefined after reporting each bad item. */
export function reportedTags(value: string, report: (problem: string) => void): string[] | undefined {
  const { tags, problems } = parseTagList(value);
  problems.forEach(report);
  return problems.length ? undefined : tags;
}

/** An IP address as Go's netip holds it: its family and its bits. */
export interface IpAddr {
  family: 4 | 6;
  value: bigint;
}

const V4_PART = /^(0|[1-9][0-9]{0,2})$/;
const V6_GROUP = /^[0-9a-f]{1,4}$/;

/** Dotted IPv4 as netip.ParseAddr takes it (four decimal parts, no leading zeros), or undefined. */
function parseIpv4(s: string): bigint | undefined {
  const parts = s.split('.');
  if (parts.length !== 4 || !parts.every((p) => V4_PART.test(p) && Number(p) <= 255)) return undefined;
  return parts.reduce((v, p) => (v << 8n) | BigInt(p), 0n);
}

/**
 * Lower-case hex IPv6 with at most one `::`, or undefined. No zone (a prefix cannot hold one)
 * and no dotted IPv4 tail: tslink writes every address in the one form it compares.
 */
function parseIpv6(s: string): bigint | undefined {
  const halves = s.split('::');
  if (s.length > 39 || halves.length > 2) return undefined;
  const groups = (h: string): string[] => (h === '' ? [] : h.split(':'));
  const head = groups(halves[0] ?? '');
  const tail = halves.length === 2 ? groups(halves[1] ?? '') : [];
  const fill = 8 - head.length - tail.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) return undefined;
  const all = [...head, ...Array<string>(fill).fill('0'), ...tail];
  if (!all.every((g) => V6_GROUP.test(g))) return undefined;
  return all.reduce((v, g) => (v << 16n) | BigInt(`0x${g}`), 0n);
}

/** An address written as IPv4 or IPv6 (hex letters in either case), or undefined. */
export function parseIp(s: string): IpAddr | undefined {
  if (s.includes(':')) {
    const value = parseIpv6(s.toLowerCase());
    return value === undefined ? undefined : { family: 6, value };
  }
  const value = parseIpv4(s);
  return value === undefined ? undefined : { family: 4, value };
}

/** An address in its one canonical form: dotted IPv4, or RFC 5952 IPv6 (the longest run of zero groups, the first on a tie, as `::`). */
export function formatIp(a: IpAddr): string {
  if (a.family === 4) return [24n, 16n, 8n, 0n].map((s) => String((a.value >> s) & 0xffn)).join('.');
  const g = [112n, 96n, 80n, 64n, 48n, 32n, 16n, 0n].map((s) => Number((a.value >> s) & 0xffffn));
  let best = { at: -1, len: 1 };
  for (let i = 0; i < 8; i++) {
    let n = 0;
    while (i + n < 8 && g[i + n] === 0) n++;
    if (n > best.len) best = { at: i, len: n };
  }
  const hex = (xs: number[]): string => xs.map((x) => x.toString(16)).join(':');
  return best.at < 0 ? hex(g) : `${hex(g.slice(0, best.at))}::${hex(g.slice(best.at + best.len))}`;
}

export const addressBits = (family: 4 | 6): number => (family === 4 ? 32 : 128);

/** A CIDR prefix: the address as written, its length, and the network (host bits cleared). */
export interface IpPrefix {
  addr: IpAddr;
  bits: number;
  network: IpAddr;
}

/** `<address>/<length>`, the length decimal without leading zeros, or undefined. */
export function parsePrefix(s: string): IpPrefix | undefined {
  const slash = s.indexOf('/');
  const addr = slash < 0 ? undefined : parseIp(s.slice(0, slash));
  const lenText = s.slice(slash + 1);
  if (!addr || !V4_PART.test(lenText)) return undefined;
  const bits = Number(lenText);
  const width = addressBits(addr.family);
  if (bits > width) return undefined;
  const host = (1n << BigInt(width - bits)) - 1n;
  return { addr, bits, network: { family: addr.family, value: addr.value & ~host } };
}

export const formatPrefix = (p: Pick<IpPrefix, 'network' | 'bits'>): string => `${formatIp(p.network)}/${p.bits}`;

/** Whether `a` lies in the prefix written `cidr` (a constant of tslink's own). */
export function inPrefix(a: IpAddr, cidr: string): boolean {
  const p = parsePrefix(cidr);
  if (!p || p.addr.family !== a.family) return false;
  const shift = BigInt(addressBits(a.family) - p.bits);
  return a.value >> shift === p.network.value >> shift;
}
