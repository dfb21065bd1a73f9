/**
 * A tailnet's MagicDNS suffix (`tailnet-name.ts.net`, headscale's `base_domain`) as the
 * container's DNS rule matches it: lower-case DNS labels only, so its wire form can go into an
 * iptables rule as hex and nothing else.
 */
declare const brand: unique symbol;
export type DnsSuffix = string & { readonly [brand]: 'DnsSuffix' };

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** `tsl.test` (a trailing dot and letter case are ignored), or undefined when it is no DNS name. */
export function parseDnsSuffix(text: string): DnsSuffix | undefined {
  const name = text.toLowerCase().replace(/\.$/, '');
  if (name.length === 0 || name.length > 253) return undefined;
  return name.split('.').every((l) => LABEL.test(l)) ? (name as DnsSuffix) : undefined;
}

/**
 * The suffix as it ends a name in a DNS query: each label after its length byte, then the root's
 * zero byte, in iptables' `|hex|` notation. Anchoring on the zero byte keeps `tsl.test.example.com`
 * from matching `tsl.test`; the length byte before the first label keeps `xtsl.test` from it.
 */
export function wireSuffixHex(suffix: DnsSuffix): string {
  const bytes = suffix.split('.').flatMap((l) => [l.length, ...Buffer.from(l, 'ascii')]);
  return `|${Buffer.from([...bytes, 0]).toString('hex')}|`;
}
