/**
 * IPv4 values as the host commands take them. Everything that reaches `ip` or `iptables` is one
 * of these branded types, made only by the parsers here: a string from a request or a record
 * cannot be passed where an address is expected, and a parsed value can hold nothing but digits,
 * dots and one slash (no space, newline or word that `ip -batch` or `iptables-restore` would read
 * as another command).
 */
declare const brand: unique symbol;
type Brand<T, B> = T & { readonly [brand]: B };

/** A dotted-quad IPv4 address in canonical form (no leading zeros). */
export type Ipv4Address = Brand<string, 'Ipv4Address'>;
/** An IPv4 network in CIDR form whose address is the network's first address. */
export type Ipv4Network = Brand<string, 'Ipv4Network'>;
/** An IPv4 prefix length, 0–32. */
export type PrefixLength = Brand<number, 'PrefixLength'>;

const OCTET = /^(?:0|[1-9][0-9]{0,2})$/;

/** The address as a number, or undefined when the text is not a canonical dotted quad. */
function toNumber(text: string): number | undefined {
  if (text.length > 15) return undefined;
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => OCTET.test(p) && Number(p) <= 255)) return undefined;
  return parts.reduce((a, p) => a * 256 + Number(p), 0);
}

const toText = (v: number): string => [24, 16, 8, 0].map((s) => Math.floor(v / 2 ** s) % 256).join('.');

export function parseIpv4(text: string): Ipv4Address | undefined {
  return toNumber(text) === undefined ? undefined : (text as Ipv4Address);
}

export function parsePrefixLength(text: string | number, min = 0, max = 32): PrefixLength | undefined {
  const s = String(text);
  if (!/^(?:0|[1-9][0-9]?)$/.test(s)) return undefined;
  const n = Number(s);
  return n >= min && n <= max ? (n as PrefixLength) : undefined;
}

/** `a.b.c.d/len` split into a checked address and prefix length (the address may be any host). */
export function parseCidr(text: string, minLen = 0, maxLen = 32): { address: Ipv4Address; prefixLen: PrefixLength } | undefined {
  const slash = text.indexOf('/');
  if (slash < 0 || text.length > 18) return undefined;
  const address = parseIpv4(text.slice(0, slash));
  const prefixLen = parsePrefixLength(text.slice(slash + 1), minLen, maxLen);
  return address && prefixLen !== undefined ? { address, prefixLen } : undefined;
}

/** A network in CIDR form: the address must be the network's own (172.18.0.0/16, not 172.18.0.5/16). */
export function parseNetwork(text: string, minLen = 0, maxLen = 32): Ipv4Network | undefined {
  const c = parseCidr(text, minLen, maxLen);
  if (!c) return undefined;
  const n = toNumber(c.address)!;
  const size = 2 ** (32 - c.prefixLen);
  return n % size === 0 ? (text as Ipv4Network) : undefined;
}

/** Whether an address lies in a network. */
export function contains(network: Ipv4Network, address: Ipv4Address): boolean {
  const [base = '', len = ''] = network.split('/');
  const size = 2 ** (32 - Number(len));
  const b = toNumber(base)!;
  const a = toNumber(address)!;
  return a >= b && a < b + size;
}

/** The two halves of a network, e.g. 172.18.0.0/16 → 172.18.0.0/17 and 172.18.128.0/17. */
export function subnetHalves(network: Ipv4Network): [Ipv4Network, Ipv4Network] {
  const [base = '', lenText = ''] = network.split('/');
  const len = Number(lenText);
  if (len >= 32) throw new Error(`not an IPv4 subnet that can be split: ${network}`);
  const b = toNumber(base)!;
  const half = 2 ** (32 - len - 1);
  return [`${toText(b)}/${len + 1}` as Ipv4Network, `${toText(b + half)}/${len + 1}` as Ipv4Network];
}

/** A /32 network for one address. */
export const hostRoute = (a: Ipv4Address): Ipv4Network => `${a}/32` as Ipv4Network;
