/** The two halves of an IPv4 subnet, e.g. 172.18.0.0/16 → 172.18.0.0/17 and 172.18.128.0/17. */
export function subnetHalves(cidr: string): [string, string] {
  const [addr = '', lenText = ''] = cidr.split('/');
  const len = Number(lenText);
  const parts = addr.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255) || !Number.isInteger(len) || len < 0 || len > 31) {
    throw new Error(`not an IPv4 subnet that can be split: ${cidr}`);
  }
  const n = parts.reduce((a, p) => a * 256 + p, 0);
  const size = 2 ** (32 - len);
  const base = n - (n % size);
  const toText = (v: number): string => [24, 16, 8, 0].map((s) => Math.floor(v / 2 ** s) % 256).join('.');
  return [`${toText(base)}/${len + 1}`, `${toText(base + size / 2)}/${len + 1}`];
}
